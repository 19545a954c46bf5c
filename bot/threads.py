"""What the two cogs of matching share with Discord: ``cogs/matching.py`` (requests) and ``cogs/rounds.py``
(rounds) both introduce members in private threads of the matches channel or by DM. Glue (it imports discord),
beside ``bot/posting.py``; here so that neither cog imports the other.

The matches channel, checked; a private thread named with a marker (its last word), so a retry after a crash
finds one it started, started open to invitations, its members added, then closed; a message the bot sent
before a crash, found by its button or its marker; a thread archived once its purpose is served; a member told
something by DM; the one message that opens an introduction in a thread, and the DM that introduces a member
the thread could not have.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

import discord

from bot.errors import UserError
from bot.guilds.model import GuildSettings, Purpose
from bot.guilds.rules import REQUIRED_PERMISSIONS
from bot.i18n import Text, permission_texts, shorten
from bot.interactions import known_thread
from bot.posting import card_embed, member_localizer, server_localizer

if TYPE_CHECKING:
    from bot.client import KakehashiBot

log = logging.getLogger(__name__)

EMBED_COLOR: Final = 0x6366F1   # matching's embeds: suggestions, rounds
THREAD_NAME_MAX: Final = 100
# How many of a channel's latest messages a retry reads to find one it sent before a crash.
LOOK_BACK: Final = 50
ARCHIVE_MINUTES: Literal[1440] = 1440       # round and request threads archive after a day of silence


async def matches_channel(bot: KakehashiBot, guild: discord.Guild,
                          settings: GuildSettings | None = None) -> discord.TextChannel:
    """The channel where private threads for introductions are started, checked for everything the bot
    does there (the same list ``/config show`` warns about). Pass ``settings`` when they were read already."""
    if settings is None:
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


def thread_name(names: list[str], marker: str) -> str:
    room = THREAD_NAME_MAX - len(marker) - 1
    return f"{shorten(' × '.join(names), room)} {marker}"


async def find_thread(guild: discord.Guild, channel: discord.TextChannel, marker: str) -> discord.Thread | None:
    """A thread the bot started in ``channel`` whose name ends with ``marker`` (an attempt cut short). When
    Discord cannot say, the error stands: starting another could make two."""
    threads = await guild.active_threads()
    return next((t for t in threads if t.parent_id == channel.id and t.owner_id == guild.me.id
                 and t.name.endswith(marker)), None)


async def start_thread(channel: discord.TextChannel, marker: str, members: list[discord.Member]) -> discord.Thread:
    """A private thread for ``members``, open to invitations until they are in (``add_members`` closes it).
    It archives after a day of silence (a message reopens it), so that introductions do not hold the server's
    room for active threads for a week."""
    return await channel.create_thread(
        name=thread_name([m.display_name for m in members], marker), type=discord.ChannelType.private_thread,
        invitable=True, auto_archive_duration=ARCHIVE_MINUTES)


@dataclass(frozen=True)
class Joined:
    """A private thread and who is in it after the bot added them, by Discord's answers to the adds."""

    thread: discord.Thread
    members: list[discord.Member]   # in the thread
    refused: list[discord.Member]   # Discord refused to add them (403): to be introduced by DM
    gone: list[discord.Member]      # no longer in the server (404)


async def add_members(bot: KakehashiBot, thread: discord.Thread, members: list[discord.Member]) -> Joined:
    """Add ``members`` to a private thread the bot started, then close it to invitations.

    Discord documents that only moderators (Manage Threads, which the bot does not ask for) may add people to a
    private thread closed to invitations, and does not say whether its creator may: so ``start_thread`` starts
    it open, the members are added, and only then is it closed, which works whichever way. Who is in is read
    from the adds' answers (no call more): a member Discord refused (403) is not, and is for the caller to
    introduce by DM; a 404 is a member who left. A 5xx after discord.py's own retries stands, for the caller's
    job to be retried: adding someone already in changes nothing. A thread found again closed (an earlier
    attempt closed it) is not opened again: whom it refuses goes by DM."""
    added: list[discord.Member] = []
    refused: list[discord.Member] = []
    gone: list[discord.Member] = []
    for member in members:
        try:
            await thread.add_user(member)
        except discord.NotFound:
            gone.append(member)
        except discord.Forbidden as exc:
            log.warning("Could not add member %s to thread %s in guild %s (%s); they are introduced by DM",
                        member.id, thread.id, thread.guild.id, exc.code)
            refused.append(member)
        else:
            added.append(member)
    await close_invitations(bot, thread)
    return Joined(thread, added, refused, gone)


async def close_invitations(bot: KakehashiBot, thread: discord.Thread) -> None:
    """Close a private thread the bot started to invitations, its members in: from then on a member cannot
    bring someone else into their introduction. Its creator may, without Manage Threads. When Discord refuses
    anyway, the thread stays as it is (a colleague added is a small matter next to an empty thread) and the
    introduction goes ahead; the bot says so once per server and asks no more there until it restarts, since
    every refusal would count towards Discord's limit on invalid requests (10,000 401, 403 and 429 answers in
    10 minutes close the API to the bot's address for a while). A 5xx is only logged: the thread stays open."""
    guild = thread.guild
    if not thread.invitable or thread.owner_id != guild.me.id or guild.id in bot.invitations_refused:
        return
    try:
        await thread.edit(invitable=False)
    except discord.HTTPException as exc:
        if exc.status >= 500:
            log.info("Could not close thread %s in guild %s to invitations (%s); it stays open", thread.id,
                     guild.id, exc.status)
            return
        bot.invitations_refused.add(guild.id)
        log.warning("Discord refused to close private thread %s in guild %s to invitations (%s %s): its members "
                    "may add others to it; this server's threads stay open to invitations until the bot restarts",
                    thread.id, guild.id, exc.status, exc.code)


async def open_thread(bot: KakehashiBot, guild: discord.Guild, channel: discord.TextChannel, marker: str,
                      members: list[discord.Member], known: int | None, *, retry: bool) -> Joined:
    """The private thread for ``marker``: the one known, or (on a retry) one an earlier attempt started, or
    started now; with ``members`` added (``add_members``: whom Discord refused is for the caller to reach
    another way)."""
    thread = await known_thread(guild, known) if known is not None else None
    if thread is None and retry:
        thread = await find_thread(guild, channel, marker)
    if thread is None:
        thread = await start_thread(channel, marker, members)
    return await add_members(bot, thread, members)


def _custom_ids(message: discord.Message) -> set[str]:
    found = set()
    for row in message.components:
        for item in row.children if isinstance(row, discord.ActionRow) else [row]:
            custom_id = getattr(item, "custom_id", None)
            if custom_id:
                found.add(custom_id)
    return found


async def sent_with(channel: discord.abc.Messageable, me: int, custom_id: str) -> discord.Message | None:
    """The bot's message with the button ``custom_id`` among the channel's latest: a send Discord accepted
    before the bot stopped, and that was never recorded."""
    async for message in channel.history(limit=LOOK_BACK):
        if message.author.id == me and custom_id in _custom_ids(message):
            return message
    return None


async def sent_marked(channel: discord.abc.Messageable, me: int, marker: str) -> bool:
    """Whether the bot's message ending with ``marker`` is among the channel's latest (a DM introduction
    Discord accepted before the bot stopped, never recorded)."""
    async for message in channel.history(limit=LOOK_BACK):
        if message.author.id == me and message.content.endswith(marker):
            return True
    return False


async def archive_thread(guild: discord.Guild, thread_id: int) -> None:
    """Archive a thread the bot started (its creator may, without Manage Threads); a member's message
    reopens it. Only logged when Discord refuses: an open thread costs room, not an introduction."""
    try:
        thread = await known_thread(guild, thread_id)
        if thread is None or thread.archived or thread.owner_id != guild.me.id:
            return
        await thread.edit(archived=True)
    except discord.HTTPException as exc:
        log.info("Could not archive thread %s in guild %s: %s", thread_id, guild.id, exc.text or exc.status)


async def posted_in(thread: discord.Thread, me: int) -> bool:
    """Whether the bot already posted in the thread (a retry after the post, before it was recorded)."""
    async for message in thread.history(limit=10, oldest_first=True):
        if message.author.id == me:
            return True
    return False


async def tell(bot: KakehashiBot, guild: discord.Guild, user_id: int, text: Text,
               settings: GuildSettings | None = None) -> bool:
    """A DM in the member's language; False when it could not be sent (closed DMs: logged, nothing else).
    Pass ``settings`` when they were read already."""
    member = guild.get_member(user_id)
    if member is None:
        return False
    if settings is None:
        settings = await bot.guild_config.settings(guild.id)
    localize = await member_localizer(bot, guild, settings, user_id)
    try:
        message = await member.send(localize(text))
    except discord.HTTPException as exc:
        log.info("Could not DM member %s in guild %s (%s)", user_id, guild.id, exc.code)
        return False
    forget_rate_limits(bot, message.channel.id)
    return True


def forget_rate_limits(bot: discord.Client, channel_id: int) -> None:
    """Drop what discord.py keeps of the rate limit for posting in a channel the bot has just posted in once
    (a member's DM: a round's introduction, a follow-up, a note).

    discord.py keeps each channel's rate limit for five minutes after its last request, and each time it
    meets a channel it has none for, it looks through all it keeps for those to drop
    (``HTTPClient._try_clear_expired_ratelimits``). A round DMs every member it introduces, a new channel
    each: after a 20,000-member round's delivery it held 18,000 (31 MB of the bot's RSS), and each new DM
    cost 3 ms of the event loop looking through them. A later message to the same member starts afresh, as
    the first did, and Discord's answer sets the limit again. (discord.py's own attributes: if a version
    names them otherwise, nothing is dropped; tests/e2e/test_delivery.py checks that they are.)"""
    http = bot.http
    buckets = getattr(http, "_buckets", None)
    hashes = getattr(http, "_bucket_hashes", None)
    if not isinstance(buckets, dict) or not isinstance(hashes, dict):
        return
    route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
    buckets.pop(f"{route.key}:{route.major_parameters}", None)
    known = hashes.get(route.key)   # the bucket Discord named for the route: kept under that name too
    if known is not None:
        buckets.pop(f"{known}:{route.major_parameters}", None)


async def introduce(bot: KakehashiBot, guild: discord.Guild, thread: discord.Thread,
                    members: list[discord.Member], *, seed: int, retry: bool,
                    cards: list[discord.Member] | None = None) -> None:
    """Open the thread with one message: the members' cards (or those of ``cards``, when some of the people
    introduced are not in the thread), and a question to start (once: a retry first reads the thread for a
    message of the bot's, which a first attempt need not)."""
    if retry and await posted_in(thread, guild.me.id):
        return
    settings = await bot.guild_config.settings(guild.id)
    localize = server_localizer(bot, guild, settings)
    embeds = []
    for member in cards if cards is not None else members:
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


async def introduce_by_dm(bot: KakehashiBot, guild: discord.Guild, member: discord.Member,
                          others: list[discord.Member], *, hello: str, seed: int, marker: str, retry: bool) -> bool:
    """The introduction by DM, in the member's language: ``hello`` (a key given ``server`` and ``members``),
    the others' cards, their mentions (so the member can write to them; in a DM they ping nobody) and a question
    to start, ending with ``marker``, by which a retry finds it. False when Discord refuses the DM (closed
    DMs)."""
    settings = await bot.guild_config.settings(guild.id)
    localize = await member_localizer(bot, guild, settings, member.id)
    embeds = []
    for other in others:
        profile = await bot.intros.profile(guild.id, other.id)
        if profile is not None:
            embeds.append(card_embed(localize, profile, viewer_id=None, introduced=True))
    lines = [localize(Text(hello, server=shorten(guild.name, 60),
                           members=[f"{o.mention} ({shorten(o.display_name, 60)})" for o in others]))]
    starter = bot.prompts.starter(localize.language, seed)
    if starter:
        lines.append(localize(Text("match.intro.starter", question=starter)))
    lines.append(f"-# Kakehashi {marker}")
    try:
        dm = await member.create_dm()
        if retry and await sent_marked(dm, guild.me.id, marker):
            return True
        await dm.send("\n\n".join(lines), embeds=embeds[:10], allowed_mentions=discord.AllowedMentions.none())
    except discord.Forbidden as exc:
        log.info("Could not DM member %s in guild %s an introduction (%s)", member.id, guild.id, exc.code)
        return False
    forget_rate_limits(bot, dm.id)
    return True
