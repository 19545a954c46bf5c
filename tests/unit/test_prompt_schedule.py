"""Weekly slots in a server's time zone, across daylight-saving changes, and the catch-up rule."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import UserError
from bot.prompts.model import Schedule
from bot.prompts.schedule import due_slot, latest_slot, next_slot, parse_time, parse_weekday

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
TOKYO = ZoneInfo("Asia/Tokyo")
MONDAY, SUNDAY = 0, 6


def test_a_slot_stays_at_local_time_across_the_autumn_change() -> None:
    # New York leaves daylight time on Sunday 2026-11-01: Monday 09:00 moves from 13:00 to 14:00 UTC.
    before = next_slot(datetime(2026, 10, 25, tzinfo=UTC), MONDAY, time(9), NEW_YORK)
    after = next_slot(before, MONDAY, time(9), NEW_YORK)
    assert before == datetime(2026, 10, 26, 13, 0, tzinfo=UTC)
    assert after == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    assert after.astimezone(NEW_YORK).hour == 9


def test_a_slot_stays_at_local_time_across_the_spring_change() -> None:
    # London enters summer time on Sunday 2026-03-29.
    before = next_slot(datetime(2026, 3, 20, tzinfo=UTC), MONDAY, time(9), LONDON)
    after = next_slot(before, MONDAY, time(9), LONDON)
    assert before == datetime(2026, 3, 23, 9, 0, tzinfo=UTC)
    assert after == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)


def test_a_time_skipped_by_the_spring_change_is_posted_an_hour_later_on_the_clock() -> None:
    # 01:30 does not exist in London on 2026-03-29: the slot falls at 01:30 GMT = 02:30 BST.
    slot = next_slot(datetime(2026, 3, 28, tzinfo=UTC), SUNDAY, time(1, 30), LONDON)
    assert slot == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_a_time_that_happens_twice_in_autumn_is_posted_once_at_the_first() -> None:
    # 01:30 happens twice in London on 2026-10-25 (BST, then GMT); the slot is the first.
    start = datetime(2026, 10, 24, tzinfo=UTC)
    slot = next_slot(start, SUNDAY, time(1, 30), LONDON)
    assert slot == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert next_slot(slot, SUNDAY, time(1, 30), LONDON) == datetime(2026, 11, 1, 1, 30, tzinfo=UTC)


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)),
       st.integers(0, 6), st.times(), st.sampled_from([NEW_YORK, LONDON, TOKYO, ZoneInfo("Australia/Sydney")]))
def test_latest_and_next_slots_bracket_now_a_week_apart_at_most(now: datetime, weekday: int, at: time,
                                                                 zone: ZoneInfo) -> None:
    at = at.replace(microsecond=0, second=0)
    latest = latest_slot(now, weekday, at, zone)
    upcoming = next_slot(now, weekday, at, zone)
    assert latest <= now < upcoming
    assert upcoming - latest <= timedelta(days=7, hours=1)
    assert latest.astimezone(zone).weekday() == weekday or latest.astimezone(zone).time() != at


def test_after_three_weeks_of_downtime_only_the_latest_slot_is_due() -> None:
    last = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # Monday 09:00 in Tokyo
    schedule = Schedule(MONDAY, time(9), True, last)
    now = last + timedelta(weeks=3, hours=5)
    assert due_slot(schedule, TOKYO, now) == last + timedelta(weeks=3)
    posted = Schedule(MONDAY, time(9), True, last + timedelta(weeks=3))
    assert due_slot(posted, TOKYO, now) is None


def test_nothing_is_due_when_off_or_before_the_slot() -> None:
    last = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    assert due_slot(Schedule(MONDAY, time(9), False, last), TOKYO, last + timedelta(weeks=1)) is None
    assert due_slot(Schedule(MONDAY, time(9), True, last), TOKYO, last + timedelta(days=6)) is None


def test_a_slot_moved_by_hours_does_not_post_twice_in_a_day() -> None:
    # Posted at Monday 09:00 Tokyo; the server moves to London time the same day: Monday 09:00 London is
    # nine hours later, but the prompt of the day is already out.
    last = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    assert due_slot(Schedule(MONDAY, time(9), True, last), LONDON, last + timedelta(hours=10)) is None


@pytest.mark.parametrize(("text", "expected"), [("09:00", time(9)), ("9:05", time(9, 5)), ("23:59", time(23, 59)),
                                                (" 18:30 ", time(18, 30)), ("０９：３０", time(9, 30))])
def test_times_are_read_on_the_24_hour_clock(text: str, expected: time) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["", "24:00", "9", "9am", "09:60", "@everyone", "0\u200b9:00", "x" * 5000])
def test_other_times_are_refused_with_a_message(text: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_time(text)
    assert caught.value.key == "prompts.schedule.bad_time"


def test_weekdays_by_name() -> None:
    assert parse_weekday("Monday") == 0 and parse_weekday("sunday") == 6
    with pytest.raises(UserError):
        parse_weekday("someday")
