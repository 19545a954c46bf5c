"""The profile form and the member's card, shared by the two cogs of introductions: ``cogs/intros.py`` opens
the form from ``/intro edit``, and ``cogs/welcomes.py`` puts its buttons on welcomes, reminders and profile
offers. Glue (it imports discord), beside ``bot/posting.py``; here so that neither cog imports the other.

The profile is edited in two modals (Discord allows five fields in one), and
on the private message that answers each: the languages, who sees the
company, and whether the member is open to introductions are selects there.
Every button, select and form carries the server's id, so they work in DMs
and after a restart. The member's card in the introductions channel is posted
once and edited after every change, under the member's card lock
(``IntroService.card_lock``), which erasing them holds too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import discord

from bot.errors import UserError
from bot.guilds.model import GuildSettings, Purpose
from bot.i18n import Text, permission_texts, shorten
from bot.interactions import Localizer, bot_of, defer, localizer_for, send
from bot.intros.model import PROFILE_LANGUAGES, About, MessageRef, More, Profile, Visibility
from bot.intros.profile import LIMITS
from bot.posting import card_embed, server_localizer
from bot.ui import Form, RoutedItem

if TYPE_CHECKING:
    from bot.client import KakehashiBot

log = logging.getLogger(__name__)

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


# ---------------------------------------------------------------- the card


async def publish_card(bot: KakehashiBot, guild: discord.Guild, profile: Profile,
                       settings: GuildSettings | None = None) -> Text | None:
    """Post the member's card in the introductions channel, or edit the one posted; what to tell the member
    (None when there is no such channel). Pass ``settings`` when they were read already."""
    async with bot.intros.card_lock(guild.id, profile.user_id):
        # Read again under the lock: a change a moment ago may have posted the card already.
        current = await bot.intros.profile(guild.id, profile.user_id)
        if current is None:
            return None
        if settings is None:
            settings = await bot.guild_config.settings(guild.id)
        return await _publish(bot, guild, current, settings)


async def _publish(bot: KakehashiBot, guild: discord.Guild, profile: Profile, settings: GuildSettings) -> Text | None:
    channel_id = settings.channel(Purpose.INTRODUCTIONS)
    if channel_id is None:
        return None
    channel = guild.get_channel(channel_id)
    if not isinstance(channel, discord.TextChannel):
        return Text("intros.card.channel_gone")
    embed = card_embed(server_localizer(bot, guild, settings), profile, viewer_id=None)
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
        await delete_message(guild, profile.card)  # the introductions channel moved: one card only
    if not await bot.intros.set_card(guild.id, profile.user_id, MessageRef(channel.id, message.id)):
        await message.delete()  # the member erased their data meanwhile
        return None
    return Text("intros.card.posted", channel=channel.mention)


async def delete_message(guild: discord.Guild | None, ref: MessageRef, client: discord.Client | None = None) -> bool:
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


# ---------------------------------------------------------------- the forms


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


class _StepForm(Form):
    """One step of the profile form: its five fields, and what a submit saves. The custom id carries the
    server (the form may be opened from a DM) and the member."""

    step: ClassVar[int]

    def __init__(self, guild_id: int, user_id: int, localize: Localizer, title: Text, values: Mapping[str, str], *,
                 required: tuple[str, ...] = (), paragraphs: tuple[str, ...] = ()) -> None:
        name = "about" if self.step == 1 else "more"
        super().__init__(title=localize(title), custom_id=f"intro:{name}:{guild_id}:{user_id}")
        for field in self.fields:
            self.add_item(_text_input(localize, field, values.get(field), required=field in required,
                                      paragraph=field in paragraphs))

    @classmethod
    async def submit(cls, interaction: discord.Interaction[Any], match: re.Match[str],
                     values: Mapping[str, str]) -> None:
        bot = bot_of(interaction)
        guild, member = _server(interaction, int(match["guild"]))
        if member.id != int(match["user"]):
            raise UserError("errors.form_gone")  # only its member is shown a form: not one of ours
        fields = cls.read(values)
        await defer(interaction)
        profile = await cls.save(bot, guild.id, member.id, fields, interaction.locale.value)
        await _answer_saved(interaction, guild, profile, step=cls.step)

    @classmethod
    async def save(cls, bot: KakehashiBot, guild_id: int, user_id: int, values: dict[str, str],
                   locale: str) -> Profile:
        raise NotImplementedError


class AboutForm(_StepForm, template=r"intro:about:(?P<guild>[0-9]+):(?P<user>[0-9]+)"):
    """Step 1: name, company, role, industry, location."""

    step = 1
    fields = ("display_name", "company", "role", "industry", "location")

    def __init__(self, guild_id: int, user_id: int, localize: Localizer, values: Mapping[str, str]) -> None:
        super().__init__(guild_id, user_id, localize, Text("intros.edit.title_about"), values,
                         required=("display_name", "company"))

    @classmethod
    async def save(cls, bot: KakehashiBot, guild_id: int, user_id: int, values: dict[str, str],
                   locale: str) -> Profile:
        return await bot.intros.save_about(guild_id, user_id, About(**values), locale=locale)


class MoreForm(_StepForm, template=r"intro:more:(?P<guild>[0-9]+):(?P<user>[0-9]+)"):
    """Step 2: time zone, interests, what they offer and seek, a short bio."""

    step = 2
    fields = ("timezone", "interests", "offer", "seek", "bio")

    def __init__(self, guild_id: int, localize: Localizer, profile: Profile, draft: Mapping[str, str]) -> None:
        saved = {"timezone": profile.timezone or "", "interests": ", ".join(profile.interests),
                 "offer": profile.offer, "seek": profile.seek, "bio": profile.bio}
        # What the member's free-form introduction said fills what the profile does not have yet.
        values = {name: value or draft.get(name, "") for name, value in saved.items()}
        super().__init__(guild_id, profile.user_id, localize, Text("intros.edit.title_more"), values,
                         paragraphs=("offer", "seek", "bio"))

    @classmethod
    async def save(cls, bot: KakehashiBot, guild_id: int, user_id: int, values: dict[str, str],
                   locale: str) -> Profile:
        return await bot.intros.save_more(guild_id, user_id, More(**values))


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
    await interaction.response.send_modal(AboutForm(guild.id, member.id, await localizer_for(interaction), values))


async def _answer_saved(interaction: discord.Interaction[Any], guild: discord.Guild, profile: Profile, *,
                        step: int) -> None:
    bot = bot_of(interaction)
    settings = await bot.guild_config.settings(guild.id)   # once, for the card and the answer
    card = await publish_card(bot, guild, profile, settings)
    localize = await localizer_for(interaction, settings)
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


# discord.py hands from_custom_id the item its template matched (a Button, a Select); its signature says Item,
# hence the ignores. (The cogs hold the same items unchecked: mypy reads bot/ only.)


class StepButton(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]],
                 template=r"intro:step:(?P<guild>[0-9]+):(?P<step>about|more)"):
    def __init__(self, guild_id: int, step: str, label: str = "") -> None:
        style = discord.ButtonStyle.primary if step == "more" else discord.ButtonStyle.secondary
        super().__init__(discord.ui.Button(label=label or step, style=style,
                                           custom_id=f"intro:step:{guild_id}:{step}"))
        self.guild_id = guild_id
        self.step = step

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any],  # type: ignore[override]
                             item: discord.ui.Button[Any], match: re.Match[str], /) -> StepButton:
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
        await interaction.response.send_modal(MoreForm(guild.id, await localizer_for(interaction), profile, draft))


class IntroduceButton(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]],
                      template=r"intro:start:(?P<guild>[0-9]+)"):
    """"Introduce yourself", on welcomes and reminders: opens the profile modal."""

    def __init__(self, guild_id: int, label: str = "") -> None:
        super().__init__(discord.ui.Button(label=label or "Introduce yourself", style=discord.ButtonStyle.primary,
                                           emoji=WAVE, custom_id=f"intro:start:{guild_id}"))
        self.guild_id = guild_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any],  # type: ignore[override]
                             item: discord.ui.Button[Any], match: re.Match[str], /) -> IntroduceButton:
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
    async def from_custom_id(cls, interaction: discord.Interaction[Any],  # type: ignore[override]
                             item: discord.ui.Button[Any], match: re.Match[str], /) -> DraftButton:
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
    async def from_custom_id(cls, interaction: discord.Interaction[Any],  # type: ignore[override]
                             item: discord.ui.Select[Any], match: re.Match[str], /) -> LanguagesSelect:
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
    async def from_custom_id(cls, interaction: discord.Interaction[Any],  # type: ignore[override]
                             item: discord.ui.Select[Any], match: re.Match[str], /) -> ChoiceSelect:
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
    settings = await bot.guild_config.settings(guild.id)   # once, for the answer and the card
    localize = await localizer_for(interaction, settings)
    step = 2 if profile.has_more else 1
    await interaction.response.edit_message(embed=card_embed(localize, profile, viewer_id=profile.user_id),
                                            view=editor_view(localize, guild.id, profile, step=step))
    card = await publish_card(bot, guild, profile, settings)
    if card is not None and card.key not in ("intros.card.updated", "intros.card.posted"):
        await send(interaction, localize(card))
