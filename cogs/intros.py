"""``/intro``, ``/stats``, "View intro", welcomes, the introductions channel, reminders: the glue of bot.intros.

The profile is edited in two modals (Discord allows five fields in one), and
on the private message that answers each: the languages, who sees the
company, and whether the member is open to introductions are selects there.
Every button and select carries the server's id, so they work in DMs and
after a restart. The member's card in the introductions channel is posted
once and edited after every change.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import heap
from bot.checks import require_manage_guild
from bot.client import KakehashiBot
from bot.errors import UserError
from bot.guilds.model import GuildSettings, Purpose
from bot.i18n import Text, permission_texts, shorten
from bot.interactions import Localizer, bot_of, defer, guild_id_of, localizer_for, send
from bot.intros.model import (
    NUDGE_JOB,
    PROFILE_LANGUAGES,
    PURGE_JOB,
    REPLY_CLEANUP_JOB,
    WELCOME_JOB,
    About,
    MessageRef,
    More,
    Profile,
    Visibility,
    WelcomeMode,
)
from bot.intros.profile import LIMITS
from bot.outbox.model import Job
from bot.posting import card_embed, discord_error, member_localizer, post_to_log, server_localizer
from bot.translator import described
from bot.ui import Modal, RoutedItem

log = logging.getLogger(__name__)

EMBED_COLOR = 0x10B981
WAVE = "\N{WAVING HAND SIGN}"


# ---------------------------------------------------------------- reading a member's server


def _server(interaction: discord.Interaction[Any], guild_id: int) -> tuple[discord.Guild, discord.Member]:
    """The server a button or modal belongs to (it may be used in a DM) and the member pressing it."""
    guild = interaction.client.get_guild(guild_id)
    if guild is None:
        raise UserError("intros.server_gone")
    member = guild.get_member(interaction.user.id)
    if member is None:
        raise UserError("intros.not_a_member", server=shorten(guild.name, 60))
    return guild, member


class CardPoster:
    """Posts a member's card in the introductions channel once, and edits that message afterwards."""

    def __init__(self, bot: KakehashiBot) -> None:
        self.bot = bot
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}

    async def publish(self, guild: discord.Guild, profile: Profile) -> Text | None:
        """Post or update the card; what to tell the member (None when there is no such channel)."""
        async with self.lock(guild.id, profile.user_id):
            # Read again under the lock: a change a moment ago may have posted the card already.
            current = await self.bot.intros.profile(guild.id, profile.user_id)
            if current is None:
                return None
            return await self._publish(guild, current)

    async def _publish(self, guild: discord.Guild, profile: Profile) -> Text | None:
        settings = await self.bot.guild_config.settings(guild.id)
        channel_id = settings.channel(Purpose.INTRODUCTIONS)
        if channel_id is None:
            return None
        channel = guild.get_channel(channel_id)
        if not isinstance(channel, discord.TextChannel):
            return Text("intros.card.channel_gone")
        embed = card_embed(server_localizer(self.bot, guild, settings), profile, viewer_id=None)
        if profile.card is not None and profile.card.channel_id == channel.id:
            try:
                await channel.get_partial_message(profile.card.message_id).edit(embed=embed)
                return Text("intros.card.updated", channel=channel.mention)
            except discord.NotFound:
                pass  # deleted by a moderator: post it again
            except discord.HTTPException as exc:
                log.warning("Could not edit the card of %s in guild %s: %s", profile.user_id, guild.id, exc.text)
                return Text("intros.card.not_updated", channel=channel.mention)
        granted = channel.permissions_for(guild.me)
        missing = [name for name in ("view_channel", "send_messages", "embed_links") if not getattr(granted, name)]
        if missing:
            return Text("intros.card.not_posted", channel=channel.mention, permissions=permission_texts(missing))
        try:
            message = await channel.send(embed=embed)
        except discord.HTTPException as exc:
            log.warning("Could not post the card of %s in guild %s: %s", profile.user_id, guild.id, exc.text)
            return Text("intros.card.not_posted_error", channel=channel.mention)
        if profile.card is not None:
            await _delete_message(guild, profile.card)  # the introductions channel moved: one card only
        if not await self.bot.intros.set_card(guild.id, profile.user_id, MessageRef(channel.id, message.id)):
            await message.delete()  # the member erased their data meanwhile
            return None
        return Text("intros.card.posted", channel=channel.mention)

    def lock(self, guild_id: int, user_id: int) -> asyncio.Lock:
        """Held while a member's card is posted, edited or deleted with their data."""
        return self._locks.setdefault((guild_id, user_id), asyncio.Lock())


def _cards(bot: KakehashiBot) -> CardPoster:
    cog = bot.get_cog("Intros")
    if not isinstance(cog, Intros):
        raise RuntimeError("the Intros cog is not loaded")
    return cog.cards


async def _delete_message(guild: discord.Guild | None, ref: MessageRef, client: discord.Client | None = None) -> bool:
    """Delete a message of the bot's in the server, or with ``client`` also in a DM; True when it is gone (or
    was already)."""
    if guild is None:
        return False
    channel: Any = guild.get_channel_or_thread(ref.channel_id)
    if channel is None and client is not None:
        channel = client.get_partial_messageable(ref.channel_id)  # a DM (or a thread not cached)
    if not isinstance(channel, discord.TextChannel | discord.Thread | discord.PartialMessageable):
        return False
    try:
        await channel.get_partial_message(ref.message_id).delete()
    except discord.NotFound:
        return True
    except discord.HTTPException as exc:
        log.warning("Could not delete message %s in guild %s: %s", ref.message_id, guild.id, exc.text)
        return False
    return True


# ---------------------------------------------------------------- the modals


def _text_input(localize: Localizer, name: str, value: str | None, *, required: bool = False,
                paragraph: bool = False) -> discord.ui.TextInput[Any]:
    return discord.ui.TextInput(
        label=localize(Text(f"intros.field.{name}")),
        placeholder=shorten(localize(Text(f"intros.hint.{name}")), 100),
        default=(value or "")[: LIMITS[name]] or None,
        max_length=LIMITS[name],
        required=required,
        style=discord.TextStyle.paragraph if paragraph else discord.TextStyle.short,
        custom_id=name,
    )


class AboutModal(Modal):
    """Step 1: name, company, role, industry, location."""

    def __init__(self, guild_id: int, user_id: int, localize: Localizer, values: Mapping[str, str]) -> None:
        # discord.py keeps open modals by custom id alone: one id per member, or members would swap forms.
        super().__init__(title=localize(Text("intros.edit.title_about")), timeout=30 * 60,
                         custom_id=f"intro:about:{guild_id}:{user_id}")
        self.guild_id = guild_id
        self.fields = {
            name: _text_input(localize, name, values.get(name), required=name in ("display_name", "company"))
            for name in ("display_name", "company", "role", "industry", "location")
        }
        for item in self.fields.values():
            self.add_item(item)

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:  # type: ignore[override]
        bot = bot_of(interaction)
        guild, member = _server(interaction, self.guild_id)
        values = {name: item.value for name, item in self.fields.items()}
        await defer(interaction)
        profile = await bot.intros.save_about(guild.id, member.id, About(**values), locale=interaction.locale.value)
        await _answer_saved(interaction, guild, profile, step=1)


class MoreModal(Modal):
    """Step 2: time zone, interests, what they offer and seek, a short bio."""

    def __init__(self, guild_id: int, localize: Localizer, profile: Profile, draft: Mapping[str, str]) -> None:
        super().__init__(title=localize(Text("intros.edit.title_more")), timeout=30 * 60,
                         custom_id=f"intro:more:{guild_id}:{profile.user_id}")
        self.guild_id = guild_id
        saved = {"timezone": profile.timezone or "", "interests": ", ".join(profile.interests),
                 "offer": profile.offer, "seek": profile.seek, "bio": profile.bio}
        # What the member's free-form introduction said fills what the profile does not have yet.
        values = {name: value or draft.get(name, "") for name, value in saved.items()}
        self.fields = {
            name: _text_input(localize, name, values.get(name), paragraph=name in ("offer", "seek", "bio"))
            for name in ("timezone", "interests", "offer", "seek", "bio")
        }
        for item in self.fields.values():
            self.add_item(item)

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:  # type: ignore[override]
        bot = bot_of(interaction)
        guild, member = _server(interaction, self.guild_id)
        values = {name: item.value for name, item in self.fields.items()}
        await defer(interaction)
        profile = await bot.intros.save_more(guild.id, member.id, More(**values))
        await _answer_saved(interaction, guild, profile, step=2)


async def open_about(interaction: discord.Interaction[Any], guild_id: int) -> None:
    """Open step 1, filled with the profile, else with what the member's introduction said, else their name."""
    bot = bot_of(interaction)
    guild, member = _server(interaction, guild_id)
    profile = await bot.intros.profile(guild.id, member.id)
    values: dict[str, str] = {"display_name": member.display_name}
    if profile is not None:
        values.update(display_name=profile.display_name, company=profile.company, role=profile.role,
                      industry=profile.industry, location=profile.location)
    else:
        values.update(await bot.intros.draft(guild.id, member.id))
    await interaction.response.send_modal(AboutModal(guild.id, member.id, await localizer_for(interaction), values))


async def _answer_saved(interaction: discord.Interaction[Any], guild: discord.Guild, profile: Profile, *,
                        step: int) -> None:
    bot = bot_of(interaction)
    card = await _cards(bot).publish(guild, profile)
    localize = await localizer_for(interaction)
    lines = [localize(Text("intros.edit.saved_about" if step == 1 else "intros.edit.saved_more"))]
    if card is not None:
        lines.append(localize(card))
    await send(interaction, "\n".join(lines), embed=card_embed(localize, profile, viewer_id=profile.user_id),
               view=editor_view(localize, guild.id, profile, step=step))


# ---------------------------------------------------------------- buttons and selects (persistent)


def editor_view(localize: Localizer, guild_id: int, profile: Profile, *, step: int) -> discord.ui.View:
    """Under the private card: the choices a modal cannot hold, and the other step of the modal."""
    view = discord.ui.View(timeout=None)
    view.add_item(LanguagesSelect(guild_id, [
        discord.SelectOption(label=localize(Text(f"intros.language.{code}")), value=code,
                             default=code in profile.languages) for code in PROFILE_LANGUAGES]))
    view.add_item(ChoiceSelect(guild_id, "visibility", [
        discord.SelectOption(label=localize(Text(f"intros.visibility.{option.value}")), value=option.value,
                             default=profile.visibility is option) for option in Visibility]))
    view.add_item(ChoiceSelect(guild_id, "open", [
        discord.SelectOption(label=localize(Text(f"intros.open.{value}")), value=value,
                             default=profile.open_to_intros == (value == "yes")) for value in ("yes", "no")]))
    if step == 1:
        view.add_item(StepButton(guild_id, "more", localize(Text("intros.edit.button_more"))))
    else:
        view.add_item(StepButton(guild_id, "about", localize(Text("intros.edit.button_about"))))
    return view


class StepButton(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]],
                 template=r"intro:step:(?P<guild>[0-9]+):(?P<step>about|more)"):
    def __init__(self, guild_id: int, step: str, label: str = "") -> None:
        style = discord.ButtonStyle.primary if step == "more" else discord.ButtonStyle.secondary
        super().__init__(discord.ui.Button(label=label or step, style=style,
                                           custom_id=f"intro:step:{guild_id}:{step}"))
        self.guild_id = guild_id
        self.step = step

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> StepButton:
        return cls(int(match["guild"]), match["step"], item.label or "")

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        if self.step == "about":
            await open_about(interaction, self.guild_id)
            return
        bot = bot_of(interaction)
        guild, member = _server(interaction, self.guild_id)
        profile = await bot.intros.profile(guild.id, member.id)
        if profile is None:
            raise UserError("intros.edit.start_first")
        draft = await bot.intros.draft(guild.id, member.id)
        await interaction.response.send_modal(MoreModal(guild.id, await localizer_for(interaction), profile, draft))


class IntroduceButton(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]],
                      template=r"intro:start:(?P<guild>[0-9]+)"):
    """"Introduce yourself", on welcomes and reminders: opens the profile modal."""

    def __init__(self, guild_id: int, label: str = "") -> None:
        super().__init__(discord.ui.Button(label=label or "Introduce yourself", style=discord.ButtonStyle.primary,
                                           emoji=WAVE, custom_id=f"intro:start:{guild_id}"))
        self.guild_id = guild_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> IntroduceButton:
        return cls(int(match["guild"]), item.label or "")

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        await open_about(interaction, self.guild_id)


class DraftButton(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]],
                  template=r"intro:draft:(?P<guild>[0-9]+):(?P<user>[0-9]+)"):
    """"Make this my profile": the modal, filled with what the member's introduction says."""

    def __init__(self, guild_id: int, user_id: int, label: str = "") -> None:
        super().__init__(discord.ui.Button(label=label or "Make this my profile", style=discord.ButtonStyle.primary,
                                           custom_id=f"intro:draft:{guild_id}:{user_id}"))
        self.guild_id = guild_id
        self.user_id = user_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> DraftButton:
        return cls(int(match["guild"]), int(match["user"]), item.label or "")

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.user.id != self.user_id:
            raise UserError("intros.draft.not_yours")
        await open_about(interaction, self.guild_id)


class LanguagesSelect(RoutedItem, discord.ui.DynamicItem[discord.ui.Select[Any]],
                      template=r"intro:languages:(?P<guild>[0-9]+)"):
    def __init__(self, guild_id: int, options: list[discord.SelectOption]) -> None:
        super().__init__(discord.ui.Select(custom_id=f"intro:languages:{guild_id}", options=options,
                                           min_values=1, max_values=len(PROFILE_LANGUAGES)))
        self.guild_id = guild_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Select[Any],
                             match: re.Match[str], /) -> LanguagesSelect:
        return cls(int(match["guild"]), list(item.options))

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        bot = bot_of(interaction)
        guild, member = _server(interaction, self.guild_id)
        profile = await bot.intros.set_languages(guild.id, member.id, self.item.values)
        await _update_editor(interaction, guild, profile)


class ChoiceSelect(RoutedItem, discord.ui.DynamicItem[discord.ui.Select[Any]],
                   template=r"intro:(?P<what>visibility|open):(?P<guild>[0-9]+)"):
    """Who sees the company; whether the member is open to introductions."""

    def __init__(self, guild_id: int, what: str, options: list[discord.SelectOption]) -> None:
        super().__init__(discord.ui.Select(custom_id=f"intro:{what}:{guild_id}", options=options))
        self.guild_id = guild_id
        self.what = what

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Select[Any],
                             match: re.Match[str], /) -> ChoiceSelect:
        return cls(int(match["guild"]), match["what"], list(item.options))

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        bot = bot_of(interaction)
        guild, member = _server(interaction, self.guild_id)
        (value,) = self.item.values
        if self.what == "visibility":
            profile = await bot.intros.set_visibility(guild.id, member.id, value)
        else:
            if value not in ("yes", "no"):
                raise UserError("errors.bad_value")
            profile = await bot.intros.set_open(guild.id, member.id, value == "yes")
        await _update_editor(interaction, guild, profile)


async def _update_editor(interaction: discord.Interaction[Any], guild: discord.Guild, profile: Profile) -> None:
    """Show the change on the private card at once; then bring the public card up to date."""
    bot = bot_of(interaction)
    localize = await localizer_for(interaction)
    step = 2 if profile.has_more else 1
    await interaction.response.edit_message(embed=card_embed(localize, profile, viewer_id=profile.user_id),
                                            view=editor_view(localize, guild.id, profile, step=step))
    card = await _cards(bot).publish(guild, profile)
    if card is not None and card.key not in ("intros.card.updated", "intros.card.posted"):
        await send(interaction, localize(card))


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
        async with _cards(bot).lock(self.guild_id, interaction.user.id):
            forgotten = await bot.intros.forget(self.guild_id, interaction.user.id)
            card_gone = forgotten.card is None or await _delete_message(guild, forgotten.card)
        lines = [localize(Text("intros.delete.done"))]
        for reply in forgotten.replies:
            await _delete_message(guild, reply, bot)
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
        self.cards = CardPoster(bot)
        self._warned_no_members_intent = False
        self._welcome_reported: set[tuple[int, str]] = set()   # (server, reason) told to its admins
        self.view_menu = app_commands.ContextMenu(
            name=described("commands.intro.view_menu"), callback=self.view_intro,
            allowed_contexts=app_commands.AppCommandContext(guild=True),
            allowed_installs=app_commands.AppInstallationType(guild=True),
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.view_menu)
        outbox = self.bot.outbox
        outbox.register(WELCOME_JOB, self.deliver_welcome)
        outbox.register(NUDGE_JOB, self.deliver_nudge)
        outbox.register(PURGE_JOB, self.purge)
        outbox.register(REPLY_CLEANUP_JOB, self.delete_reply)
        outbox.add_ticker(self._tick)

    async def _tick(self, now: datetime) -> None:
        await self.bot.intros.materialise_due(now)

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

    # -- events

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        if member.bot:
            return
        if await self.bot.intros.joined(member.guild.id, member.id) is not None:
            self.bot.outbox.kick()

    @commands.Cog.listener()
    async def on_raw_member_remove(self, payload: discord.RawMemberRemoveEvent) -> None:
        if not payload.user.bot:
            await self.bot.intros.left(payload.guild_id, payload.user.id)

    # discord.py sends these after asking for a server's members, on every new gateway session (the start, or a
    # reconnect that could not resume) and when a server comes back after an outage; a resumed session replays
    # what was missed instead, and sends neither.
    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        await self._catch_up(guild)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self._catch_up(guild)  # added back to a server it was in before: its data may still be here

    async def _catch_up(self, guild: discord.Guild) -> None:
        """Leaves and returns that happened while the bot was not watching, from the server's member list."""
        if not self.bot.intents.members:
            if not self._warned_no_members_intent:
                self._warned_no_members_intent = True
                log.warning("Without the members intent the bot cannot tell who left while it was away; "
                            "their profiles stay visible")
            return
        if not guild.chunked:
            # An incomplete list would make everyone not in it look gone: better to miss a leave than to hide
            # members who are still here.
            log.warning("The member list of guild %s is incomplete (%d of %s); not looking for members who left "
                        "while the bot was away", guild.id, len(guild.members), guild.member_count)
            return
        heap.settled(f"the member list of guild {guild.id}")
        found = await self.bot.intros.reconcile(guild.id, lambda user_id: guild.get_member(user_id) is not None)
        if found.departed or found.returned:
            log.info("Guild %s: %d members left and %d came back while the bot was away",
                     guild.id, len(found.departed), len(found.returned))

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A member's message in the introductions channel: it counts as their introduction."""
        if (message.guild is None or message.author.bot or message.webhook_id is not None
                or not isinstance(message.channel, discord.TextChannel)
                or message.type not in (discord.MessageType.default, discord.MessageType.reply)):
            return
        settings = await self.bot.guild_config.settings(message.guild.id)
        if settings.channel(Purpose.INTRODUCTIONS) != message.channel.id:
            return
        outcome = await self.bot.intros.intro_message(
            message.guild.id, message.author.id, MessageRef(message.channel.id, message.id), message.content)
        if not outcome.counted:
            return
        try:
            await message.add_reaction(WAVE)
        except discord.HTTPException as exc:
            log.info("Could not react to an introduction in guild %s: %s", message.guild.id, exc.text)
        if outcome.offer is not None:
            await self._offer_profile(message, outcome.offer, settings)

    async def _offer_profile(self, message: discord.Message, draft: Mapping[str, str],
                             settings: GuildSettings) -> None:
        """By DM, else (DMs closed) as a reply in the channel that goes away after ten minutes."""
        assert message.guild is not None
        guild = message.guild
        found = [Text(f"intros.field.{name}") for name in draft]
        text = Text("intros.offer.dm", server=shorten(guild.name, 60), link=message.jump_url,
                    found=found if found else Text("intros.offer.nothing_found"))

        def offer(localize: Localizer) -> discord.ui.View:
            view = discord.ui.View(timeout=None)
            view.add_item(DraftButton(guild.id, message.author.id, localize(Text("intros.offer.button"))))
            return view

        mine = await member_localizer(self.bot, guild, settings, message.author.id)
        try:
            await message.author.send(mine(text), view=offer(mine))
            return
        except discord.HTTPException as exc:
            # 50007 (DMs closed) is the usual reason; whatever it is, the reply below still reaches them.
            log.info("Could not DM %s in guild %s (%s); replying instead", message.author.id, guild.id, exc.code)
        localize = server_localizer(self.bot, guild, settings)   # in the channel, where others read it too
        try:
            reply = await message.reply(localize(Text("intros.offer.reply", found=text.params["found"])),
                                        view=offer(localize), mention_author=True)
        except discord.HTTPException as exc:
            log.info("Could not offer a profile to %s in guild %s: %s", message.author.id, guild.id, exc.text)
            return
        await self.bot.intros.delete_reply_later(guild.id, message.author.id, MessageRef(reply.channel.id, reply.id))
        self.bot.outbox.kick()

    # -- due work

    async def deliver_welcome(self, job: Job) -> None:
        guild = self.bot.get_guild(job.guild_id)
        member = guild.get_member(int(job.payload["user"])) if guild is not None else None
        if guild is None or member is None:
            return  # gone again before we could say hello
        by_dm = (await self.bot.intros.settings(guild.id)).welcome is WelcomeMode.DM
        await self._greet(guild, member, "intros.welcome.dm", "intros.welcome.channel", by_dm=by_dm)

    async def deliver_nudge(self, job: Job) -> None:
        guild = self.bot.get_guild(job.guild_id)
        member = guild.get_member(int(job.payload["user"])) if guild is not None else None
        if guild is None or member is None or not await self.bot.intros.needs_nudge(guild.id, member.id):
            return
        await self._greet(guild, member, "intros.nudge.dm", "intros.nudge.channel", by_dm=True)

    async def _greet(self, guild: discord.Guild, member: discord.Member, dm_key: str, channel_key: str, *,
                     by_dm: bool) -> None:
        """``dm_key`` by DM if ``by_dm``; else, or with DMs closed, ``channel_key`` in the welcome channel,
        mentioning only the member. Either with the "Introduce yourself" button."""
        settings = await self.bot.guild_config.settings(guild.id)

        def introduce(localize: Localizer) -> discord.ui.View:
            view = discord.ui.View(timeout=None)
            view.add_item(IntroduceButton(guild.id, localize(Text("intros.welcome.button"))))
            return view

        server = shorten(guild.name, 60)
        if by_dm:
            mine = await member_localizer(self.bot, guild, settings, member.id)
            if await _dm(member, mine(Text(dm_key, server=server)), introduce(mine)):
                return
        localize = server_localizer(self.bot, guild, settings)   # in the welcome channel: the server's
        channel_id = settings.channel(Purpose.WELCOME)
        channel = guild.get_channel(channel_id) if channel_id else None
        if not isinstance(channel, discord.TextChannel):
            log.info("Guild %s has no welcome channel; member %s was not greeted", guild.id, member.id)
            if channel_id:   # set, but deleted since (or no longer a text channel)
                await self._welcome_problem(guild, Text("intros.welcome.channel_gone"))
            return
        content = localize(Text(channel_key, member=member.mention, server=server))
        try:
            await channel.send(content, view=introduce(localize),
                               allowed_mentions=discord.AllowedMentions(users=[member]))
        except discord.HTTPException as exc:
            # A welcome hours late helps nobody: log it, tell the admins once, and do not retry.
            log.warning("Could not post in the welcome channel of guild %s: %s", guild.id, exc.text)
            key = "intros.welcome.refused" if isinstance(exc, discord.Forbidden) else "intros.welcome.failed"
            await self._welcome_problem(guild, Text(key, channel=channel.mention, detail=discord_error(exc)))
        else:
            self._welcome_reported = {(g, k) for g, k in self._welcome_reported if g != guild.id}

    async def _welcome_problem(self, guild: discord.Guild, reason: Text) -> None:
        """Tell the server's admins in the log channel why members are not welcomed, once (until a welcome
        gets through again: a problem that comes back after a fix is told again)."""
        if (guild.id, reason.key) in self._welcome_reported:
            return
        self._welcome_reported.add((guild.id, reason.key))
        await post_to_log(self.bot, guild, Text("intros.welcome.problem", reason=reason))

    async def purge(self, job: Job) -> None:
        """Thirty days (a setting) after a member left: erase them, unless they came back."""
        user_id = int(job.payload["user"])
        if not await self.bot.intros.has_left(job.guild_id, user_id):
            return
        guild = self.bot.get_guild(job.guild_id)
        async with self.cards.lock(job.guild_id, user_id):
            forgotten = await self.bot.intros.forget(job.guild_id, user_id)
            for ref in (*forgotten.replies, *([forgotten.card] if forgotten.card else [])):
                await _delete_message(guild, ref, self.bot)

    async def delete_reply(self, job: Job) -> None:
        guild = self.bot.get_guild(job.guild_id)
        await _delete_message(guild, MessageRef(int(job.payload["channel_id"]), int(job.payload["message_id"])))


async def _dm(member: discord.Member, content: str, view: discord.ui.View) -> bool:
    """Send a DM; False when the member does not take DMs from the server's members (or from bots)."""
    try:
        await member.send(content, view=view)
    except discord.Forbidden as exc:
        # 50007: DMs closed to this server's members or to bots; any other refusal is final too.
        log.info("Could not DM member %s (%s)", member.id, exc.code)
        return False
    return True


async def setup(bot: KakehashiBot) -> None:
    bot.add_dynamic_items(StepButton, IntroduceButton, DraftButton, LanguagesSelect, ChoiceSelect, ForgetButton)
    await bot.add_cog(Intros(bot))

