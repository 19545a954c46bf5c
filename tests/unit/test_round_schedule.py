"""When match rounds are due: weekly, biweekly and monthly slots in a server's zone, after downtime too."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.matching.model import Cadence, RoundSettings
from bot.matching.schedule import due_round, next_round, replaced_slot

TOKYO = ZoneInfo("Asia/Tokyo")
MONDAY_10 = RoundSettings(1, enabled=True, cadence=Cadence.WEEKLY, weekday=0, time="10:00")


def tokyo(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO).astimezone(UTC)  # type: ignore[misc]


def test_off_is_never_due() -> None:
    off = replace(MONDAY_10, enabled=False)
    assert due_round(off, TOKYO, tokyo(2026, 11, 2, 10, 0)) is None
    assert next_round(off, TOKYO, tokyo(2026, 11, 2, 10, 0)) is None


def test_weekly_is_due_at_the_local_time_once() -> None:
    slot = tokyo(2026, 11, 2, 10, 0)  # a Monday
    assert due_round(MONDAY_10, TOKYO, slot) == slot
    done = replace(MONDAY_10, last_slot=slot)
    assert due_round(done, TOKYO, slot + timedelta(days=3)) is None
    assert next_round(done, TOKYO, slot) == slot + timedelta(weeks=1)


def test_after_downtime_only_the_latest_slot_is_due() -> None:
    last = tokyo(2026, 11, 2, 10, 0)
    done = replace(MONDAY_10, last_slot=last)
    assert due_round(done, TOKYO, last + timedelta(weeks=3, hours=2)) == last + timedelta(weeks=3)


def test_biweekly_skips_a_week() -> None:
    last = tokyo(2026, 11, 2, 10, 0)
    biweekly = replace(MONDAY_10, cadence=Cadence.BIWEEKLY, last_slot=last)
    assert due_round(biweekly, TOKYO, last + timedelta(weeks=1)) is None
    assert due_round(biweekly, TOKYO, last + timedelta(weeks=2)) == last + timedelta(weeks=2)
    assert next_round(biweekly, TOKYO, last) == last + timedelta(weeks=2)


def test_monthly_is_the_first_such_weekday_of_the_month() -> None:
    monthly = replace(MONDAY_10, cadence=Cadence.MONTHLY)
    # December 2026 starts on a Tuesday: its first Monday is the 7th.
    assert next_round(monthly, TOKYO, tokyo(2026, 11, 10, 0, 0)) == tokyo(2026, 12, 7, 10, 0)
    assert due_round(monthly, TOKYO, tokyo(2026, 11, 20, 0, 0)) == tokyo(2026, 11, 2, 10, 0)
    done = replace(monthly, last_slot=tokyo(2026, 11, 2, 10, 0))
    assert due_round(done, TOKYO, tokyo(2026, 11, 30, 12, 0)) is None
    assert due_round(done, TOKYO, tokyo(2026, 12, 7, 10, 0)) == tokyo(2026, 12, 7, 10, 0)


def test_a_round_by_hand_takes_the_place_of_the_slot_due_or_less_than_half_a_period_away() -> None:
    monday = tokyo(2026, 11, 2, 10, 0)
    done = replace(MONDAY_10, last_slot=monday - timedelta(weeks=1))
    assert replaced_slot(done, TOKYO, monday + timedelta(minutes=5)) == monday  # due, not made yet
    made = replace(MONDAY_10, last_slot=monday)
    assert replaced_slot(made, TOKYO, monday + timedelta(hours=5)) is None  # an extra round, mid-week
    friday = monday + timedelta(days=4)
    assert replaced_slot(made, TOKYO, friday) == monday + timedelta(weeks=1)  # the next, 3 days away
    moved = replace(made, last_slot=monday + timedelta(weeks=1))
    assert due_round(moved, TOKYO, monday + timedelta(weeks=1, minutes=1)) is None
    assert next_round(moved, TOKYO, friday) == monday + timedelta(weeks=2)
    assert replaced_slot(replace(made, enabled=False), TOKYO, friday) is None
    biweekly = replace(made, cadence=Cadence.BIWEEKLY)
    assert replaced_slot(biweekly, TOKYO, friday) is None  # ten days away: more than half of two weeks
