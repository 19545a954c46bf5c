"""Server settings as plain, frozen data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from bot.i18n import DEFAULT_LANGUAGE, language_of_locale

DEFAULT_TIMEZONE = "UTC"
# Who a change or a prompt is by once its author erased their data (no Discord id is 0).
FORMER_MEMBER = 0


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
    """A channel as the glue sees it: id, kind, mention, and what the bot may do there
    (discord.py permission names)."""

    id: int
    kind: ChannelKind
    mention: str
    bot_permissions: frozenset[str] = frozenset()


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

    def effective_language(self, discord_locale: str | None) -> str:
        """The language of the bot's posts: as configured, else the server's Discord locale, else English."""
        return self.language or language_of_locale(discord_locale) or DEFAULT_LANGUAGE


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
class ChannelUpdate:
    """What ``/config channel`` did, and what the bot still lacks in the new channel."""

    purpose: Purpose
    change: Change
    missing_permissions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChannelStatus:
    """A configured channel as ``/config show`` reports it."""

    purpose: Purpose
    channel_id: int | None
    found: bool = False
    missing_permissions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Overview:
    settings: GuildSettings
    channels: tuple[ChannelStatus, ...]
    recent_changes: tuple[AuditEntry, ...]


@dataclass(frozen=True)
class AuditEntry:
    guild_id: int
    actor_id: int
    setting: str
    old: str | None
    new: str | None
    changed_at: datetime
