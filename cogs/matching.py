"""``/match``, ``/rounds``, "Suggest an intro to…", requests, round threads and follow-ups: the glue of
bot.matching.

Who may meet whom, the scores and the rounds are decided in ``bot/matching``;
this module asks and renders. Every button carries what it needs (a server,
a request or a group id), so it works in DMs and after a restart. A round's
threads are started by the outbox, one job per group: the matches channel is
recorded before the thread is started, the thread right after, and a retry
after a crash looks for a thread it started by the marker at the end of its
name before starting another, so each group gets exactly one. Requests are
delivered the same way (stored with their delivery job, then sent by it), and
a retry of a request or a follow-up looks for the message it may have sent,
by the button it carries, before sending another.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import AdminGroup
from bot.client import KakehashiBot
from bot.clock import from_text
from bot.errors import UserError
from bot.guilds.model import Purpose
from bot.guilds.rules import REQUIRED_PERMISSIONS
from bot.i18n import Text, permission_texts, shorten
from bot.interactions import Localizer, bot_of, defer, guild_id_of, known_thread, localizer_for, send
from bot.matching import delivery
from bot.matching.delivery import Ended, GroupState, Progress, ThreadRefusal, Unreached, Way
from bot.matching.model import (
    ARCHIVE_JOB,
    DELIVER_JOB,
    DELIVERY_JOB,
    FOLLOW_UP_JOB,
    INTRODUCE_JOB,
    LEFT_OUT_JOB,
    PAUSED_JOB,
    REQUEST_JOB,
    ROUND_JOB,
    SUMMARY_JOB,
    THREAD_JOB,
    Answer,
    GroupRecord,
    LeftOut,
    MatchRequest,
    Reason,
    RequestState,
)
from bot.matching.service import COMPANY_MAX, NOTE_MAX
from bot.outbox.model import Job, RetryLater
from bot.posting import card_embed, discord_error, member_localizer, post_to_log, server_localizer
from bot.translator import described
from bot.ui import Modal, RoutedItem

log = logging.getLogger(__name__)

EMBED_COLOR = 0x6366F1
THREAD_NAME_MAX = 100
# Private threads end in a marker naming what they are for, so a retry can find one it started.
GROUP_MARKER = "· #{id}"
ASK_MARKER = "· q{id}"       # where a request is put to a member whose DMs are closed
REQUEST_MARKER = "· r{id}"   # where an accepted request introduces the two
LEFT_OUT_KEYS = {LeftOut.NO_PARTNER: "match.left_out.no_partner", LeftOut.NO_GROUP: "match.left_out.no_group",
                 LeftOut.PARTNER_LEFT: "match.left_out.partner_left"}
LEFT_OUT_ADMIN_KEYS = {LeftOut.NO_PARTNER: "match.left_out.no_partner_admin",
                       LeftOut.NO_GROUP: "match.left_out.no_group_admin",
                       LeftOut.PARTNER_LEFT: "match.left_out.partner_left_admin"}
ANSWER_KEYS = {Answer.MET: "match.follow_up.met", Answer.NOT_YET: "match.follow_up.not_yet",
               Answer.SKIP: "match.follow_up.skip"}
# How long /match request waits to say how its request was delivered before saying it is on its way.
REQUEST_WAIT_SECONDS = 3.0
# How many of a channel's latest messages a retry reads to find one it sent before a crash.
LOOK_BACK = 50
ARCHIVE_MINUTES: Literal[1440] = 1440       # round and request threads archive after a day of silence
PROGRESS_SECONDS = 2.0       # how often /rounds run's answer shows the delivery's progress
PROGRESS_FOR = 14 * 60.0     # an interaction's token lasts 15 minutes; after that the log channel tells
UNREACHED_KEYS = {Unreached.LEFT: "match.delivery.why.left", Unreached.DMS_CLOSED: "match.delivery.why.dms_closed",
                  Unreached.NO_ACCESS: "match.delivery.why.no_access"}
THANKS_KEYS = {Answer.MET: "match.follow_up.thanks_met", Answer.NOT_YET: "match.follow_up.thanks_not_yet",
               Answer.SKIP: "match.follow_up.thanks_skip"}


def _reason_text(reason: Reason, name: str) -> Text:
    # A list (the topics two members share) is joined as the reader's language joins lists.
    return Text(reason.key, name=name, **{key: list(value) if isinstance(value, tuple) else str(value)
                                          for key, value in reason.values.items()})


async def _matches_channel(bot: KakehashiBot, guild: discord.Guild) -> discord.TextChannel:
    """The channel where private threads for introductions are started, checked for everything the bot
    does there (the same list ``/config show`` warns about)."""
    settings = await bot.guild_config.settings(guild.id)
    channel_id = settings.channel(Purpose.MATCHES)
    channel = guild.get_channel(channel_id) if channel_id else None
    if not isinstance(channel, discord.TextChannel):
        raise UserError("match.no_matches_channel")
    granted = channel.permissions_for(guild.me)
    missing = [name for name in REQUIRED_PERMISSIONS[Purpose.MATCHES] if not getattr(granted, name)]
    if missing:
        raise UserError("match.matches_channel_permissions", channel=channel.mention,
                        permissions=permission_texts(missing))
    return channel


def _thread_name(names: list[str], marker: str) -> str:
    room = THREAD_NAME_MAX - len(marker) - 1
    return f"{shorten(' × '.join(names), room)} {marker}"


async def _find_thread(guild: discord.Guild, channel: discord.TextChannel, marker: str) -> discord.Thread | None:
    """A thread the bot started in ``channel`` whose name ends with ``marker`` (an attempt cut short). When
    Discord cannot say, the error stands: starting another could make two."""
    threads = await guild.active_threads()
    return next((t for t in threads if t.parent_id == channel.id and t.owner_id == guild.me.id
                 and t.name.endswith(marker)), None)


async def _start_thread(channel: discord.TextChannel, marker: str, members: list[discord.Member]) -> discord.Thread:
    """A private thread for ``members``. It archives after a day of silence (a message reopens it), so that
    introductions do not hold the server's room for active threads for a week."""
    return await channel.create_thread(
        name=_thread_name([m.display_name for m in members], marker), type=discord.ChannelType.private_thread,
        invitable=False, auto_archive_duration=ARCHIVE_MINUTES)


async def _open_thread(guild: discord.Guild, channel: discord.TextChannel, marker: str,
                       members: list[discord.Member], known: int | None, *, retry: bool) -> discord.Thread:
    """The private thread for ``marker``: the one known, or (on a retry) one an earlier attempt started, or
    started now; with ``members`` in."""
    thread = await known_thread(guild, known) if known is not None else None
    if thread is None and retry:
        thread = await _find_thread(guild, channel, marker)
    if thread is None:
        thread = await _start_thread(channel, marker, members)
    for member in members:
        await thread.add_user(member)
    return thread


def _custom_ids(message: discord.Message) -> set[str]:
    found = set()
    for row in message.components:
        for item in row.children if isinstance(row, discord.ActionRow) else [row]:
            custom_id = getattr(item, "custom_id", None)
            if custom_id:
                found.add(custom_id)
    return found


async def _sent_with(channel: discord.abc.Messageable, me: int, custom_id: str) -> discord.Message | None:
    """The bot's message with the button ``custom_id`` among the channel's latest: a send Discord accepted
    before the bot stopped, and that was never recorded."""
    async for message in channel.history(limit=LOOK_BACK):
        if message.author.id == me and custom_id in _custom_ids(message):
            return message
    return None


async def _sent_marked(channel: discord.abc.Messageable, me: int, marker: str) -> bool:
    """Whether the bot's message ending with ``marker`` is among the channel's latest (a DM introduction
    Discord accepted before the bot stopped, never recorded)."""
    async for message in channel.history(limit=LOOK_BACK):
        if message.author.id == me and message.content.endswith(marker):
            return True
    return False


async def _archive(guild: discord.Guild, thread_id: int) -> None:
    """Archive a thread the bot started (its creator may, without Manage Threads); a member's message
    reopens it. Only logged when Discord refuses: an open thread costs room, not an introduction."""
    try:
        thread = await known_thread(guild, thread_id)
        if thread is None or thread.archived or thread.owner_id != guild.me.id:
            return
        await thread.edit(archived=True)
    except discord.HTTPException as exc:
        log.info("Could not archive thread %s in guild %s: %s", thread_id, guild.id, exc.text or exc.status)


def delivery_embed(localize: Localizer, progress: Progress, elapsed: float | None) -> discord.Embed:
    """A round's delivery as admins see it: the split, a progress bar and, while it runs, the time left."""
    title = "match.delivery.done_title" if progress.finished else "match.delivery.running_title"
    embed = discord.Embed(title=localize(Text(title)), color=EMBED_COLOR)
    lines = [localize(Text("match.delivery.progress", done=f"{progress.done:,}", groups=f"{progress.groups:,}",
                           threads=f"{progress.in_threads:,}", dms=f"{progress.by_dm:,}",
                           unreached=f"{progress.not_reached:,}")),
             f"`{delivery.progress_bar(progress.done, progress.groups)}`"]
    left = None if elapsed is None else delivery.time_left(progress.done, progress.groups, elapsed)
    if left is not None and not progress.finished:
        lines.append(localize(Text("match.delivery.time_left", minutes=max(1, round(left / 60)))))
    if progress.cancelled:
        lines.append(localize(Text("match.delivery.cancelled", groups=progress.cancelled)))
    if progress.unreached:
        reasons = [localize(Text("match.delivery.why_line", reason=Text(UNREACHED_KEYS[Unreached(why)]), count=n))
                   for why, n in sorted(progress.unreached.items())]
        lines.append(localize(Text("match.delivery.unreached_title")) + "\n" + "\n".join(reasons))
    embed.description = "\n".join(lines)
    return embed


async def _posted_in(thread: discord.Thread, me: int) -> bool:
    """Whether the bot already posted in the thread (a retry after the post, before it was recorded)."""
    async for message in thread.history(limit=10, oldest_first=True):
        if message.author.id == me:
            return True
    return False


# ---------------------------------------------------------------- requests


def answer_view(localize: Localizer, request_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(AnswerButton(request_id, "accept", localize(Text("match.request.accept"))))
    view.add_item(AnswerButton(request_id, "decline", localize(Text("match.request.decline"))))
    return view


async def _request_and_deliver(interaction: discord.Interaction[Any], guild: discord.Guild, target_id: int,
                               note: str) -> None:
    """Store the request with its delivery job, and tell the requester how it went: at once if the job has
    run by then (it usually has), else that it is on its way."""
    bot = bot_of(interaction)
    target = guild.get_member(target_id)
    if target is not None and target.bot:
        raise UserError("match.request.bot")
    await defer(interaction)
    cog = bot.get_cog("Matching")
    assert isinstance(cog, Matching)
    answer = await cog.send_request(guild, interaction.user.id, target_id, note)
    await send(interaction, Text("match.request.sent", delivered=answer, days=7))


class NoteModal(Modal):
    """The request flow from a button or the context menu: an optional note, then the request."""

    def __init__(self, guild_id: int, user_id: int, target_id: int, localize: Localizer, name: str) -> None:
        super().__init__(title=shorten(localize(Text("match.request.title", name=name)), 45), timeout=15 * 60,
                         custom_id=f"match:note:{guild_id}:{user_id}:{target_id}")
        self.guild_id = guild_id
        self.target_id = target_id
        self.note: discord.ui.TextInput[Any] = discord.ui.TextInput(
            label=localize(Text("match.request.note_label")), style=discord.TextStyle.paragraph, required=False,
            max_length=NOTE_MAX, placeholder=shorten(localize(Text("match.request.note_hint")), 100),
            custom_id="note")
        self.add_item(self.note)

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:  # type: ignore[override]
        guild = interaction.client.get_guild(self.guild_id)
        if guild is None:
            raise UserError("intros.server_gone")
        await _request_and_deliver(interaction, guild, self.target_id, self.note.value)


async def open_request(interaction: discord.Interaction[Any], guild_id: int, target_id: int) -> None:
    """Check the rule first (so nobody writes a note for nothing), then ask for the note."""
    bot = bot_of(interaction)
    guild = bot.get_guild(guild_id)
    if guild is None:
        raise UserError("intros.server_gone")
    target = guild.get_member(target_id)
    if target is not None and target.bot:
        raise UserError("match.request.bot")
    _, profile = await bot.matching.check(guild_id, interaction.user.id, target_id)
    localize = await localizer_for(interaction)
    await interaction.response.send_modal(NoteModal(guild_id, interaction.user.id, target_id, localize,
                                                    shorten(profile.display_name, 30)))


class RequestButton(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]],
                    template=r"match:ask:(?P<guild>[0-9]+):(?P<target>[0-9]+)"):
    """"Request intro" under a suggestion."""

    def __init__(self, guild_id: int, target_id: int, label: str = "") -> None:
        super().__init__(discord.ui.Button(label=label or "Request intro", style=discord.ButtonStyle.primary,
                                           custom_id=f"match:ask:{guild_id}:{target_id}"))
        self.guild_id = guild_id
        self.target_id = target_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> RequestButton:
        return cls(int(match["guild"]), int(match["target"]), item.label or "")

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        await open_request(interaction, self.guild_id, self.target_id)


class AnswerButton(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]],
                   template=r"match:(?P<answer>accept|decline):(?P<request>[0-9]+)"):
    """Accept / Decline on a request, in the target's DMs or their private thread."""

    def __init__(self, request_id: int, answer: str, label: str = "") -> None:
        style = discord.ButtonStyle.success if answer == "accept" else discord.ButtonStyle.secondary
        super().__init__(discord.ui.Button(label=label or answer, style=style,
                                           custom_id=f"match:{answer}:{request_id}"))
        self.request_id = request_id
        self.answer = answer

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> AnswerButton:
        return cls(int(match["request"]), match["answer"], item.label or "")

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        bot = bot_of(interaction)
        request = await bot.matching.get_request(self.request_id)
        if request is None:
            raise UserError("match.request.gone")
        if request.target_id != interaction.user.id:
            raise UserError("match.request.not_yours")
        guild = bot.get_guild(request.guild_id)
        if guild is None:
            raise UserError("intros.server_gone")
        localize = await localizer_for(interaction)
        if self.answer == "decline":
            request = await bot.matching.answer_request(self.request_id, interaction.user.id, False)
            await interaction.response.edit_message(content=localize(Text("match.request.declined_target")),
                                                    embed=None, view=None)
            await _tell(bot, guild, request.requester_id, Text("match.request.not_this_time"))
            return
        channel = await _matches_channel(bot, guild)   # before answering: an accept must lead somewhere
        if guild.get_member(request.requester_id) is None:
            raise UserError("match.request.gone")
        # The thread is made by the outbox (exactly once, also across a crash); the answer is stored first.
        await bot.matching.answer_request(self.request_id, interaction.user.id, True)
        bot.outbox.kick()
        await interaction.response.edit_message(
            content=localize(Text("match.request.accepted", channel=channel.mention)), embed=None, view=None)


def _follow_up_view(localize: Localizer, group_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for answer in Answer:
        view.add_item(FollowUpButton(group_id, answer.value, localize(Text(ANSWER_KEYS[answer]))))
    return view


async def _tell(bot: KakehashiBot, guild: discord.Guild, user_id: int, text: Text) -> bool:
    """A DM in the member's language; False when it could not be sent (closed DMs: logged, nothing else)."""
    member = guild.get_member(user_id)
    if member is None:
        return False
    settings = await bot.guild_config.settings(guild.id)
    localize = await member_localizer(bot, guild, settings, user_id)
    try:
        await member.send(localize(text))
    except discord.HTTPException as exc:
        log.info("Could not DM member %s in guild %s (%s)", user_id, guild.id, exc.code)
        return False
    return True


async def _introduce(bot: KakehashiBot, guild: discord.Guild, thread: discord.Thread,
                     members: list[discord.Member], *, seed: int, retry: bool) -> None:
    """Open the thread with one message: the members' cards, and a question to start (once: a retry first
    reads the thread for a message of the bot's, which a first attempt need not)."""
    if retry and await _posted_in(thread, guild.me.id):
        return
    settings = await bot.guild_config.settings(guild.id)
    localize = server_localizer(bot, guild, settings)
    embeds = []
    for member in members:
        profile = await bot.intros.profile(guild.id, member.id)
        if profile is not None:
            # Introduced people see each other's company, whoever else it is hidden from.
            embeds.append(card_embed(localize, profile, viewer_id=None, introduced=True))
    starter = bot.prompts.starter(localize.language, seed)
    lines = [localize(Text("match.intro.hello", members=" ".join(m.mention for m in members)))]
    if starter:
        lines.append(localize(Text("match.intro.starter", question=starter)))
    await thread.send("\n\n".join(lines), embeds=embeds[:10],
                      allowed_mentions=discord.AllowedMentions(users=members))


# ---------------------------------------------------------------- follow-ups


class FollowUpButton(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]],
                     template=r"match:met:(?P<group>[0-9]+):(?P<answer>met|not_yet|skip)"):
    def __init__(self, group_id: int, answer: str, label: str = "") -> None:
        style = discord.ButtonStyle.success if answer == "met" else discord.ButtonStyle.secondary
        super().__init__(discord.ui.Button(label=label or answer, style=style,
                                           custom_id=f"match:met:{group_id}:{answer}"))
        self.group_id = group_id
        self.answer = Answer(answer)

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> FollowUpButton:
        return cls(int(match["group"]), match["answer"], item.label or "")

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        bot = bot_of(interaction)
        group = await bot.matching.answer_follow_up(self.group_id, interaction.user.id, self.answer)
        await send(interaction, Text(THANKS_KEYS[self.answer]))
        guild = bot.get_guild(group.guild_id)
        if guild is not None and group.way is not Way.DM and group.thread_id is not None \
                and await bot.matching.everyone_answered(group.id):
            await _archive(guild, group.thread_id)   # its purpose served: the room goes back to the server


# ---------------------------------------------------------------- the cog


class Matching(commands.Cog):
    match = app_commands.Group(
        name="match", description=described("commands.match.description"), guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        allowed_installs=app_commands.AppInstallationType(guild=True),
    )
    rounds = AdminGroup(name="rounds", description=described("commands.rounds.description"))

    def __init__(self, bot: KakehashiBot) -> None:
        self.bot = bot
        # Requesters waiting for their request's delivery, by (server, requester, target): one open request
        # a pair. The delivery job tells the waiting interaction; with nobody waiting, it DMs a failure.
        self._waiting: dict[tuple[int, int, int], asyncio.Future[Text | UserError]] = {}
        # Delivery problems already told to a server's admins, by (server, round, message key).
        self._reported: set[tuple[int, int, str]] = set()
        self._progress: set[asyncio.Task[None]] = set()   # /rounds run answers showing a delivery's progress
        self.suggest_menu = app_commands.ContextMenu(
            name=described("commands.match.suggest_menu"), callback=self.suggest_intro,
            allowed_contexts=app_commands.AppCommandContext(guild=True),
            allowed_installs=app_commands.AppInstallationType(guild=True),
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.suggest_menu)
        outbox = self.bot.outbox
        outbox.register(ROUND_JOB, self.run_scheduled_round)
        outbox.register(DELIVERY_JOB, self.deliver_round)
        outbox.register(THREAD_JOB, self.start_group)
        outbox.register(SUMMARY_JOB, self.post_summary)
        outbox.register(ARCHIVE_JOB, self.archive)
        outbox.register(FOLLOW_UP_JOB, self.follow_up)
        outbox.register(LEFT_OUT_JOB, self.tell_left_out)
        outbox.register(PAUSED_JOB, self.tell_paused)
        outbox.register(REQUEST_JOB, self.expire_request)
        outbox.register(INTRODUCE_JOB, self.introduce_request)
        outbox.register(DELIVER_JOB, self.deliver_request)
        outbox.add_ticker(self._tick)

    async def _tick(self, now: datetime) -> None:
        await self.bot.matching.materialise_due(now)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.suggest_menu.name, type=self.suggest_menu.type)
        for task in self._progress:
            task.cancel()

    # -- members

    @match.command(name="suggest", description=described("commands.match.suggest.description"))
    async def suggest(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        guild_id = guild_id_of(interaction)
        await defer(interaction)
        found = await self.bot.matching.suggest(guild_id, interaction.user.id)
        localize = await localizer_for(interaction)
        if not found:
            await send(interaction, Text("match.suggest.none"))
            return
        embed = discord.Embed(title=localize(Text("match.suggest.title")), color=EMBED_COLOR)
        view = discord.ui.View(timeout=None)
        for suggestion, profile in found:
            name = shorten(profile.display_name, 60)
            about = [part for part in (profile.role, profile.company_for(interaction.user.id)) if part]
            lines = [" · ".join(shorten(part, 100) for part in about)] if about else []
            lines += [f"• {localize(_reason_text(reason, name))}" for reason in suggestion.reasons]
            if not suggestion.reasons:
                lines.append(f"• {localize(Text('match.reason.open'))}")
            embed.add_field(name=name, value="\n".join(lines)[:1024], inline=False)
            view.add_item(RequestButton(guild_id, profile.user_id,
                                        shorten(localize(Text("match.suggest.button", name=name)), 80)))
        await send(interaction, None, embed=embed, view=view)

    @match.command(name="request", description=described("commands.match.request.description"))
    @app_commands.describe(member=described("commands.match.request.member"),
                           note=described("commands.match.request.note"))
    async def request(self, interaction: discord.Interaction[KakehashiBot], member: discord.Member,
                      note: str | None = None) -> None:
        guild = interaction.guild
        if guild is None:
            raise app_commands.NoPrivateMessage()
        await _request_and_deliver(interaction, guild, member.id, note or "")

    async def suggest_intro(self, interaction: discord.Interaction[KakehashiBot],
                            member: discord.Member | discord.User) -> None:
        await open_request(interaction, guild_id_of(interaction), member.id)

    @match.command(name="join", description=described("commands.match.join.description"))
    async def join(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        guild_id = guild_id_of(interaction)
        await self.bot.matching.join(guild_id, interaction.user.id)
        _, _, upcoming = await self.bot.matching.next_round(guild_id)
        when = (Text("match.join.next", time=discord.utils.format_dt(upcoming, "F"))
                if upcoming is not None else Text("match.join.no_schedule"))
        await send(interaction, Text("match.join.done", next=when))

    @match.command(name="leave", description=described("commands.match.leave.description"))
    async def leave(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        await self.bot.matching.leave(guild_id_of(interaction), interaction.user.id)
        await send(interaction, Text("match.leave.done"))

    @match.command(name="pause", description=described("commands.match.pause.description"))
    @app_commands.describe(weeks=described("commands.match.pause.weeks"))
    async def pause(self, interaction: discord.Interaction[KakehashiBot], weeks: int) -> None:
        member = await self.bot.matching.pause(guild_id_of(interaction), interaction.user.id, weeks)
        assert member.paused_until is not None
        await send(interaction, Text("match.pause.done", weeks=weeks,
                                     until=discord.utils.format_dt(member.paused_until, "D")))

    @match.command(name="avoid", description=described("commands.match.avoid.description"))
    @app_commands.describe(company=described("commands.match.avoid.company"))
    async def avoid(self, interaction: discord.Interaction[KakehashiBot], company: str) -> None:
        guild_id = guild_id_of(interaction)
        entry, added = await self.bot.matching.avoid(guild_id, interaction.user.id, company)
        listed = await self.bot.matching.avoided(guild_id, interaction.user.id)
        await send(interaction, Text("match.avoid.added" if added else "match.avoid.already",
                                     company=shorten(entry.company, COMPANY_MAX),
                                     companies=[shorten(e.company, 60) for e in listed]))

    @match.command(name="unavoid", description=described("commands.match.unavoid.description"))
    @app_commands.describe(company=described("commands.match.unavoid.company"))
    async def unavoid(self, interaction: discord.Interaction[KakehashiBot], company: str) -> None:
        guild_id = guild_id_of(interaction)
        removed = await self.bot.matching.unavoid(guild_id, interaction.user.id, company)
        if removed is None:
            await send(interaction, Text("match.unavoid.not_listed", company=shorten(company, 60)))
            return
        await send(interaction, Text("match.unavoid.done", company=shorten(removed.company, COMPANY_MAX)))

    @avoid.autocomplete("company")
    async def _known_companies(self, interaction: discord.Interaction[KakehashiBot],
                               current: str) -> list[app_commands.Choice[str]]:
        names = await self.bot.matching.known_companies(guild_id_of(interaction), interaction.user.id, current)
        return [app_commands.Choice(name=name, value=name) for name in names]

    @unavoid.autocomplete("company")
    async def _avoided_companies(self, interaction: discord.Interaction[KakehashiBot],
                                 current: str) -> list[app_commands.Choice[str]]:
        listed = await self.bot.matching.avoided(guild_id_of(interaction), interaction.user.id)
        typed = current.casefold()
        return [app_commands.Choice(name=shorten(e.company, 100), value=shorten(e.company, 100))
                for e in listed if typed in e.company.casefold()][:25]

    # -- admins

    @rounds.command(name="run", description=described("commands.rounds.run.description"))
    @app_commands.describe(dry_run=described("commands.rounds.run.dry_run"))
    async def run(self, interaction: discord.Interaction[KakehashiBot], dry_run: bool = False) -> None:
        guild = interaction.guild
        if guild is None:
            raise app_commands.NoPrivateMessage()
        await defer(interaction)
        localize = await localizer_for(interaction)
        replaced: Text | None = None
        round_id = 0
        names: Mapping[int, str] = {}
        if dry_run:
            preview = await self.bot.matching.preview(guild.id)
            plan, taking_part, names = preview.plan, preview.taking_part, preview.names
        else:
            await _matches_channel(self.bot, guild)
            outcome = await self.bot.matching.run_round_now(guild.id)
            if outcome is None:
                raise UserError("match.rounds.already")
            plan, taking_part, round_id = outcome.plan, outcome.members, outcome.round_id
            self.bot.outbox.kick()
            if outcome.replaced is not None:
                # Said plainly, so an admin is not surprised when the scheduled round does not come.
                _, _, upcoming = await self.bot.matching.next_round(guild.id)
                replaced = Text("match.rounds.replaced", slot=discord.utils.format_dt(outcome.replaced, "F"),
                                next=discord.utils.format_dt(upcoming, "F") if upcoming else "-")
        trios = plan.trios
        quality = round(100 * plan.total / plan.bound, 1) if plan.bound else 100.0
        embed = discord.Embed(title=localize(Text("match.rounds.preview_title" if dry_run
                                                  else "match.rounds.done_title")), color=EMBED_COLOR)
        embed.description = localize(Text(
            "match.rounds.summary", members=taking_part, pairs=plan.groups - trios, trios=trios,
            placed=plan.placed, total=f"{plan.total:.1f}", bound=f"{plan.bound:.1f}", quality=quality))
        if replaced is not None:
            embed.description += "\n\n" + localize(replaced)
        if plan.left_out:
            lines = []
            for user_id, why in sorted(plan.left_out.items()):
                member = guild.get_member(user_id)
                name = member.mention if member else names.get(user_id, str(user_id))
                lines.append(localize(Text("match.rounds.left_out_line", name=name,
                                           reason=Text(LEFT_OUT_ADMIN_KEYS[why]))))
            embed.add_field(name=localize(Text("match.rounds.left_out_name", count=len(plan.left_out))),
                            value="\n".join(lines)[:1024], inline=False)
        if dry_run:
            await send(interaction, None, embed=embed)
            return
        embed.set_footer(text=localize(Text("match.rounds.threads_coming")))
        await send(interaction, None, embed=embed)
        task = asyncio.create_task(self._show_progress(interaction, localize, round_id, embed))
        self._progress.add(task)
        task.add_done_callback(self._progress.discard)

    async def _show_progress(self, interaction: discord.Interaction[KakehashiBot], localize: Localizer,
                             round_id: int, summary: discord.Embed) -> None:
        """Edit the admin's answer while the round is delivered, for as long as its token lasts (the log
        channel gets the summary in any case)."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        shown: Progress | None = None
        while loop.time() - began < PROGRESS_FOR:
            await asyncio.sleep(PROGRESS_SECONDS)
            progress = await self.bot.matching.progress(round_id)
            if progress != shown:
                try:
                    await interaction.edit_original_response(
                        embeds=[summary, delivery_embed(localize, progress, loop.time() - began)])
                except discord.HTTPException as exc:
                    log.info("Could not show round %s's progress: %s", round_id, exc.text or exc.status)
                    return
                shown = progress
            if progress.finished:
                return

    @rounds.command(name="stats", description=described("commands.rounds.stats.description"))
    async def stats(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        guild_id = guild_id_of(interaction)
        stats = await self.bot.matching.stats(guild_id)
        text = Text("match.rounds.stats", rounds=stats.rounds, groups=stats.groups, meetings=stats.meetings,
                    bridged=stats.bridged)
        if stats.last is None:
            await send(interaction, text)
            return
        localize = await localizer_for(interaction)
        await send(interaction, text, embed=delivery_embed(localize, stats.last, None))

    # -- requests

    async def send_request(self, guild: discord.Guild, requester_id: int, target_id: int, note: str) -> Text:
        """Store a request with its delivery job and wait, briefly, for the job to say how it went: what to
        tell the requester (a failure is raised, as a :class:`UserError`)."""
        key = (guild.id, requester_id, target_id)
        waiter: asyncio.Future[Text | UserError] = asyncio.get_running_loop().create_future()
        # Waiting before the request exists, so that a job run at once (by the next pass) finds the waiter.
        self._waiting[key] = waiter
        try:
            request = await self.bot.matching.request(guild.id, requester_id, target_id, note)
            self.bot.outbox.kick()
            try:
                outcome = await asyncio.wait_for(waiter, REQUEST_WAIT_SECONDS)
            except TimeoutError:
                target = guild.get_member(target_id)
                return Text("match.request.queued", name=shorten(target.display_name, 80) if target else "?")
        finally:
            if self._waiting.get(key) is waiter:
                del self._waiting[key]
        if isinstance(outcome, UserError):
            raise outcome
        log.debug("Request %s delivered while its requester waited", request.id)
        return outcome

    def _tell_waiting(self, request: MatchRequest, outcome: Text | UserError) -> bool:
        """Give the outcome to the interaction waiting for it; False when none is (it gave up, or the bot
        restarted since): the requester must then be told another way, if at all."""
        waiter = self._waiting.pop((request.guild_id, request.requester_id, request.target_id), None)
        if waiter is None or waiter.done():
            return False
        waiter.set_result(outcome)
        return True

    async def _undeliverable(self, guild: discord.Guild, request: MatchRequest, key: str) -> None:
        """Nobody was asked anything: forget the request and tell the requester."""
        await self.bot.matching.withdraw(request.id)
        if not self._tell_waiting(request, UserError(key)):
            target = guild.get_member(request.target_id)
            await _tell(self.bot, guild, request.requester_id,
                        Text("match.request.not_delivered", name=shorten(target.display_name, 80) if target else "?"))

    async def deliver_request(self, job: Job) -> None:
        """Put a stored request before its target: by DM, else (DMs closed) in a private thread in the
        matches channel with only them in it.

        Where it is about to be sent is recorded before the send, the message right after. A retry after a
        crash between the two looks in that channel for the message carrying this request's Accept button
        before sending again (and finds the private thread by its name's marker). What can still make two:
        the first message no longer among the DM's last ``LOOK_BACK`` messages when the retry reads them, or
        not shown there yet by Discord; a retry comes within seconds of the restart, so both are unlikely,
        and a second copy is harmless (one answer counts, on either)."""
        request = await self.bot.matching.get_request(int(job.payload["request"]))
        guild = self.bot.get_guild(job.guild_id)
        if request is None or guild is None or request.state is not RequestState.OPEN \
                or request.message_id is not None:
            return  # erased, answered or expired meanwhile; or delivered (the job stopped right after)
        target = guild.get_member(request.target_id)
        requester = guild.get_member(request.requester_id)
        profile = await self.bot.intros.profile(guild.id, request.requester_id)
        if requester is None or target is None or profile is None:
            await self._undeliverable(guild, request, "match.request.gone")
            return
        settings = await self.bot.guild_config.settings(guild.id)
        localize = await member_localizer(self.bot, guild, settings, target.id)   # for the target alone
        text = Text("match.request.dm", name=shorten(profile.display_name, 80), server=shorten(guild.name, 60),
                    days=7)
        note = Text("match.request.note", note=request.note) if request.note else None
        content = "\n\n".join(localize(t) for t in (text, note) if t is not None)
        embed = card_embed(localize, profile, viewer_id=target.id)
        view = answer_view(localize, request.id)
        accept = f"match:accept:{request.id}"
        name = shorten(target.display_name, 80)
        dm = await target.create_dm()
        if request.channel_id in (None, dm.id):
            try:
                message = None
                if request.channel_id is None:
                    await self.bot.matching.delivering(request.id, dm.id)
                else:
                    message = await _sent_with(dm, guild.me.id, accept)   # sent before a crash?
                if message is None:
                    message = await dm.send(content, embed=embed, view=view)
            except discord.Forbidden as exc:
                # 50007 (DMs closed): the private thread still reaches them.
                log.info("Could not DM member %s (%s); asking in a private thread", target.id, exc.code)
            else:
                await self.bot.matching.delivered(request.id, dm.id, message.id)
                self._tell_waiting(request, Text("match.request.sent_dm", name=name))
                return
        known = request.channel_id if request.channel_id not in (None, dm.id) else None
        try:
            channel = await _matches_channel(self.bot, guild)
            thread = await _open_thread(guild, channel, ASK_MARKER.format(id=request.id), [target], known,
                                        retry=job.attempts > 1)
            await self.bot.matching.delivering(request.id, thread.id)
            message = await _sent_with(thread, guild.me.id, accept)
            if message is None:
                message = await thread.send(f"{target.mention} {content}", embed=embed, view=view,
                                            allowed_mentions=discord.AllowedMentions(users=[target]))
        except UserError:
            await self._undeliverable(guild, request, "match.request.unreachable")
            return
        except (discord.Forbidden, discord.NotFound) as exc:
            log.warning("Could not deliver request %s in guild %s: %s", request.id, guild.id, exc.text)
            await self._undeliverable(guild, request, "match.request.unreachable")
            return
        await self.bot.matching.delivered(request.id, thread.id, message.id)
        self._tell_waiting(request, Text("match.request.sent_thread", name=name))

    # -- due work

    async def run_scheduled_round(self, job: Job) -> None:
        guild = self.bot.get_guild(job.guild_id)
        if guild is None:
            return  # the bot left the server
        try:
            await _matches_channel(self.bot, guild)  # no round whose groups could not be introduced
        except UserError as exc:
            raise RetryLater(exc.key, **exc.params) from None
        slot = from_text(str(job.payload["slot"]))
        if await self.bot.matching.run_round(job.guild_id, slot) is not None:
            self.bot.outbox.kick()

    def _members_known(self, job: Job) -> discord.Guild | None:
        """The job's server with its whole member list, which delivery reads to tell who left; None when the
        bot is no longer in it. While a new gateway session fills the cache again (discord.py empties it
        at every READY, and loads large servers' members after), the job waits rather than take members
        who are still there for gone."""
        guild = self.bot.get_guild(job.guild_id)
        if not self.bot.is_ready():
            raise RetryLater("match.failure.members_loading")
        if guild is not None and not guild.chunked:
            raise RetryLater("match.failure.members_loading")
        return guild

    async def deliver_round(self, job: Job) -> None:
        """Begin a round's delivery: the room Discord has for threads now, and how each group is introduced
        (bot/matching/delivery.py decides); then each group's job carries it out."""
        guild = self._members_known(job)
        if guild is None:
            return  # the bot left the server
        round_id = int(job.payload["round"])
        active: int | None
        try:
            channel = await _matches_channel(self.bot, guild)
        except UserError as exc:
            await self._problem(guild, round_id, exc.key, **exc.params)
            active = None   # no thread can be started: every group by DM
        else:
            # The threads the bot sees (those it cannot see only make Discord refuse sooner: 160006).
            active = len(await guild.active_threads())
            log.debug("Round %s: %d active threads seen in guild %s (%s)", round_id, active, guild.id, channel.id)
        started = await self.bot.matching.begin_delivery(guild.id, round_id,
                                                         frozenset(member.id for member in guild.members), active)
        if started is not None:
            log.info("Round %s in guild %s: room for %d threads; %d groups by thread, %d by DM; %d ended, "
                     "%d moved, %d alone after departures", round_id, guild.id, started.room, started.threads,
                     started.dms, started.cancelled, started.moved, started.alone)
        self.bot.outbox.kick()

    async def start_group(self, job: Job) -> None:
        """Introduce one group of a round, the way its round chose: in a private thread, or by DM."""
        group = await self.bot.matching.group(int(job.payload["group"]))
        if group is None or group.state is not GroupState.PLANNED:
            return  # erased, or done (the job stopped right after)
        guild = self._members_known(job)
        if guild is None:
            return  # the bot left the server
        members = []
        for user_id in group.members:
            member = guild.get_member(user_id)
            if user_id in group.unreached:
                continue
            if member is None:
                await self.bot.matching.unreached(guild.id, group.id, user_id, Unreached.LEFT)
            else:
                members.append(member)
        if len(members) < 2 and not group.reached:
            # The others left before the introduction: the one still here hears it, and is in the next round.
            await self.bot.matching.group_done(group, GroupState.CANCELLED, None, Ended.LEFT)
            for member in members:
                await _tell(self.bot, guild, member.id, Text(LEFT_OUT_KEYS[LeftOut.PARTNER_LEFT]))
            return
        retry = job.attempts > 1
        way = group.way or Way.THREAD   # a group stored before ways were chosen goes by thread, as it would have
        if way is Way.THREAD and await self._by_thread(guild, group, members, retry=retry):
            return
        await self._by_dm(guild, group, members, retry=retry)

    async def _by_thread(self, guild: discord.Guild, group: GroupRecord, members: list[discord.Member], *,
                         retry: bool) -> bool:
        """The group's private thread: started, the members added, one message. On a first attempt that is
        all (members + 2 calls); only a retry looks for what an earlier attempt left. False when Discord
        will not have the thread (its cap, a permission): the group goes by DM, and so do the round's
        other groups still waiting for a thread."""
        channel: discord.abc.GuildChannel | None
        if group.channel_id is not None:
            channel = guild.get_channel(group.channel_id)
        else:
            try:
                channel = await _matches_channel(self.bot, guild)
            except UserError as exc:
                await self._problem(guild, group.round_id, exc.key, **exc.params)
                channel = None
            else:
                await self.bot.matching.group_channel(group.id, channel.id)
        if not isinstance(channel, discord.TextChannel):
            await self._no_more_threads(group, None)
            return False
        marker = GROUP_MARKER.format(id=group.id)
        thread = None
        if group.thread_id is not None:
            thread = await known_thread(guild, group.thread_id)
        elif retry:
            thread = await _find_thread(guild, channel, marker)   # started before a crash, never recorded
        if thread is not None and thread.archived:
            # A retry a day or more later: Discord adds nobody to an archived thread. Reopened, it takes room
            # under the cap again, which the server may no longer have.
            try:
                await thread.edit(archived=False)
            except discord.HTTPException as exc:
                if exc.status >= 500:
                    raise
                await self._no_more_threads(group, exc.code)
                return False
        if thread is None:
            try:
                thread = await _start_thread(channel, marker, members)
            except discord.HTTPException as exc:
                refusal = delivery.thread_refused(exc.code, exc.status)
                if refusal is ThreadRefusal.RETRY:
                    raise
                if refusal is ThreadRefusal.NO_PERMISSION:
                    await self._problem(guild, group.round_id, "match.delivery.thread_forbidden",
                                        channel=channel.mention, detail=discord_error(exc))
                await self._no_more_threads(group, exc.code)
                return False
        if group.thread_id != thread.id:
            await self.bot.matching.group_thread(group.id, thread.id)
        added: list[discord.Member] = []
        outside: list[discord.Member] = []
        for member in members:
            # Adding a member already in the thread (on a retry) changes nothing on Discord's side.
            try:
                await thread.add_user(member)
            except discord.NotFound:
                await self.bot.matching.unreached(guild.id, group.id, member.id, Unreached.LEFT)
            except discord.Forbidden as exc:
                log.warning("Could not add member %s to thread %s (%s); introducing them by DM", member.id,
                            thread.id, exc.code)
                outside.append(member)
            else:
                added.append(member)
        if outside and not added:
            # Discord lets the bot start threads here but not add members to them: no thread will serve.
            await self._problem(guild, group.round_id, "match.delivery.add_forbidden", channel=channel.mention)
            await self._no_more_threads(group, None)
            return False
        if added:
            try:
                await _introduce(self.bot, guild, thread, added, seed=group.id, retry=retry)
            except discord.Forbidden as exc:   # a permission taken away since the thread was started
                await self._problem(guild, group.round_id, "match.delivery.thread_forbidden", channel=channel.mention,
                                    detail=discord_error(exc))
                await self._no_more_threads(group, exc.code)
                return False
        for member in added:
            await self.bot.matching.reached(guild.id, group.id, member.id, Way.THREAD)
        for member in outside:
            if await self._dm_intro(guild, group, member, members, retry=retry):
                await self.bot.matching.reached(guild.id, group.id, member.id, Way.DM)
            else:
                await self.bot.matching.unreached(guild.id, group.id, member.id, Unreached.NO_ACCESS)
        await self.bot.matching.group_done(group, GroupState.DELIVERED, Way.THREAD)
        return True

    async def _no_more_threads(self, group: GroupRecord, code: int | None) -> None:
        moved = await self.bot.matching.threads_exhausted(group.round_id)
        await self.bot.matching.set_way(group.id, Way.DM)
        log.info("No more threads in round %s (Discord's code %s): group %s and %d other(s) go by DM",
                 group.round_id, code, group.id, moved)

    async def _by_dm(self, guild: discord.Guild, group: GroupRecord, members: list[discord.Member], *,
                     retry: bool) -> None:
        """Each member gets a DM with the others' cards and mentions and the starter question. Members who
        cannot be reached are recorded, and the others told; if nobody could be, a spare thread serves."""
        reached = [m.id for m in members if m.id in group.reached]
        unreached = []
        for member in members:
            if member.id in group.reached:
                continue
            if await self._dm_intro(guild, group, member, members, retry=retry):
                await self.bot.matching.reached(guild.id, group.id, member.id, Way.DM)
                reached.append(member.id)
            else:
                unreached.append(member.id)
        # A spare thread only matters when nobody could be reached: read only then.
        spare = 0 if reached else await self.bot.matching.spare_threads(group.round_id)
        outcome = delivery.after_dms(reached, unreached, spare_threads=spare)
        if outcome.use_thread and await self.bot.matching.take_spare_thread(group.round_id):
            await self.bot.matching.set_way(group.id, Way.THREAD)
            if await self._by_thread(guild, group, members, retry=retry):
                return
        for user_id in unreached:
            await self.bot.matching.unreached(guild.id, group.id, user_id, Unreached.DMS_CLOSED)
        if outcome.tell:
            names = [m.mention for m in members if m.id in unreached]
            for user_id in outcome.tell:
                await _tell(self.bot, guild, user_id, Text("match.delivery.partner_unreached", names=names))
        if outcome.state is GroupState.DELIVERED:
            await self.bot.matching.group_done(group, GroupState.DELIVERED, Way.DM)
        else:
            await self.bot.matching.group_done(group, GroupState.CANCELLED, None, Ended.UNREACHED)

    async def _dm_intro(self, guild: discord.Guild, group: GroupRecord, member: discord.Member,
                        members: list[discord.Member], *, retry: bool) -> bool:
        """The introduction by DM: the others' cards, their mentions (so the member can write to them) and a
        question to start, ending with the group's marker, by which a retry finds it. False when Discord
        refuses the DM (closed DMs)."""
        settings = await self.bot.guild_config.settings(guild.id)
        localize = await member_localizer(self.bot, guild, settings, member.id)
        others = [m for m in members if m.id != member.id]
        embeds = []
        for other in others:
            profile = await self.bot.intros.profile(guild.id, other.id)
            if profile is not None:
                embeds.append(card_embed(localize, profile, viewer_id=None, introduced=True))
        marker = GROUP_MARKER.format(id=group.id)
        lines = [localize(Text("match.delivery.dm_hello", server=shorten(guild.name, 60),
                               members=[f"{o.mention} ({shorten(o.display_name, 60)})" for o in others]))]
        starter = self.bot.prompts.starter(localize.language, group.id)
        if starter:
            lines.append(localize(Text("match.intro.starter", question=starter)))
        lines.append(f"-# Kakehashi {marker}")
        try:
            dm = await member.create_dm()
            if retry and await _sent_marked(dm, guild.me.id, marker):
                return True
            # Mentions show who the others are; in a DM they ping nobody.
            await dm.send("\n\n".join(lines), embeds=embeds[:10], allowed_mentions=discord.AllowedMentions.none())
        except discord.Forbidden as exc:
            log.info("Could not DM member %s of group %s (%s)", member.id, group.id, exc.code)
            return False
        return True

    async def _problem(self, guild: discord.Guild, round_id: int, key: str, **params: Any) -> None:
        """Tell the server's admins in the log channel what stops delivery and how to fix it, once a round."""
        if (guild.id, round_id, key) in self._reported:
            return
        self._reported.add((guild.id, round_id, key))
        if "permissions" in params:
            params["permissions"] = permission_texts(params["permissions"])
        await post_to_log(self.bot, guild, Text("match.delivery.problem", reason=Text(key, **params)))

    async def post_summary(self, job: Job) -> None:
        """One summary per delivered round in the log channel: how its groups were introduced."""
        guild = self.bot.get_guild(job.guild_id)
        if guild is None:
            return
        progress = await self.bot.matching.progress(int(job.payload["round"]))
        settings = await self.bot.guild_config.settings(guild.id)
        await post_to_log(self.bot, guild, delivery_embed(server_localizer(self.bot, guild, settings), progress, None))

    async def follow_up(self, job: Job) -> None:
        """"How did it go?" in the group's thread, or by DM to each member it reached."""
        group = await self.bot.matching.group(int(job.payload["group"]))
        guild = self.bot.get_guild(job.guild_id)
        if group is None or guild is None or group.followed_up_at is not None:
            return
        if group.state is not GroupState.DELIVERED:
            # Never introduced (ended, or still waiting when its follow-up came): nothing to ask, ever.
            log.info("Group %s was not introduced (%s); no follow-up", group.id, group.state.value)
            return
        settings = await self.bot.guild_config.settings(guild.id)
        localize = server_localizer(self.bot, guild, settings)
        button = f"match:met:{group.id}:{Answer.MET.value}"
        retry = job.attempts > 1
        if group.way is not Way.DM and group.thread_id is not None:
            try:
                thread = await known_thread(guild, group.thread_id)
                if thread is not None:
                    # Posted, then recorded: a retry after a crash between the two finds the question by its
                    # button among the thread's latest messages instead of asking twice. Posting reopens an
                    # archived thread.
                    if not (retry and await _sent_with(thread, guild.me.id, button)):
                        await thread.send(localize(Text("match.follow_up.question")),
                                          view=_follow_up_view(localize, group.id))
                    await self.bot.matching.followed_up(group.id)
                    await self.bot.matching.archive_later(guild.id, group.id)
                    return
            except discord.HTTPException as exc:
                if exc.status >= 500:
                    raise
                # The thread cannot be reopened (the server's threads at the cap) or reached (a permission,
                # locked): the question goes by DM instead of waiting for ever.
                log.info("Could not ask group %s in its thread (%s); asking by DM", group.id, exc.code)
        for user_id in sorted(group.reached):
            member = guild.get_member(user_id)
            if member is None:
                continue
            mine = await member_localizer(self.bot, guild, settings, user_id)
            try:
                dm = await member.create_dm()
                if not (retry and await _sent_with(dm, guild.me.id, button)):
                    await dm.send(mine(Text("match.follow_up.question_dm", server=shorten(guild.name, 60))),
                                  view=_follow_up_view(mine, group.id))
            except discord.Forbidden as exc:
                log.info("Could not DM the follow-up to member %s (%s)", user_id, exc.code)
        await self.bot.matching.followed_up(group.id)

    async def archive(self, job: Job) -> None:
        """A week after the follow-up, the bot archives the round thread it started (a thread's creator may),
        so the server's room for active threads is not held; a member's message reopens it."""
        group = await self.bot.matching.group(int(job.payload["group"]))
        guild = self.bot.get_guild(job.guild_id)
        if group is None or guild is None or group.thread_id is None:
            return
        await _archive(guild, group.thread_id)

    async def tell_left_out(self, job: Job) -> None:
        guild = self.bot.get_guild(job.guild_id)
        if guild is not None:
            why = LeftOut(str(job.payload["reason"]))
            await _tell(self.bot, guild, int(job.payload["user"]), Text(LEFT_OUT_KEYS[why]))

    async def tell_paused(self, job: Job) -> None:
        guild = self.bot.get_guild(job.guild_id)
        if guild is not None:
            await _tell(self.bot, guild, int(job.payload["user"]), Text("match.paused_for_silence"))

    async def introduce_request(self, job: Job) -> None:
        """An accepted request: the private thread with both, their cards and a question to start."""
        request = await self.bot.matching.get_request(int(job.payload["request"]))
        guild = self.bot.get_guild(job.guild_id)
        if request is None or guild is None or request.state is not RequestState.ACCEPTED:
            return  # erased meanwhile
        members = [m for m in (guild.get_member(request.requester_id), guild.get_member(request.target_id))
                   if m is not None]
        if len(members) < 2:
            return  # one of them left the server
        try:
            channel = await _matches_channel(self.bot, guild)
        except UserError as exc:
            raise RetryLater(exc.key, **exc.params) from None
        marker = REQUEST_MARKER.format(id=request.id)
        thread = await _open_thread(guild, channel, marker, members, request.thread_id, retry=job.attempts > 1)
        if request.thread_id != thread.id:
            await self.bot.matching.introduced(request.id, thread.id)
        await _introduce(self.bot, guild, thread, members, seed=request.id, retry=job.attempts > 1)

    async def expire_request(self, job: Job) -> None:
        request = await self.bot.matching.expire(int(job.payload["request"]))
        guild = self.bot.get_guild(job.guild_id)
        if request is None or guild is None:
            return
        settings = await self.bot.guild_config.settings(guild.id)
        localize = server_localizer(self.bot, guild, settings)
        if request.channel_id is not None and request.message_id is not None:
            # A DM or a private thread: either is reached by its id, also after a restart.
            channel = self.bot.get_partial_messageable(request.channel_id)
            try:
                await channel.get_partial_message(request.message_id).edit(
                    content=localize(Text("match.request.expired_target")), embed=None, view=None)
            except discord.HTTPException as exc:
                log.info("Could not mark request %s expired: %s", request.id, exc.text)
        target = guild.get_member(request.target_id)
        name = shorten(target.display_name, 80) if target else "?"
        await _tell(self.bot, guild, request.requester_id, Text("match.request.expired", name=name))


async def setup(bot: KakehashiBot) -> None:
    bot.add_dynamic_items(RequestButton, AnswerButton, FollowUpButton)
    await bot.add_cog(Matching(bot))

