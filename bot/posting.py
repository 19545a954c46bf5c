"""What the bot posts in a server, shared by the cogs: the server's language, a member's card, and a note to
the server's admins in its log channel. Glue (it imports discord), beside ``bot/interactions.py``, which holds
what answering one interaction needs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Final

import discord

from bot.guilds.model import GuildSettings, Purpose
from bot.i18n import Text, shorten
from bot.interactions import Localizer
from bot.intros.model import Profile, Visibility

if TYPE_CHECKING:
    from bot.client import KakehashiBot

log = logging.getLogger(__name__)

CARD_COLOR: Final = 0x10B981


def server_localizer(bot: KakehashiBot, guild: discord.Guild, settings: GuildSettings) -> Localizer:
    """For what the bot posts in a server (cards, welcomes, notes to admins): the server's language."""
    return Localizer(settings.effective_language(guild.preferred_locale.value), bot.catalog)


async def member_localizer(bot: KakehashiBot, guild: discord.Guild, settings: GuildSettings,
                           user_id: int) -> Localizer:
    """For what the bot sends one member alone (a DM, a request in a thread of their own): the language of
    their last interaction in the server, else the server's."""
    language = await bot.guild_config.member_language(guild.id, user_id)
    return Localizer(language, bot.catalog) if language else server_localizer(bot, guild, settings)


def card_embed(localize: Localizer, profile: Profile, *, viewer_id: int | None,
               introduced: bool = False) -> discord.Embed:
    """A profile as others see it (``viewer_id`` None: in a channel), or as its owner sees it;
    ``introduced``: as the people it is introduced to see it, company included."""
    embed = discord.Embed(title=shorten(profile.display_name, 256), color=CARD_COLOR)
    embed.description = f"<@{profile.user_id}>" + (f"\n\n{profile.bio}" if profile.bio else "")
    company = profile.company if introduced else profile.company_for(viewer_id)
    fields: list[tuple[str, str | None, bool]] = [
        ("company", company, True), ("role", profile.role, True), ("industry", profile.industry, True),
        ("location", profile.location, True), ("timezone", profile.timezone, True),
        ("languages", localize(Text("intros.card.languages", items=[Text(f"intros.language.{code}")
                                                         for code in profile.languages])), True),
        ("interests", localize.join(profile.interests), False), ("offer", profile.offer, False),
        ("seek", profile.seek, False),
    ]
    for name, value, inline in fields:
        if value:
            embed.add_field(name=localize(Text(f"intros.field.{name}")), value=value[:1024], inline=inline)
    notes = []
    if company is None:
        notes.append(localize(Text("intros.card.company_hidden")))
    elif viewer_id == profile.user_id and profile.visibility is Visibility.MATCHES:
        notes.append(localize(Text("intros.card.company_private")))
    if viewer_id == profile.user_id:
        notes.append(localize(Text("intros.card.open" if profile.open_to_intros else "intros.card.closed")))
    if notes:
        embed.set_footer(text=" · ".join(notes))
    return embed


def discord_error(exc: discord.HTTPException) -> str:
    """What Discord answered, in words no language needs translating ("Discord 403 · 50013"): its own text is
    English, and would sit inside a Japanese sentence."""
    return f"Discord {exc.status}" + (f" · {exc.code}" if exc.code else "")


async def post_to_log(bot: KakehashiBot, guild: discord.Guild, text: Text | discord.Embed) -> bool:
    """A note to the server's admins in its log channel, in the server's language; False (logged) when there is
    no usable log channel or Discord refused the message."""
    settings = await bot.guild_config.settings(guild.id)
    channel_id = settings.channel(Purpose.LOG)
    channel = guild.get_channel(channel_id) if channel_id else None
    if not isinstance(channel, discord.TextChannel):
        log.info("Guild %s has no usable log channel for %s", guild.id, text)
        return False
    try:
        if isinstance(text, discord.Embed):
            await channel.send(embed=text)
        else:
            await channel.send(server_localizer(bot, guild, settings)(text))
    except discord.HTTPException as exc:
        log.warning("Could not write in the log channel of guild %s: %s", guild.id, exc.text or exc.status)
        return False
    return True
