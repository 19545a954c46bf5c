"""Server settings as plain, frozen data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

DEFAULT_TIMEZONE = "UTC"


class Purpose(StrEnum):
    """What a server uses a channel for."""

    PROMPTS = "prompts"
    INTRODUCTIONS = "introductions"
    MATCHES = "matches"
    WELCOME = "welcome"
    LOG = "log"


class ChannelKind(StrEnum):
    """Discord's channel types, named without discord.py."""

    TEXT = "text"
    ANNOUNCEMENT = "announcement"
    FORUM = "forum"
    MEDIA = "media"
    VOICE = "voice"
    STAGE = "stage"
    CATEGORY = "category"
    THREAD = "thread"
    OTHER = "other"


class Setting(StrEnum):
    """The settings the audit table names (channels are ``channel.<purpose>``)."""

    LANGUAGE = "language"
    TIMEZONE = "timezone"

    @staticmethod
    def channel(purpose: Purpose) -> str:
        return f"channel.{purpose.value}"


@dataclass(frozen=True)
class ChannelRef:
    """A channel as a command names it: its id, its kind, and how to mention it."""

    id: int
    kind: ChannelKind
    mention: str


@dataclass(frozen=True)
class GuildSettings:
    guild_id: int
    language: str | None = None
    timezone: str | None = None
    channels: Mapping[Purpose, int] = field(default_factory=lambda: MappingProxyType({}))

    def channel(self, purpose: Purpose) -> int | None:
        return self.channels.get(purpose)

    @property
    def timezone_name(self) -> str:
        return self.timezone or DEFAULT_TIMEZONE


@dataclass(frozen=True)
class Change:
    """One setting before and after a command."""

    setting: str
    old: str | None
    new: str | None

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass(frozen=True)
class AuditEntry:
    guild_id: int
    actor_id: int
    setting: str
    old: str | None
    new: str | None
    changed_at: datetime
