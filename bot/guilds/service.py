"""Changing and reading a server's settings: rule, then store (and audit). One call a command."""

from __future__ import annotations

from collections.abc import Callable

from bot.clock import Clock
from bot.guilds import rules
from bot.guilds.model import (
    Change,
    ChannelRef,
    ChannelStatus,
    ChannelUpdate,
    GuildSettings,
    Overview,
    Purpose,
    Setting,
)
from bot.guilds.store import GuildSettingsStore
from bot.i18n import language_of_locale

RECENT_CHANGES = 5
# Members whose language this process last wrote, so an interaction in an unchanged language writes nothing;
# past this many it starts again (an extra write each, no harm).
LANGUAGES_KEPT = 10_000


class GuildConfig:
    def __init__(self, store: GuildSettingsStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._languages: dict[tuple[int, int], str | None] = {}
        # Each server's settings as last read, so an interaction (and the services it calls) reads them from
        # the database once; every change goes through this object, which forgets what it changed. A read
        # that overlapped a change (``_changes`` moved meanwhile) is not kept.
        self._settings: dict[int, GuildSettings] = {}
        self._changes: dict[int, int] = {}

    async def settings(self, guild_id: int) -> GuildSettings:
        kept = self._settings.get(guild_id)
        if kept is not None:
            return kept
        seen = self._changes.get(guild_id, 0)
        settings = await self._store.get(guild_id)
        if self._changes.get(guild_id, 0) == seen:
            self._settings[guild_id] = settings
        return settings

    def _changing(self, guild_id: int) -> None:
        self._changes[guild_id] = self._changes.get(guild_id, 0) + 1
        self._settings.pop(guild_id, None)

    # -- a member's language

    async def remember_language(self, guild_id: int, user_id: int, locale: str | None) -> None:
        """The member's client locale, from an interaction: what they are sent alone goes in it (a locale the
        bot has no catalogue for forgets it: the server's language then serves, as for their replies)."""
        language = language_of_locale(locale)
        key = (guild_id, user_id)
        if key in self._languages and self._languages[key] == language:
            return
        await self._store.set_member_language(guild_id, user_id, language, self._clock.now())
        if len(self._languages) >= LANGUAGES_KEPT:
            self._languages.clear()
        self._languages[key] = language

    def forget_language(self, guild_id: int, user_id: int | None) -> None:
        """The member's data changed or was erased: the next interaction writes their language again."""
        if user_id is not None:
            self._languages.pop((guild_id, user_id), None)

    async def member_language(self, guild_id: int, user_id: int) -> str | None:
        """The language remembered from the member's last interaction in the server, if the bot speaks it."""
        return await self._store.member_language(guild_id, user_id)

    async def overview(self, guild_id: int, lookup: Callable[[int], ChannelRef | None]) -> Overview:
        """Every setting, each purpose's channel checked (``lookup`` finds a channel still there), and the
        latest changes."""
        settings = await self.settings(guild_id)
        statuses = []
        for purpose in Purpose:
            channel_id = settings.channel(purpose)
            channel = None if channel_id is None else lookup(channel_id)
            missing = () if channel is None else tuple(rules.missing_permissions(purpose, channel.bot_permissions))
            statuses.append(ChannelStatus(purpose, channel_id, channel is not None, missing))
        changes = await self._store.recent_changes(guild_id, RECENT_CHANGES)
        return Overview(settings, tuple(statuses), tuple(changes))

    async def set_channel(
        self, guild_id: int, purpose: str, channel: ChannelRef | None, *, actor_id: int
    ) -> ChannelUpdate:
        """Use ``channel`` for ``purpose``, or no channel when it is None."""
        chosen = rules.parse_purpose(purpose)
        missing: tuple[str, ...] = ()
        if channel is not None:
            rules.check_channel_kind(chosen, channel.kind, channel.mention)
            missing = tuple(rules.missing_permissions(chosen, channel.bot_permissions))
        self._changing(guild_id)
        try:
            change = await self._store.set_channel(
                guild_id, chosen, None if channel is None else channel.id, actor_id=actor_id, now=self._clock.now()
            )
        finally:
            self._changing(guild_id)
        return ChannelUpdate(chosen, change, missing)

    async def set_timezone(self, guild_id: int, name: str, *, actor_id: int) -> Change:
        return await self._set(guild_id, Setting.TIMEZONE, rules.parse_timezone(name), actor_id)

    async def set_language(self, guild_id: int, code: str, *, actor_id: int) -> Change:
        return await self._set(guild_id, Setting.LANGUAGE, rules.parse_language(code), actor_id)

    async def _set(self, guild_id: int, setting: Setting, value: str, actor_id: int) -> Change:
        self._changing(guild_id)
        try:
            return await self._store.set_value(guild_id, setting, value, actor_id=actor_id, now=self._clock.now())
        finally:
            self._changing(guild_id)
