"""Members arriving and leaving: welcomes, the one reminder, the introductions channel, and erasure after
leaving; the glue of bot.intros' due work and gateway events.

A join queues a welcome; the outbox's ticker queues reminders and erasures;
each handler checks again at send time and falls back from a DM to the
welcome channel. A member's message in the introductions channel counts as
their introduction and is answered with an offer to make it their profile.
Leaves and returns the bot did not see are caught up when a server becomes
available. The buttons on welcomes, reminders and offers open the profile
form (``bot/profile_form.py``); the commands are ``cogs/intros.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

import discord
from discord.ext import commands

from bot import heap
from bot.client import KakehashiBot
from bot.guilds.model import GuildSettings, Purpose
from bot.i18n import Text, shorten
from bot.interactions import Localizer
from bot.intros.model import NUDGE_JOB, PURGE_JOB, REPLY_CLEANUP_JOB, WELCOME_JOB, MessageRef, WelcomeMode
from bot.outbox.model import Job
from bot.posting import discord_error, member_localizer, post_to_log, server_localizer
from bot.profile_form import WAVE, DraftButton, IntroduceButton, delete_message

log = logging.getLogger(__name__)


class Welcomes(commands.Cog):
    def __init__(self, bot: KakehashiBot) -> None:
        self.bot = bot
        self._warned_no_members_intent = False
        self._welcome_reported: set[tuple[int, str]] = set()   # (server, reason) told to its admins

    async def cog_load(self) -> None:
        outbox = self.bot.outbox
        outbox.register(WELCOME_JOB, self.deliver_welcome)
        outbox.register(NUDGE_JOB, self.deliver_nudge)
        outbox.register(PURGE_JOB, self.purge)
        outbox.register(REPLY_CLEANUP_JOB, self.delete_reply)
        outbox.add_ticker(self._tick)

    async def _tick(self, now: datetime) -> None:
        await self.bot.intros.materialise_due(now, self.bot.outbox.shards)

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
        async with self.bot.intros.card_lock(job.guild_id, user_id):
            forgotten = await self.bot.intros.forget(job.guild_id, user_id)
            for ref in (*forgotten.replies, *([forgotten.card] if forgotten.card else [])):
                await delete_message(guild, ref, self.bot)

    async def delete_reply(self, job: Job) -> None:
        guild = self.bot.get_guild(job.guild_id)
        await delete_message(guild, MessageRef(int(job.payload["channel_id"]), int(job.payload["message_id"])))


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
    await bot.add_cog(Welcomes(bot))
