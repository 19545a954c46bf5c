"""Discord channels as the core sees them (glue: the one place that maps discord.py's channel types)."""

from __future__ import annotations

import discord

from bot.guilds import rules
from bot.guilds.model import ChannelKind, ChannelRef

CHANNEL_KINDS: dict[discord.ChannelType, ChannelKind] = {
    discord.ChannelType.text: ChannelKind.TEXT,
    discord.ChannelType.news: ChannelKind.ANNOUNCEMENT,
    discord.ChannelType.forum: ChannelKind.FORUM,
    discord.ChannelType.media: ChannelKind.MEDIA,
    discord.ChannelType.voice: ChannelKind.VOICE,
    discord.ChannelType.stage_voice: ChannelKind.STAGE,
    discord.ChannelType.category: ChannelKind.CATEGORY,
    discord.ChannelType.public_thread: ChannelKind.THREAD,
    discord.ChannelType.private_thread: ChannelKind.THREAD,
    discord.ChannelType.news_thread: ChannelKind.THREAD,
}


def kind_of(channel_type: discord.ChannelType) -> ChannelKind:
    return CHANNEL_KINDS.get(channel_type, ChannelKind.OTHER)


def channel_ref(guild: discord.Guild, channel_id: int) -> ChannelRef | None:
    """A channel of this server as the core sees it, or None if it is gone (or hidden from the bot)."""
    channel = guild.get_channel(channel_id)
    if channel is None:
        return None
    granted = channel.permissions_for(guild.me)
    # By attribute, not by iterating: iteration skips aliases such as view_channel.
    names = frozenset(name for name in rules.all_required_permissions() if getattr(granted, name))
    return ChannelRef(channel.id, kind_of(channel.type), channel.mention, names)
