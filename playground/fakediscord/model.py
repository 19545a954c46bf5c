"""The fake Discord's world: users, guilds, roles, channels, messages, and permissions.

Plain data with ``payload()`` methods that produce what Discord's API v10
sends, with the fields discord.py 2.7 requires (see tests/README.md).
"""

from __future__ import annotations

import itertools
import mimetypes
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1420070400000
LARGE_THRESHOLD = 250     # members past which GUILD_CREATE leaves them out (discord.py's IDENTIFY asks for 250)
MEMBERS_CHUNK = 1000      # members in one GUILD_MEMBERS_CHUNK, as Discord sends them
# Seconds between two chunks of one request. Discord paces them: about 10,000 members a second for a large
# server (discord.py waits "~33 seconds to send all chunks" of a 330,000-member server: pull request 7932).
MEMBERS_CHUNK_EVERY = 0.1
ACTIVE_THREAD_CAP = 1000  # active (not archived) threads a server may hold, every kind counted (else 400/160006)
_increment = itertools.count(1)


def snowflake(at: float | None = None) -> int:
    """A Discord id whose timestamp is ``at`` (seconds since the Unix epoch, default now)."""
    moment_ms = int((time.time() if at is None else at) * 1000)
    return ((moment_ms - DISCORD_EPOCH_MS) << 22) | (next(_increment) % 4096)


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard whose gateway session receives a server's events, by Discord's formula."""
    return (guild_id >> 22) % shard_count


def snowflake_on_shard(shard_id: int, shard_count: int) -> int:
    """A new server id that falls on shard ``shard_id`` of ``shard_count``: its timestamp is moved back by less
    than ``shard_count`` milliseconds, which keeps it unique (the increment bits stay)."""
    if not 0 <= shard_id < shard_count:
        raise ValueError(f"no shard {shard_id} among {shard_count}")
    made = snowflake()
    return made - (((shard_of(made, shard_count) - shard_id) % shard_count) << 22)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class ChannelType:
    TEXT = 0
    DM = 1
    VOICE = 2
    CATEGORY = 4
    ANNOUNCEMENT = 5
    ANNOUNCEMENT_THREAD = 10
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12
    STAGE = 13
    FORUM = 15
    MEDIA = 16
    THREADS = frozenset({ANNOUNCEMENT_THREAD, PUBLIC_THREAD, PRIVATE_THREAD})


class Perm:
    """Permission bits (https://discord.com/developers/docs/topics/permissions)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    SEND_TTS_MESSAGES = 1 << 12
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_APPLICATION_COMMANDS = 1 << 31
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    SEND_MESSAGES_IN_THREADS = 1 << 38
    ALL = (1 << 53) - 1
    # What @everyone gets in a new server.
    EVERYONE_DEFAULT = (
        CREATE_INSTANT_INVITE | ADD_REACTIONS | VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES
        | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS | CREATE_PUBLIC_THREADS | CREATE_PRIVATE_THREADS
        | SEND_MESSAGES_IN_THREADS
    )


@dataclass
class User:
    id: int
    username: str
    bot: bool = False
    global_name: str | None = None
    dm_open: bool = True
    locale: str = "en-US"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
        }


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": False,
            "flags": 0,
        }


@dataclass
class Overwrite:
    id: int
    type: int  # 0 role, 1 member
    allow: int = 0
    deny: int = 0

    def payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "type": self.type, "allow": str(self.allow), "deny": str(self.deny)}


@dataclass
class Member:
    user: User
    guild: Guild
    role_ids: list[int] = field(default_factory=list)
    joined_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    nick: str | None = None

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.role_ids],
            "joined_at": iso(self.joined_at),
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "premium_since": None,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass
class Emoji:
    """A server's custom emoji; ``reaction`` is how the API names it in a reaction's path (``name:id``)."""

    id: int
    name: str

    @property
    def reaction(self) -> str:
        return f"{self.name}:{self.id}"

    def payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "name": self.name, "roles": [], "require_colons": True, "managed": False,
                "animated": False, "available": True}


@dataclass
class ForumTag:
    id: int
    name: str
    moderated: bool = False

    def payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "name": self.name, "moderated": self.moderated,
                "emoji_id": None, "emoji_name": None}


@dataclass
class Channel:
    id: int
    type: int
    name: str
    guild: Guild | None = None
    position: int = 0
    parent_id: int | None = None
    overwrites: list[Overwrite] = field(default_factory=list)
    topic: str | None = None
    available_tags: list[ForumTag] = field(default_factory=list)
    flags: int = 0
    recipients: list[User] = field(default_factory=list)  # DM channels
    last_message_id: int | None = None
    rate_limit_per_user: int = 0
    # Threads only: who started it, who is in it (user id -> when they joined), its tags and counters.
    owner_id: int | None = None
    thread_members: dict[int, datetime] = field(default_factory=dict)
    applied_tags: list[int] = field(default_factory=list)
    archived: bool = False
    archive_timestamp: datetime | None = None  # when ``archived`` last changed (None: never, so its creation)
    locked: bool = False  # only MANAGE_THREADS may write in it or unarchive it
    auto_archive_duration: int = 1440
    invitable: bool = True  # private threads: whether non-moderators may add others
    message_count: int = 0  # messages in the thread, not counting a forum post's starter, minus deleted ones
    total_message_sent: int = 0  # the same, but never decremented
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    REQUIRE_TAG = 1 << 4

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    @property
    def is_thread(self) -> bool:
        return self.type in ChannelType.THREADS

    def thread_member(self, user_id: int) -> dict[str, Any] | None:
        """The thread member object for ``user_id``, if they are in this thread."""
        joined = self.thread_members.get(user_id)
        if joined is None:
            return None
        return {"id": str(self.id), "user_id": str(user_id), "join_timestamp": iso(joined), "flags": 0}

    def payload(self, *, me: int | None = None) -> dict[str, Any]:
        """The channel object. For a thread, ``me`` (the user asking) adds their thread member object when
        they are in it, as Discord does on GET /channels, GUILD_CREATE and THREAD_CREATE."""
        if self.is_thread:
            return self._thread_payload(me)
        if self.type == ChannelType.DM:
            return {
                "id": str(self.id),
                "type": self.type,
                "last_message_id": str(self.last_message_id) if self.last_message_id else None,
                "recipients": [u.payload() for u in self.recipients],
                "flags": 0,
            }
        assert self.guild is not None
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild.id),
            "name": self.name,
            "position": self.position,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "permission_overwrites": [o.payload() for o in self.overwrites],
            "nsfw": False,
            "topic": self.topic,
            "last_message_id": str(self.last_message_id) if self.last_message_id else None,
            "rate_limit_per_user": self.rate_limit_per_user,
            "flags": self.flags,
        }
        if self.type in (ChannelType.VOICE, ChannelType.STAGE):
            data.update(bitrate=64000, user_limit=0, rtc_region=None, video_quality_mode=1)
        if self.type in (ChannelType.FORUM, ChannelType.MEDIA):
            data.update(
                available_tags=[t.payload() for t in self.available_tags],
                default_reaction_emoji=None,
                default_thread_rate_limit_per_user=0,
                default_sort_order=None,
                default_forum_layout=0,
                default_auto_archive_duration=1440,
            )
        return data

    def _thread_payload(self, me: int | None) -> dict[str, Any]:
        """A thread has no position, topic or overwrites of its own (it inherits its parent's permissions);
        discord.py's Thread requires ``owner_id``, ``parent_id``, ``message_count``, ``member_count`` and
        ``thread_metadata``."""
        assert self.guild is not None and self.parent_id is not None and self.owner_id is not None
        metadata: dict[str, Any] = {
            "archived": self.archived,
            "auto_archive_duration": self.auto_archive_duration,
            "archive_timestamp": iso(self.archive_timestamp or self.created_at),
            "locked": self.locked,
            "create_timestamp": iso(self.created_at),
        }
        if self.type == ChannelType.PRIVATE_THREAD:
            metadata["invitable"] = self.invitable
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild.id),
            "parent_id": str(self.parent_id),
            "owner_id": str(self.owner_id),
            "name": self.name,
            "last_message_id": str(self.last_message_id) if self.last_message_id else None,
            "rate_limit_per_user": self.rate_limit_per_user,
            "flags": self.flags,
            "member_count": min(len(self.thread_members), 50),  # Discord stops counting at 50
            "message_count": self.message_count,
            "total_message_sent": self.total_message_sent,
            "thread_metadata": metadata,
        }
        parent = self.guild.channels.get(self.parent_id)
        if parent is not None and parent.type in (ChannelType.FORUM, ChannelType.MEDIA):
            data["applied_tags"] = [str(t) for t in self.applied_tags]
        member = self.thread_member(me) if me is not None else None
        if member is not None:
            data["member"] = member
        return data


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    preferred_locale: str = "en-US"
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    emojis: list[Emoji] = field(default_factory=list)
    thread_cap: int = ACTIVE_THREAD_CAP  # at most this many active threads (see ``active_thread_count``)

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]

    @property
    def active_thread_count(self) -> int:
        """Threads not archived, of every kind and whoever can see them: what Discord's cap counts."""
        return sum(1 for c in self.channels.values() if c.is_thread and not c.archived)

    def channel_named(self, name: str) -> Channel:
        for channel in self.channels.values():
            if channel.name == name:
                return channel
        raise KeyError(f"no channel named {name!r} in {self.name}")

    def role_named(self, name: str) -> Role:
        for role in self.roles.values():
            if role.name == name:
                return role
        raise KeyError(f"no role named {name!r} in {self.name}")

    def base_permissions(self, member: Member) -> int:
        if member.id == self.owner_id:
            return Perm.ALL
        perms = self.everyone.permissions
        for role_id in member.role_ids:
            perms |= self.roles[role_id].permissions
        return Perm.ALL if perms & Perm.ADMINISTRATOR else perms

    def permissions_in(self, member: Member, channel: Channel) -> int:
        """Discord's algorithm: base permissions, then @everyone, role and member overwrites. A thread has
        its parent's permissions, and a private thread is seen only by its members and by moderators
        (MANAGE_THREADS)."""
        perms = self.base_permissions(member)
        if perms & Perm.ADMINISTRATOR or perms == Perm.ALL:
            return Perm.ALL
        if channel.is_thread and channel.parent_id is not None:
            thread, channel = channel, self.channels[channel.parent_id]
            perms = self.permissions_in(member, channel)
            if thread.type == ChannelType.PRIVATE_THREAD and member.id not in thread.thread_members \
                    and not perms & Perm.MANAGE_THREADS:
                return 0
            return perms
        by_id = {o.id: o for o in channel.overwrites}
        everyone = by_id.get(self.id)
        if everyone:
            perms = (perms & ~everyone.deny) | everyone.allow
        allow = deny = 0
        for role_id in member.role_ids:
            overwrite = by_id.get(role_id)
            if overwrite and overwrite.type == 0:
                allow |= overwrite.allow
                deny |= overwrite.deny
        perms = (perms & ~deny) | allow
        own = by_id.get(member.id)
        if own and own.type == 1:
            perms = (perms & ~own.deny) | own.allow
        if not perms & Perm.VIEW_CHANNEL:
            return 0
        if not perms & Perm.SEND_MESSAGES:
            # Discord's implicit denials: no sending means none of what rides on a message.
            perms &= ~(Perm.EMBED_LINKS | Perm.ATTACH_FILES | Perm.MENTION_EVERYONE | Perm.SEND_TTS_MESSAGES)
        return perms

    def active_threads(self, member: Member) -> list[Channel]:
        """Threads not archived that ``member`` can see, oldest first."""
        return sorted((c for c in self.channels.values() if c.is_thread and not c.archived
                       and self.permissions_in(member, c) & Perm.VIEW_CHANNEL), key=lambda c: c.id)

    def payload(self, viewer: Member | None = None) -> dict[str, Any]:
        """The guild object; with ``viewer`` (the bot, for GUILD_CREATE) its ``threads`` are the active ones the
        viewer can see, each with the viewer's thread member object when it is in the thread. A large server
        (more than ``LARGE_THRESHOLD`` members, as discord.py's IDENTIFY asks) is sent with the viewer alone
        among its members, as Discord does for a bot without the presences intent: the rest come as chunks of
        1,000 when asked for (REQUEST_GUILD_MEMBERS)."""
        threads = self.active_threads(viewer) if viewer is not None else [
            c for c in self.channels.values() if c.is_thread and not c.archived]
        large = len(self.members) > LARGE_THRESHOLD
        members = [viewer] if large and viewer is not None else [] if large else list(self.members.values())
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "preferred_locale": self.preferred_locale,
            "features": ["COMMUNITY"] if any(c.type == ChannelType.FORUM for c in self.channels.values()) else [],
            "roles": [r.payload() for r in self.roles.values()],
            "emojis": [e.payload() for e in self.emojis],
            "stickers": [],
            "joined_at": iso(datetime.now(UTC)),
            "large": large,
            "unavailable": False,
            # discord.py asks for member chunks unless the count matches what is sent.
            "member_count": len(self.members),
            "members": [m.payload() for m in members],
            "channels": [c.payload() for c in self.channels.values() if not c.is_thread],
            "threads": [t.payload(me=viewer.id if viewer else None) for t in threads],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass
class Attachment:
    """A file on a message, as uploaded; ``url`` is where the fake serves it (see ``FakeDiscord``)."""

    id: int
    filename: str
    content: bytes
    url: str
    description: str | None = None

    @property
    def content_type(self) -> str | None:
        guessed, _ = mimetypes.guess_type(self.filename)
        if guessed is None:
            return None
        # Discord names the character set of the text files it stores.
        return f"{guessed}; charset=utf-8" if guessed.startswith("text/") or guessed == "application/json" \
            else guessed

    def payload(self, *, ephemeral: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id), "filename": self.filename, "size": len(self.content),
            "url": self.url, "proxy_url": self.url,
        }
        if self.content_type is not None:
            data["content_type"] = self.content_type
        if self.description is not None:
            data["description"] = self.description
        if ephemeral:
            data["ephemeral"] = True
        return data


def reaction_emoji(key: str) -> dict[str, Any]:
    """The partial emoji of a reaction key: a unicode emoji, or a custom one as ``name:id``."""
    name, _, emoji_id = key.rpartition(":")
    if name and emoji_id.isdigit():
        return {"id": emoji_id, "name": name}
    return {"id": None, "name": key}


@dataclass
class Message:
    """A message as Discord stores it; ``payload()`` is what the API returns to ``viewer`` (the bot)."""

    id: int
    channel: Channel
    author: User
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    allowed_mentions: dict[str, Any] | None = None
    files: list[Attachment] = field(default_factory=list)
    interaction_id: int | None = None
    webhook_id: int | None = None
    message_reference: dict[str, Any] | None = None
    replied_to: Message | None = None  # a reply's message, resolved when it was sent
    edited: bool = False
    deleted: bool = False
    mentions: list[int] = field(default_factory=list)  # users actually pinged
    mention_roles: list[int] = field(default_factory=list)
    mention_everyone: bool = False
    reactions: dict[str, set[int]] = field(default_factory=dict)  # emoji (unicode, or name:id) -> user ids
    viewer: int | None = None  # whom the API answers: decides each reaction's `me`
    nonce: str | None = None  # as the sender gave it; Discord shows it on the message it answers the send with

    HAS_THREAD = 1 << 5
    EPHEMERAL = 1 << 6
    LOADING = 1 << 7

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & self.EPHEMERAL)

    @property
    def text(self) -> str:
        """Content and embed texts in one string, for assertions."""
        parts = [self.content]
        for embed in self.embeds:
            parts.extend(str(embed.get(key, "")) for key in ("title", "description"))
            for item in embed.get("fields", []):
                parts.extend((str(item.get("name", "")), str(item.get("value", ""))))
            if "footer" in embed:
                parts.append(str(embed["footer"].get("text", "")))
        return "\n".join(p for p in parts if p)

    @property
    def attachments(self) -> list[tuple[str, bytes]]:
        """The files on the message, as (filename, content)."""
        return [(f.filename, f.content) for f in self.files]

    def _interactive(self) -> list[dict[str, Any]]:
        """Every component with a custom id, in order, wherever it nests (action rows, sections, containers)."""
        found: list[dict[str, Any]] = []

        def walk(items: list[dict[str, Any]]) -> None:
            for item in items:
                if "custom_id" in item:
                    found.append(item)
                walk(item.get("components", []))
                if "component" in item:
                    walk([item["component"]])
                if "accessory" in item:
                    walk([item["accessory"]])

        walk(self.components)
        return found

    @property
    def custom_ids(self) -> list[str]:
        return [item["custom_id"] for item in self._interactive()]

    def component(self, custom_id: str) -> dict[str, Any]:
        """The component (button, select) with ``custom_id``; AssertionError when the message has none."""
        found = next((item for item in self._interactive() if item["custom_id"] == custom_id), None)
        if found is None:
            raise AssertionError(f"message {self.id} has no component {custom_id!r}: {self.custom_ids}")
        return found

    def payload(self, *, nested: bool = False) -> dict[str, Any]:
        """The message object; ``nested`` for the ``referenced_message`` inside a reply (which nests no further)."""
        guild = self.channel.guild
        mentioned = []
        for user_id in self.mentions:
            member = guild.members.get(user_id) if guild else None
            if member is not None:
                mentioned.append({**member.user.payload(), "member": member.payload(with_user=False)})
        data: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel.id),
            "type": 0 if self.message_reference is None else 19,
            "author": self.author.payload(),
            "content": self.content,
            "timestamp": iso(datetime.fromtimestamp(((self.id >> 22) + DISCORD_EPOCH_MS) / 1000, UTC)),
            "edited_timestamp": iso(datetime.now(UTC)) if self.edited else None,
            "tts": False,
            "mention_everyone": self.mention_everyone,
            "mentions": mentioned,
            "mention_roles": [str(r) for r in self.mention_roles],
            "attachments": [f.payload(ephemeral=self.ephemeral) for f in self.files],
            "embeds": self.embeds,
            "components": self.components,
            "pinned": False,
            "flags": self.flags,
        }
        if guild is not None:
            data["guild_id"] = str(guild.id)
            # A thread started from this message shares its id; Discord shows it on the message.
            thread = guild.channels.get(self.id)
            if thread is not None and thread.is_thread and thread.parent_id == self.channel.id:
                data["thread"] = thread.payload()
                data["flags"] |= self.HAS_THREAD
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
        if self.nonce is not None:
            data["nonce"] = self.nonce
        if self.reactions:
            data["reactions"] = [{
                "count": len(users), "count_details": {"burst": 0, "normal": len(users)},
                "me": self.viewer in users, "me_burst": False, "burst_colors": [], "emoji": reaction_emoji(key),
            } for key, users in self.reactions.items()]
        if self.message_reference is not None:
            data["message_reference"] = self.message_reference
            if not nested and self.replied_to is not None:
                # null once the replied-to message is deleted, as Discord shows it
                data["referenced_message"] = None if self.replied_to.deleted else self.replied_to.payload(nested=True)
        return data
