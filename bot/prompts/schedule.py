"""When scheduled prompts are due: weekly slots in the server's time zone.

A slot is a weekday and a wall-clock time in the server's zone, so it stays
at 09:00 local across daylight-saving changes (its UTC time moves instead).
A wall-clock time that does not exist on the day (skipped by a spring-forward)
is read with the offset before the change, i.e. an hour later on the clock;
a time that exists twice (fall-back) is the first of the two.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.errors import UserError
from bot.i18n import shorten
from bot.prompts.model import Schedule

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# A slot this close after the last one is not posted: it happens when the time zone or the
# schedule moved the slot by hours, and would post twice in a day.
MIN_GAP = timedelta(hours=12)
_TIME = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def parse_time(text: str) -> time:
    """"09:00", "9:30" or "21:05" (24-hour clock; full-width digits and colon, as a Japanese keyboard
    may type them, are read too)."""
    match = _TIME.fullmatch(unicodedata.normalize("NFKC", text).strip())
    if match is None:
        raise UserError("prompts.schedule.bad_time", text=shorten(text, 40))
    return time(int(match[1]), int(match[2]))


def parse_weekday(text: str) -> int:
    try:
        return WEEKDAYS.index(text.strip().lower())
    except ValueError:
        raise UserError("prompts.schedule.bad_weekday", weekday=shorten(text, 40)) from None


def slot_on(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The slot on a local calendar day, in UTC."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def latest_slot(now: datetime, weekday: int, at: time, zone: ZoneInfo) -> datetime:
    """The last slot at or before ``now``."""
    today = now.astimezone(zone).date()
    for back in range(8):
        day = today - timedelta(days=back)
        if day.weekday() == weekday and (slot := slot_on(day, at, zone)) <= now:
            return slot
    raise AssertionError("a weekday recurs within eight days")


def next_slot(now: datetime, weekday: int, at: time, zone: ZoneInfo) -> datetime:
    """The first slot after ``now``."""
    today = now.astimezone(zone).date()
    for ahead in range(8):
        day = today + timedelta(days=ahead)
        if day.weekday() == weekday and (slot := slot_on(day, at, zone)) > now:
            return slot
    raise AssertionError("a weekday recurs within eight days")


def next_post_time(schedule: Schedule, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When the schedule posts next; None when it is off."""
    return next_slot(now, schedule.weekday, schedule.at, zone) if schedule.enabled else None


def due_slot(schedule: Schedule, zone: ZoneInfo, now: datetime) -> datetime | None:
    """The slot to post for now, if any. After downtime only the latest missed slot is due, so a bot that
    was away for three weeks posts once, not three times."""
    if not schedule.enabled:
        return None
    slot = latest_slot(now, schedule.weekday, schedule.at, zone)
    if schedule.last_slot is not None and slot < schedule.last_slot + MIN_GAP:
        return None
    return slot
