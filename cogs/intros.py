"""``/intro``, ``/stats`` and "View intro": the commands of bot.intros.

``/intro edit`` opens the profile form (``bot/profile_form.py``, which also
posts and edits the member's card); ``/intro delete`` asks, and erases the
member with their card under the card lock. Welcomes, reminders, the
introductions channel and erasure after leaving are ``cogs/welcomes.py``.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import require_manage_guild
from bot.client import KakehashiBot
from bot.i18n import Text, shorten
from bot.interactions import bot_of, defer, guild_id_of, localizer_for, send
from bot.posting import card_embed
from bot.profile_form import (
    AboutForm,
    ChoiceSelect,
    DraftButton,
    IntroduceButton,
    LanguagesSelect,
    MoreForm,
    StepButton,
    delete_message,
    open_about,
)
from bot.translator import described
from bot.ui import RoutedItem

EMBED_COLOR = 0x10B981


class ForgetButton(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]],
                   template=r"intro:forget:(?P<guild>[0-9]+):(?P<answer>yes|no)"):
    """/intro delete's confirmation (and its "keep")."""

    def __init__(self, guild_id: int, answer: str, label: str = "") -> None:
        style = discord.ButtonStyle.danger if answer == "yes" else discord.ButtonStyle.secondary
        super().__init__(discord.ui.Button(label=label or answer, style=style,
                                           custom_id=f"intro:forget:{guild_id}:{answer}"))
        self.guild_id = guild_id
        self.answer = answer

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> ForgetButton:
        return cls(int(match["guild"]), match["answer"], item.label or "")

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        bot = bot_of(interaction)
        localize = await localizer_for(interaction)
        if self.answer == "no":
            await interaction.response.edit_message(content=localize(Text("intros.delete.kept")), view=None)
            return
        await interaction.response.defer()  # updates the confirmation in place
        guild = bot.get_guild(self.guild_id)
        async with bot.intros.card_lock(self.guild_id, interaction.user.id):
            forgotten = await bot.intros.forget(self.guild_id, interaction.user.id)
            card_gone = forgotten.card is None or await delete_message(guild, forgotten.card)
        lines = [localize(Text("intros.delete.done"))]
        for reply in forgotten.replies:
            await delete_message(guild, reply, bot)
        if forgotten.card is not None and not card_gone:
            lines.append(localize(Text("intros.delete.card_left", link=forgotten.card.link(self.guild_id))))
        await interaction.edit_original_response(content="\n".join(lines), view=None)


# ---------------------------------------------------------------- the cog



class Intros(commands.Cog):
    intro = app_commands.Group(
        name="intro", description=described("commands.intro.description"), guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        allowed_installs=app_commands.AppInstallationType(guild=True),
    )

    def __init__(self, bot: KakehashiBot) -> None:
        self.bot = bot
        self.view_menu = app_commands.ContextMenu(
            name=described("commands.intro.view_menu"), callback=self.view_intro,
            allowed_contexts=app_commands.AppCommandContext(guild=True),
            allowed_installs=app_commands.AppInstallationType(guild=True),
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.view_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.view_menu.name, type=self.view_menu.type)

    # -- member commands

    @intro.command(name="edit", description=described("commands.intro.edit.description"))
    async def edit(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        await open_about(interaction, guild_id_of(interaction))

    @intro.command(name="show", description=described("commands.intro.show.description"))
    @app_commands.describe(member=described("commands.intro.show.member"))
    async def show(self, interaction: discord.Interaction[KakehashiBot],
                   member: discord.Member | None = None) -> None:
        await self._show(interaction, member or interaction.user)

    async def view_intro(self, interaction: discord.Interaction[KakehashiBot],
                         member: discord.Member | discord.User) -> None:
        await self._show(interaction, member)

    async def _show(self, interaction: discord.Interaction[KakehashiBot],
                    target: discord.Member | discord.User) -> None:
        guild_id = guild_id_of(interaction)
        localize = await localizer_for(interaction)
        own = target.id == interaction.user.id
        profile = await self.bot.intros.profile(guild_id, target.id)
        if profile is None or not profile.active:
            record = await self.bot.intros.member(guild_id, target.id)
            message = record.intro_message if record is not None and record.left_at is None else None
            if own:
                text = Text("intros.show.none_own")
            elif target.bot:
                text = Text("intros.show.bot", name=shorten(target.display_name, 60))
            elif message is not None:
                text = Text("intros.show.message_only", name=shorten(target.display_name, 60),
                            link=message.link(guild_id))
            else:
                text = Text("intros.show.none", name=shorten(target.display_name, 60))
            await send(interaction, localize(text))
            return
        await send(interaction, None, embed=card_embed(localize, profile, viewer_id=interaction.user.id))

    @intro.command(name="delete", description=described("commands.intro.delete.description"))
    async def delete(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        guild_id = guild_id_of(interaction)
        localize = await localizer_for(interaction)
        view = discord.ui.View(timeout=None)
        view.add_item(ForgetButton(guild_id, "yes", localize(Text("intros.delete.confirm_button"))))
        view.add_item(ForgetButton(guild_id, "no", localize(Text("intros.delete.keep_button"))))
        await send(interaction, localize(Text("intros.delete.confirm")), view=view)

    @intro.command(name="export", description=described("commands.intro.export.description"))
    async def export(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        guild_id = guild_id_of(interaction)
        await defer(interaction)
        data = await self.bot.intros.export(guild_id, interaction.user.id)
        payload = json.dumps(data, ensure_ascii=False, indent=2).encode()
        localize = await localizer_for(interaction)
        await interaction.followup.send(
            localize(Text("intros.export.done")), ephemeral=True,
            file=discord.File(io.BytesIO(payload), filename=f"kakehashi-{guild_id}-{interaction.user.id}.json"))

    # -- admin

    @app_commands.command(name="stats", description=described("commands.stats.description"))
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.check(require_manage_guild)
    async def stats(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        guild = interaction.guild
        if guild is None:
            raise app_commands.NoPrivateMessage()
        humans = sum(1 for m in guild.members if not m.bot)
        stats = await self.bot.intros.stats(guild.id, humans)
        localize = await localizer_for(interaction)
        embed = discord.Embed(title=localize(Text("intros.stats.title", server=shorten(guild.name, 100))),
                              color=EMBED_COLOR)
        share = round(100 * stats.introduced / stats.members) if stats.members else 0
        embed.add_field(name=localize(Text("intros.stats.introduced_name")),
                        value=localize(Text("intros.stats.introduced", introduced=stats.introduced,
                                            members=stats.members, share=share)), inline=True)
        embed.add_field(name=localize(Text("intros.stats.companies_name")),
                        value=localize(Text("intros.stats.companies", count=stats.companies)), inline=True)
        rounds = await self.bot.matching.stats(guild.id)
        embed.add_field(name=localize(Text("intros.stats.rounds_name")),
                        value=localize(Text("intros.stats.rounds", rounds=rounds.rounds, meetings=rounds.meetings,
                                            bridged=rounds.bridged)), inline=True)
        posted, replies = await self.bot.prompts.totals(guild.id)
        embed.add_field(name=localize(Text("intros.stats.prompts_name")),
                        value=localize(Text("intros.stats.prompts", posted=posted, replies=replies)), inline=True)
        lines = [localize(Text("intros.stats.industry_line", industry=shorten(name, 60), count=count))
                 for name, count in stats.by_industry]
        if stats.no_industry:
            lines.append(localize(Text("intros.stats.no_industry", count=stats.no_industry)))
        embed.add_field(name=localize(Text("intros.stats.industries_name")),
                        value="\n".join(lines)[:1024] or localize(Text("intros.stats.none")), inline=False)
        await send(interaction, None, embed=embed)


async def setup(bot: KakehashiBot) -> None:
    bot.add_dynamic_items(StepButton, IntroduceButton, DraftButton, LanguagesSelect, ChoiceSelect, ForgetButton)
    bot.forms.add(AboutForm, MoreForm)
    await bot.add_cog(Intros(bot))

