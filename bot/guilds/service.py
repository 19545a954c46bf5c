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

RECENT_CHANGES = 5


class GuildConfig:
    def __init__(self, store: GuildSettingsStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def settings(self, guild_id: int) -> GuildSettings:
        return await self._store.get(guild_id)

    async def overview(self, guild_id: int, lookup: Callable[[int], ChannelRef | None]) -> Overview:
        """Every setting, each purpose's channel checked (``lookup`` finds a channel still there), and the
        latest changes."""
        settings = await self._store.get(guild_id)
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
        change = await self._store.set_channel(
            guild_id, chosen, None if channel is None else channel.id, actor_id=actor_id, now=self._clock.now()
        )
        return ChannelUpdate(chosen, change, missing)

    async def set_timezone(self, guild_id: int, name: str, *, actor_id: int) -> Change:
        canonical = rules.parse_timezone(name)
        return await self._store.set_value(
            guild_id, Setting.TIMEZONE, canonical, actor_id=actor_id, now=self._clock.now()
        )

    async def set_language(self, guild_id: int, code: str, *, actor_id: int) -> Change:
        language = rules.parse_language(code)
        return await self._store.set_value(
            guild_id, Setting.LANGUAGE, language, actor_id=actor_id, now=self._clock.now()
        )
