"""What a valid setting is: channel kinds and permissions per purpose, time zones, languages."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from functools import cache
from typing import Final

from bot.errors import UserError
from bot.guilds.model import ChannelKind, Purpose
from bot.i18n import LANGUAGES, Text, shorten

# Where each purpose can live. Prompts become forum posts or threads under a
# message; match threads are private threads, which announcement channels
# cannot hold; the rest are plain messages.
CHANNEL_KINDS: Final[dict[Purpose, frozenset[ChannelKind]]] = {
    Purpose.PROMPTS: frozenset({ChannelKind.TEXT, ChannelKind.FORUM}),
    Purpose.INTRODUCTIONS: frozenset({ChannelKind.TEXT}),
    Purpose.MATCHES: frozenset({ChannelKind.TEXT}),
    Purpose.WELCOME: frozenset({ChannelKind.TEXT, ChannelKind.ANNOUNCEMENT}),
    Purpose.LOG: frozenset({ChannelKind.TEXT}),
}

# What the bot must be allowed to do in a purpose's channel (discord.py's
# Permissions attribute names). The invite link asks for exactly their union.
REQUIRED_PERMISSIONS: Final[dict[Purpose, tuple[str, ...]]] = {
    Purpose.PROMPTS: (
        "view_channel", "send_messages", "send_messages_in_threads",
        "create_public_threads", "embed_links", "read_message_history",
    ),
    Purpose.INTRODUCTIONS: ("view_channel", "send_messages", "embed_links", "read_message_history", "add_reactions"),
    # Read Message History: a retry after a crash reads the thread to find what it already sent.
    Purpose.MATCHES: ("view_channel", "send_messages", "send_messages_in_threads",
                      "create_private_threads", "embed_links", "read_message_history"),
    Purpose.WELCOME: ("view_channel", "send_messages", "embed_links"),
    Purpose.LOG: ("view_channel", "send_messages", "embed_links"),
}

# Offered first when an admin has typed nothing: where our members live.
COMMON_TIMEZONES: Final = (
    "Asia/Tokyo", "UTC", "America/Los_Angeles", "America/New_York", "Europe/London",
    "Asia/Singapore", "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Bangkok", "Asia/Ho_Chi_Minh",
    "Australia/Sydney", "Europe/Berlin", "Europe/Paris", "America/Chicago", "America/Toronto",
)
MAX_TIMEZONE_LENGTH: Final = 64
MAX_CHOICES: Final = 25


def all_required_permissions() -> frozenset[str]:
    return frozenset(name for names in REQUIRED_PERMISSIONS.values() for name in names)


def check_channel_kind(purpose: Purpose, kind: ChannelKind, channel: str) -> None:
    if kind not in CHANNEL_KINDS[purpose]:
        raise UserError(
            "config.channel.wrong_kind",
            channel=channel,
            kind=Text(f"channel_kind.{kind.value}"),
            purpose=Text(f"purpose.{purpose.value}"),
            allowed=Text(f"purpose_kinds.{purpose.value}"),
        )


def missing_permissions(purpose: Purpose, granted: Iterable[str]) -> list[str]:
    """The permissions the bot still lacks for ``purpose``, in a stable order."""
    have = set(granted)
    return [name for name in REQUIRED_PERMISSIONS[purpose] if name not in have]


@cache
def _zones() -> dict[str, str]:
    """IANA names by their folded form, so "asia/tokyo" finds "Asia/Tokyo"."""
    return {_fold(name): name for name in zoneinfo.available_timezones()}


def _fold(text: str) -> str:
    return text.strip().casefold().replace(" ", "_")


def parse_timezone(name: str) -> str:
    """The canonical IANA name for ``name``, or a UserError that says how to pick one."""
    canonical = _zones().get(_fold(name)) if len(name) <= MAX_TIMEZONE_LENGTH else None
    if canonical is None:
        raise UserError("config.timezone.unknown", name=shorten(name))
    return canonical


def timezone_choices(query: str) -> list[str]:
    """Up to 25 IANA names for autocomplete: exact, then name or city prefix, then substring."""
    needle = _fold(query[:MAX_TIMEZONE_LENGTH])
    if not needle:
        return list(COMMON_TIMEZONES[:MAX_CHOICES])
    ranked: list[tuple[int, str]] = []
    for folded, name in _zones().items():
        city = folded.rsplit("/", 1)[-1]
        if folded == needle:
            rank = 0
        elif city.startswith(needle) or folded.startswith(needle):
            rank = 1
        elif needle in folded:
            rank = 2
        else:
            continue
        ranked.append((rank, name))
    ranked.sort()
    return [name for _, name in ranked[:MAX_CHOICES]]


def parse_purpose(value: str) -> Purpose:
    try:
        return Purpose(value.strip().casefold())
    except ValueError:
        raise UserError("config.channel.unknown_purpose", purpose=shorten(value),
                        purposes=[p.value for p in Purpose]) from None


def parse_language(code: str) -> str:
    folded = code.strip().casefold()
    if folded not in LANGUAGES:
        raise UserError("config.language.unknown", code=shorten(code))
    return folded
