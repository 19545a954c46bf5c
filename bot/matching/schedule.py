"""When match rounds are due: a weekday and a time in the server's zone, every one, two or four-ish weeks.

Weekly and biweekly rounds fall on the weekday; a monthly round falls on the
month's first such weekday ("the first Monday"). Slots are read the way prompt
slots are (bot/prompts/schedule.py), so they stay at 10:00 local across
daylight-saving changes. After downtime only the latest missed slot is due.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.matching.model import Cadence, RoundSettings
from bot.prompts.schedule import latest_slot, next_slot, parse_time

# The least time between two rounds of a cadence: less than its period, so a slot moved by a time-zone
# change still counts, more than half of it, so no round comes twice in one period.
MIN_GAPS = {
    Cadence.WEEKLY: timedelta(hours=12),
    Cadence.BIWEEKLY: timedelta(days=10),
    Cadence.MONTHLY: timedelta(days=20),
}
# How far apart a cadence's rounds are (a monthly one, at least): a round made by hand stands for the
# scheduled one when that is less than half of this away.
PERIODS = {
    Cadence.WEEKLY: timedelta(weeks=1),
    Cadence.BIWEEKLY: timedelta(weeks=2),
    Cadence.MONTHLY: timedelta(weeks=4),
}
# Slots to look through for the next round: a monthly one is at most five weeks away, plus the gap.
LOOK_AHEAD = 12


def _first_of_month(slot: datetime, zone: ZoneInfo) -> bool:
    return slot.astimezone(zone).day <= 7


def due_round(settings: RoundSettings, zone: ZoneInfo, now: datetime) -> datetime | None:
    """The slot to run a round for now, if any."""
    if not settings.enabled:
        return None
    at = parse_time(settings.time)
    slot = latest_slot(now, settings.weekday, at, zone)
    if settings.cadence is Cadence.MONTHLY:
        while not _first_of_month(slot, zone):
            slot = latest_slot(slot - timedelta(days=6), settings.weekday, at, zone)
    if settings.last_slot is not None and slot < settings.last_slot + MIN_GAPS[settings.cadence]:
        return None
    return slot


def next_round(settings: RoundSettings, zone: ZoneInfo, now: datetime) -> datetime | None:
    """When the next scheduled round comes; None when rounds are off."""
    if not settings.enabled:
        return None
    at: time = parse_time(settings.time)
    slot = now
    for _ in range(LOOK_AHEAD):
        slot = next_slot(slot, settings.weekday, at, zone)
        if settings.cadence is Cadence.MONTHLY and not _first_of_month(slot, zone):
            continue
        if settings.last_slot is None or slot >= settings.last_slot + MIN_GAPS[settings.cadence]:
            return slot
    return None


def replaced_slot(settings: RoundSettings, zone: ZoneInfo, now: datetime) -> datetime | None:
    """The scheduled slot that a round made by hand at ``now`` (``/rounds run``) takes the place of: the slot
    that is due and not made yet, else the next slot if it is less than half a period away; None when
    rounds are off or the next slot is further (the round by hand is then an extra one).

    Recorded as ``last_slot``, it keeps the schedule from making a second round right after a manual one,
    and keeps the rhythm: the round after is the one a period later."""
    if not settings.enabled:
        return None
    due = due_round(settings, zone, now)
    if due is not None:
        return due
    upcoming = next_round(settings, zone, now)
    if upcoming is not None and upcoming - now < PERIODS[settings.cadence] / 2:
        return upcoming
    return None
