"""Answering interactions: the member's language, and the one error path.

Every reply goes through :func:`send`, which renders a :class:`Text` in the
member's language, answers a fresh interaction, follows up a deferred or
answered one, and, when the interaction has expired (its token is dead),
tells the member privately by DM instead, since that is the only private
channel left.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands

from bot.errors import UserError
from bot.guilds.model import GuildSettings
from bot.i18n import Catalog, Text, permission_texts, pick_language

if TYPE_CHECKING:
    from bot.client import KakehashiBot

log = logging.getLogger(__name__)

UNKNOWN_INTERACTION = 10062
UNKNOWN_WEBHOOK = 10015
ALREADY_ACKNOWLEDGED = 40060


@dataclass(frozen=True)
class Localizer:
    """Renders texts in one reader's language."""

    language: str
    catalog: Catalog

    def __call__(self, text: Text | str) -> str:
        return self.catalog.render(self.language, text)

    def join(self, items: Iterable[Text | str]) -> str:
        """Items as a list is written in the reader's language (``Catalog.join``)."""
        return self.catalog.join(self.language, items)


def bot_of(interaction: discord.Interaction[Any]) -> KakehashiBot:
    return cast("KakehashiBot", interaction.client)


async def localizer_for(interaction: discord.Interaction[Any], settings: GuildSettings | None = None) -> Localizer:
    """The member's client language, else the server's, else English. Pass ``settings`` when the command
    has already read them, to spare a second read."""
    bot = bot_of(interaction)
    server_language = None
    if interaction.guild_id is not None:
        if settings is None:
            settings = await bot.guild_config.settings(interaction.guild_id)
        server_language = settings.effective_language(interaction.guild_locale.value if interaction.guild_locale
                                                       else None)
    return Localizer(pick_language(interaction.locale.value, server_language), bot.catalog)


async def known_thread(guild: discord.Guild, thread_id: int) -> discord.Thread | None:
    """The thread ``thread_id`` of ``guild``: from the cache, else asked of Discord (an archived thread is
    not cached); None when it was deleted or is not a thread."""
    thread = guild.get_thread(thread_id)
    if thread is None:
        try:
            fetched = await guild.fetch_channel(thread_id)
        except discord.NotFound:
            return None
        thread = fetched if isinstance(fetched, discord.Thread) else None
    return thread


async def defer(interaction: discord.Interaction[Any]) -> None:
    """Buy time (up to 15 minutes). Always ephemeral, so whatever follows, an error included, stays private."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)


async def send(
    interaction: discord.Interaction[Any],
    content: Text | str | None,
    *,
    embed: discord.Embed | None = None,
    view: discord.ui.View | None = None,
    ephemeral: bool = True,
) -> None:
    """Answer the member; a :class:`Text` is rendered in their language first."""
    if isinstance(content, Text):
        content = (await localizer_for(interaction))(content)
    options: dict[str, Any] = {"content": content, "ephemeral": ephemeral}
    if embed is not None:
        options["embed"] = embed
    if view is not None:
        options["view"] = view
    if not interaction.is_expired():
        try:
            if interaction.response.is_done():
                await interaction.followup.send(**options)
            else:
                await interaction.response.send_message(**options)
            return
        except discord.NotFound as exc:
            if exc.code not in (UNKNOWN_INTERACTION, UNKNOWN_WEBHOOK):
                raise
        except discord.HTTPException as exc:
            if exc.code != ALREADY_ACKNOWLEDGED:
                raise
            await interaction.followup.send(**options)
            return
    await _send_privately(interaction, content, embed)


async def _send_privately(
    interaction: discord.Interaction[Any], content: str | None, embed: discord.Embed | None
) -> None:
    log.info("Interaction %s in %s expired; answering user %s by DM", interaction.id,
             command_name(interaction), interaction.user.id)
    try:
        if embed is None:
            await interaction.user.send(content)
        else:
            await interaction.user.send(content, embed=embed)
    except discord.HTTPException as exc:
        log.info("Could not DM user %s either (%s)", interaction.user.id, exc.text or exc.status)


def command_name(interaction: discord.Interaction[Any]) -> str:
    """What the member used, for logs: a command's full name, or a component's or modal's id."""
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    data: dict[str, Any] = dict(interaction.data or {})
    custom_id = data.get("custom_id")
    return f"component {custom_id}" if custom_id else f"interaction type {interaction.type.name}"


def describe_error(error: BaseException) -> Text | None:
    """The text a member should see for an error they can act on; None for a fault of ours."""
    if isinstance(error, UserError):
        return Text(error.key, **error.params)
    if isinstance(error, app_commands.MissingPermissions):
        return Text("errors.missing_permissions",
                    permissions=permission_texts(error.missing_permissions))
    if isinstance(error, app_commands.BotMissingPermissions):
        return Text("errors.bot_missing_permissions",
                    permissions=permission_texts(error.missing_permissions))
    if isinstance(error, app_commands.NoPrivateMessage):
        return Text("errors.guild_only")
    if isinstance(error, app_commands.CommandOnCooldown):
        return Text("errors.cooldown", seconds=math.ceil(error.retry_after))
    if isinstance(error, app_commands.TransformerError):
        return Text("errors.bad_value")
    if isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
        return Text("errors.command_outdated")
    if isinstance(error, app_commands.CheckFailure):
        return Text("errors.not_allowed")
    return None


async def report_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """The one error path: kind words for the member, a log entry for us, and the bot carries on."""
    cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    text = describe_error(cause)
    if text is None:
        log.error("Unexpected error in %s (guild %s, user %s)", command_name(interaction),
                  interaction.guild_id, interaction.user.id, exc_info=cause)
        text = Text("errors.unexpected")
    if interaction.type is discord.InteractionType.autocomplete:
        return  # There is nobody to tell: autocomplete answers with choices only.
    try:
        try:
            localize = await localizer_for(interaction)
        except Exception:
            # The fault may be the one that stops us reading the server's language.
            log.exception("Could not pick a language for user %s", interaction.user.id)
            localize = Localizer(pick_language(interaction.locale.value, None), bot_of(interaction).catalog)
        await send(interaction, localize(text))
    except Exception:
        log.exception("Could not tell user %s about an error in %s", interaction.user.id, command_name(interaction))


def guild_id_of(interaction: discord.Interaction[Any]) -> int:
    """The server an interaction came from; a command used in a DM is refused (discord.py's own error)."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id
