"""Changing a server's settings: check the rule, store, audit. One call a command."""

from __future__ import annotations

from bot.clock import Clock
from bot.guilds import rules
from bot.guilds.model import AuditEntry, Change, ChannelRef, GuildSettings, Purpose, Setting
from bot.guilds.store import GuildSettingsStore


class GuildConfig:
    def __init__(self, store: GuildSettingsStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def settings(self, guild_id: int) -> GuildSettings:
        return await self._store.get(guild_id)

    async def recent_changes(self, guild_id: int, limit: int = 5) -> list[AuditEntry]:
        return await self._store.recent_changes(guild_id, limit)

    async def set_channel(
        self,
        guild_id: int,
        purpose: Purpose,
        channel: ChannelRef | None,
        *,
        actor_id: int,
    ) -> Change:
        """Use ``channel`` for ``purpose``, or no channel when it is None."""
        if channel is not None:
            rules.check_channel_kind(purpose, channel.kind, channel.mention)
        return await self._store.set_channel(
            guild_id, purpose, None if channel is None else channel.id, actor_id=actor_id, now=self._clock.now()
        )

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
