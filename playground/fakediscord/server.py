"""A small Discord on 127.0.0.1: REST API v10 and gateway v10, enough for discord.py.

The real, unmodified discord.py client talks to it; only where it connects
changes (``discord.http.Route.BASE`` and the gateway URL, see
:meth:`FakeDiscord.pointed_at`). Tests build a world (guilds, channels,
roles, members, emojis), inject what users do (slash and user commands,
autocomplete, button clicks, select picks, modal submits, reactions, joins,
messages) and assert on what the bot sent, which the server records call by
call.

It enforces what Discord enforces that matters to us: an interaction is
answered within 3 s and only once, its token works for 15 minutes, messages
hold at most 2,000 characters (embeds, components and select menus have
their limits too), a command's ``default_member_permissions`` decides who may
run it unless the server overrode it, DMs to a member who closed them fail
with 50007, the bot needs permissions in a channel to post there (to attach
files, reply or react too), files stay on their message (and are served from
the fake's own CDN), a reply pings its author unless ``allowed_mentions`` says
otherwise, and forum posts and threads follow Discord's rules (tags a forum
requires, one thread per message, names of 1-100 characters, at most 1,000
active threads a server, who may archive, lock or rename one). A repeated send
with the same ``nonce`` gives back the message already created.

The gateway shards as Discord's does: an IDENTIFY names its shard (``[shard_id, shard_count]``, [0, 1] without
one), each shard has a session of its own, and a server's events go to the shard ``(guild_id >> 22) %
shard_count``, DMs to shard 0. So one fake serves a bot run as several processes, each with some shards.

A :class:`Hold` keeps the answer to one REST call back after the fake has
done it, so a test can kill the bot between "Discord did it" and "the bot
knows". Rate limits (per-route buckets, a global limit) are off unless a test
sets them; a :class:`Fault` or :meth:`FakeDiscord.chaos` makes calls fail as
Discord's do (429, 5xx before or after the call was carried out).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import random
import re
import secrets
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal
from urllib.parse import quote

import yarl
from aiohttp import BodyPartReader, WSMsgType, web

from playground.fakediscord.model import (
    MEMBERS_CHUNK,
    MEMBERS_CHUNK_EVERY,
    Attachment,
    Channel,
    ChannelType,
    Emoji,
    ForumTag,
    Guild,
    Member,
    Message,
    Overwrite,
    Perm,
    Role,
    User,
    reaction_emoji,
    shard_of,
    snowflake,
    snowflake_on_shard,
)

API_PREFIX = "/api/v10"
INTERACTION_DEADLINE = 3.0  # seconds to send the initial response
TOKEN_LIFETIME = 15 * 60.0  # seconds a token works for follow-ups
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024  # bytes per file, as the interaction payload announces
MAX_REACTIONS = 20  # distinct emojis on one message
NONCE_WINDOW = 5 * 60.0  # seconds a message's nonce stays taken for its author in its channel ("a few minutes")
MAX_NONCE_LENGTH = 25
FAULT_STATUSES = frozenset({403, 429, 500, 502, 503, 504})
# Calls chaos leaves alone unless told otherwise: failing them says nothing about how the bot delivers (an
# interaction callback retried after a lost answer is "already acknowledged"; login is discord.py's own).
CHAOS_EXCLUDE = r"/interactions/\d+/[^/]+/callback|/users/@me|/oauth2/applications/@me|/gateway(?:/bot)?"
Uploads = dict[int, tuple[str, bytes]]  # files of a multipart request by n of their `files[n]` part: (filename, bytes)
UPLOADS = web.RequestKey("uploads", dict)

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_DIRECT_MESSAGE_REACTIONS = 1 << 13
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_MESSAGE_CONTENT | (1 << 8)

# Gateway close codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-close-event-codes).
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_INVALID_SHARD = 4010
CLOSE_SHARDING_REQUIRED = 4011
CLOSE_DISALLOWED_INTENTS = 4014
MAX_GUILDS_PER_SHARD = 2500  # a session past it is refused with 4011, as Discord documents
SESSION_START_TOTAL = 1000  # IDENTIFYs a day, as GET /gateway/bot announces them

# Interaction and callback types.
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 4, 5, 6, 7
AUTOCOMPLETE_RESULT, MODAL = 8, 9

OPTION_SUBCOMMAND, OPTION_GROUP = 1, 2
OPTION_STRING, OPTION_INTEGER, OPTION_BOOLEAN, OPTION_USER = 3, 4, 5, 6
OPTION_CHANNEL, OPTION_ROLE, OPTION_MENTIONABLE, OPTION_NUMBER = 7, 8, 9, 10

CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3  # application command types
BUTTON, STRING_SELECT = 2, 3  # component types
SELECTS = frozenset({3, 5, 6, 7, 8})  # string, user, role, mentionable and channel selects

_NAME = re.compile(r"^[-_\w]{1,32}$")
_LOCALES = frozenset({
    "id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no", "pl",
    "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th", "zh-CN", "ja", "zh-TW",
    "ko",
})


# What an app may do in a DM with a user (Discord's fixed set there): view, send, embed, attach, history,
# reactions, external emojis, use application commands.
DM_APP_PERMISSIONS = (Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES | Perm.EMBED_LINKS | Perm.ATTACH_FILES
                      | Perm.READ_MESSAGE_HISTORY | Perm.ADD_REACTIONS | (1 << 18) | (1 << 31))


class DiscordError(Exception):
    """An error response in Discord's shape."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def invalid_form(path: str, code: str, message: str) -> DiscordError:
    """400/50035, with ``errors`` nested the way Discord nests them."""
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path.split(".")):
        errors = {part: errors}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


class CommandNotAvailable(Exception):
    """Discord would not show this command to this member, so it cannot be sent."""


Handler = Callable[[web.Request, "re.Match[str]", Any], Awaitable[Any]]


class NotModelled(Exception):
    """A request Discord would take that the fake does not model: answered 404 and recorded as unhandled, so the
    end-to-end runner reports it instead of the fake pretending."""


FaultKind = Literal["rate_limited", "failed", "answer_lost", "refused"]


@dataclass
class Call:
    """One REST request the bot made, and how the fake answered it. ``status`` is what the client received;
    ``fault`` says when :meth:`FakeDiscord.fault` or :meth:`FakeDiscord.chaos` decided it (a 429 of a configured
    rate limit is no fault: ``status`` 429, ``fault`` None); after a lost answer, ``carried_out_status`` is
    what the fake did before the fault replaced its answer."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[tuple[str, bytes]]
    status: int = 0
    handled: bool = True
    fault: FaultKind | None = None
    carried_out_status: int | None = None


@dataclass(frozen=True)
class Injection:
    """What a fault or chaos does to one call: a 429 (``retry_after`` seconds), a 403 (``refused``: Discord's
    50013, nothing done) or a 5xx, before the call is carried out (``failed``) or after (``answer_lost``)."""

    kind: FaultKind
    status: int
    retry_after: float = 0.0


class Fault:
    """The next ``times`` calls matching ``method`` and ``regex`` get ``status`` (see :meth:`FakeDiscord.fault`);
    ``calls`` are those it caught."""

    def __init__(self, method: str, regex: re.Pattern[str], status: int, carried_out: bool, times: int,
                 retry_after: float) -> None:
        if status not in FAULT_STATUSES:
            raise ValueError(f"a fault answers one of {sorted(FAULT_STATUSES)}, not {status}")
        if carried_out and status in (403, 429):
            raise ValueError(f"a {status} is never carried out: Discord refuses before doing anything")
        if times < 1:
            raise ValueError("a fault catches at least one call")
        if retry_after <= 0:
            raise ValueError("a 429 asks for a positive wait")
        self.method = method
        self.regex = regex
        self.times = times
        self.calls: list[Call] = []
        kind: FaultKind = ("rate_limited" if status == 429 else "refused" if status == 403
                           else "answer_lost" if carried_out else "failed")
        self.injection = Injection(kind, status, retry_after if status == 429 else 0.0)

    @property
    def spent(self) -> bool:
        return len(self.calls) >= self.times

    def catch(self, call: Call) -> Injection | None:
        if self.spent or call.method != self.method or not self.regex.match(call.path):
            return None
        self.calls.append(call)
        return self.injection


@dataclass
class Chaos:
    """Seeded random faults (see :meth:`FakeDiscord.chaos`). The k-th call of a route (method and template)
    draws from a generator seeded with the seed, the route and k, so a run repeats whatever else runs beside
    it, as long as the calls to each route come in the same order."""

    seed: int
    rate_limited: float
    server_error: float
    lost_answer: float
    only: re.Pattern[str] | None
    exclude: re.Pattern[str] | None
    retry_after: tuple[float, float]
    drawn: Counter[str] = field(default_factory=Counter)

    def draw(self, call: Call, route: str) -> Injection | None:
        if self.only is not None and not self.only.match(call.path):
            return None
        if self.exclude is not None and self.exclude.match(call.path):
            return None
        n = self.drawn[route]
        self.drawn[route] += 1
        rng = random.Random(f"{self.seed}:{route}:{n}")
        roll = rng.random()
        if roll < self.rate_limited:
            return Injection("rate_limited", 429, rng.uniform(*self.retry_after))
        if roll < self.rate_limited + self.server_error:
            return Injection("failed", 500)
        if roll < self.rate_limited + self.server_error + self.lost_answer:
            return Injection("answer_lost", 502)
        return None


@dataclass(frozen=True)
class RateLimit:
    """``limit`` calls per ``per_seconds`` for each route (method and template) the rule covers, counted per
    major parameter (channel, guild, webhook or interaction token) as Discord counts them."""

    method: str
    regex: re.Pattern[str]
    limit: int
    per_seconds: float

    def covers(self, call: Call) -> bool:
        return self.method in ("*", call.method) and bool(self.regex.match(call.path))


@dataclass
class Bucket:
    """One route's count for one major parameter, in a fixed window that opens with its first call."""

    rule: RateLimit
    hash: str
    used: int = 0
    resets_at: float = 0.0  # event-loop time

    def headers(self, now: float) -> dict[str, str]:
        after = math.ceil(max(0.0, self.resets_at - now) * 1000) / 1000
        return {
            "X-RateLimit-Limit": str(self.rule.limit),
            "X-RateLimit-Remaining": str(max(0, self.rule.limit - self.used)),
            "X-RateLimit-Reset": f"{time.time() + after:.3f}",
            "X-RateLimit-Reset-After": f"{after:.3f}",
            "X-RateLimit-Bucket": self.hash,
        }


@dataclass(frozen=True)
class Route:
    """A REST route the fake serves: ``template`` as Discord's documentation writes it (``/channels/{channel}``)."""

    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    auth: bool

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"

    def major(self, match: re.Match[str]) -> str:
        """The major parameters of a call: what Discord counts a route's rate limit per."""
        groups = match.groupdict()
        return "+".join(groups[name] for name in ("channel", "guild", "token") if name in groups)


@dataclass
class Interaction:
    """An interaction the test injected, and everything the bot answered to it."""

    server: FakeDiscord
    id: int
    token: str
    type: int
    user: User
    member: Member | None
    channel: Channel
    payload: dict[str, Any]
    created_monotonic: float
    callback_type: int | None = None
    original: Message | None = None
    followups: list[Message] = field(default_factory=list)
    modal_data: dict[str, Any] | None = None
    choice_data: list[dict[str, Any]] | None = None
    expect_no_answer: bool = False

    @property
    def answered(self) -> bool:
        return self.callback_type is not None

    @property
    def messages(self) -> list[Message]:
        return ([self.original] if self.original is not None else []) + self.followups

    async def response(self, timeout: float = 5.0) -> Interaction:
        """Wait for the initial response (of any type)."""
        await self.server.wait_until(lambda: self.answered, timeout, f"a response to interaction {self.id}")
        return self

    async def reply(self, timeout: float = 5.0) -> Message:
        """The first message that answers the interaction: the response itself, or what follows a defer."""

        def first() -> Message | None:
            return next((m for m in self.messages if not m.flags & Message.LOADING and not m.deleted), None)

        await self.server.wait_until(lambda: first() is not None, timeout, f"a reply to interaction {self.id}")
        message = first()
        assert message is not None
        return message

    async def modal(self, timeout: float = 5.0) -> dict[str, Any]:
        await self.server.wait_until(lambda: self.answered, timeout, f"a modal for interaction {self.id}")
        if self.modal_data is None:
            raise AssertionError(f"interaction {self.id} was answered with type {self.callback_type}, not a modal")
        return self.modal_data

    async def choices(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        await self.server.wait_until(lambda: self.answered, timeout, f"choices for interaction {self.id}")
        if self.choice_data is None:
            raise AssertionError(f"interaction {self.id} was answered with type {self.callback_type}, not choices")
        return self.choice_data


class Hold:
    """The answer to the next REST call matching ``method`` and ``pattern`` (see :meth:`FakeDiscord.hold`),
    kept back: the fake performs the call fully (what it creates exists, the call is recorded with its
    status) and then waits for :meth:`release` before it answers. Between the two a test can kill the bot,
    as a crash after Discord accepted a request and before the bot read the answer would."""

    def __init__(self, method: str, regex: re.Pattern[str], after: int = 0) -> None:
        self.method = method
        self.regex = regex
        self.call: Call | None = None
        self._let_through = after
        self._reached = asyncio.Event()
        self._released = asyncio.Event()

    def matches(self, call: Call) -> bool:
        """Whether to keep this call's answer: the first matching call after the ``after`` let through."""
        if self.call is not None or call.method != self.method or not self.regex.match(call.path):
            return False
        if self._let_through > 0:
            self._let_through -= 1
            return False
        return True

    @property
    def is_reached(self) -> bool:
        return self._reached.is_set()

    async def reached(self, timeout: float = 5.0) -> Call:
        """Wait until a matching call has been performed (its answer now held); return that call."""
        try:
            await asyncio.wait_for(self._reached.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {self.method} {self.regex.pattern}") \
                from None
        assert self.call is not None
        return self.call

    def release(self) -> None:
        """Let the answer go. Harmless when the client is gone (aiohttp drops the write) or it was released."""
        self._released.set()

    async def _keep(self, call: Call) -> None:
        self.call = call
        self._reached.set()
        await self._released.wait()


class Connection:
    """One websocket to the bot, with the transport compression it asked for."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self._zlib = zlib.compressobj() if compress == "zlib-stream" else None

    async def send(self, payload: dict[str, Any]) -> None:
        data = json.dumps(payload, ensure_ascii=False)
        if self._zlib is None:
            await self.ws.send_str(data)
        else:
            chunk = self._zlib.compress(data.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(chunk)


class GatewaySession:
    """A gateway session: it outlives a dropped connection, keeps what was dispatched while the bot was
    away, and replays it when the bot resumes, as Discord does. It is one shard's (shard_id of shard_count;
    0 of 1 for a bot that does not shard)."""

    def __init__(self, intents: int, shard_id: int = 0, shard_count: int = 1) -> None:
        self.session_id = secrets.token_hex(16)
        self.sequence = 0
        self.intents = intents
        self.shard_id = shard_id
        self.shard_count = shard_count
        self.connection: Connection | None = None
        self.sent: list[dict[str, Any]] = []

    def owns(self, guild: Guild | None) -> bool:
        """Whether this shard receives ``guild``'s events; those of no server (DMs) go to shard 0."""
        if guild is None:
            return self.shard_id == 0
        return shard_of(guild.id, self.shard_count) == self.shard_id

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        self.sequence += 1
        payload = {"op": 0, "t": event, "s": self.sequence, "d": data}
        self.sent.append(payload)
        if self.connection is not None:
            await self.connection.send(payload)

    async def resume(self, connection: Connection, after: int) -> None:
        self.connection = connection
        for payload in [p for p in self.sent if p["s"] > after]:
            await connection.send(payload)
        await self.dispatch("RESUMED", {})


class FakeDiscord:
    def __init__(self, *, token: str | None = None, privileged_intents: bool = True) -> None:
        self.token = token or f"fake.{secrets.token_urlsafe(24)}"
        self.privileged_intents = privileged_intents
        self.bot_user = User(snowflake(), "Kakehashi", bot=True)
        self.application_id = self.bot_user.id
        self.owner = User(snowflake(), "owner")
        self.users: dict[int, User] = {self.bot_user.id: self.bot_user, self.owner.id: self.owner}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self.calls: list[Call] = []
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        # (guild id, command id) -> {role, member or guild (= @everyone) id: allowed}
        self.command_permissions: dict[tuple[int, int], dict[int, bool]] = {}
        self.interactions: dict[int, Interaction] = {}
        # Users a test expects the bot to ping; the e2e fixtures fail on any other ping.
        self.expected_pings: set[int] = set()
        # (shard id, shard count) -> its session, in the order they identified. Keyed by the count too: while a
        # bot reshards, Discord serves the old shards and the new ones side by side.
        self.sessions: dict[tuple[int, int], GatewaySession] = {}
        self.identify_count = 0  # every shard's
        self.resume_count = 0  # every shard's
        # What GET /gateway/bot answers (an AutoShardedClient without a shard_count starts `shards` shards).
        self.recommended_shards = 1
        self.max_concurrency = 1  # announced, not enforced: the fake takes IDENTIFYs as fast as they come
        self.max_guilds_per_shard = MAX_GUILDS_PER_SHARD
        self._changed: asyncio.Condition | None = None
        # Called (synchronously) after every change the fake serves: the playground's page listens here.
        self.listeners: list[Callable[[], None]] = []
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._chunking: set[asyncio.Task[None]] = set()   # member chunks being sent, paced (_send_chunks)
        self.host = "127.0.0.1"
        self.port = 0
        self._routes: list[Route] = []
        self._holds: list[Hold] = []
        # Off unless a test asks: see rate_limit(), global_rate_limit(), fault(), chaos(), strict_invitable.
        self._rate_limits: list[RateLimit] = []
        self._buckets: dict[tuple[str, str], Bucket] = {}  # (route key, major parameters) -> its count
        self._global_limit: int | None = None
        self._global_window: tuple[float, int] = (-math.inf, 0)  # (when the current second began, calls in it)
        self._faults: list[Fault] = []
        self._chaos: Chaos | None = None
        # (channel, author, nonce) -> the message sent with it, and when (event-loop time)
        self._nonces: dict[tuple[int, int, str], tuple[Message, float]] = {}
        # A private thread with `invitable` false lets only moderators add others (Discord's documentation). Off,
        # as the fake always was: anyone who may write there adds; on: 403/50013 without MANAGE_THREADS.
        self.strict_invitable = False
        self._register_routes()

    # ------------------------------------------------------------------ keeping the world

    # What a snapshot holds: who and what exists, what was said, the commands the bot synced. Not kept: calls,
    # interactions (their tokens expire anyway), rate limits, faults and the gateway session.
    _WORLD: Final = ("bot_user", "application_id", "owner", "users", "guilds", "channels", "messages",
                     "global_commands", "guild_commands", "command_permissions")

    def snapshot(self) -> dict[str, Any]:
        """The world as plain objects (dataclasses, lists, dicts), for ``restore`` in a later run."""
        return {name: getattr(self, name) for name in self._WORLD}

    def restore(self, world: dict[str, Any]) -> None:
        """Take back a world ``snapshot`` gave, before the bot connects."""
        for name in self._WORLD:
            setattr(self, name, world[name])

    # ------------------------------------------------------------------ the world

    def add_guild(self, name: str, *, locale: str = "en-US", shard: tuple[int, int] | None = None) -> Guild:
        """A server; ``shard`` (shard id, shard count) gives it an id that falls on that shard."""
        guild_id = snowflake() if shard is None else snowflake_on_shard(*shard)
        guild = Guild(id=guild_id, name=name, owner_id=self.owner.id, preferred_locale=locale)
        guild.roles[guild.id] = Role(guild.id, "@everyone", Perm.EVERYONE_DEFAULT)
        bot_role = Role(snowflake(), "Kakehashi", Perm.EVERYONE_DEFAULT | Perm.MANAGE_THREADS, 1, managed=True)
        guild.roles[bot_role.id] = bot_role
        guild.members[self.owner.id] = Member(self.owner, guild)
        guild.members[self.bot_user.id] = Member(self.bot_user, guild, [bot_role.id])
        self.guilds[guild.id] = guild
        return guild

    def add_role(self, guild: Guild, name: str, permissions: int = 0) -> Role:
        role = Role(snowflake(), name, permissions, position=len(guild.roles))
        guild.roles[role.id] = role
        return role

    def add_user(self, name: str, *, locale: str = "en-US", dm_open: bool = True) -> User:
        user = User(snowflake(), name, global_name=name, locale=locale, dm_open=dm_open)
        self.users[user.id] = user
        return user

    def add_member(self, guild: Guild, name: str, *, roles: tuple[Role, ...] = (), locale: str = "en-US",
                   dm_open: bool = True, joined_at: datetime | None = None) -> Member:
        """A member present before the bot connects (use :meth:`member_join` once it runs); ``joined_at``
        defaults to now."""
        user = self.add_user(name, locale=locale, dm_open=dm_open)
        member = Member(user, guild, [r.id for r in roles], joined_at=joined_at or datetime.now(UTC))
        guild.members[user.id] = member
        return member

    def add_emoji(self, guild: Guild, name: str) -> Emoji:
        """A custom emoji of ``guild``; the bot may react with it (``emoji.reaction``) anywhere."""
        emoji = Emoji(snowflake(), name)
        guild.emojis.append(emoji)
        return emoji

    def add_channel(self, guild: Guild, name: str, type: int = ChannelType.TEXT, *,
                    overwrites: tuple[Overwrite, ...] = (), tags: tuple[str, ...] = (),
                    require_tag: bool = False, parent: Channel | None = None) -> Channel:
        channel = Channel(
            id=snowflake(), type=type, name=name, guild=guild, position=len(guild.channels),
            parent_id=parent.id if parent else None, overwrites=list(overwrites),
            available_tags=[ForumTag(snowflake(), tag) for tag in tags],
            flags=Channel.REQUIRE_TAG if require_tag else 0,
        )
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        return channel

    def add_threads(self, parent: Channel, count: int, *, owner: Member | None = None, archived: bool = False,
                    name: str = "thread") -> list[Channel]:
        """``count`` threads in ``parent`` started by someone else (the server's owner unless ``owner``), without
        starter messages and without telling the bot: a cheap way to fill a server towards its cap of active
        threads, as other members and bots would have. AssertionError past the cap (unless ``archived``)."""
        guild = parent.guild
        assert guild is not None, "threads live in a server's channels"
        if parent.type == ChannelType.ANNOUNCEMENT:
            kind = ChannelType.ANNOUNCEMENT_THREAD
        elif parent.type in (ChannelType.TEXT, ChannelType.FORUM, ChannelType.MEDIA):
            kind = ChannelType.PUBLIC_THREAD
        else:
            raise AssertionError(f"{parent.name!r} (type {parent.type}) holds no threads")
        if not archived and guild.active_thread_count + count > guild.thread_cap:
            raise AssertionError(f"{guild.name} has room for {self.thread_room(guild)} more active threads, "
                                 f"not {count}")
        starter = owner.user if owner is not None else self.owner
        threads = []
        for number in range(count):
            thread = Channel(id=snowflake(), type=kind, name=f"{name} {number + 1}", guild=guild,
                             parent_id=parent.id, owner_id=starter.id, archived=archived)
            thread.thread_members[starter.id] = thread.created_at
            guild.channels[thread.id] = thread
            self.channels[thread.id] = thread
            threads.append(thread)
        return threads

    @staticmethod
    def thread_room(guild: Guild) -> int:
        """How many more threads ``guild`` can hold active before Discord refuses with 160006."""
        return max(0, guild.thread_cap - guild.active_thread_count)

    @staticmethod
    def leave_thread_room(guild: Guild, room: int) -> None:
        """Set ``guild.thread_cap`` so that exactly ``room`` more threads fit beside its active ones."""
        guild.thread_cap = guild.active_thread_count + room

    def member(self, guild: Guild, name: str) -> Member:
        for member in guild.members.values():
            if member.user.username == name:
                return member
        raise KeyError(f"no member named {name!r} in {guild.name}")

    # ------------------------------------------------------------------ lifecycle

    @property
    def _address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self._address}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self._address}/gateway"

    async def start(self, port: int = 0, *, host: str = "127.0.0.1") -> None:
        """Listen on ``host`` (a loopback address: the fake has no authentication worth the name) at ``port``,
        a free one when 0 (then ``self.port`` says which). A busy port raises OSError (errno EADDRINUSE)."""
        self._changed = asyncio.Condition()
        self.host = host
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{channel}/{attachment}/{filename}", self._cdn)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except BaseException:
            runner, self._runner = self._runner, None
            await runner.cleanup()
            raise
        server = site._server
        sockets = getattr(server, "sockets", None)
        assert sockets
        self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        # A held answer would keep its request open, and aiohttp waits for open requests on cleanup.
        for hold in self._holds:
            hold.release()
        for task in self._chunking:
            task.cancel()
        for ws in list(self._sockets):
            await ws.close(code=1001)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @contextlib.contextmanager
    def pointed_at(self) -> Iterator[None]:
        """Make discord.py in this process connect here instead of to Discord."""
        import discord.gateway
        import discord.http

        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.rest_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()
        for listener in self.listeners:
            listener()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "a condition") -> None:
        """Wait until ``predicate()`` holds: woken by every call the fake serves, and every 20 ms for
        conditions on the bot's side (its logs, its caches)."""
        assert self._changed is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(0.02, remaining))

    async def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Until a bot has identified (shard 0, which every bot has) and received its guilds."""
        await self.wait_until(lambda: self.connected, timeout, "the bot to connect to the gateway")

    # ------------------------------------------------------------------ queries

    def _path_regex(self, pattern: str) -> re.Pattern[str]:
        return re.compile("(?:" + pattern.replace("{app}", str(self.application_id)) + r")$")

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        """Calls whose path matches ``pattern``; ``{app}`` stands for the application id."""
        regex = self._path_regex(pattern)
        return [c for c in self.calls if c.method == method and regex.match(c.path)]

    def hold(self, method: str, pattern: str, *, after: int = 0) -> Hold:
        """Keep back the answer to the next ``method`` call whose path matches ``pattern`` (as in
        :meth:`calls_to`), whatever its status, until ``hold.release()``; ``await hold.reached()`` waits
        until the fake has performed it. ``after``: let that many matching calls through first.
        :meth:`stop` releases whatever is still held."""
        hold = Hold(method, self._path_regex(pattern), after)
        self._holds.append(hold)
        return hold

    def unhandled_calls(self) -> list[Call]:
        return [c for c in self.calls if not c.handled]

    @property
    def rate_limited(self) -> list[Call]:
        """Calls answered 429: by a rate limit (``call.fault`` None), a fault or chaos."""
        return [c for c in self.calls if c.status == 429]

    # ------------------------------------------------------------------ rate limits and faults

    def rate_limit(self, method: str, pattern: str, limit: int, per_seconds: float) -> None:
        """Discord's per-route buckets: at most ``limit`` calls per ``per_seconds`` to each route (method and
        template: ``POST /channels/{channel}/messages``) whose path matches ``pattern`` (as in :meth:`calls_to`;
        ``method`` may be ``"*"``), counted apart for each major parameter (the channel, guild, webhook or
        interaction token in the path). Every answer on such a route carries ``X-RateLimit-Limit``,
        ``-Remaining``, ``-Reset``, ``-Reset-After`` and ``-Bucket``; a call over the limit is not carried out
        and gets 429 (scope ``user``, ``retry_after`` until the window ends). The first rule that matches a call
        counts it. discord.py reads the headers and waits before it runs into a 429 itself."""
        if limit < 1 or per_seconds <= 0:
            raise ValueError("a bucket holds at least one call in a positive time")
        self._rate_limits.append(RateLimit(method, self._path_regex(pattern), limit, per_seconds))

    def global_rate_limit(self, per_second: int | None) -> None:
        """Discord's global limit (50 a second for most bots): calls past it in the current second get 429 with
        ``global`` true. Interaction callbacks and webhook (follow-up) routes are not counted, as on Discord.
        ``None`` lifts it."""
        if per_second is not None and per_second < 1:
            raise ValueError("the global limit is at least one call a second")
        self._global_limit = per_second
        self._global_window = (-math.inf, 0)

    def fault(self, method: str, pattern: str, status: int = 500, *, carried_out: bool = False, times: int = 1,
              retry_after: float = 0.1) -> Fault:
        """The next ``times`` ``method`` calls whose path matches ``pattern`` (as in :meth:`calls_to`) get
        ``status`` instead of their answer: 500, 502, 503 or 504 (``carried_out=True``: the fake performs the
        call first, so what it creates exists and the answer is what is lost), or 429 with ``retry_after``
        seconds (scope ``shared``, ``Via`` set so discord.py waits and retries), or 403 (50013 "Missing
        Permissions", nothing done: Discord refusing what its rules, as the fake models them, would allow, e.g. a
        thread's creator closing its invitations). A call a rate limit refuses does not use up a fault.
        ``fault.calls`` are the calls it caught."""
        fault = Fault(method, self._path_regex(pattern), status, carried_out, times, retry_after)
        self._faults.append(fault)
        return fault

    def chaos(self, seed: int | None, *, rate_limited: float = 0.25, server_error: float = 0.10,
              lost_answer: float = 0.05, only: str | None = None, exclude: str | None = CHAOS_EXCLUDE,
              retry_after: tuple[float, float] = (0.05, 0.3)) -> None:
        """Random faults for stress tests; ``seed`` None turns them off. Each REST call on a route the fake knows
        (not caught by a :meth:`fault` first, not refused by a rate limit) draws once: a fraction
        ``rate_limited`` gets 429 (``retry_after`` drawn between the two bounds, scope ``shared``), a fraction
        ``server_error`` 500 before it is carried out, a fraction ``lost_answer`` 502 after it is. ``only``: a
        path pattern (as in :meth:`calls_to`) a call must match to draw; ``exclude``: one that keeps calls out
        (by default interaction callbacks and login, :data:`CHAOS_EXCLUDE`; pass ``None`` to include them)."""
        if seed is None:
            self._chaos = None
            return
        if min(rate_limited, server_error, lost_answer) < 0 or rate_limited + server_error + lost_answer > 1:
            raise ValueError("fractions of calls: each at least 0, together at most 1")
        if not 0 < retry_after[0] <= retry_after[1]:
            raise ValueError("retry_after is (shortest, longest) wait, both positive")
        self._chaos = Chaos(seed, rate_limited, server_error, lost_answer,
                            None if only is None else self._path_regex(only),
                            None if exclude is None else self._path_regex(exclude), retry_after)

    def unanswered_interactions(self) -> list[Interaction]:
        """Interactions the bot never answered (users saw "The application did not respond")."""
        return [i for i in self.interactions.values() if not i.answered and not i.expect_no_answer]

    def channel_messages(self, channel: Channel) -> list[Message]:
        """What everyone sees in ``channel``, oldest first (ephemeral replies are not in the channel)."""
        return [m for m in self.messages.values()
                if m.channel.id == channel.id and not m.deleted and not m.ephemeral]

    def threads(self, parent: Channel) -> list[Channel]:
        """Threads (forum posts included) whose parent is ``parent``, oldest first."""
        return sorted((c for c in self.channels.values() if c.is_thread and c.parent_id == parent.id),
                      key=lambda c: c.id)

    def thread_for(self, message: Message) -> Channel | None:
        """The thread started from ``message``, or the forum post it starts (either way it shares its id)."""
        channel = self.channels.get(message.id)
        return channel if channel is not None and channel.is_thread else None

    def dm_channel(self, user: User) -> Channel | None:
        return next((c for c in self.channels.values()
                     if c.type == ChannelType.DM and c.recipients[0].id == user.id), None)

    def dms(self, user: User) -> list[Message]:
        channel = self.dm_channel(user)
        return [] if channel is None else self.channel_messages(channel)

    def commands_for(self, guild: Guild | None) -> list[dict[str, Any]]:
        local = self.guild_commands.get(guild.id, []) if guild else []
        return local + self.global_commands

    # ------------------------------------------------------------------ what users do

    def allow_command(self, guild: Guild, name: str, target_id: int, allowed: bool = True, *,
                      kind: int = CHAT_INPUT) -> None:
        """A server admin's override in Server Settings → Integrations (target: role, member or the guild id
        for @everyone); ``kind`` 2 for a user command."""
        command = self._find_command(guild, name, kind)
        self.command_permissions.setdefault((guild.id, int(command["id"])), {})[target_id] = allowed

    async def slash(self, member: Member, command: str, /, *, where: Channel | None = None,
                    locale: str | None = None, age: float = 0.0, raw: bool = False, **options: Any) -> Interaction:
        """Run ``/command`` ("config show") as ``member`` in channel ``where`` (default: the first text
        channel), in the member's locale unless ``locale`` says otherwise; ``age`` makes the interaction
        that many seconds old. Options are keyword arguments, by the names the bot registered (``member`` and
        ``command`` included: the first two arguments are positional only).

        Like the Discord client, it refuses (AssertionError) a value the option would not accept: not one of
        its choices, outside its length or range, a channel of a kind its picker does not offer. ``raw=True``
        sends them anyway, as a modified client could."""
        data = self._command_data(member, command, options, focused=None, raw=raw)
        return await self._interact(APPLICATION_COMMAND, member, where, locale, data, age=age)

    async def autocomplete(self, member: Member, command: str, focused: str, /, *, where: Channel | None = None,
                           locale: str | None = None, raw: bool = False, **options: Any) -> Interaction:
        data = self._command_data(member, command, options, focused=focused, raw=raw)
        return await self._interact(AUTOCOMPLETE, member, where, locale, data, check_permission=False)

    async def click(self, member: Member, message: Message, custom_id: str, *, locale: str | None = None,
                    age: float = 0.0) -> Interaction:
        """``member`` presses the button ``custom_id`` on ``message``; the Discord client offers no disabled
        button to press (AssertionError)."""
        button = message.component(custom_id)
        if button.get("type") != BUTTON:
            raise AssertionError(f"{custom_id!r} is a component of type {button.get('type')}, not a button")
        if button.get("disabled"):
            raise AssertionError(f"Discord will not send a click on the disabled button {custom_id!r}")
        data = {"custom_id": custom_id, "component_type": BUTTON}
        return await self._interact(MESSAGE_COMPONENT, member, message.channel, locale, data,
                                    message=message, age=age)

    async def select(self, member: Member, message: Message, custom_id: str, values: list[str], *,
                     locale: str | None = None, age: float = 0.0) -> Interaction:
        """``member`` picks ``values`` in the string select ``custom_id`` on ``message``. Like the Discord client,
        it refuses (AssertionError) a value that is not one of the select's options or is picked twice, fewer
        than ``min_values`` or more than ``max_values`` (both 1 unless set), and a disabled select."""
        menu = message.component(custom_id)
        if menu.get("type") != STRING_SELECT:
            raise AssertionError(f"{custom_id!r} is a component of type {menu.get('type')}, not a string select")
        if menu.get("disabled"):
            raise AssertionError(f"Discord will not send a pick in the disabled select {custom_id!r}")
        offered = [option["value"] for option in menu.get("options", [])]
        unknown = [v for v in values if v not in offered]
        if unknown:
            raise AssertionError(f"{custom_id!r} offers {offered}, not {unknown}")
        if len(set(values)) != len(values):
            raise AssertionError(f"an option of {custom_id!r} cannot be picked twice: {values}")
        low, high = menu.get("min_values", 1), menu.get("max_values", 1)
        if not low <= len(values) <= high:
            raise AssertionError(f"{custom_id!r} takes {low} to {high} values, not {len(values)}")
        data = {"custom_id": custom_id, "component_type": STRING_SELECT, "values": list(values)}
        return await self._interact(MESSAGE_COMPONENT, member, message.channel, locale, data,
                                    message=message, age=age)

    async def user_command(self, member: Member, name: str, target: Member, *, where: Channel | None = None,
                           locale: str | None = None, age: float = 0.0) -> Interaction:
        """``member`` runs the user command (Apps → ``name`` on a member's context menu) on ``target``, in
        channel ``where`` (default: the first text channel). Like :meth:`slash`, it raises
        :class:`CommandNotAvailable` when ``default_member_permissions`` hides it from ``member``."""
        if target.guild.id != member.guild.id or target.id not in member.guild.members:
            raise AssertionError(f"{target.user.username} is not a member of {member.guild.name}")
        registered = self._find_command(member.guild, name, USER_COMMAND)
        resolved: dict[str, dict[str, Any]] = {}
        target_id = self._option_value(member, {"type": OPTION_USER}, target, resolved)
        data: dict[str, Any] = {"id": registered["id"], "name": registered["name"], "type": USER_COMMAND,
                                "target_id": target_id, "resolved": resolved}
        if registered.get("guild_id"):
            data["guild_id"] = registered["guild_id"]
        return await self._interact(APPLICATION_COMMAND, member, where, locale, data, age=age)

    async def react(self, member: Member, message: Message, emoji: str) -> None:
        """``member`` reacts to ``message`` with ``emoji`` (unicode, or a custom emoji's ``name:id``). The Discord
        client lets them only with READ_MESSAGE_HISTORY, and ADD_REACTIONS unless the emoji is already there
        (AssertionError otherwise)."""
        channel = message.channel
        if channel.guild is None or member.guild.id != channel.guild.id or message.deleted or message.ephemeral:
            raise AssertionError(f"{member.user.username} cannot see message {message.id}")
        try:
            key = self._emoji_key(emoji)
        except DiscordError:
            raise AssertionError(f"Discord knows no emoji {emoji!r}") from None
        granted = channel.guild.permissions_in(member, channel)
        needed = Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY
        if key not in message.reactions:
            needed |= Perm.ADD_REACTIONS
            if len(message.reactions) >= MAX_REACTIONS:
                raise AssertionError(f"message {message.id} has {MAX_REACTIONS} different emojis already")
        if granted & needed != needed:
            raise AssertionError(f"{member.user.username} may not react with {emoji} in {channel.name!r}")
        await self._add_reaction(message, member.user, key)

    async def submit(self, opened: Interaction, values: dict[str, str], *, locale: str | None = None) -> Interaction:
        """Fill in and submit the modal the bot answered ``opened`` with; keys are inputs' custom ids or labels."""
        modal = await opened.modal()
        rows = []
        for row in modal["components"]:
            if row["type"] == 18:  # a label wrapping one input
                text_input, label = row["component"], row.get("label", "")
            else:
                text_input, label = row["components"][0], row["components"][0].get("label", "")
            if text_input["type"] != 4:
                raise AssertionError(f"the fake can only fill text inputs, not type {text_input['type']}")
            key = text_input["custom_id"] if text_input["custom_id"] in values else label
            value = values.get(key, text_input.get("value") or "")
            self._check_text_input(text_input, label, value)
            answer = {"type": 4, "custom_id": text_input["custom_id"], "value": value}
            rows.append({"type": 18, "component": answer} if row["type"] == 18
                        else {"type": 1, "components": [answer]})
        data = {"custom_id": modal["custom_id"], "components": rows}
        member = opened.member
        assert member is not None
        return await self._interact(MODAL_SUBMIT, member, opened.channel, locale or opened.payload["locale"], data)

    async def member_join(self, guild: Guild, name: str, *, joined_at: datetime | None = None, locale: str = "en-US",
                          dm_open: bool = True) -> Member:
        """A new member (joined ``joined_at``, default now); the bot gets GUILD_MEMBER_ADD."""
        member = self.add_member(guild, name, locale=locale, dm_open=dm_open, joined_at=joined_at)
        await self._dispatch("GUILD_MEMBER_ADD", {"guild_id": str(guild.id), **member.payload()},
                             INTENT_GUILD_MEMBERS, guild)
        return member

    async def member_leave(self, member: Member) -> None:
        del member.guild.members[member.id]
        await self._dispatch("GUILD_MEMBER_REMOVE", {"guild_id": str(member.guild.id), "user": member.user.payload()},
                             INTENT_GUILD_MEMBERS, member.guild)

    async def send_message(self, member: Member, channel: Channel, content: str) -> Message:
        """``member`` writes ``content`` in ``channel``; the bot receives MESSAGE_CREATE. In an archived thread the
        message unarchives it first (THREAD_UPDATE), as Discord does, and like the member's client it refuses
        (AssertionError) a locked thread without MANAGE_THREADS or one the server has no room to unarchive."""
        if channel.is_thread:
            assert channel.guild is not None
            try:
                await self._reopen_for_message(channel, channel.guild.permissions_in(member, channel))
            except DiscordError as refused:
                raise AssertionError(f"Discord will not let {member.user.username} write in {channel.name!r}: "
                                     f"{refused.message}") from None
        message = Message(snowflake(), channel, member.user, content=content, viewer=self.bot_user.id)
        self._resolve_mentions(message, None)
        data = message.payload()
        if channel.guild is not None:  # in a DM the author is only a user
            data["member"] = member.payload(with_user=False)
        await self._publish(message, data)
        return message

    # ------------------------------------------------------------------ interactions

    def _find_command(self, guild: Guild | None, name: str, kind: int = CHAT_INPUT) -> dict[str, Any]:
        """The synced command of type ``kind`` named ``name`` (a guild's own before the global ones)."""
        for command in self.commands_for(guild):
            if command["name"] == name and command.get("type", CHAT_INPUT) == kind:
                return command
        raise AssertionError(f"{_command_label(name, kind)} is not registered (the bot has not synced it)")

    def _command_data(self, member: Member, command: str, options: dict[str, Any],
                      focused: str | None, raw: bool) -> dict[str, Any]:
        names = command.split()
        registered = self._find_command(member.guild, names[0])
        resolved: dict[str, dict[str, Any]] = {}
        leaf: dict[str, Any] = registered
        top: list[dict[str, Any]] = []
        holder = top
        for name in names[1:]:
            sub = next((o for o in leaf.get("options", []) if o["name"] == name
                        and o["type"] in (OPTION_SUBCOMMAND, OPTION_GROUP)), None)
            if sub is None:
                raise AssertionError(f"/{command}: no subcommand {name!r}")
            entry: dict[str, Any] = {"name": name, "type": sub["type"], "options": []}
            holder.append(entry)
            holder = entry["options"]
            leaf = sub
        declared = {o["name"]: o for o in leaf.get("options", [])}
        for name, value in options.items():
            if name not in declared:
                raise AssertionError(f"/{command} has no option {name!r}; it has {sorted(declared)}")
            option = declared[name]
            if not raw and name != focused:
                _check_option_value(command, option, value)
            entry = {"name": name, "type": option["type"],
                     "value": self._option_value(member, option, value, resolved)}
            if name == focused:
                entry["focused"] = True
            holder.append(entry)
        if focused is None:
            missing = [o["name"] for o in declared.values() if o.get("required") and o["name"] not in options]
            if missing:
                raise AssertionError(f"Discord would not send /{command} without {missing}")
        data: dict[str, Any] = {"id": registered["id"], "name": registered["name"], "type": 1, "options": top}
        if registered.get("guild_id"):
            data["guild_id"] = registered["guild_id"]
        if resolved:
            data["resolved"] = resolved
        return data

    def _option_value(self, member: Member, option: dict[str, Any], value: Any,
                      resolved: dict[str, dict[str, Any]]) -> Any:
        kind = option["type"]
        if kind == OPTION_CHANNEL:
            channel: Channel = value
            assert channel.guild is not None
            data = channel.payload()
            data["permissions"] = str(channel.guild.permissions_in(member, channel))
            resolved.setdefault("channels", {})[str(channel.id)] = data
            return str(channel.id)
        if kind in (OPTION_USER, OPTION_MENTIONABLE) and isinstance(value, Member):
            resolved.setdefault("users", {})[str(value.id)] = value.user.payload()
            member_data = value.payload(with_user=False)
            member_data["permissions"] = str(value.guild.base_permissions(value))
            resolved.setdefault("members", {})[str(value.id)] = member_data
            return str(value.id)
        if kind in (OPTION_ROLE, OPTION_MENTIONABLE) and isinstance(value, Role):
            resolved.setdefault("roles", {})[str(value.id)] = value.payload()
            return str(value.id)
        if kind == OPTION_INTEGER:
            return int(value)
        if kind == OPTION_NUMBER:
            return float(value)
        if kind == OPTION_BOOLEAN:
            return bool(value)
        return str(value)

    def _may_use(self, member: Member, channel: Channel, command: dict[str, Any]) -> bool:
        guild = member.guild
        if guild.base_permissions(member) & Perm.ADMINISTRATOR:
            return True
        overrides = self.command_permissions.get((guild.id, int(command["id"])), {})
        if member.id in overrides:
            return overrides[member.id]
        role_answers = [overrides[r] for r in member.role_ids if r in overrides]
        if role_answers:
            return any(role_answers)
        if guild.id in overrides:
            return overrides[guild.id]
        required = command.get("default_member_permissions")
        if required is None:
            return True
        needed = int(required)
        return needed != 0 and guild.permissions_in(member, channel) & needed == needed

    async def _interact(self, kind: int, member: Member, channel: Channel | None, locale: str | None,
                        data: dict[str, Any], *, message: Message | None = None, age: float = 0.0,
                        check_permission: bool = True) -> Interaction:
        guild = member.guild
        channel = channel or next(c for c in guild.channels.values() if c.type == ChannelType.TEXT)
        if kind == APPLICATION_COMMAND and check_permission:
            command = self._find_command(guild, data["name"], data.get("type", CHAT_INPUT))
            if not self._may_use(member, channel, command):
                label = _command_label(data["name"], data.get("type", CHAT_INPUT))
                raise CommandNotAvailable(f"{member.user.username} may not use {label} in {guild.name}")
        interaction_id = snowflake(time.time() - age)
        token = f"itoken.{secrets.token_urlsafe(32)}"
        member_data = member.payload()
        member_data["permissions"] = str(guild.permissions_in(member, channel))
        channel_data = channel.payload()
        channel_data["permissions"] = member_data["permissions"]
        bot_member = guild.members[self.bot_user.id]
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "token": token,
            "version": 1,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
            "channel_id": str(channel.id),
            "channel": channel_data,
            "member": member_data,
            "locale": locale or member.user.locale,
            "guild_locale": guild.preferred_locale,
            "app_permissions": str(guild.permissions_in(bot_member, channel)),
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
            "data": data,
        }
        shard_of_guild: Guild | None = guild  # the shard of this server receives it (of none, a DM: shard 0)
        if channel.type == ChannelType.DM:
            shard_of_guild = None
            # In a DM with the bot there is no server: the user instead of the member, context BOT_DM, and a
            # guild install's owner is "0".
            for key in ("guild_id", "guild", "member", "guild_locale"):
                del payload[key]
            payload.update(user=member.user.payload(), context=1, authorizing_integration_owners={"0": "0"},
                           app_permissions=str(DM_APP_PERMISSIONS))
            payload["channel"] = channel.payload()
        if message is not None:
            payload["message"] = message.payload()
        interaction = Interaction(
            server=self, id=interaction_id, token=token, type=kind, user=member.user, member=member,
            channel=channel, payload=payload, created_monotonic=asyncio.get_running_loop().time() - age,
        )
        self.interactions[interaction_id] = interaction
        await self._dispatch("INTERACTION_CREATE", payload, 0, shard_of_guild)
        return interaction

    # ------------------------------------------------------------------ gateway

    def _sessions_for(self, guild: Guild | None) -> list[GatewaySession]:
        """The sessions that receive an event of ``guild`` (None: of no server, a DM): its shard's. Usually one;
        none while that shard is not connected, several while a bot reshards."""
        return [session for session in self.sessions.values() if session.owns(guild)]

    async def _dispatch(self, event: str, data: dict[str, Any], intent: int, guild: Guild | None) -> None:
        """Send ``event`` of ``guild`` (None: a DM) on its shard, to a session that asked for ``intent`` (0:
        every session)."""
        if not self.sessions:
            raise AssertionError(f"no bot has a gateway session to receive {event}")
        for session in self._sessions_for(guild):
            if not intent or session.intents & intent:
                await session.dispatch(event, data)

    async def _dispatch_message(self, event: str, message: Message, data: dict[str, Any]) -> None:
        guild = message.channel.guild
        intent = INTENT_GUILD_MESSAGES if guild is not None else INTENT_DIRECT_MESSAGES
        # The gateway tells a user only about channels (and private threads) it can see.
        if guild is not None and not self._bot_permissions(message.channel) & Perm.VIEW_CHANNEL:
            return
        blank = {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        for session in self._sessions_for(guild):
            if not session.intents & intent:
                continue
            if not session.intents & INTENT_MESSAGE_CONTENT and message.author.id != self.bot_user.id \
                    and self.bot_user.id not in message.mentions:
                await session.dispatch(event, blank)
            else:
                await session.dispatch(event, data)

    def session_of(self, shard: int = 0) -> GatewaySession | None:
        """Shard ``shard``'s session (the newest, if it identified with different shard counts)."""
        found = [session for session in self.sessions.values() if session.shard_id == shard]
        return found[-1] if found else None

    @property
    def session(self) -> GatewaySession | None:
        """Shard 0's session: the only one of a bot that does not shard."""
        return self.session_of(0)

    @property
    def connected(self) -> bool:
        """Whether shard 0 (every bot has one) is connected."""
        return self.session is not None and self.session.connection is not None

    @property
    def connected_shards(self) -> set[int]:
        """The shards with a connection."""
        return {session.shard_id for session in self.sessions.values() if session.connection is not None}

    async def drop_connection(self, shard: int = 0) -> None:
        """Cut ``shard``'s gateway connection as an outage would (close code 4000): the bot reconnects and
        resumes, and gets what was dispatched in between."""
        session = self.session_of(shard)
        assert session is not None and session.connection is not None, f"shard {shard} is not connected"
        connection, session.connection = session.connection, None
        await connection.ws.close(code=4000, message=b"Unknown error.")

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        connection = Connection(ws, request.query.get("compress"))
        try:
            await connection.send({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
            async for frame in ws:
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                await self._gateway_op(connection, json.loads(frame.data))
        finally:
            self._sockets.discard(ws)
            for session in self.sessions.values():
                if session.connection is connection:
                    session.connection = None
            await self._notify()
        return ws

    async def _gateway_op(self, connection: Connection, payload: dict[str, Any]) -> None:
        op = payload.get("op")
        given = payload.get("d")
        data: dict[str, Any] = given if isinstance(given, dict) else {}
        if op == 1:
            await connection.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(connection, data)
        elif op == 6:
            # A RESUME names its session, not its shard.
            session = next((s for s in self.sessions.values() if s.session_id == data.get("session_id")), None)
            if data.get("token") != self.token or session is None:
                await connection.send({"op": 9, "d": False, "s": None, "t": None})
                return
            self.resume_count += 1
            await session.resume(connection, int(data.get("seq") or 0))
            await self._notify()
        elif op == 8:
            # Answered on the shard that asked, for a server of that shard.
            session = next((s for s in self.sessions.values() if s.connection is connection), None)
            guild = self.guilds.get(int(data.get("guild_id") or 0))
            if session is None or guild is None or not session.owns(guild):
                return
            # Sent by a task of its own: the connection's other ops (heartbeats) are answered meanwhile.
            task = asyncio.create_task(self._send_chunks(session, guild, data.get("nonce")))
            self._chunking.add(task)
            task.add_done_callback(self._chunking.discard)

    async def _send_chunks(self, session: GatewaySession, guild: Guild, nonce: Any) -> None:
        """Every member of ``guild`` (the query and limit a client may give are not modelled), 1,000 to a chunk,
        paced as Discord paces them (``MEMBERS_CHUNK_EVERY``); other events (interactions) go out in between."""
        members = list(guild.members.values())
        count = max(1, -(-len(members) // MEMBERS_CHUNK))
        for index in range(count):
            await session.dispatch("GUILD_MEMBERS_CHUNK", {
                "guild_id": str(guild.id), "chunk_index": index, "chunk_count": count, "nonce": nonce,
                "members": [m.payload() for m in members[index * MEMBERS_CHUNK:(index + 1) * MEMBERS_CHUNK]]})
            if index + 1 < count:
                await asyncio.sleep(MEMBERS_CHUNK_EVERY)

    async def _identify(self, connection: Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await connection.ws.close(code=CLOSE_AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        shard = data.get("shard")
        if shard is None:
            shard = [0, 1]
        if not (isinstance(shard, list) and len(shard) == 2 and all(type(n) is int for n in shard)
                and 0 <= shard[0] < shard[1]):
            await connection.ws.close(code=CLOSE_INVALID_SHARD, message=b"Invalid shard.")
            return
        shard_id, shard_count = shard
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS and not self.privileged_intents:
            await connection.ws.close(code=CLOSE_DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
            return
        session = GatewaySession(intents, shard_id, shard_count)
        guilds = [guild for guild in self.guilds.values() if session.owns(guild)]
        if len(guilds) > self.max_guilds_per_shard:
            await connection.ws.close(code=CLOSE_SHARDING_REQUIRED, message=b"Sharding required.")
            return
        # A new IDENTIFY starts a new session for its shard; whatever that shard's old one held is gone, as on
        # Discord. Other shards' sessions are left alone.
        session.connection = connection
        self.sessions.pop((shard_id, shard_count), None)
        self.sessions[shard_id, shard_count] = session
        self.identify_count += 1
        ready: dict[str, Any] = {
            "v": 10,
            "user": {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "email": None},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        if data.get("shard") is not None:  # READY carries the shard only when the IDENTIFY did
            ready["shard"] = [shard_id, shard_count]
        await session.dispatch("READY", ready)
        if intents & INTENT_GUILDS:
            for guild in guilds:
                await session.dispatch("GUILD_CREATE", guild.payload(guild.members[self.bot_user.id]))
        await self._notify()

    # ------------------------------------------------------------------ REST

    def _route(self, method: str, pattern: str, handler: Handler, *, auth: bool = True) -> None:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self._routes.append(Route(method, pattern, regex, handler, auth))

    def _register_routes(self) -> None:
        r = self._route
        r("GET", "/gateway", self._get_gateway, auth=False)
        r("GET", "/gateway/bot", self._get_gateway_bot)
        r("GET", "/users/@me", self._get_me)
        r("GET", "/oauth2/applications/@me", self._get_application)
        r("GET", "/applications/{app}/commands", self._get_commands)
        r("PUT", "/applications/{app}/commands", self._put_commands)
        r("GET", "/applications/{app}/guilds/{guild}/commands", self._get_commands)
        r("PUT", "/applications/{app}/guilds/{guild}/commands", self._put_commands)
        r("POST", "/interactions/{interaction}/{token}/callback", self._callback, auth=False)
        r("POST", "/webhooks/{app}/{token}", self._followup, auth=False)
        r("GET", "/webhooks/{app}/{token}/messages/{message}", self._get_webhook_message, auth=False)
        r("PATCH", "/webhooks/{app}/{token}/messages/{message}", self._edit_webhook_message, auth=False)
        r("DELETE", "/webhooks/{app}/{token}/messages/{message}", self._delete_webhook_message, auth=False)
        r("POST", "/users/@me/channels", self._open_dm)
        r("GET", "/channels/{channel}", self._get_channel)
        r("PATCH", "/channels/{channel}", self._edit_channel)
        r("GET", "/channels/{channel}/messages", self._get_messages)
        r("POST", "/channels/{channel}/messages", self._post_message)
        r("GET", "/channels/{channel}/messages/{message}", self._get_message)
        r("POST", "/channels/{channel}/threads", self._start_thread)
        r("POST", "/channels/{channel}/messages/{message}/threads", self._start_thread_from_message)
        r("PATCH", "/channels/{channel}/messages/{message}", self._edit_message)
        r("DELETE", "/channels/{channel}/messages/{message}", self._delete_message)
        r("PUT", "/channels/{channel}/messages/{message}/reactions/{emoji}/@me", self._put_reaction)
        r("DELETE", "/channels/{channel}/messages/{message}/reactions/{emoji}/@me", self._delete_own_reaction)
        r("PUT", "/channels/{channel}/thread-members/{user}", self._add_thread_member)
        r("GET", "/guilds/{guild}", self._get_guild)
        r("GET", "/guilds/{guild}/channels", self._get_guild_channels)
        r("GET", "/guilds/{guild}/members/{user}", self._get_member)
        r("GET", "/guilds/{guild}/threads/active", self._get_active_threads)

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body, uploads = await self._read_body(request)
        # Handlers find the uploaded files by the index of their `files[n]` part, as Discord does.
        request[UPLOADS] = uploads
        call = Call(request.method, path, dict(request.query), body, list(uploads.values()))
        self.calls.append(call)
        try:
            response = await self._answer(request, body, call)
        finally:
            await self._notify()
        hold = next((h for h in self._holds if h.matches(call)), None)
        if hold is not None:
            await hold._keep(call)
        return response

    async def _answer(self, request: web.Request, body: Any, call: Call) -> web.Response:
        """In Discord's order: the route, the token, the global limit, the route's bucket; then what a fault or
        chaos does instead of (or after) carrying the call out."""
        found = next(((route, match) for route in self._routes if route.method == call.method
                      for match in [route.regex.match(call.path)] if match), None)
        if found is None:
            call.handled = False
            return self._error(call, DiscordError(404, 0, "404: Not Found"))
        route, match = found
        if route.auth and request.headers.get("Authorization") != f"Bot {self.token}":
            return self._error(call, DiscordError(401, 0, "401: Unauthorized"))
        now = asyncio.get_running_loop().time()
        refused = self._over_global_limit(route, now)
        if refused is not None:
            return self._too_many(call, refused, "global", {})
        headers: dict[str, str] = {}
        bucket = self._bucket(route, match, call)
        if bucket is not None:
            if now >= bucket.resets_at:
                bucket.used, bucket.resets_at = 0, now + bucket.rule.per_seconds
            if bucket.used >= bucket.rule.limit:
                return self._too_many(call, bucket.resets_at - now, "user", bucket.headers(now))
            bucket.used += 1
            headers = bucket.headers(now)
        injection = self._injection(call, route)
        if injection is not None:
            call.fault = injection.kind
            if injection.kind == "rate_limited":
                return self._too_many(call, injection.retry_after, "shared", headers)
            if injection.kind == "refused":
                return self._error(call, DiscordError(403, 50013, "Missing Permissions"))
            if injection.kind == "failed":
                return self._server_error(call, injection.status, headers)
        status, result = await self._perform(request, route, match, body, call)
        if injection is not None:  # carried out, and then the answer is lost
            call.carried_out_status = status
            return self._server_error(call, injection.status, headers)
        call.status = status
        return self._json(status, result, headers)

    async def _perform(self, request: web.Request, route: Route, match: re.Match[str], body: Any,
                       call: Call) -> tuple[int, Any]:
        """Carry the call out: its status and the body of the answer."""
        try:
            if any(len(content) > ATTACHMENT_SIZE_LIMIT for _, content in request[UPLOADS].values()):
                raise DiscordError(413, 40005, "Request entity too large")
            result = await route.handler(request, match, body)
        except DiscordError as error:
            return error.status, error.body()
        except NotModelled:
            call.handled = False
            return 404, DiscordError(404, 0, "404: Not Found").body()
        return (204 if result is None else 200), result

    def _over_global_limit(self, route: Route, now: float) -> float | None:
        """Seconds until the global limit lets calls through again, when this one is over it; else None (and
        it is counted). Interaction callbacks and follow-ups (the routes without the bot token) are free."""
        if self._global_limit is None or not route.auth:
            return None
        began, used = self._global_window
        if now - began >= 1.0:
            began, used = now, 0
        if used >= self._global_limit:
            return began + 1.0 - now
        self._global_window = (began, used + 1)
        return None

    def _bucket(self, route: Route, match: re.Match[str], call: Call) -> Bucket | None:
        rule = next((r for r in self._rate_limits if r.covers(call)), None)
        if rule is None:
            return None
        key = (route.key, route.major(match))
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rule is not rule:
            bucket = self._buckets[key] = Bucket(rule, hashlib.md5(route.key.encode()).hexdigest())
        return bucket

    def _injection(self, call: Call, route: Route) -> Injection | None:
        for fault in self._faults:
            injection = fault.catch(call)
            if injection is not None:
                return injection
        return self._chaos.draw(call, route.key) if self._chaos is not None else None

    def _error(self, call: Call, error: DiscordError) -> web.Response:
        call.status = error.status
        return self._json(error.status, error.body())

    def _too_many(self, call: Call, retry_after: float, scope: str, headers: dict[str, str]) -> web.Response:
        """A 429 as Discord sends it. discord.py needs the ``Via`` header (without it a 429 is a Cloudflare ban and
        it gives up) and the JSON body's ``retry_after``, which it sleeps before trying again."""
        call.status = 429
        wait = math.ceil(max(retry_after, 0.001) * 1000) / 1000
        headers = {**headers, "Retry-After": str(math.ceil(wait)), "X-RateLimit-Scope": scope}
        if scope == "global":
            headers["X-RateLimit-Global"] = "true"
        return self._json(429, {"message": "You are being rate limited.", "retry_after": wait,
                                "global": scope == "global"}, headers)

    def _server_error(self, call: Call, status: int, headers: dict[str, str]) -> web.Response:
        call.status = status
        reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                  504: "Gateway Timeout"}[status]
        return self._json(status, {"message": f"{status}: {reason}", "code": 0}, headers)

    @staticmethod
    def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        # Every answer of Discord's API comes through Google's front end, which says so.
        headers = {"Via": "1.1 google", **(headers or {})}
        if status == 204:
            return web.Response(status=204, headers=headers)
        # discord.py parses JSON only when the content type is exactly application/json.
        return web.Response(status=status, body=json.dumps(body, ensure_ascii=False).encode(),
                            headers={**headers, "Content-Type": "application/json"})

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, Uploads]:
        """The JSON body (``payload_json`` in a multipart request) and the files, by the ``n`` of their
        ``files[n]`` part (any other file part counts after them)."""
        if not request.can_read_body:
            return None, {}
        if request.content_type.startswith("multipart/"):
            body: Any = None
            files: Uploads = {}
            others: list[tuple[str, bytes]] = []
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    continue  # a nested multipart: not something Discord takes
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                    continue
                upload = (part.filename or part.name or "", await part.read())
                numbered = re.fullmatch(r"files\[(\d+)\]", part.name or "")
                if numbered:
                    files[int(numbered[1])] = upload
                else:
                    others.append(upload)
            for upload in others:
                files[max(files, default=-1) + 1] = upload
            return body, files
        raw = await request.read()
        return (json.loads(raw) if raw else None), {}

    # -- where the gateway is

    async def _get_gateway(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        return {"url": self.gateway_url}

    async def _get_gateway_bot(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        """Where to connect, the shard count Discord recommends and how many sessions may still start (a day's
        IDENTIFYs; ``max_concurrency`` of them per 5 seconds). discord.py's AutoShardedClient asks here when it
        is given no shard_count."""
        return {
            "url": self.gateway_url,
            "shards": self.recommended_shards,
            "session_start_limit": {
                "total": SESSION_START_TOTAL,
                "remaining": max(0, SESSION_START_TOTAL - self.identify_count),
                "reset_after": 24 * 60 * 60 * 1000,
                "max_concurrency": self.max_concurrency,
            },
        }

    # -- application and commands

    async def _get_me(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        return {**self.bot_user.payload(), "verified": True, "mfa_enabled": False, "email": None}

    async def _get_application(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        return {
            "id": str(self.application_id), "name": "Kakehashi", "icon": None, "description": "",
            "summary": "", "bot_public": True, "bot_require_code_grant": False, "verify_key": "00" * 32,
            "owner": self.owner.payload(), "team": None, "flags": 0, "rpc_origins": [],
            "bot": self.bot_user.payload(),
        }

    def _check_app(self, match: re.Match[str]) -> Guild | None:
        if match["app"] != str(self.application_id):
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = match.groupdict().get("guild")
        if guild_id is None:
            return None
        if int(guild_id) not in self.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        return self.guilds[int(guild_id)]

    async def _get_commands(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        guild = self._check_app(match)
        return self.guild_commands.get(guild.id, []) if guild else self.global_commands

    async def _put_commands(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        guild = self._check_app(match)
        if not isinstance(body, list) or len(body) > 100:
            raise invalid_form("_root", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        # A command keeps its id across syncs; names are unique per type (a slash and a user command may share).
        existing = {(c["name"], c["type"]): c
                    for c in (self.guild_commands.get(guild.id, []) if guild else self.global_commands)}
        stored = []
        seen: set[tuple[str, int]] = set()
        for index, command in enumerate(body):
            _validate_command(command, str(index))
            key = (command["name"], command.get("type", 1))
            if key in seen:
                raise invalid_form(f"{index}.name", "APPLICATION_COMMANDS_DUPLICATE_NAME",
                                   "Application command names must be unique")
            seen.add(key)
            previous = existing.get(key)
            entry = {
                "id": previous["id"] if previous else str(snowflake()),
                "application_id": str(self.application_id),
                "version": str(snowflake()),
                "type": command.get("type", 1),
                "name": command["name"],
                "description": command.get("description", ""),
                "options": command.get("options", []),
                "default_member_permissions": None if command.get("default_member_permissions") is None
                else str(command["default_member_permissions"]),
                "dm_permission": command.get("dm_permission", True),
                "contexts": command.get("contexts"),
                "integration_types": command.get("integration_types", [0]),
                "nsfw": command.get("nsfw", False),
                "name_localizations": command.get("name_localizations"),
                "description_localizations": command.get("description_localizations"),
            }
            if guild:
                entry["guild_id"] = str(guild.id)
            stored.append(entry)
        if guild:
            self.guild_commands[guild.id] = stored
        else:
            self.global_commands = stored
        return stored

    # -- interaction responses

    def _live(self, interaction_id: str, token: str) -> Interaction:
        interaction = self.interactions.get(int(interaction_id))
        if interaction is None or interaction.token != token:
            raise DiscordError(404, 10062, "Unknown interaction")
        return interaction

    def _by_token(self, match: re.Match[str]) -> Interaction:
        if match["app"] != str(self.application_id):
            raise DiscordError(404, 10015, "Unknown Webhook")
        interaction = next((i for i in self.interactions.values() if i.token == match["token"]), None)
        if interaction is None or not interaction.answered:
            raise DiscordError(404, 10015, "Unknown Webhook")
        if asyncio.get_running_loop().time() - interaction.created_monotonic > TOKEN_LIFETIME:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        return interaction

    async def _callback(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        interaction = self._live(match["interaction"], match["token"])
        if interaction.answered:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        if asyncio.get_running_loop().time() - interaction.created_monotonic > INTERACTION_DEADLINE:
            raise DiscordError(404, 10062, "Unknown interaction")
        kind = body.get("type")
        data = body.get("data") or {}
        uploads = request[UPLOADS]
        message: Message | None = None
        if kind == CHANNEL_MESSAGE:
            _validate_message(data, require_content=True, files=bool(uploads))
            message = await self._response_message(interaction, data, data.get("flags", 0), uploads)
        elif kind == DEFERRED_CHANNEL_MESSAGE:
            flags = (data.get("flags", 0) & Message.EPHEMERAL) | Message.LOADING
            message = await self._response_message(interaction, {}, flags)
        elif kind in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            if interaction.type not in (MESSAGE_COMPONENT, MODAL_SUBMIT):
                raise invalid_form("type", "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type")
            if "message" not in interaction.payload:
                raise invalid_form("type", "INTERACTION_RESPONSE_TYPE_INVALID", "There is no message to update")
            # Either way, @original is now the message that carries the component.
            message = self.messages[int(interaction.payload["message"]["id"])]
            if kind == UPDATE_MESSAGE:
                _validate_message(data, require_content=False)
                await self._edit(message, data, uploads)
        elif kind == AUTOCOMPLETE_RESULT:
            if interaction.type != AUTOCOMPLETE:
                raise invalid_form("type", "INTERACTION_RESPONSE_TYPE_INVALID", "Invalid interaction response type")
            choices = data.get("choices", [])
            _validate_choices(choices, "data.choices")
            interaction.choice_data = choices
        elif kind == MODAL:
            if interaction.type == MODAL_SUBMIT:
                raise invalid_form("type", "INTERACTION_RESPONSE_TYPE_INVALID", "A modal cannot open a modal")
            _validate_modal(data)
            interaction.modal_data = data
        else:
            raise invalid_form("type", "BASE_TYPE_CHOICES", f"Value must be one of (4, 5, 6, 7, 8, 9), not {kind}")
        interaction.callback_type = kind
        if message is not None:
            interaction.original = message
        result: dict[str, Any] = {"interaction": {
            "id": str(interaction.id), "type": interaction.type,
            "response_message_id": str(message.id) if message else None,
            "response_message_loading": kind == DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": bool(message and message.ephemeral),
        }}
        if message is not None:
            result["resource"] = {"type": kind, "message": message.payload()}
        return result

    async def _response_message(self, interaction: Interaction, data: dict[str, Any], flags: int,
                                uploads: Uploads | None = None) -> Message:
        message = Message(
            snowflake(), interaction.channel, self.bot_user, content=data.get("content") or "",
            embeds=data.get("embeds") or [], components=data.get("components") or [],
            flags=flags & (Message.EPHEMERAL | Message.LOADING | (1 << 15) | (1 << 12)),
            allowed_mentions=data.get("allowed_mentions"), interaction_id=interaction.id,
            webhook_id=self.application_id, viewer=self.bot_user.id,
            files=self._attachments(interaction.channel, data, uploads or {}),
        )
        self._resolve_mentions(message, data.get("allowed_mentions"))
        await self._publish(message)
        return message

    async def _followup(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        interaction = self._by_token(match)
        body = body or {}
        uploads = request[UPLOADS]
        _validate_message(body, require_content=True, files=bool(uploads))
        original = interaction.original
        if original is not None and original.flags & Message.LOADING:
            # The first follow-up after a "thinking" defer replaces the loading message;
            # whether it is ephemeral was decided by the defer.
            original.flags &= ~Message.LOADING
            await self._edit(original, body, uploads)
            return original.payload()
        message = await self._response_message(interaction, body, body.get("flags", 0), uploads)
        interaction.followups.append(message)
        return message.payload()

    def _webhook_target(self, interaction: Interaction, message_id: str) -> Message:
        if message_id == "@original":
            if interaction.original is None or interaction.original.deleted:
                raise DiscordError(404, 10008, "Unknown Message")
            return interaction.original
        for message in interaction.messages:
            if str(message.id) == message_id and not message.deleted:
                return message
        raise DiscordError(404, 10008, "Unknown Message")

    async def _get_webhook_message(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        return self._webhook_target(self._by_token(match), match["message"]).payload()

    async def _edit_webhook_message(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        target = self._webhook_target(self._by_token(match), match["message"])
        _validate_message(body or {}, require_content=False)
        target.flags &= ~Message.LOADING
        await self._edit(target, body or {}, request[UPLOADS])
        return target.payload()

    async def _delete_webhook_message(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        self._webhook_target(self._by_token(match), match["message"]).deleted = True
        return None

    # -- channels and messages

    def _channel(self, channel_id: str) -> Channel:
        channel = self.channels.get(int(channel_id))
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _bot_permissions(self, channel: Channel) -> int:
        if channel.guild is None:
            return Perm.ALL
        return channel.guild.permissions_in(channel.guild.members[self.bot_user.id], channel)

    def _require(self, channel: Channel, needed: int) -> None:
        granted = self._bot_permissions(channel)
        if not granted & Perm.VIEW_CHANNEL:
            raise DiscordError(403, 50001, "Missing Access")
        if granted & needed != needed:
            raise DiscordError(403, 50013, "Missing Permissions")

    async def _open_dm(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        user = self.users.get(int(body["recipient_id"]))
        if user is None:
            raise invalid_form("recipient_id", "NUMBER_TYPE_COERCE", "Value is not a known user.")
        channel = self.dm_channel(user)
        if channel is None:
            channel = Channel(id=snowflake(), type=ChannelType.DM, name="", recipients=[user])
            self.channels[channel.id] = channel
        return channel.payload()

    async def _get_channel(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        channel = self._channel(match["channel"])
        if channel.guild is not None:
            self._require(channel, Perm.VIEW_CHANNEL)
        return channel.payload(me=self.bot_user.id)

    async def _get_messages(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        channel = self._channel(match["channel"])
        self._require(channel, Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY)
        limit = max(1, min(100, int(request.query.get("limit", 50))))
        found = sorted((m for m in self.channel_messages(channel) if not m.ephemeral), key=lambda m: -m.id)
        if "before" in request.query:
            found = [m for m in found if m.id < int(request.query["before"])]
        if "after" in request.query:
            found = sorted((m for m in found if m.id > int(request.query["after"])), key=lambda m: m.id)
        return [m.payload() for m in found[:limit]]

    async def _post_message(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        channel = self._channel(match["channel"])
        body = body or {}
        uploads = request[UPLOADS]
        if channel.type == ChannelType.DM:
            if not channel.recipients[0].dm_open:
                raise DiscordError(403, 50007, "Cannot send messages to this user")
        elif channel.type in (ChannelType.VOICE, ChannelType.CATEGORY, ChannelType.FORUM, ChannelType.MEDIA,
                              ChannelType.STAGE):
            raise DiscordError(400, 50008, "Cannot send messages in a non-text channel")
        else:
            needed = Perm.SEND_MESSAGES_IN_THREADS if channel.is_thread else Perm.SEND_MESSAGES
            if uploads:
                needed |= Perm.ATTACH_FILES
            if body.get("message_reference") is not None:
                needed |= Perm.READ_MESSAGE_HISTORY  # a reply
            self._require(channel, needed)
        _validate_message(body, require_content=True, files=bool(uploads))
        nonce = self._nonce(body)
        replied_to, reference = self._reply_target(channel, body.get("message_reference"))
        now = asyncio.get_running_loop().time()
        if nonce is not None and body.get("enforce_nonce"):
            earlier = self._nonces.get((channel.id, self.bot_user.id, nonce))
            if earlier is not None and now - earlier[1] < NONCE_WINDOW and not earlier[0].deleted:
                return earlier[0].payload()  # the same send again: Discord answers with what it created then
        if channel.is_thread:
            await self._reopen_for_message(channel, self._bot_permissions(channel))
        message = Message(
            snowflake(), channel, self.bot_user, content=body.get("content") or "",
            embeds=body.get("embeds") or [], components=body.get("components") or [],
            flags=body.get("flags", 0) & ((1 << 2) | (1 << 12) | (1 << 15)),
            allowed_mentions=body.get("allowed_mentions"), message_reference=reference, replied_to=replied_to,
            viewer=self.bot_user.id, files=self._attachments(channel, body, uploads), nonce=nonce,
        )
        self._resolve_mentions(message, body.get("allowed_mentions"))
        if nonce is not None:
            self._nonces[(channel.id, self.bot_user.id, nonce)] = (message, now)
        await self._publish(message)
        return message.payload()

    @staticmethod
    def _nonce(body: dict[str, Any]) -> str | None:
        """A message's ``nonce``: an integer or a string of up to 25 characters (discord.py sends a random 64-bit
        number as a string, with ``enforce_nonce``)."""
        nonce = body.get("nonce")
        if nonce is None:
            return None
        if isinstance(nonce, bool) or not isinstance(nonce, (int, str)) or len(str(nonce)) > MAX_NONCE_LENGTH:
            raise invalid_form("nonce", "BASE_TYPE_BAD_LENGTH", f"Must be {MAX_NONCE_LENGTH} or fewer in length.")
        return str(nonce)

    async def _reopen_for_message(self, thread: Channel, granted: int) -> None:
        """Before a message in a thread by someone with ``granted`` permissions there: a locked thread takes
        MANAGE_THREADS (50083 while it is archived too, else 50013), and a message in an archived thread unarchives
        it (THREAD_UPDATE), if the server has room for another active thread (else 160006)."""
        if thread.locked and not granted & Perm.MANAGE_THREADS:
            if thread.archived:
                raise DiscordError(400, 50083, "Thread is archived")
            raise DiscordError(403, 50013, "Missing Permissions")
        if thread.archived:
            self._set_archived(thread, False)
            await self._dispatch_thread_update(thread)

    @staticmethod
    def _set_archived(thread: Channel, archived: bool) -> None:
        """Archive or unarchive ``thread``; unarchiving needs room under the server's cap (else 160006)."""
        guild = thread.guild
        assert guild is not None
        if not archived and thread.archived and guild.active_thread_count >= guild.thread_cap:
            raise max_threads_reached()
        if archived != thread.archived:
            thread.archived = archived
            thread.archive_timestamp = datetime.now(UTC)

    def _message(self, channel: Channel, message_id: str) -> Message:
        message = self.messages.get(int(message_id))
        if message is None or message.channel.id != channel.id or message.deleted:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    def _reply_target(self, channel: Channel, reference: dict[str, Any] | None) -> tuple[Message | None,
                                                                                         dict[str, Any] | None]:
        """The message a reply answers and the ``message_reference`` Discord then shows (ids as strings, the
        channel and guild filled in). The message must be in this channel, else 400/50035, or, with
        ``fail_if_not_exists`` false, the message goes out as a plain one."""
        if reference is None:
            return None, None
        if reference.get("type", 0) != 0:
            raise invalid_form("message_reference.type", "BASE_TYPE_CHOICES", "The fake models replies, not forwards")
        raw_id = str(reference.get("message_id") or "")
        target = self.messages.get(int(raw_id)) if raw_id.isdigit() else None
        named = reference.get("channel_id")
        if target is None or target.deleted or target.ephemeral or target.channel.id != channel.id \
                or (named is not None and str(named) != str(channel.id)):
            if reference.get("fail_if_not_exists", True):
                raise invalid_form("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
            return None, None
        shown = {"type": 0, "channel_id": str(channel.id), "message_id": str(target.id)}
        if channel.guild is not None:
            shown["guild_id"] = str(channel.guild.id)
        return target, shown

    def _attachments(self, channel: Channel, body: dict[str, Any], uploads: Uploads, *,
                     kept: list[Attachment] | None = None) -> list[Attachment]:
        """The files a message carries once created or edited (``kept``: what it had). An upload is a
        ``files[n]`` part; the body's ``attachments`` array lists all that the message keeps: what it had, by
        id, and new files, by ``n``. Without that array every upload is added after what it had."""
        had = {a.id: a for a in kept or []}
        listed = body.get("attachments")
        if listed is None:
            return list(had.values()) + [self._attachment(channel, *uploads[n]) for n in sorted(uploads)]
        files = []
        for index, entry in enumerate(listed):
            ref = str(entry.get("id", ""))
            if ref.isdigit() and int(ref) in had:
                files.append(had[int(ref)])
            elif ref.isdigit() and int(ref) in uploads:
                filename, content = uploads[int(ref)]
                files.append(self._attachment(channel, entry.get("filename") or filename, content,
                                              entry.get("description")))
            else:
                raise invalid_form(f"attachments.{index}.id", "ATTACHMENT_NOT_FOUND",
                                   "No file was uploaded or kept with this id")
        if len(files) > 10:
            raise invalid_form("attachments", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        return files

    def _attachment(self, channel: Channel, filename: str, content: bytes,
                    description: str | None = None) -> Attachment:
        attachment_id = snowflake()
        url = f"http://{self._address}/attachments/{channel.id}/{attachment_id}/{quote(filename)}"
        return Attachment(attachment_id, filename, content, url, description)

    async def _cdn(self, request: web.Request) -> web.Response:
        """Discord's CDN for attachments (``Attachment.read()`` in discord.py), served by the fake itself."""
        wanted = request.match_info["attachment"]
        for message in self.messages.values():
            if message.deleted or str(message.channel.id) != request.match_info["channel"]:
                continue
            for attachment in message.files:
                if str(attachment.id) == wanted and attachment.filename == request.match_info["filename"]:
                    return web.Response(body=attachment.content,
                                        content_type=(attachment.content_type or "application/octet-stream")
                                        .split(";")[0])
        return web.Response(status=404, text="This content is no longer available.")

    # -- reactions

    def _emoji_key(self, emoji: str) -> str:
        """A reaction's emoji as its path names it (aiohttp has decoded it), checked as Discord checks it
        (400/10014): a custom emoji of a server the bot is in, as ``name:id``, or a unicode emoji (the fake takes
        any text that is not plain ASCII for one). Returns the key in ``Message.reactions``."""
        name, _, emoji_id = emoji.rpartition(":")
        if name and emoji_id.isdigit():
            for guild in self.guilds.values():
                for known in guild.emojis:
                    if known.id == int(emoji_id):
                        return known.reaction
            raise DiscordError(400, 10014, "Unknown Emoji")
        if not emoji or emoji.isascii():
            raise DiscordError(400, 10014, "Unknown Emoji")
        return emoji

    async def _put_reaction(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        """The bot reacts: READ_MESSAGE_HISTORY, and ADD_REACTIONS unless someone already reacted with that
        emoji; at most 20 different emojis on a message. In a DM there is nothing to check."""
        channel = self._channel(match["channel"])
        if channel.guild is not None:
            self._require(channel, Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY)
        message = self._message(channel, match["message"])
        if message.ephemeral:
            raise DiscordError(404, 10008, "Unknown Message")
        key = self._emoji_key(match["emoji"])
        if key not in message.reactions:
            if channel.guild is not None:
                self._require(channel, Perm.ADD_REACTIONS)
            if len(message.reactions) >= MAX_REACTIONS:
                raise DiscordError(400, 30010, f"Maximum number of reactions reached ({MAX_REACTIONS})")
        await self._add_reaction(message, self.bot_user, key)
        return None

    async def _delete_own_reaction(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        channel = self._channel(match["channel"])
        if channel.guild is not None:
            self._require(channel, Perm.VIEW_CHANNEL)
        message = self._message(channel, match["message"])
        key = self._emoji_key(match["emoji"])
        users = message.reactions.get(key, set())
        if self.bot_user.id in users:
            users.discard(self.bot_user.id)
            if not users:
                del message.reactions[key]
            await self._dispatch_reaction("MESSAGE_REACTION_REMOVE", message, self.bot_user, key)
        return None

    async def _add_reaction(self, message: Message, user: User, key: str) -> None:
        users = message.reactions.setdefault(key, set())
        if user.id not in users:
            users.add(user.id)
            await self._dispatch_reaction("MESSAGE_REACTION_ADD", message, user, key)

    async def _dispatch_reaction(self, event: str, message: Message, user: User, key: str) -> None:
        """MESSAGE_REACTION_ADD / _REMOVE, only to a bot that asked for the reactions intent of that kind of
        channel and can see it."""
        guild = message.channel.guild
        intent = INTENT_GUILD_MESSAGE_REACTIONS if guild is not None else INTENT_DIRECT_MESSAGE_REACTIONS
        if guild is not None and not self._bot_permissions(message.channel) & Perm.VIEW_CHANNEL:
            return
        data: dict[str, Any] = {"user_id": str(user.id), "channel_id": str(message.channel.id),
                                "message_id": str(message.id), "emoji": reaction_emoji(key), "burst": False,
                                "type": 0}
        if guild is not None:
            data["guild_id"] = str(guild.id)
        if event == "MESSAGE_REACTION_ADD":
            data.update(message_author_id=str(message.author.id), burst_colors=[])
            member = guild.members.get(user.id) if guild is not None else None
            if member is not None:
                data["member"] = member.payload()
        for session in self._sessions_for(guild):
            if session.intents & intent:
                await session.dispatch(event, data)

    async def _get_message(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        channel = self._channel(match["channel"])
        if channel.guild is not None:
            self._require(channel, Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY)
        return self._message(channel, match["message"]).payload()

    async def _edit_message(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        channel = self._channel(match["channel"])
        message = self._message(channel, match["message"])
        if message.author.id != self.bot_user.id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        _validate_message(body or {}, require_content=False)
        await self._edit(message, body or {}, request[UPLOADS])
        return message.payload()

    async def _delete_message(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        channel = self._channel(match["channel"])
        message = self._message(channel, match["message"])
        if message.author.id != self.bot_user.id and channel.guild is not None:
            self._require(channel, Perm.MANAGE_MESSAGES)
        message.deleted = True
        if channel.is_thread and message.id != channel.id and not message.ephemeral:
            channel.message_count -= 1
        data = {"id": str(message.id), "channel_id": str(channel.id)}
        if channel.guild is not None:
            data["guild_id"] = str(channel.guild.id)
        await self._dispatch_message("MESSAGE_DELETE", message, data)
        return None

    # -- threads and forum posts

    def _new_thread(self, parent: Channel, kind: int, body: dict[str, Any], *, thread_id: int | None = None,
                    applied_tags: list[int] | None = None) -> Channel:
        """A thread the bot starts in ``parent``: the bot owns it and is its first member. Past the server's cap
        of active threads (every kind counted) Discord refuses with 160006 and creates nothing."""
        assert parent.guild is not None
        if parent.guild.active_thread_count >= parent.guild.thread_cap:
            raise max_threads_reached()
        thread = Channel(
            id=thread_id or snowflake(), type=kind, name=body["name"], guild=parent.guild, parent_id=parent.id,
            owner_id=self.bot_user.id, applied_tags=applied_tags or [],
            auto_archive_duration=body.get("auto_archive_duration") or 1440,
            rate_limit_per_user=body.get("rate_limit_per_user") or 0,
            invitable=bool(body.get("invitable", True)),
        )
        thread.thread_members[self.bot_user.id] = thread.created_at
        parent.guild.channels[thread.id] = thread
        self.channels[thread.id] = thread
        return thread

    async def _dispatch_thread_update(self, thread: Channel) -> None:
        """THREAD_UPDATE (an archive, an unarchive, an edit) for a thread the bot can see. discord.py drops an
        archived thread from its cache, and takes one it did not have back as a thread it joined."""
        if not self.sessions or not self._bot_permissions(thread) & Perm.VIEW_CHANNEL:
            return
        await self._dispatch("THREAD_UPDATE", thread.payload(me=self.bot_user.id), INTENT_GUILDS, thread.guild)

    async def _edit_channel(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        """PATCH /channels/{id}: the fake edits threads (name, archived, auto_archive_duration, locked, invitable,
        rate_limit_per_user); anything else is not modelled."""
        channel = self._channel(match["channel"])
        body = body if isinstance(body, dict) else {}
        if not channel.is_thread or set(body) - THREAD_EDIT_FIELDS:
            raise NotModelled(f"PATCH /channels/{channel.id} with {sorted(body)}")
        return await self._edit_thread(channel, {k: v for k, v in body.items() if v is not None})

    async def _edit_thread(self, thread: Channel, changes: dict[str, Any]) -> Any:
        """Discord's rules: the thread's creator or MANAGE_THREADS may rename it, archive or unarchive it and set
        its auto_archive_duration (and, the fake takes it, invitable); locking and slowmode take MANAGE_THREADS;
        unarchiving takes only being in the thread, unless it is locked. An archived thread takes no other edit
        unless the same request unarchives it (400/50083), and unarchiving needs room under the cap (160006)."""
        if "name" in changes:
            _length(changes["name"], "name", 1, 100)
        for key in ("archived", "locked", "invitable"):
            if key in changes and not isinstance(changes[key], bool):
                raise invalid_form(key, "BASE_TYPE_BOOLEAN", "Must be either true or false.")
        if "invitable" in changes and thread.type != ChannelType.PRIVATE_THREAD:
            raise invalid_form("invitable", "BASE_TYPE_CHOICES", "Only private threads have invitable.")
        _validate_thread({"name": thread.name, **changes})
        granted = self._bot_permissions(thread)
        if not granted & Perm.VIEW_CHANNEL:
            raise DiscordError(403, 50001, "Missing Access")
        moderator = bool(granted & Perm.MANAGE_THREADS)
        creator = thread.owner_id == self.bot_user.id
        member = self.bot_user.id in thread.thread_members and bool(granted & Perm.SEND_MESSAGES_IN_THREADS)
        unarchiving = changes.get("archived") is False
        if not moderator and ("locked" in changes or "rate_limit_per_user" in changes
                              or (thread.locked and unarchiving)
                              or not (creator or (member and unarchiving and set(changes) == {"archived"}))):
            raise DiscordError(403, 50013, "Missing Permissions")
        if thread.archived and not unarchiving:
            raise DiscordError(400, 50083, "Thread is archived")
        before = thread.payload()
        if "archived" in changes:
            self._set_archived(thread, changes["archived"])
        for key in ("name", "auto_archive_duration", "locked", "invitable", "rate_limit_per_user"):
            if key in changes:
                setattr(thread, key, changes[key])
        if thread.payload() != before:
            await self._dispatch_thread_update(thread)
        return thread.payload(me=self.bot_user.id)

    async def _dispatch_thread_create(self, thread: Channel) -> None:
        """THREAD_CREATE, as discord.py's ``parse_thread_create`` reads it: the channel, ``newly_created``
        (else it fires on_thread_join instead of on_thread_create) and the bot's thread member object."""
        if not self.sessions:
            return
        await self._dispatch("THREAD_CREATE", {**thread.payload(me=self.bot_user.id), "newly_created": True},
                             INTENT_GUILDS, thread.guild)

    async def _start_thread(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        """POST /channels/{id}/threads: a forum (or media) post with its starter message, or a thread without
        a message in a text or announcement channel."""
        channel = self._channel(match["channel"])
        body = body if isinstance(body, dict) else {}
        if channel.type in (ChannelType.FORUM, ChannelType.MEDIA):
            return await self._start_forum_post(request, channel, body)
        if channel.type not in (ChannelType.TEXT, ChannelType.ANNOUNCEMENT):
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        _validate_thread(body)
        # Without a message, `type` still defaults to a private thread in API v10.
        kind = body.get("type", ChannelType.PRIVATE_THREAD)
        allowed = ((ChannelType.ANNOUNCEMENT_THREAD,) if channel.type == ChannelType.ANNOUNCEMENT
                   else (ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD))
        if kind not in allowed:
            raise invalid_form("type", "BASE_TYPE_CHOICES", f"Value must be one of {allowed}.")
        self._require(channel, Perm.CREATE_PRIVATE_THREADS if kind == ChannelType.PRIVATE_THREAD
                      else Perm.CREATE_PUBLIC_THREADS)
        thread = self._new_thread(channel, kind, body)
        await self._dispatch_thread_create(thread)
        return thread.payload(me=self.bot_user.id)

    async def _add_thread_member(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        """PUT /channels/{thread}/thread-members/{user}: add a member of the server to a thread. Adding one
        who is in already changes nothing."""
        thread = self._channel(match["channel"])
        if not thread.is_thread or thread.guild is None:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        member = thread.guild.members.get(int(match["user"]))
        if member is None:
            raise DiscordError(404, 10013, "Unknown User")
        if thread.archived:
            raise DiscordError(400, 50083, "Thread is archived")
        self._require(thread, Perm.SEND_MESSAGES_IN_THREADS)
        if self.strict_invitable and thread.type == ChannelType.PRIVATE_THREAD and not thread.invitable \
                and member.id not in thread.thread_members:
            self._require(thread, Perm.MANAGE_THREADS)
        thread.thread_members.setdefault(member.id, datetime.now(UTC))
        return None

    async def _start_forum_post(self, request: web.Request, forum: Channel, body: dict[str, Any]) -> Any:
        """A forum post: a public thread and its starter message, which has the thread's id and lives in it.
        The bot needs SEND_MESSAGES in the forum (CREATE_PUBLIC_THREADS does not matter here)."""
        _validate_thread(body)
        message_body = body.get("message")
        if not isinstance(message_body, dict):
            raise invalid_form("message", "BASE_TYPE_REQUIRED", "This field is required")
        try:
            _validate_message(message_body, require_content=True,
                              files=request.content_type.startswith("multipart/"))
        except DiscordError as error:
            if error.errors is None:
                raise
            raise DiscordError(error.status, error.code, error.message, {"message": error.errors}) from None
        raw_tags = body.get("applied_tags") or []
        if not isinstance(raw_tags, list) or len(raw_tags) > 5:
            raise invalid_form("applied_tags", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
        available = {t.id for t in forum.available_tags}
        tags: list[int] = []
        for index, tag in enumerate(raw_tags):
            if not str(tag).isdigit() or int(tag) not in available:
                raise invalid_form(f"applied_tags.{index}", "BASE_TYPE_CHOICES", "Unknown tag for this channel.")
            tags.append(int(tag))
        uploads = request[UPLOADS]
        self._require(forum, Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES | (Perm.ATTACH_FILES if uploads else 0))
        if forum.flags & Channel.REQUIRE_TAG and not tags:
            raise DiscordError(400, 40067, "A tag is required to create a forum post in this channel")
        thread = self._new_thread(forum, ChannelType.PUBLIC_THREAD, body, applied_tags=tags)
        forum.last_message_id = thread.id
        message = Message(
            thread.id, thread, self.bot_user, content=message_body.get("content") or "",
            embeds=message_body.get("embeds") or [], components=message_body.get("components") or [],
            flags=message_body.get("flags", 0) & ((1 << 2) | (1 << 12) | (1 << 15)),
            allowed_mentions=message_body.get("allowed_mentions"), viewer=self.bot_user.id,
            files=self._attachments(thread, message_body, uploads),
        )
        self._resolve_mentions(message, message_body.get("allowed_mentions"))
        await self._dispatch_thread_create(thread)
        await self._publish(message)
        return {**thread.payload(me=self.bot_user.id), "message": message.payload()}

    async def _start_thread_from_message(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        """A public thread (an announcement thread in an announcement channel) on a message, with the message's
        id; a message carries at most one. Discord then shows the thread on the message (MESSAGE_UPDATE)."""
        channel = self._channel(match["channel"])
        body = body if isinstance(body, dict) else {}
        if channel.type not in (ChannelType.TEXT, ChannelType.ANNOUNCEMENT):
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        _validate_thread(body)
        self._require(channel, Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY | Perm.CREATE_PUBLIC_THREADS)
        message = self._message(channel, match["message"])
        if message.ephemeral:
            raise DiscordError(404, 10008, "Unknown Message")
        if message.id in self.channels:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        kind = ChannelType.ANNOUNCEMENT_THREAD if channel.type == ChannelType.ANNOUNCEMENT \
            else ChannelType.PUBLIC_THREAD
        thread = self._new_thread(channel, kind, body, thread_id=message.id)
        await self._dispatch_thread_create(thread)
        await self._dispatch_message("MESSAGE_UPDATE", message, message.payload())
        return thread.payload(me=self.bot_user.id)

    def _apply_edit(self, message: Message, body: dict[str, Any],
                    uploads: Uploads | None = None) -> None:
        message.files = self._attachments(message.channel, body, uploads or {}, kept=message.files)
        for key in ("content", "embeds", "components"):
            if key in body and body[key] is not None:
                setattr(message, key, body[key])
        if "allowed_mentions" in body:
            message.allowed_mentions = body["allowed_mentions"]
        message.edited = True
        self._resolve_mentions(message, message.allowed_mentions)

    async def _publish(self, message: Message, data: dict[str, Any] | None = None) -> None:
        """Keep a new message and tell the bot (MESSAGE_CREATE), unless only its recipient sees it.
        Writing in a thread joins it, and counts (a forum post's starter message, which shares the
        thread's id, does not)."""
        self.messages[message.id] = message
        if not message.ephemeral:
            channel = message.channel
            channel.last_message_id = message.id
            if channel.is_thread:
                channel.thread_members.setdefault(message.author.id, datetime.now(UTC))
                if message.id != channel.id:
                    channel.message_count += 1
                    channel.total_message_sent += 1
            await self._dispatch_message("MESSAGE_CREATE", message, data or message.payload())

    async def _edit(self, message: Message, body: dict[str, Any],
                    uploads: Uploads | None = None) -> None:
        self._apply_edit(message, body, uploads)
        if not message.ephemeral:
            await self._dispatch_message("MESSAGE_UPDATE", message, message.payload())

    def _resolve_mentions(self, message: Message, allowed: dict[str, Any] | None) -> None:
        """Who this message pings, by Discord's rules for ``allowed_mentions`` (absent: everything, a reply's
        author included)."""
        parse = ["users", "roles", "everyone"] if allowed is None else allowed.get("parse", [])
        users = {int(u) for u in re.findall(r"<@!?(\d+)>", message.content)}
        roles = {int(r) for r in re.findall(r"<@&(\d+)>", message.content)}
        if "users" not in parse:
            users &= {int(u) for u in (allowed or {}).get("users", [])}
        if "roles" not in parse:
            roles &= {int(r) for r in (allowed or {}).get("roles", [])}
        # A reply pings the author it answers (never one's own message) when `allowed_mentions` is absent or
        # says `replied_user`; given without it, it defaults to false.
        replied = message.replied_to
        if replied is not None and replied.author.id != message.author.id and (
                allowed is None or allowed.get("replied_user")):
            users.add(replied.author.id)
        message.mentions = sorted(users)
        message.mention_roles = sorted(roles)
        message.mention_everyone = "everyone" in parse and bool(re.search(r"@(everyone|here)\b", message.content))

    # -- guilds

    def _guild(self, guild_id: str) -> Guild:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        data = self._guild(match["guild"]).payload()
        for key in ("members", "channels", "threads", "presences", "voice_states", "joined_at", "large"):
            data.pop(key, None)
        return data

    async def _get_guild_channels(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        guild = self._guild(match["guild"])
        return [c.payload() for c in guild.channels.values() if not c.is_thread]

    async def _get_active_threads(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        """Active threads the bot can see, newest first, and its thread member objects for those it is in."""
        guild = self._guild(match["guild"])
        threads = list(reversed(guild.active_threads(guild.members[self.bot_user.id])))
        members = [m for m in (t.thread_member(self.bot_user.id) for t in threads) if m is not None]
        return {"threads": [t.payload() for t in threads], "members": members}

    async def _get_member(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        guild = self._guild(match["guild"])
        member = guild.members.get(int(match["user"]))
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return member.payload()

    # -- helpers for modals

    @staticmethod
    def _check_text_input(text_input: dict[str, Any], label: str, value: str) -> None:
        """What the Discord client itself refuses to submit."""
        if text_input.get("required", True) and not value:
            raise AssertionError(f"Discord will not submit the modal: {label!r} is required")
        if value and len(value) < text_input.get("min_length", 0):
            raise AssertionError(f"Discord will not submit the modal: {label!r} is under its min_length")
        if len(value) > text_input.get("max_length", 4000):
            raise AssertionError(f"Discord will not submit the modal: {label!r} is over its max_length")


# ---------------------------------------------------------------------- validation


def _command_label(name: str, kind: int) -> str:
    return f"/{name}" if kind == CHAT_INPUT else f"the {'user' if kind == USER_COMMAND else 'message'} command {name!r}"


def _check_option_value(command: str, option: dict[str, Any], value: Any) -> None:
    """What the Discord client refuses to send for an option."""
    name, kind = option["name"], option["type"]
    where = f"/{command} {name}"
    expected = {OPTION_STRING: str, OPTION_INTEGER: int, OPTION_NUMBER: (int, float), OPTION_BOOLEAN: bool,
                OPTION_CHANNEL: Channel, OPTION_USER: Member, OPTION_ROLE: Role, OPTION_MENTIONABLE: (Member, Role)}
    if kind in expected and not isinstance(value, expected[kind]):  # type: ignore[arg-type]
        raise AssertionError(f"{where}: {value!r} is not a value of option type {kind}")
    choices = option.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise AssertionError(f"{where}: {value!r} is not one of its choices")
    if kind == OPTION_STRING and not option.get("min_length", 0) <= len(value) <= option.get("max_length", 6000):
        raise AssertionError(f"{where}: {len(value)} characters is outside its length")
    if kind in (OPTION_INTEGER, OPTION_NUMBER) and not (
            option.get("min_value", -math.inf) <= value <= option.get("max_value", math.inf)):
        raise AssertionError(f"{where}: {value} is outside its range")
    if kind == OPTION_CHANNEL and option.get("channel_types") and value.type not in option["channel_types"]:
        raise AssertionError(f"{where}: the picker does not offer channels of type {value.type}")


def _length(value: Any, path: str, low: int, high: int) -> None:
    if not isinstance(value, str) or not low <= len(value) <= high:
        raise invalid_form(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


def _validate_localizations(values: dict[str, str] | None, path: str, high: int, name: bool) -> None:
    for locale, text in (values or {}).items():
        if locale not in _LOCALES:
            raise invalid_form(f"{path}.{locale}", "LOCALE_INVALID", f"Invalid locale {locale!r}")
        _length(text, f"{path}.{locale}", 1, high)
        if name and not _NAME.match(text):
            raise invalid_form(f"{path}.{locale}", "APPLICATION_COMMAND_INVALID_NAME", "Invalid name")


def _validate_command(command: dict[str, Any], path: str) -> None:
    """A slash command's name is lowercase without spaces; a user or message command's may have capitals and
    spaces, and it has no description (empty or absent) and no options."""
    kind = command.get("type", CHAT_INPUT)
    if kind not in (CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND):
        raise invalid_form(f"{path}.type", "BASE_TYPE_CHOICES", f"Value must be one of (1, 2, 3), not {kind}")
    _length(command.get("name"), f"{path}.name", 1, 32)
    _validate_localizations(command.get("name_localizations"), f"{path}.name_localizations", 32, kind == 1)
    if kind != CHAT_INPUT:
        if command.get("description") not in (None, ""):
            raise invalid_form(f"{path}.description", "APPLICATION_COMMAND_INVALID_DESCRIPTION",
                               "Context menu commands cannot have a description")
        if command.get("description_localizations"):
            raise invalid_form(f"{path}.description_localizations", "APPLICATION_COMMAND_INVALID_DESCRIPTION",
                               "Context menu commands cannot have a description")
        if command.get("options"):
            raise invalid_form(f"{path}.options", "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                               "Context menu commands cannot have options")
    if kind == 1:
        if not _NAME.match(command["name"]) or command["name"] != command["name"].lower():
            raise invalid_form(f"{path}.name", "APPLICATION_COMMAND_INVALID_NAME", "Invalid command name")
        _length(command.get("description"), f"{path}.description", 1, 100)
        _validate_localizations(command.get("description_localizations"), f"{path}.description_localizations",
                                100, False)
        _validate_options(command.get("options", []), f"{path}.options", "command")


def _validate_options(options: list[dict[str, Any]], path: str, level: str) -> None:
    """``level`` is "command", "group" or "subcommand": what may stand at each depth, as Discord allows."""
    if len(options) > 25:
        raise invalid_form(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    nested = [o for o in options if o.get("type") in (OPTION_SUBCOMMAND, OPTION_GROUP)]
    if level == "command" and nested and len(nested) != len(options):
        raise invalid_form(path, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                           "Subcommands and groups cannot stand beside plain options")
    if level == "group" and len(nested) != len(options):
        raise invalid_form(path, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "A group holds subcommands only")
    seen_optional = False
    names = set()
    for index, option in enumerate(options):
        where = f"{path}.{index}"
        name = option.get("name", "")
        if not _NAME.match(name) or name != name.lower() or name in names:
            raise invalid_form(f"{where}.name", "APPLICATION_COMMAND_INVALID_NAME", "Invalid or duplicate name")
        names.add(name)
        _length(option.get("description"), f"{where}.description", 1, 100)
        _validate_localizations(option.get("description_localizations"), f"{where}.description_localizations",
                                100, False)
        _validate_localizations(option.get("name_localizations"), f"{where}.name_localizations", 32, True)
        kind = option.get("type")
        if kind == OPTION_GROUP:
            if level != "command":
                raise invalid_form(where, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Groups nest only at the top")
            _validate_options(option.get("options", []), f"{where}.options", "group")
            continue
        if kind == OPTION_SUBCOMMAND:
            if level == "subcommand":
                raise invalid_form(where, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Subcommands cannot nest")
            _validate_options(option.get("options", []), f"{where}.options", "subcommand")
            continue
        if kind not in range(3, 12):
            raise invalid_form(f"{where}.type", "BASE_TYPE_CHOICES", f"Unknown option type {kind}")
        if option.get("required"):
            if seen_optional:
                raise invalid_form(where, "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                                   "Required options must be placed before non-required options")
        else:
            seen_optional = True
        if option.get("choices") and option.get("autocomplete"):
            raise invalid_form(where, "APPLICATION_COMMAND_OPTION_CHOICES_AUTOCOMPLETE", "Choices or autocomplete")
        _validate_choices(option.get("choices") or [], f"{where}.choices")


def _validate_choices(choices: list[dict[str, Any]], path: str) -> None:
    if len(choices) > 25:
        raise invalid_form(path, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for index, choice in enumerate(choices):
        _length(choice.get("name"), f"{path}.{index}.name", 1, 100)
        _validate_localizations(choice.get("name_localizations"), f"{path}.{index}.name_localizations", 100, False)
        if isinstance(choice.get("value"), str):
            _length(choice["value"], f"{path}.{index}.value", 1, 100)


def _validate_message(body: dict[str, Any], *, require_content: bool, files: bool = False) -> None:
    content = body.get("content")
    if content is not None and len(content) > 2000:
        raise invalid_form("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        raise invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        where = f"embeds.{index}"
        for key, limit in (("title", 256), ("description", 4096)):
            if key in embed:
                _length(embed[key], f"{where}.{key}", 1 if key == "title" else 0, limit)
                total += len(embed[key])
        fields = embed.get("fields", [])
        if len(fields) > 25:
            raise invalid_form(f"{where}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for number, item in enumerate(fields):
            _length(item.get("name"), f"{where}.fields.{number}.name", 1, 256)
            _length(item.get("value"), f"{where}.fields.{number}.value", 1, 1024)
            total += len(item["name"]) + len(item["value"])
        if "footer" in embed:
            _length(embed["footer"].get("text"), f"{where}.footer.text", 1, 2048)
            total += len(embed["footer"]["text"])
        if "author" in embed:
            _length(embed["author"].get("name"), f"{where}.author.name", 1, 256)
            total += len(embed["author"]["name"])
    if total > 6000:
        raise invalid_form("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    components = body.get("components") or []
    if len(components) > 5 and not body.get("flags", 0) & (1 << 15):
        raise invalid_form("components", "BASE_TYPE_MAX_LENGTH", "Must be 5 or fewer in length.")
    for index, row in enumerate(components):
        children = row.get("components", [])
        if row.get("type") == 1 and len(children) > 5:
            raise invalid_form(f"components.{index}.components", "BASE_TYPE_MAX_LENGTH",
                               "Must be 5 or fewer in length.")
        if row.get("type") == 1 and len(children) > 1 and any(c.get("type") in SELECTS for c in children):
            # A select fills its action row alone.
            raise invalid_form(f"components.{index}.components", "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                               "The specified component exceeds the maximum width")
        for number, child in enumerate(children):
            if child.get("type") == STRING_SELECT:
                _validate_string_select(child, f"components.{index}.components.{number}")
            if "custom_id" in child:
                _length(child["custom_id"], f"components.{index}.components.{number}.custom_id", 1, 100)
            if "label" in child and child["label"] is not None:
                _length(child["label"], f"components.{index}.components.{number}.label", 0, 80)
    if require_content and not (content or embeds or components or files or body.get("attachments")
                                or body.get("sticker_ids") or body.get("poll")):
        raise DiscordError(400, 50006, "Cannot send an empty message")


def _validate_string_select(menu: dict[str, Any], where: str) -> None:
    """1-25 options with labels and values of 1-100 characters (values unique), a placeholder of up to 150,
    min_values 0-25 and max_values 1-25."""
    options = menu.get("options") or []
    if not 1 <= len(options) <= 25:
        raise invalid_form(f"{where}.options", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 25 in length.")
    if menu.get("placeholder") is not None:
        _length(menu["placeholder"], f"{where}.placeholder", 0, 150)
    for key, low in (("min_values", 0), ("max_values", 1)):
        value = menu.get(key)
        if value is not None and (not isinstance(value, int) or not low <= value <= 25):
            raise invalid_form(f"{where}.{key}", "NUMBER_TYPE_MAX" if isinstance(value, int) and value > 25
                               else "NUMBER_TYPE_MIN", f"Must be between {low} and 25.")
    values = set()
    for number, option in enumerate(options):
        _length(option.get("label"), f"{where}.options.{number}.label", 1, 100)
        _length(option.get("value"), f"{where}.options.{number}.value", 1, 100)
        if option.get("description") is not None:
            _length(option["description"], f"{where}.options.{number}.description", 0, 100)
        if option["value"] in values:
            raise invalid_form(f"{where}.options.{number}.value", "SELECT_COMPONENT_OPTION_VALUE_DUPLICATED",
                               "Select option values must be unique")
        values.add(option["value"])


ARCHIVE_DURATIONS = (60, 1440, 4320, 10080)
THREAD_EDIT_FIELDS = frozenset({"name", "archived", "auto_archive_duration", "locked", "invitable",
                                "rate_limit_per_user"})


def max_threads_reached() -> DiscordError:
    return DiscordError(400, 160006, "Maximum number of active threads reached")


def _validate_thread(body: dict[str, Any]) -> None:
    """The fields every way of starting a thread shares."""
    if "name" not in body or body["name"] is None:
        raise invalid_form("name", "BASE_TYPE_REQUIRED", "This field is required")
    _length(body["name"], "name", 1, 100)
    duration = body.get("auto_archive_duration")
    if duration is not None and duration not in ARCHIVE_DURATIONS:
        raise invalid_form("auto_archive_duration", "BASE_TYPE_CHOICES",
                           f"Value must be one of {{{', '.join(map(str, ARCHIVE_DURATIONS))}}}.")
    slowmode = body.get("rate_limit_per_user")
    if slowmode is not None and (not isinstance(slowmode, int) or not 0 <= slowmode <= 21600):
        raise invalid_form("rate_limit_per_user", "NUMBER_TYPE_MAX",
                           "int value should be less than or equal to 21600.")


def _validate_modal(data: dict[str, Any]) -> None:
    _length(data.get("title"), "data.title", 1, 45)
    _length(data.get("custom_id"), "data.custom_id", 1, 100)
    rows = data.get("components") or []
    if not 1 <= len(rows) <= 5:
        raise invalid_form("data.components", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
    for index, row in enumerate(rows):
        inputs = [row["component"]] if row.get("type") == 18 else row.get("components", [])
        for text_input in inputs:
            if text_input.get("type") == 4:
                _length(text_input.get("custom_id"), f"data.components.{index}.custom_id", 1, 100)
                label = row.get("label") if row.get("type") == 18 else text_input.get("label")
                _length(label, f"data.components.{index}.label", 1, 45)
                if text_input.get("value") is not None and len(text_input["value"]) > text_input.get(
                        "max_length", 4000):
                    raise invalid_form(f"data.components.{index}.value", "BASE_TYPE_MAX_LENGTH",
                                       "The pre-filled value is longer than max_length.")
