"""``/rounds`` and a round's delivery: the glue of bot.matching's rounds.

A round is planned and stored in ``bot/matching`` (the round worker), and how
each group is introduced is decided in ``bot/matching/delivery.py``; this cog
carries the decisions out against Discord and reports what happened. A
round's threads are started by the outbox, one job per group: the matches
channel is recorded before the thread is started, the thread right after, and
a retry after a crash looks for a thread it started by the marker at the end
of its name before starting another, so each group gets exactly one. A
follow-up's retry looks for the question it may have asked, by the button it
carries, before asking again. Every button carries its group's id, so it works
in DMs and after a restart. What requests share with rounds (the matches
channel, private threads, telling a member) is in ``bot/threads.py``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import AdminGroup
from bot.client import KakehashiBot
from bot.clock import from_text
from bot.errors import UserError
from bot.i18n import Text, permission_texts, shorten
from bot.interactions import Localizer, bot_of, defer, guild_id_of, known_thread, localizer_for, send
from bot.matching import delivery
from bot.matching.delivery import Ended, GroupState, Progress, ThreadRefusal, Unreached, Way
from bot.matching.model import (
    ARCHIVE_JOB,
    DELIVERY_JOB,
    FOLLOW_UP_JOB,
    LEFT_OUT_JOB,
    PAUSED_JOB,
    ROUND_JOB,
    SUMMARY_JOB,
    THREAD_JOB,
    Answer,
    GroupRecord,
    LeftOut,
)
from bot.outbox.model import Job, RetryLater
from bot.posting import discord_error, member_localizer, post_to_log, server_localizer
from bot.threads import (
    EMBED_COLOR,
    add_members,
    archive_thread,
    find_thread,
    forget_rate_limits,
    introduce,
    introduce_by_dm,
    matches_channel,
    sent_with,
    start_thread,
    tell,
)
from bot.translator import described
from bot.ui import RoutedItem

log = logging.getLogger(__name__)

# A round's private threads end in a marker naming the group, so a retry can find one it started.
GROUP_MARKER = "· #{id}"
LEFT_OUT_KEYS = {LeftOut.NO_PARTNER: "match.left_out.no_partner", LeftOut.NO_GROUP: "match.left_out.no_group",
                 LeftOut.PARTNER_LEFT: "match.left_out.partner_left"}
LEFT_OUT_ADMIN_KEYS = {LeftOut.NO_PARTNER: "match.left_out.no_partner_admin",
                       LeftOut.NO_GROUP: "match.left_out.no_group_admin",
                       LeftOut.PARTNER_LEFT: "match.left_out.partner_left_admin"}
ANSWER_KEYS = {Answer.MET: "match.follow_up.met", Answer.NOT_YET: "match.follow_up.not_yet",
               Answer.SKIP: "match.follow_up.skip"}
PROGRESS_SECONDS = 2.0       # how often /rounds run's answer shows the delivery's progress
PROGRESS_FOR = 14 * 60.0     # an interaction's token lasts 15 minutes; after that the log channel tells
UNREACHED_KEYS = {Unreached.LEFT: "match.delivery.why.left", Unreached.DMS_CLOSED: "match.delivery.why.dms_closed",
                  Unreached.NO_ACCESS: "match.delivery.why.no_access"}
THANKS_KEYS = {Answer.MET: "match.follow_up.thanks_met", Answer.NOT_YET: "match.follow_up.thanks_not_yet",
               Answer.SKIP: "match.follow_up.thanks_skip"}


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


# ---------------------------------------------------------------- follow-ups


def _follow_up_view(localize: Localizer, group_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for answer in Answer:
        view.add_item(FollowUpButton(group_id, answer.value, localize(Text(ANSWER_KEYS[answer]))))
    return view


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
            await archive_thread(guild, group.thread_id)   # its purpose served: the room goes back to the server


# ---------------------------------------------------------------- the cog


class Rounds(commands.Cog):
    rounds = AdminGroup(name="rounds", description=described("commands.rounds.description"))

    def __init__(self, bot: KakehashiBot) -> None:
        self.bot = bot
        # Delivery problems already told to a server's admins, by (server, round, message key).
        self._reported: set[tuple[int, int, str]] = set()
        self._progress: set[asyncio.Task[None]] = set()   # /rounds run answers showing a delivery's progress

    async def cog_load(self) -> None:
        outbox = self.bot.outbox
        outbox.register(ROUND_JOB, self.run_scheduled_round)
        outbox.register(DELIVERY_JOB, self.deliver_round)
        outbox.register(THREAD_JOB, self.start_group)
        outbox.register(SUMMARY_JOB, self.post_summary)
        outbox.register(ARCHIVE_JOB, self.archive)
        outbox.register(FOLLOW_UP_JOB, self.follow_up)
        outbox.register(LEFT_OUT_JOB, self.tell_left_out)
        outbox.register(PAUSED_JOB, self.tell_paused)
        outbox.add_ticker(self._tick)

    async def _tick(self, now: datetime) -> None:
        await self.bot.matching.materialise_due(now, self.bot.outbox.shards)

    async def cog_unload(self) -> None:
        for task in self._progress:
            task.cancel()

    # -- admins

    @rounds.command(name="run", description=described("commands.rounds.run.description"))
    @app_commands.describe(dry_run=described("commands.rounds.run.dry_run"))
    async def run(self, interaction: discord.Interaction[KakehashiBot], dry_run: bool = False) -> None:
        guild = interaction.guild
        if guild is None:
            raise app_commands.NoPrivateMessage()
        await defer(interaction)
        settings = await self.bot.guild_config.settings(guild.id)
        localize = await localizer_for(interaction, settings)
        replaced: Text | None = None
        round_id = 0
        names: Mapping[int, str] = {}
        if dry_run:
            preview = await self.bot.matching.preview(guild.id)
            plan, taking_part, names = preview.plan, preview.taking_part, preview.names
        else:
            await matches_channel(self.bot, guild, settings)
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
        await send(interaction, localize(text), embed=delivery_embed(localize, stats.last, None))

    # -- due work

    async def run_scheduled_round(self, job: Job) -> None:
        guild = self.bot.get_guild(job.guild_id)
        if guild is None:
            return  # the bot left the server
        try:
            await matches_channel(self.bot, guild)  # no round whose groups could not be introduced
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
            channel = await matches_channel(self.bot, guild)
        except UserError as exc:
            await self._problem(guild, round_id, exc.key, **exc.params)
            active = None   # no thread can be started: every group by DM
        else:
            # The threads the bot sees (those it cannot see only make Discord refuse sooner: 160006).
            active = len(await guild.active_threads())
            log.debug("Round %s: %d active threads seen in guild %s (%s)", round_id, active, guild.id, channel.id)
        started = await self.bot.matching.begin_delivery(guild.id, round_id, (member.id for member in guild.members),
                                                         active)
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
                await tell(self.bot, guild, member.id, Text(LEFT_OUT_KEYS[LeftOut.PARTNER_LEFT]))
            return
        retry = job.attempts > 1
        way = group.way or Way.THREAD   # a group stored before ways were chosen goes by thread, as it would have
        if way is Way.THREAD and await self._by_thread(guild, group, members, retry=retry):
            return
        await self._by_dm(guild, group, members, retry=retry)

    async def _by_thread(self, guild: discord.Guild, group: GroupRecord, members: list[discord.Member], *,
                         retry: bool) -> bool:
        """The group's private thread: started, the members added, one message. On a first attempt that is
        all (members + 3 calls); only a retry looks for what an earlier attempt left. False when Discord
        will not have the thread (its cap, a permission): the group goes by DM, and so do the round's
        other groups still waiting for a thread."""
        channel: discord.abc.GuildChannel | None
        if group.channel_id is not None:
            channel = guild.get_channel(group.channel_id)
        else:
            try:
                channel = await matches_channel(self.bot, guild)
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
            thread = await find_thread(guild, channel, marker)   # started before a crash, never recorded
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
                thread = await start_thread(channel, marker, members)
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
        # Added, then the thread closed to invitations; whom Discord refused is introduced by DM below.
        joined = await add_members(self.bot, thread, members)
        for member in joined.gone:
            await self.bot.matching.unreached(guild.id, group.id, member.id, Unreached.LEFT)
        added, outside = joined.members, joined.refused
        if outside and not added:
            # Discord lets the bot start threads here but not add members to them: no thread will serve.
            await self._problem(guild, group.round_id, "match.delivery.add_forbidden", channel=channel.mention)
            await self._no_more_threads(group, None)
            return False
        if added:
            try:
                await introduce(self.bot, guild, thread, added, seed=group.id, retry=retry)
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
                await tell(self.bot, guild, user_id, Text("match.delivery.partner_unreached", names=names))
        if outcome.state is GroupState.DELIVERED:
            await self.bot.matching.group_done(group, GroupState.DELIVERED, Way.DM)
        else:
            await self.bot.matching.group_done(group, GroupState.CANCELLED, None, Ended.UNREACHED)

    async def _dm_intro(self, guild: discord.Guild, group: GroupRecord, member: discord.Member,
                        members: list[discord.Member], *, retry: bool) -> bool:
        """The group's introduction by DM (``introduce_by_dm``), ending with the group's marker, by which a
        retry finds it. False when Discord refuses the DM (closed DMs)."""
        others = [m for m in members if m.id != member.id]
        return await introduce_by_dm(self.bot, guild, member, others, hello="match.delivery.dm_hello", seed=group.id,
                                     marker=GROUP_MARKER.format(id=group.id), retry=retry)

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
                    if not (retry and await sent_with(thread, guild.me.id, button)):
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
                if not (retry and await sent_with(dm, guild.me.id, button)):
                    await dm.send(mine(Text("match.follow_up.question_dm", server=shorten(guild.name, 60))),
                                  view=_follow_up_view(mine, group.id))
                    forget_rate_limits(self.bot, dm.id)
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
        await archive_thread(guild, group.thread_id)

    async def tell_left_out(self, job: Job) -> None:
        guild = self.bot.get_guild(job.guild_id)
        if guild is not None:
            why = LeftOut(str(job.payload["reason"]))
            await tell(self.bot, guild, int(job.payload["user"]), Text(LEFT_OUT_KEYS[why]))

    async def tell_paused(self, job: Job) -> None:
        guild = self.bot.get_guild(job.guild_id)
        if guild is not None:
            await tell(self.bot, guild, int(job.payload["user"]), Text("match.paused_for_silence"))



async def setup(bot: KakehashiBot) -> None:
    bot.add_dynamic_items(FollowUpButton)
    await bot.add_cog(Rounds(bot))
