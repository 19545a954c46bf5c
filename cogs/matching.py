"""``/match``, "Suggest an intro to…" and requests: the glue of bot.matching for members.

Who may meet whom and the scores are decided in ``bot/matching``; this
module asks and renders. Every button carries what it needs (a server or a
request id), so it works in DMs and after a restart. A request is stored
with its delivery job, then sent by it: the channel it is about to be sent
in is recorded before the send, the message right after, and a retry after a
crash looks for the message it may have sent, by the button it carries,
before sending another. Rounds are ``cogs/rounds.py``; what both share with
Discord (the matches channel, private threads, telling a member) is
``bot/threads.py``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import KakehashiBot
from bot.errors import UserError
from bot.i18n import Text, shorten
from bot.interactions import Localizer, bot_of, defer, guild_id_of, localizer_for, send
from bot.matching.model import (
    DELIVER_JOB,
    INTRODUCE_JOB,
    REQUEST_JOB,
    MatchRequest,
    Reason,
    RequestState,
)
from bot.matching.service import COMPANY_MAX, NOTE_MAX
from bot.outbox.model import Job, RetryLater
from bot.posting import card_embed, member_localizer, server_localizer
from bot.threads import EMBED_COLOR, introduce, introduce_by_dm, matches_channel, open_thread, sent_with, tell
from bot.translator import described
from bot.ui import Form, RoutedItem

log = logging.getLogger(__name__)

# Private threads for requests end in a marker naming the request, so a retry can find one it started.
ASK_MARKER = "· q{id}"       # where a request is put to a member whose DMs are closed
REQUEST_MARKER = "· r{id}"   # where an accepted request introduces the two
# How long /match request waits to say how its request was delivered before saying it is on its way.
REQUEST_WAIT_SECONDS = 3.0


def _reason_text(reason: Reason, name: str) -> Text:
    # A list (the topics two members share) is joined as the reader's language joins lists.
    return Text(reason.key, name=name, **{key: list(value) if isinstance(value, tuple) else str(value)
                                          for key, value in reason.values.items()})


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


class NoteForm(Form, template=r"match:note:(?P<guild>[0-9]+):(?P<user>[0-9]+):(?P<target>[0-9]+)"):
    """The request flow from a button or the context menu: an optional note, then the request."""

    fields = ("note",)

    def __init__(self, guild_id: int, user_id: int, target_id: int, localize: Localizer, name: str) -> None:
        super().__init__(title=shorten(localize(Text("match.request.title", name=name)), 45),
                         custom_id=f"match:note:{guild_id}:{user_id}:{target_id}")
        self.add_item(discord.ui.TextInput(
            label=localize(Text("match.request.note_label")), style=discord.TextStyle.paragraph, required=False,
            max_length=NOTE_MAX, placeholder=shorten(localize(Text("match.request.note_hint")), 100),
            custom_id="note"))

    @classmethod
    async def submit(cls, interaction: discord.Interaction[Any], match: re.Match[str],
                     values: Mapping[str, str]) -> None:
        if int(match["user"]) != interaction.user.id:
            raise UserError("errors.form_gone")  # only its member is shown a form: not one of ours
        guild = interaction.client.get_guild(int(match["guild"]))
        if guild is None:
            raise UserError("intros.server_gone")
        (note,) = cls.read(values).values()
        await _request_and_deliver(interaction, guild, int(match["target"]), note)


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
    await interaction.response.send_modal(NoteForm(guild_id, interaction.user.id, target_id, localize,
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
        settings = await bot.guild_config.settings(guild.id)   # read once, for everything below
        localize = await localizer_for(interaction, settings)
        if self.answer == "decline":
            request = await bot.matching.answer_request(self.request_id, interaction.user.id, False)
            await interaction.response.edit_message(content=localize(Text("match.request.declined_target")),
                                                    embed=None, view=None)
            await tell(bot, guild, request.requester_id, Text("match.request.not_this_time"), settings)
            return
        channel = await matches_channel(bot, guild, settings)   # before answering: an accept must lead somewhere
        if guild.get_member(request.requester_id) is None:
            raise UserError("match.request.gone")
        # The thread is made by the outbox (exactly once, also across a crash); the answer is stored first.
        await bot.matching.answer_request(self.request_id, interaction.user.id, True)
        bot.outbox.kick()
        await interaction.response.edit_message(
            content=localize(Text("match.request.accepted", channel=channel.mention)), embed=None, view=None)


# ---------------------------------------------------------------- the cog


class Matching(commands.Cog):
    match = app_commands.Group(
        name="match", description=described("commands.match.description"), guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        allowed_installs=app_commands.AppInstallationType(guild=True),
    )

    def __init__(self, bot: KakehashiBot) -> None:
        self.bot = bot
        # Requesters waiting for their request's delivery, by (server, requester, target): one open request
        # a pair. The delivery job tells the waiting interaction; with nobody waiting, it DMs a failure.
        self._waiting: dict[tuple[int, int, int], asyncio.Future[Text | UserError]] = {}
        self.suggest_menu = app_commands.ContextMenu(
            name=described("commands.match.suggest_menu"), callback=self.suggest_intro,
            allowed_contexts=app_commands.AppCommandContext(guild=True),
            allowed_installs=app_commands.AppInstallationType(guild=True),
        )

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.suggest_menu)
        outbox = self.bot.outbox
        outbox.register(REQUEST_JOB, self.expire_request)
        outbox.register(INTRODUCE_JOB, self.introduce_request)
        outbox.register(DELIVER_JOB, self.deliver_request)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.suggest_menu.name, type=self.suggest_menu.type)

    # -- members

    @match.command(name="suggest", description=described("commands.match.suggest.description"))
    async def suggest(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        guild_id = guild_id_of(interaction)
        await defer(interaction)
        found = await self.bot.matching.suggest(guild_id, interaction.user.id)
        localize = await localizer_for(interaction)
        if not found:
            await send(interaction, localize(Text("match.suggest.none")))
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
            await tell(self.bot, guild, request.requester_id,
                       Text("match.request.not_delivered", name=shorten(target.display_name, 80) if target else "?"))

    async def deliver_request(self, job: Job) -> None:
        """Put a stored request before its target: by DM, else (DMs closed) in a private thread in the
        matches channel with only them in it.

        Where it is about to be sent is recorded before the send, the message right after. A retry after a
        crash between the two looks in that channel for the message carrying this request's Accept button
        before sending again (and finds the private thread by its name's marker). What can still make two:
        the first message no longer among the DM's last ``LOOK_BACK`` (``bot/threads.py``) messages when the
        retry reads them, or not shown there yet by Discord; a retry comes within seconds of the restart, so
        both are unlikely, and a second copy is harmless (one answer counts, on either)."""
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
                    message = await sent_with(dm, guild.me.id, accept)   # sent before a crash?
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
            channel = await matches_channel(self.bot, guild)
            joined = await open_thread(self.bot, guild, channel, ASK_MARKER.format(id=request.id), [target],
                                       known, retry=job.attempts > 1)
            if not joined.members:
                # Discord would not add them (or they left): the thread does not reach them either.
                await self._undeliverable(guild, request, "match.request.unreachable")
                return
            thread = joined.thread
            await self.bot.matching.delivering(request.id, thread.id)
            message = await sent_with(thread, guild.me.id, accept)
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
            channel = await matches_channel(self.bot, guild)
        except UserError as exc:
            raise RetryLater(exc.key, **exc.params) from None
        marker = REQUEST_MARKER.format(id=request.id)
        retry = job.attempts > 1
        joined = await open_thread(self.bot, guild, channel, marker, members, request.thread_id, retry=retry)
        if request.thread_id != joined.thread.id:
            await self.bot.matching.introduced(request.id, joined.thread.id)
        if joined.members:
            # Those in the thread see the cards of both, whoever of them Discord would not add.
            await introduce(self.bot, guild, joined.thread, joined.members, seed=request.id, retry=retry,
                            cards=[m for m in members if m not in joined.gone])
        for member in joined.refused:
            # Nobody waits for a thread they are not in: the introduction comes by DM instead.
            others = [m for m in members if m.id != member.id]
            if not await introduce_by_dm(self.bot, guild, member, others, hello="match.request.introduced_dm",
                                         seed=request.id, marker=marker, retry=retry):
                for other in others:
                    await tell(self.bot, guild, other.id,
                               Text("match.delivery.partner_unreached", names=[member.mention]))

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
        await tell(self.bot, guild, request.requester_id, Text("match.request.expired", name=name))


async def setup(bot: KakehashiBot) -> None:
    bot.add_dynamic_items(RequestButton, AnswerButton)
    bot.forms.add(NoteForm)
    await bot.add_cog(Matching(bot))

