"""``/config``: server settings for admins. Parses, calls bot.guilds, renders."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import discord
from discord import app_commands
from discord.ext import commands

from bot.channels import channel_ref, kind_of
from bot.checks import AdminGroup
from bot.client import KakehashiBot
from bot.guilds import rules
from bot.guilds.model import FORMER_MEMBER, AuditEntry, ChannelRef, Overview, Purpose, Setting
from bot.i18n import LANGUAGES, Text, permission_texts, shorten
from bot.interactions import Localizer, localizer_for, send
from bot.intros.model import Alias, IntroSettings, WelcomeMode
from bot.intros.service import ALIAS_SETTING, MAX_REMINDER_DAYS, MIN_REMINDER_DAYS, REMINDERS_SETTING, WELCOME_SETTING
from bot.matching.model import Cadence, RoundSettings
from bot.matching.service import ROUNDS_SETTING, read_rounds_value
from bot.prompts.schedule import WEEKDAYS
from bot.prompts.service import SCHEDULE_SETTING
from bot.translator import described

EMBED_FIELD_LIMIT = 1024
PURPOSE_CHOICES = [
    app_commands.Choice(name=described(f"choices.purpose.{purpose.value}"), value=purpose.value)
    for purpose in Purpose
]
WEEKDAY_CHOICES = [
    app_commands.Choice(name=described(f"weekday.{day}"), value=day) for day in WEEKDAYS
]
WELCOME_CHOICES = [
    app_commands.Choice(name=described(f"choices.welcome.{mode.value}"), value=mode.value) for mode in WelcomeMode
]
CADENCE_CHOICES = [
    app_commands.Choice(name=described(f"choices.cadence.{cadence.value}"), value=cadence.value)
    for cadence in Cadence
]
ALIASES_SHOWN = 15
LANGUAGE_CHOICES = [
    app_commands.Choice(name=described(f"language.{code}"), value=code) for code in LANGUAGES
]


class AnyChannel(app_commands.Transformer):
    """A channel option that offers text, announcement and forum channels.

    Whatever kind arrives is passed on as it is, so the purpose's own rule can
    refuse it with a message that names the kinds it accepts.
    """

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return [discord.ChannelType.text, discord.ChannelType.news, discord.ChannelType.forum]

    async def transform(self, interaction: discord.Interaction[Any], value: Any, /) -> Any:
        return value


class Config(commands.Cog):
    config = AdminGroup(name="config", description=described("commands.config.description"))

    def __init__(self, bot: KakehashiBot) -> None:
        self.bot = bot

    @config.command(name="show", description=described("commands.config.show.description"))
    async def show(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        guild = _guild(interaction)
        overview = await self.bot.guild_config.overview(guild.id, lambda channel_id: channel_ref(guild, channel_id))
        schedule, timezone, next_slot = await self.bot.prompts.schedule(guild.id)
        localize = await localizer_for(interaction, overview.settings)
        embed = _settings_embed(localize, guild, overview)
        if next_slot is not None:
            value = localize(Text("config.show.schedule.on", weekday=Text(f"weekday.{WEEKDAYS[schedule.weekday]}"),
                                  time=schedule.at.strftime("%H:%M"), timezone=timezone,
                                  next=f"<t:{int(next_slot.timestamp())}:R>"))
        else:
            value = localize(Text("config.show.schedule.off"))
        # Before the recent changes, which stay last.
        embed.insert_field_at(len(embed.fields) - 1, name=localize(Text("config.show.schedule.name")), value=value,
                              inline=False)
        intro_settings = await self.bot.intros.settings(guild.id)
        embed.insert_field_at(len(embed.fields) - 1, name=localize(Text("config.show.intros.name")),
                              value=localize(_intro_settings_text(intro_settings)), inline=False)
        rounds, zone, upcoming = await self.bot.matching.next_round(guild.id)
        embed.insert_field_at(len(embed.fields) - 1, name=localize(Text("config.show.rounds.name")),
                              value=localize(_rounds_text(rounds, zone, upcoming)), inline=False)
        aliases = await self.bot.intros.aliases(guild.id)
        embed.insert_field_at(len(embed.fields) - 1, name=localize(Text("config.show.aliases.name")),
                              value=_aliases_text(localize, aliases), inline=False)
        await send(interaction, None, embed=embed)

    @config.command(name="channel", description=described("commands.config.channel.description"))
    @app_commands.describe(
        purpose=described("commands.config.channel.purpose"),
        channel=described("commands.config.channel.channel"),
    )
    @app_commands.choices(purpose=PURPOSE_CHOICES)
    async def channel(
        self,
        interaction: discord.Interaction[KakehashiBot],
        purpose: str,
        channel: app_commands.Transform[app_commands.AppCommandChannel | None, AnyChannel] = None,
    ) -> None:
        guild = _guild(interaction)
        target = None
        if channel is not None:
            target = channel_ref(guild, channel.id) or ChannelRef(
                channel.id, kind_of(channel.type), channel.mention)
        update = await self.bot.guild_config.set_channel(guild.id, purpose, target, actor_id=interaction.user.id)
        change = update.change
        purpose_name = Text(f"purpose.{update.purpose.value}")
        old = _value(change.setting, change.old)
        if target is None:
            key = "config.channel.cleared" if change.changed else "config.channel.unchanged_unset"
            await send(interaction, Text(key, purpose=purpose_name, old=old))
            return
        key = "config.channel.set" if change.changed else "config.channel.unchanged"
        lines = [Text(key, purpose=purpose_name, channel=target.mention, old=old)]
        if update.missing_permissions:
            lines.append(Text("config.channel.missing_permissions", channel=target.mention,
                              permissions=permission_texts(update.missing_permissions)))
        localize = await localizer_for(interaction)
        await send(interaction, "\n".join(localize(line) for line in lines))

    @config.command(name="timezone", description=described("commands.config.timezone.description"))
    @app_commands.describe(name=described("commands.config.timezone.name"))
    async def timezone(
        self, interaction: discord.Interaction[KakehashiBot], name: app_commands.Range[str, 1, 64]
    ) -> None:
        guild = _guild(interaction)
        change = await self.bot.guild_config.set_timezone(guild.id, name, actor_id=interaction.user.id)
        assert change.new is not None
        local_time = self.bot.clock.now().astimezone(ZoneInfo(change.new)).strftime("%Y-%m-%d %H:%M")
        key = "config.timezone.set" if change.changed else "config.timezone.unchanged"
        await send(interaction, Text(key, name=change.new, old=_value(change.setting, change.old),
                                      local_time=local_time))

    @timezone.autocomplete("name")
    async def timezone_autocomplete(
        self, interaction: discord.Interaction[KakehashiBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=name, value=name) for name in rules.timezone_choices(current)]

    @config.command(name="language", description=described("commands.config.language.description"))
    @app_commands.describe(code=described("commands.config.language.code"))
    @app_commands.choices(code=LANGUAGE_CHOICES)
    async def language(self, interaction: discord.Interaction[KakehashiBot], code: str) -> None:
        guild = _guild(interaction)
        change = await self.bot.guild_config.set_language(guild.id, code, actor_id=interaction.user.id)
        key = "config.language.set" if change.changed else "config.language.unchanged"
        await send(interaction, Text(key, language=_value(change.setting, change.new),
                                      old=_value(change.setting, change.old)))

    @config.command(name="prompts", description=described("commands.config.prompts.description"))
    @app_commands.describe(
        weekday=described("commands.config.prompts.weekday"),
        time=described("commands.config.prompts.time"),
        enabled=described("commands.config.prompts.enabled"),
    )
    @app_commands.choices(weekday=WEEKDAY_CHOICES)
    async def prompts(self, interaction: discord.Interaction[KakehashiBot], weekday: str | None = None,
                      time: app_commands.Range[str, 1, 16] | None = None, enabled: bool | None = None) -> None:
        guild = _guild(interaction)
        change = await self.bot.prompts.set_schedule(guild.id, weekday, time, enabled, actor_id=interaction.user.id)
        settings = await self.bot.guild_config.settings(guild.id)
        localize = await localizer_for(interaction, settings)
        asked_to_change = (weekday, time, enabled) != (None, None, None)
        lines = [Text("prompts.schedule.unchanged")] if asked_to_change and not change.changed else []
        new = change.new
        if change.next_slot is not None:
            lines.append(Text("prompts.schedule.set", weekday=Text(f"weekday.{WEEKDAYS[new.weekday]}"),
                              time=new.at.strftime("%H:%M"), timezone=change.timezone,
                              next=f"<t:{int(change.next_slot.timestamp())}:F>"))
            if settings.channel(Purpose.PROMPTS) is None:
                lines.append(Text("prompts.schedule.no_channel"))
        else:
            lines.append(Text("prompts.schedule.off"))
        await send(interaction, "\n".join(localize(line) for line in lines))

    @config.command(name="rounds", description=described("commands.config.rounds.description"))
    @app_commands.describe(
        cadence=described("commands.config.rounds.cadence"),
        weekday=described("commands.config.rounds.weekday"),
        time=described("commands.config.rounds.time"),
        enabled=described("commands.config.rounds.enabled"),
        no_repeat_rounds=described("commands.config.rounds.no_repeat_rounds"),
        follow_up_days=described("commands.config.rounds.follow_up_days"),
    )
    @app_commands.choices(weekday=WEEKDAY_CHOICES, cadence=CADENCE_CHOICES)
    async def rounds(self, interaction: discord.Interaction[KakehashiBot], cadence: str | None = None,
                     weekday: str | None = None, time: app_commands.Range[str, 1, 16] | None = None,
                     enabled: bool | None = None, no_repeat_rounds: int | None = None,
                     follow_up_days: int | None = None) -> None:
        guild = _guild(interaction)
        change, new, upcoming = await self.bot.matching.set_rounds(
            guild.id, cadence, weekday, time, enabled, no_repeat_rounds=no_repeat_rounds,
            follow_up_days=follow_up_days, actor_id=interaction.user.id)
        settings = await self.bot.guild_config.settings(guild.id)
        localize = await localizer_for(interaction, settings)
        asked = (cadence, weekday, time, enabled, no_repeat_rounds, follow_up_days) != (None,) * 6
        lines = [Text("config.rounds.unchanged")] if asked and not change.changed else []
        lines.append(_rounds_text(new, settings.timezone_name, upcoming))
        if new.enabled and settings.channel(Purpose.MATCHES) is None:
            lines.append(Text("config.rounds.no_channel"))
        await send(interaction, "\n".join(localize(line) for line in lines))

    @config.command(name="reminders", description=described("commands.config.reminders.description"))
    @app_commands.describe(after_days=described("commands.config.reminders.after_days"),
                           enabled=described("commands.config.reminders.enabled"))
    async def reminders(self, interaction: discord.Interaction[KakehashiBot],
                        after_days: app_commands.Range[int, MIN_REMINDER_DAYS, MAX_REMINDER_DAYS] | None = None,
                        enabled: bool | None = None) -> None:
        guild = _guild(interaction)
        change, new = await self.bot.intros.set_reminders(guild.id, after_days, enabled, actor_id=interaction.user.id)
        localize = await localizer_for(interaction)
        lines = []
        if (after_days, enabled) != (None, None) and not change.changed:
            lines.append(Text("config.reminders.unchanged"))
        lines.append(_intro_settings_text(new))
        if new.reminders_enabled:
            lines.append(Text("config.reminders.how"))
        await send(interaction, "\n".join(localize(line) for line in lines))

    @config.command(name="welcome", description=described("commands.config.welcome.description"))
    @app_commands.describe(mode=described("commands.config.welcome.mode"))
    @app_commands.choices(mode=WELCOME_CHOICES)
    async def welcome(self, interaction: discord.Interaction[KakehashiBot], mode: str) -> None:
        guild = _guild(interaction)
        change = await self.bot.intros.set_welcome(guild.id, mode, actor_id=interaction.user.id)
        settings = await self.bot.guild_config.settings(guild.id)
        lines = [Text("config.welcome.set" if change.changed else "config.welcome.unchanged",
                      where=Text(f"choices.welcome.{change.new}"))]
        if change.new != WelcomeMode.OFF.value and settings.channel(Purpose.WELCOME) is None:
            lines.append(Text("config.welcome.no_channel"))
        localize = await localizer_for(interaction, settings)
        await send(interaction, "\n".join(localize(line) for line in lines))

    @config.command(name="company-alias", description=described("commands.config.company_alias.description"))
    @app_commands.describe(alias=described("commands.config.company_alias.alias"),
                           company=described("commands.config.company_alias.company"))
    async def company_alias(self, interaction: discord.Interaction[KakehashiBot],
                            alias: app_commands.Range[str, 1, 100],
                            company: app_commands.Range[str, 1, 100] | None = None) -> None:
        guild = _guild(interaction)
        change = await self.bot.intros.set_alias(guild.id, alias, company, actor_id=interaction.user.id)
        if company is None:
            key = "config.alias.removed" if change.changed else "config.alias.not_found"
            await send(interaction, Text(key, alias=shorten(alias, 100)))
            return
        key = "config.alias.set" if change.changed else "config.alias.unchanged"
        await send(interaction, Text(key, value=shorten(change.new or "", 210)))


def _intro_settings_text(settings: IntroSettings) -> Text:
    reminders = (Text("config.show.intros.reminders_on", days=settings.reminder_days) if settings.reminders_enabled
                 else Text("config.show.intros.reminders_off"))
    return Text("config.show.intros.value", welcome=Text(f"choices.welcome.{settings.welcome.value}"),
                reminders=reminders)


def _rounds_text(settings: RoundSettings, timezone: str, upcoming: datetime | None) -> Text:
    if not settings.enabled or upcoming is None:
        # Rounds by hand (/rounds run) keep to these two even while the schedule is off.
        return Text("config.show.rounds.off", repeat=settings.no_repeat_rounds, follow_up=settings.follow_up_days)
    return Text("config.show.rounds.on", cadence=Text(f"choices.cadence.{settings.cadence.value}"),
                weekday=Text(f"weekday.{WEEKDAYS[settings.weekday]}"), time=settings.time, timezone=timezone,
                next=f"<t:{int(upcoming.timestamp())}:R>", repeat=settings.no_repeat_rounds,
                follow_up=settings.follow_up_days)


def _rounds_audit_text(settings: RoundSettings) -> Text:
    """A round schedule as a change in the audit trail gave it (no next round: it is history)."""
    return Text("config.show.rounds.audit", cadence=Text(f"choices.cadence.{settings.cadence.value}"),
                weekday=Text(f"weekday.{WEEKDAYS[settings.weekday]}"), time=settings.time,
                state=Text(f"config.show.rounds.{'on_state' if settings.enabled else 'off_state'}"),
                repeat=settings.no_repeat_rounds, follow_up=settings.follow_up_days)


def _aliases_text(localize: Localizer, aliases: list[Alias]) -> str:
    if not aliases:
        return localize(Text("config.show.aliases.none"))
    lines = [f"{shorten(a.alias, 60)} → {shorten(a.company, 60)}" for a in aliases[:ALIASES_SHOWN]]
    if len(aliases) > ALIASES_SHOWN:
        lines.append(localize(Text("config.show.aliases.more", count=len(aliases) - ALIASES_SHOWN)))
    text = "\n".join(lines)
    return text if len(text) <= EMBED_FIELD_LIMIT else text[: EMBED_FIELD_LIMIT - 1] + "…"


def _guild(interaction: discord.Interaction[Any]) -> discord.Guild:
    # The group is guild-only and AdminGroup refuses DMs; a missing guild is a bug.
    if interaction.guild is None:
        raise app_commands.NoPrivateMessage()
    return interaction.guild


def _value(setting: str, value: str | None) -> Text | str:
    """A stored value as a member reads it: a channel mention, a language's name, or "not set"."""
    if value is None:
        return Text("config.not_set")
    if setting.startswith("channel."):
        return f"<#{value}>"
    if setting == Setting.LANGUAGE:
        return Text(f"language.{value}")
    if setting == WELCOME_SETTING:
        return Text(f"choices.welcome.{value}")
    if setting == REMINDERS_SETTING:
        state, _, days = value.partition(" ")
        return Text("config.show.intros.reminders_on", days=days) if state == "on" \
            else Text("config.show.intros.reminders_off")
    if setting == ROUNDS_SETTING and (rounds := read_rounds_value(0, value)) is not None:
        return _rounds_audit_text(rounds)
    if setting in (ROUNDS_SETTING, ALIAS_SETTING):
        return shorten(value, 120)
    if setting == SCHEDULE_SETTING:
        day, _, at = value.partition(" ")
        if day not in WEEKDAYS:
            return Text("config.show.schedule.off")
        return Text("config.show.schedule.value", weekday=Text(f"weekday.{day}"), time=at)
    return value


def _settings_embed(localize: Localizer, guild: discord.Guild, overview: Overview) -> discord.Embed:
    settings = overview.settings
    embed = discord.Embed(title=localize(Text("config.show.title", guild=guild.name)), color=0x3B82F6)
    language = Text(f"language.{settings.effective_language(guild.preferred_locale.value)}")
    embed.add_field(name=localize(Text("config.show.language")),
                    value=localize(language if settings.language else Text("config.show.default", value=language)),
                    inline=True)
    timezone = settings.timezone or localize(Text("config.show.default", value=settings.timezone_name))
    embed.add_field(name=localize(Text("config.show.timezone")), value=timezone, inline=True)

    lines = []
    for status in overview.channels:
        if status.channel_id is None:
            value = localize(Text("config.not_set"))
        elif not status.found:
            value = localize(Text("config.show.channel_gone", channel=f"<#{status.channel_id}>"))
        else:
            value = f"<#{status.channel_id}>"
            if status.missing_permissions:
                value += " " + localize(Text("config.show.channel_missing_permissions",
                                             permissions=permission_texts(status.missing_permissions)))
        lines.append(localize(Text("config.show.channel_line", purpose=Text(f"purpose.{status.purpose.value}"),
                                   value=value)))
    embed.add_field(name=localize(Text("config.show.channels")), value="\n".join(lines), inline=False)

    history = [_change_line(localize, entry) for entry in overview.recent_changes]
    history = history or [localize(Text("config.show.no_changes"))]
    while len("\n".join(history)) > EMBED_FIELD_LIMIT:
        history.pop()  # whole lines only: a cut line could end inside a mention
    embed.add_field(name=localize(Text("config.show.recent")), value="\n".join(history), inline=False)
    return embed


def _change_line(localize: Localizer, entry: AuditEntry) -> str:
    if entry.setting.startswith("channel."):
        setting: Text = Text("config.setting.channel", purpose=Text(f"purpose.{entry.setting.split('.', 1)[1]}"))
    else:
        setting = Text(f"config.setting.{entry.setting}")
    return localize(Text(
        "config.show.change",
        when=f"<t:{int(entry.changed_at.timestamp())}:R>",
        actor=Text("config.show.former.member") if entry.actor_id == FORMER_MEMBER else f"<@{entry.actor_id}>",
        setting=setting,
        old=_value(entry.setting, entry.old),
        new=_value(entry.setting, entry.new),
    ))


async def setup(bot: KakehashiBot) -> None:
    await bot.add_cog(Config(bot))
