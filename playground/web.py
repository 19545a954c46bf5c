"""The playground's page: JSON over the local Discord, as one person sees it, and what they do there.

The page (``playground/static``: plain HTML, CSS and a script) asks for a *view*: the channels, threads,
messages and DMs that the person it acts as can see, filtered here, on the server (a private thread they
are not in, another member's ephemeral reply and another member's DMs never leave it). What the person does
(a slash command, autocomplete, a button, a select, a form, a user command, a message) goes to the local
Discord as that member's client would send it, in the language picked on the page, and the bot answers as
it answers Discord. ``/api/events`` (server-sent events) tells the page when the local Discord changed, so it
asks again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from playground import community
from playground.fakediscord import (
    Channel,
    ChannelType,
    CommandNotAvailable,
    FakeDiscord,
    Guild,
    Interaction,
    Member,
    Message,
    Perm,
    Role,
    User,
)
from playground.session import Playground

STATIC: Final = Path(__file__).resolve().parent / "static"
LANGUAGES: Final = ("en", "ja")
# What "advance" offers besides the next prompt and the next round: a round's follow-up comes
# follow_up_days (5 by default) after it.
STEPS: Final = {"hour": timedelta(hours=1), "day": timedelta(days=1), "follow-up": timedelta(days=5)}
ANSWER_WAIT: Final = 4.0        # Discord gives the bot 3 s to answer an interaction
# Discord answers a form's opening before discord.py files the form away: a submit sent sooner is lost.
FORM_SETTLE: Final = community.FORM_SETTLE
KEEPALIVE: Final = 15.0         # seconds between comments on an idle event stream
COALESCE: Final = 0.1           # a burst of changes (a round's delivery) makes one refresh
TOKEN: Final = re.compile(r"<@!?(\d+)>|<@&(\d+)>|<#(\d+)>|<t:(-?\d+)(?::([tTdDfFR]))?>|@(everyone|here)\b")
OPTION_TYPES: Final = {3: "string", 4: "integer", 5: "boolean", 6: "user", 7: "channel", 8: "role",
                       9: "mentionable", 10: "number", 11: "attachment"}
INLINE_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
SECURITY_HEADERS: Final = {
    # Every text is put in the page as text by the script; this is the second lock on the door.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refused(Exception):
    """What the Discord client itself would refuse (an option it does not take, a command the member may
    not use): shown on the page, nothing sent to the bot."""


def locale_for(user: User, language: str) -> str:
    """The client locale a member's interactions carry when the page speaks ``language``: their own when it
    is of that language, else the language's main one."""
    if language == "ja":
        return "ja"
    return user.locale if user.locale.startswith("en") else "en-US"


def language_of(user: User) -> str:
    return "ja" if user.locale.startswith("ja") else "en"


class PlaygroundPage:
    """The page's backend over one running :class:`Playground`."""

    def __init__(self, playground: Playground, *, allowed_hosts: Iterable[str] | None = None) -> None:
        self.playground = playground
        self.discord: FakeDiscord = playground.discord
        self.guild: Guild = playground.community.guild
        # None: any Host header (--allow-remote); else the names the page is served under (DNS rebinding).
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.version = 0
        self._tick = asyncio.Event()
        self._closing = False
        self._seen_at: dict[int, datetime] = {}
        self._opened_at: dict[int, float] = {}   # modal interactions: when the form was shown
        # Ephemeral replies live in the client that asked, until it reloads: those of the community's setup
        # (the admin's /config, the members' forms) were seen in sessions before this page.
        self._ephemeral_since = max(self.discord.messages, default=0)
        self._stamp()
        self.discord.listeners.append(self._changed)

    # ------------------------------------------------------------------ the app

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=1024 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_static("/static/", STATIC, show_index=False)
        get, post = app.router.add_get, app.router.add_post
        get("/api/world", self._world)
        get("/api/view", self._view)
        get("/api/commands", self._commands)
        get("/api/events", self._events)
        get("/api/attachment/{message}/{attachment}", self._attachment)
        post("/api/slash", self._slash)
        post("/api/autocomplete", self._autocomplete)
        post("/api/user-command", self._user_command)
        post("/api/click", self._click)
        post("/api/select", self._select)
        post("/api/submit", self._submit)
        post("/api/message", self._message)
        post("/api/clock", self._clock)
        return app

    def close(self) -> None:
        """End the event streams (a server shutting down waits for open requests)."""
        self._closing = True
        self._bump()
        with contextlib.suppress(ValueError):
            self.discord.listeners.remove(self._changed)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.allowed_hosts is not None and request.host.lower() not in self.allowed_hosts:
            # A page on another site that made its name point here (DNS rebinding) gets nothing.
            return web.Response(status=421, text="This playground answers only at the address it printed.")
        if request.method == "POST" and request.content_type != "application/json":
            # Only this page's script sends JSON; a form on another site cannot without asking first (CORS).
            return web.json_response({"error": "JSON only"}, status=415)
        try:
            response = await handler(request)
        except Refused as refused:
            response = web.json_response({"error": str(refused)}, status=400)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Content-Type": "text/html; charset=utf-8"})

    # ------------------------------------------------------------------ changes

    def _changed(self) -> None:
        self._stamp()
        self._bump()

    def _bump(self) -> None:
        self.version += 1
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def _stamp(self) -> None:
        """When each message appeared, on the playground's clock (its ids carry the machine's time)."""
        now = self.playground.clock.now()
        for message_id in list(self.discord.messages)[len(self._seen_at):]:
            self._seen_at.setdefault(message_id, now)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        sent = -1
        try:
            while not self._closing:
                tick = self._tick
                if self.version != sent:
                    sent = self.version
                    await response.write(f"event: change\ndata: {sent}\n\n".encode())
                    await asyncio.sleep(COALESCE)
                    continue
                try:
                    await asyncio.wait_for(tick.wait(), KEEPALIVE)
                except TimeoutError:
                    await response.write(b": still here\n\n")
        except ConnectionError:   # the page went away
            pass
        return response

    # ------------------------------------------------------------------ who is asking

    def _person(self, member_id: Any) -> Member:
        try:
            member = self.guild.members[int(member_id)]
        except (TypeError, ValueError, KeyError):
            raise Refused("no such member") from None
        if member.user.bot:
            raise Refused("the page acts as a member, not as a bot")
        return member

    def _asker(self, values: dict[str, Any]) -> tuple[Member, str]:
        member = self._person(values.get("as") or self.guild.owner_id)
        language = values.get("lang") or language_of(member.user)
        if language not in LANGUAGES:
            raise Refused("language: en or ja")
        return member, str(language)

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise Refused("not JSON") from None
        if not isinstance(body, dict):
            raise Refused("expected an object")
        return body

    def _is_admin(self, member: Member) -> bool:
        return bool(self.guild.base_permissions(member) & (Perm.MANAGE_GUILD | Perm.ADMINISTRATOR))

    def _name(self, user: User) -> str:
        member = self.guild.members.get(user.id)
        if member is not None and member.nick:
            return member.nick
        return user.global_name or user.username

    def _sees(self, member: Member, channel: Channel) -> bool:
        if channel.type == ChannelType.DM:
            return channel.recipients[0].id == member.id
        if channel.guild is None or channel.guild.id != self.guild.id:
            return False
        return bool(self.guild.permissions_in(member, channel) & Perm.VIEW_CHANNEL)

    def _channel(self, member: Member, channel_id: Any) -> Channel:
        """A channel ``member`` can see: a server channel or thread, or ``dm`` (their DMs with the bot)."""
        if channel_id == "dm":
            dm = self.discord.dm_channel(member.user)
            if dm is None:
                raise Refused("no direct messages yet")
            return dm
        try:
            channel = self.discord.channels[int(channel_id)]
        except (TypeError, ValueError, KeyError):
            raise Refused("no such channel") from None
        if not self._sees(member, channel):
            raise Refused("no such channel")
        return channel

    def _visible(self, member: Member, message: Message) -> bool:
        """Whether ``member`` sees ``message``: in a channel they see, and, ephemeral, an answer to them."""
        if message.deleted or not self._sees(member, message.channel):
            return False
        if not message.ephemeral:
            return True
        if message.id <= self._ephemeral_since:
            return False
        interaction = self.discord.interactions.get(message.interaction_id or 0)
        return interaction is not None and interaction.user.id == member.id

    # ------------------------------------------------------------------ reading

    async def _world(self, request: web.Request) -> web.StreamResponse:
        """The server and everyone on it: the "you are" picker and the member list."""
        introduced: set[int] = set()
        bot = self.playground.runner.bot
        if bot is not None:
            introduced = {p.user_id for p in await bot.intros.active_profiles(self.guild.id)}
        people: list[dict[str, Any]] = []
        for member in self.guild.members.values():
            if member.user.bot:
                continue
            people.append({"id": str(member.id), "name": self._name(member.user), "admin": self._is_admin(member),
                           "introduced": member.id in introduced, "language": language_of(member.user)})
        people.sort(key=lambda p: (not p["admin"], not p["introduced"], str(p["name"]).casefold()))
        return web.json_response({
            "server": self.guild.name, "timezone": community.TIMEZONE, "admin": str(self.guild.owner_id),
            "people": people, "bot": {"id": str(self.discord.bot_user.id), "name": self._name(self.discord.bot_user)},
        })

    async def _view(self, request: web.Request) -> web.StreamResponse:
        member, language = self._asker(dict(request.query))
        channels = self._channel_list(member)
        dm = self.discord.dm_channel(member.user)
        dm_count = 0 if dm is None else sum(1 for m in self.discord.messages.values()
                                            if m.channel.id == dm.id and self._visible(member, m))
        wanted = request.query.get("channel") or ""
        try:
            channel = self._channel(member, wanted) if wanted else None
        except Refused:
            channel = None
        if channel is None and wanted != "dm":
            channel = next((self.discord.channels[int(c["id"])] for c in channels if c["kind"] == "text"), None)
        data: dict[str, Any] = {
            "version": self.version, "now": self.playground.clock.now().isoformat(),
            "me": {"id": str(member.id), "name": self._name(member.user), "admin": self._is_admin(member),
                   "language": language},
            "channels": channels, "dm": {"count": dm_count},
            "channel": None, "messages": [], "posts": [],
        }
        if channel is None and wanted == "dm":   # no DMs yet: an empty conversation with the bot
            data["channel"] = self._dm_info()
        if channel is not None:
            data["channel"] = self._channel_info(member, channel)
            if channel.type in (ChannelType.FORUM, ChannelType.MEDIA):
                data["posts"] = [self._post(member, t) for t in reversed(self.discord.threads(channel))
                                 if self._sees(member, t)]
            else:
                data["messages"] = [self._message_data(member, m) for m in self.discord.messages.values()
                                    if m.channel.id == channel.id and self._visible(member, m)]
        return web.json_response(data)

    def _kind(self, channel: Channel) -> str:
        if channel.type == ChannelType.DM:
            return "dm"
        if channel.type in (ChannelType.FORUM, ChannelType.MEDIA):
            return "forum"
        if channel.type == ChannelType.PRIVATE_THREAD:
            return "private"
        if channel.is_thread:
            parent = self.guild.channels.get(channel.parent_id or 0)
            return "post" if parent is not None and parent.type in (ChannelType.FORUM, ChannelType.MEDIA) \
                else "thread"
        if channel.type in (ChannelType.TEXT, ChannelType.ANNOUNCEMENT):
            return "text"
        return "other"

    def _channel_list(self, member: Member) -> list[dict[str, Any]]:
        """The sidebar: text channels and forums in order, each followed by the threads and posts under it that
        ``member`` can see."""
        listed = []
        tops = sorted((c for c in self.guild.channels.values() if not c.is_thread), key=lambda c: c.position)
        for channel in tops:
            kind = self._kind(channel)
            if kind not in ("text", "forum") or not self._sees(member, channel):
                continue
            listed.append({"id": str(channel.id), "name": channel.name, "kind": kind, "parent": None,
                           "archived": False})
            for thread in self.discord.threads(channel):
                if self._sees(member, thread):
                    listed.append({"id": str(thread.id), "name": thread.name, "kind": self._kind(thread),
                                   "parent": str(channel.id), "archived": thread.archived})
        return listed

    def _channel_info(self, member: Member, channel: Channel) -> dict[str, Any]:
        kind = self._kind(channel)
        if kind == "dm":
            return self._dm_info()
        granted = self.guild.permissions_in(member, channel)
        needed = Perm.SEND_MESSAGES_IN_THREADS if channel.is_thread else Perm.SEND_MESSAGES
        parent = self.guild.channels.get(channel.parent_id or 0)
        tags = {t.id: t.name for t in parent.available_tags} if parent is not None else {}
        return {
            "id": str(channel.id), "name": channel.name, "kind": kind,
            "parent": None if parent is None else {"id": str(parent.id), "name": parent.name},
            "canWrite": kind != "forum" and bool(granted & needed) and not (channel.locked and not
                                                                            granted & Perm.MANAGE_THREADS),
            "canCommand": kind != "forum", "archived": channel.archived,
            "tags": [tags[t] for t in channel.applied_tags if t in tags],
        }

    def _dm_info(self) -> dict[str, Any]:
        """A member's DMs with the bot: they read and press buttons there; the commands are the server's."""
        return {"id": "dm", "name": self._name(self.discord.bot_user), "kind": "dm", "parent": None,
                "canWrite": False, "canCommand": False, "tags": []}

    def _post(self, member: Member, thread: Channel) -> dict[str, Any]:
        starter = self.discord.messages.get(thread.id)
        parent = self.guild.channels.get(thread.parent_id or 0)
        tags = {t.id: t.name for t in parent.available_tags} if parent is not None else {}
        excerpt = ""
        if starter is not None and not starter.deleted:
            excerpt = starter.content or next((str(e.get("description") or e.get("title") or "")
                                               for e in starter.embeds), "")
        return {"id": str(thread.id), "name": thread.name, "count": thread.message_count,
                "tags": [tags[t] for t in thread.applied_tags if t in tags], "archived": thread.archived,
                "author": self._name(self.discord.users[thread.owner_id]) if thread.owner_id in self.discord.users
                else "", "excerpt": self._segments(excerpt[:300]),
                "time": self._seen_at.get(thread.id, self.playground.clock.now()).isoformat()}

    def _segments(self, text: str) -> list[dict[str, Any]]:
        """Text with Discord's markup resolved: ``<@id>`` to the member's name, ``<#id>`` to the channel's,
        ``<t:…>`` to a moment; the page renders every piece as text."""
        pieces: list[dict[str, Any]] = []
        at = 0
        for match in TOKEN.finditer(text):
            if match.start() > at:
                pieces.append({"t": "text", "v": text[at:match.start()]})
            user, role, channel, moment, style, everyone = match.groups()
            if user:
                known = self.discord.users.get(int(user))
                pieces.append({"t": "user", "v": self._name(known) if known else "unknown-user", "id": user})
            elif role:
                found = self.guild.roles.get(int(role))
                pieces.append({"t": "role", "v": found.name if found else "deleted-role"})
            elif channel:
                target = self.discord.channels.get(int(channel))
                pieces.append({"t": "channel", "v": target.name if target else "unknown", "id": channel})
            elif moment:
                pieces.append({"t": "time", "v": int(moment), "style": style or "f"})
            else:
                pieces.append({"t": "text", "v": f"@{everyone}"})
            at = match.end()
        if at < len(text):
            pieces.append({"t": "text", "v": text[at:]})
        return pieces

    def _embed(self, embed: dict[str, Any]) -> dict[str, Any]:
        color = embed.get("color")
        return {
            "title": str(embed.get("title") or ""), "url": str(embed.get("url") or ""),
            "description": self._segments(str(embed.get("description") or "")),
            "color": f"#{color:06x}" if isinstance(color, int) else "",
            "author": str((embed.get("author") or {}).get("name") or ""),
            "fields": [{"name": str(f.get("name") or ""), "value": self._segments(str(f.get("value") or "")),
                        "inline": bool(f.get("inline"))} for f in embed.get("fields") or []],
            "footer": str((embed.get("footer") or {}).get("text") or ""),
        }

    def _message_data(self, member: Member, message: Message) -> dict[str, Any]:
        author = message.author
        data: dict[str, Any] = {
            "id": str(message.id),
            "author": {"id": str(author.id), "name": self._name(author), "bot": author.bot},
            "time": self._seen_at.get(message.id, self.playground.clock.now()).isoformat(),
            "content": self._segments(message.content),
            "embeds": [self._embed(e) for e in message.embeds],
            "components": message.components,
            "attachments": [{"id": str(f.id), "filename": f.filename, "size": len(f.content),
                             "url": f"/api/attachment/{message.id}/{f.id}",
                             "image": (f.content_type or "").split(";")[0] in INLINE_TYPES} for f in message.files],
            "ephemeral": message.ephemeral,
            "loading": bool(message.flags & Message.LOADING),
            "edited": message.edited and not self._completes_defer(message),
            "reactions": [{"emoji": key if ":" not in key else f":{key.split(':')[0]}:", "count": len(users),
                           "me": member.id in users} for key, users in message.reactions.items()],
            "thread": None, "used": None, "reply": None,
        }
        thread = self.discord.channels.get(message.id)
        if thread is not None and thread.is_thread and thread.id != message.channel.id and self._sees(member, thread):
            data["thread"] = {"id": str(thread.id), "name": thread.name, "count": thread.message_count}
        interaction = self.discord.interactions.get(message.interaction_id or 0)
        if interaction is not None and interaction.type == 2 and interaction.original is message:
            # The command's answer, ephemeral or not, says who used which command (a follow-up does not).
            command = interaction.payload["data"]
            path = [command["name"]]
            options = command.get("options", [])
            while options and options[0].get("type") in (1, 2):
                path.append(options[0]["name"])
                options = options[0].get("options", [])
            data["used"] = {"name": self._name(interaction.user),
                            "command": "/" + " ".join(path) if command.get("type", 1) == 1 else path[0]}
        replied = message.replied_to
        if replied is not None:
            data["reply"] = {"name": self._name(replied.author),
                             "excerpt": "" if replied.deleted else replied.content[:100]}
        data["rev"] = hashlib.sha1(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]
        return data

    def _completes_defer(self, message: Message) -> bool:
        """The answer to a deferred interaction ("thinking…"), which the bot's follow-up filled in: Discord shows
        it as the answer, not as an edit (a later edit of it cannot be told apart, and shows no mark either)."""
        interaction = self.discord.interactions.get(message.interaction_id or 0)
        return interaction is not None and interaction.original is message and interaction.callback_type == 5

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        member, _ = self._asker(dict(request.query))
        try:
            message = self.discord.messages[int(request.match_info["message"])]
        except (ValueError, KeyError):
            raise web.HTTPNotFound() from None
        if not self._visible(member, message):
            raise web.HTTPNotFound()
        found = next((f for f in message.files if str(f.id) == request.match_info["attachment"]), None)
        if found is None:
            raise web.HTTPNotFound()
        kind = (found.content_type or "application/octet-stream")
        inline = kind.split(";")[0] in INLINE_TYPES
        safe_name = re.sub(r'[^\w.\-]', "_", found.filename)
        return web.Response(body=found.content, headers={
            "Content-Type": kind,
            "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{safe_name}"'})

    # ------------------------------------------------------------------ commands

    def _where(self, member: Member, channel_id: Any) -> Channel:
        """Where a command runs: the channel on the page, or, from DMs or a forum's list, the first text channel
        (Discord runs the server's commands in a server channel)."""
        with contextlib.suppress(Refused):
            channel = self._channel(member, channel_id)
            if channel.type != ChannelType.DM and channel.type not in (ChannelType.FORUM, ChannelType.MEDIA):
                return channel
        return next(c for c in sorted(self.guild.channels.values(), key=lambda c: c.position)
                    if c.type == ChannelType.TEXT and self._sees(member, c))

    def _may_use(self, member: Member, channel: Channel, command: dict[str, Any]) -> bool:
        # The local Discord's own rule (default_member_permissions, the server's overrides), as the client hides.
        return self.discord._may_use(member, channel, command)

    async def _commands(self, request: web.Request) -> web.StreamResponse:
        """What the member's client offers: the commands the bot synced, in the page's language, the ones the
        member may use."""
        member, language = self._asker(dict(request.query))
        where = self._where(member, request.query.get("channel"))
        slash: list[dict[str, Any]] = []
        users: list[dict[str, Any]] = []
        for command in self.discord.commands_for(self.guild):
            if not self._may_use(member, where, command):
                continue
            if command.get("type", 1) == 2:
                users.append({"name": command["name"], "label": _localized(command, "name", language)})
            elif command.get("type", 1) == 1:
                slash.extend(self._leaves(command, [command["name"]], language,
                                          _localized(command, "description", language)))
        viewable = [c for c in sorted(self.guild.channels.values(), key=lambda c: (c.position, c.id))
                    if self._sees(member, c)]
        return web.json_response({
            "slash": slash, "user": users,
            "members": sorted(({"id": str(m.id), "name": self._name(m.user)} for m in self.guild.members.values()),
                              key=lambda m: m["name"].casefold()),
            "channels": [{"id": str(c.id), "name": c.name, "type": c.type} for c in viewable],
            "roles": [{"id": str(r.id), "name": r.name} for r in self.guild.roles.values() if not r.managed],
        })

    def _leaves(self, node: dict[str, Any], path: list[str], language: str, fallback: str) -> list[dict[str, Any]]:
        options = node.get("options") or []
        groups = [o for o in options if o["type"] in (1, 2)]
        if not groups:
            return [{"path": " ".join(path), "description": _localized(node, "description", language) or fallback,
                     "options": [self._option(o, language) for o in options]}]
        leaves = []
        for sub in groups:
            leaves.extend(self._leaves(sub, [*path, sub["name"]], language, fallback))
        return leaves

    @staticmethod
    def _option(option: dict[str, Any], language: str) -> dict[str, Any]:
        return {
            "name": option["name"], "type": OPTION_TYPES.get(option["type"], "string"),
            "description": _localized(option, "description", language), "required": bool(option.get("required")),
            "choices": [{"name": _localized(c, "name", language), "value": c["value"]}
                        for c in option.get("choices") or []],
            "autocomplete": bool(option.get("autocomplete")),
            **{key: option[key] for key in ("min_value", "max_value", "min_length", "max_length", "channel_types")
               if key in option},
        }

    def _leaf(self, path: str) -> dict[str, Any]:
        names = path.split()
        node = next((c for c in self.discord.commands_for(self.guild)
                     if names and c["name"] == names[0] and c.get("type", 1) == 1), None)
        for name in names[1:]:
            if node is None:
                break
            node = next((o for o in node.get("options") or [] if o["name"] == name and o["type"] in (1, 2)), None)
        if node is None:
            raise Refused(f"/{path} is not one of Kakehashi's commands")
        return node

    def _values(self, path: str, given: Any, focused: str | None = None) -> dict[str, Any]:
        """The page's option values (ids and strings) as the local Discord takes them (members, channels)."""
        if not isinstance(given, dict):
            raise Refused("options: an object")
        declared = {o["name"]: o for o in self._leaf(path).get("options") or [] if o["type"] not in (1, 2)}
        values: dict[str, Any] = {}
        for name, raw in given.items():
            option = declared.get(name)
            if option is None:
                raise Refused(f"/{path} has no option {name}")
            if (raw is None or raw == "") and name != focused:
                continue
            values[name] = self._value(path, option, raw, name == focused)
        return values

    def _value(self, path: str, option: dict[str, Any], raw: Any, focused: bool) -> Any:
        kind = option["type"]
        label = f"/{path} {option['name']}"
        if focused or kind == 3:
            return str(raw)
        try:
            if kind == 4:
                return int(str(raw))
            if kind == 10:
                return float(str(raw))
            if kind == 5:
                return raw is True or str(raw).lower() == "true"
            if kind in (6, 9) and int(str(raw)) in self.guild.members:
                return self.guild.members[int(str(raw))]
            if kind in (8, 9) and int(str(raw)) in self.guild.roles:
                role: Role = self.guild.roles[int(str(raw))]
                return role
            if kind == 7 and int(str(raw)) in self.guild.channels:
                return self.guild.channels[int(str(raw))]
        except ValueError:
            pass
        raise Refused(f"{label}: not a value it takes")

    async def _slash(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        member, language = self._asker(body)
        path = str(body.get("command") or "").strip().lstrip("/")
        values = self._values(path, body.get("options") or {})
        where = self._where(member, body.get("channel"))
        return await self._act(lambda: self.discord.slash(member, path, where=where,
                                                          locale=locale_for(member.user, language), **values),
                               where)

    async def _autocomplete(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        member, language = self._asker(body)
        path = str(body.get("command") or "").strip().lstrip("/")
        focused = str(body.get("focused") or "")
        options = dict(body.get("options") or {})
        options.setdefault(focused, "")
        values = self._values(path, options, focused)
        where = self._where(member, body.get("channel"))
        try:
            asked = await self.discord.autocomplete(member, path, focused, where=where,
                                                    locale=locale_for(member.user, language), **values)
            choices = await asked.choices(timeout=ANSWER_WAIT)
        except AssertionError as refused:
            raise Refused(str(refused)) from None
        return web.json_response({"choices": [{"name": str(c.get("name")), "value": c.get("value")}
                                              for c in choices]})

    async def _user_command(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        member, language = self._asker(body)
        target = self._person(body.get("target"))
        where = self._where(member, body.get("channel"))
        name = str(body.get("name") or "")
        return await self._act(lambda: self.discord.user_command(member, name, target, where=where,
                                                                 locale=locale_for(member.user, language)),
                               where)

    def _on_page_message(self, member: Member, message_id: Any) -> Message:
        try:
            message = self.discord.messages[int(message_id)]
        except (TypeError, ValueError, KeyError):
            raise Refused("no such message") from None
        if not self._visible(member, message):
            raise Refused("no such message")
        return message

    async def _click(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        member, language = self._asker(body)
        message = self._on_page_message(member, body.get("message"))
        custom_id = str(body.get("custom_id") or "")
        return await self._act(lambda: self.discord.click(member, message, custom_id,
                                                          locale=locale_for(member.user, language)),
                               message.channel)

    async def _select(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        member, language = self._asker(body)
        message = self._on_page_message(member, body.get("message"))
        picked = body.get("values")
        if not isinstance(picked, list):
            raise Refused("values: a list")
        custom_id = str(body.get("custom_id") or "")
        return await self._act(lambda: self.discord.select(member, message, custom_id, [str(v) for v in picked],
                                                           locale=locale_for(member.user, language)),
                               message.channel)

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        member, language = self._asker(body)
        try:
            opened = self.discord.interactions[int(body.get("interaction") or 0)]
        except (TypeError, ValueError, KeyError):
            raise Refused("no such form") from None
        if opened.user.id != member.id or opened.modal_data is None:
            raise Refused("no such form")
        given = body.get("values")
        if not isinstance(given, dict):
            raise Refused("values: an object")
        settle = self._opened_at.get(opened.id, 0.0) + FORM_SETTLE - asyncio.get_running_loop().time()
        if settle > 0:
            await asyncio.sleep(settle)
        values = {str(k): str(v) for k, v in given.items()}
        return await self._act(lambda: self.discord.submit(opened, values,
                                                           locale=locale_for(member.user, language)),
                               opened.channel)

    async def _act(self, send: Callable[[], Awaitable[Interaction]], where: Channel) -> web.StreamResponse:
        """Send what the member did; answer with the form the bot opened, if it opened one (its reply and
        everything else reach the page as changes)."""
        try:
            interaction = await send()
        except CommandNotAvailable as refused:
            raise Refused(str(refused)) from None
        except AssertionError as refused:   # what the Discord client would not send
            raise Refused(str(refused)) from None
        finally:
            self._bump()
        answer: dict[str, Any] = {"channel": "dm" if where.type == ChannelType.DM else str(where.id)}
        try:
            await interaction.response(timeout=ANSWER_WAIT)
        except AssertionError:
            answer["error"] = "no-answer"
            return web.json_response(answer)
        if interaction.modal_data is not None:
            self._opened_at[interaction.id] = asyncio.get_running_loop().time()
            answer["modal"] = {"interaction": str(interaction.id), **_modal(interaction.modal_data)}
        return web.json_response(answer)

    async def _message(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        member, _ = self._asker(body)
        channel = self._channel(member, body.get("channel"))
        content = str(body.get("content") or "")
        if not content.strip():
            raise Refused("empty")
        if len(content) > 2000:
            raise Refused("2000")
        if channel.type == ChannelType.DM or not self._channel_info(member, channel)["canWrite"]:
            raise Refused("You cannot send messages here.")
        try:
            message = await self.discord.send_message(member, channel, content)
        except AssertionError as refused:
            raise Refused(str(refused)) from None
        self._stamp()
        self._bump()
        return web.json_response({"id": str(message.id)})

    # ------------------------------------------------------------------ the clock

    async def _clock(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        step = str(body.get("to") or "")
        self._stamp()
        moved: datetime | None
        if step in STEPS:
            moved = self.playground.advance(STEPS[step])
        elif step == "prompt":
            moved = await self.playground.to_next_prompt()
        elif step == "round":
            moved = await self.playground.to_next_round()
        else:
            raise Refused("to: hour, day, follow-up, prompt or round")
        self._bump()
        return web.json_response({"now": self.playground.clock.now().isoformat(), "off": moved is None})


def _localized(item: dict[str, Any], key: str, language: str) -> str:
    if language != "en":
        found = (item.get(f"{key}_localizations") or {}).get(language)
        if found:
            return str(found)
    return str(item.get(key) or "")


def _modal(data: dict[str, Any]) -> dict[str, Any]:
    """The form the bot sent: its title and text inputs, in order (in action rows or labels)."""
    fields = []
    for row in data.get("components") or []:
        if row.get("type") == 18:
            item, label, description = row.get("component") or {}, row.get("label", ""), row.get("description", "")
        else:
            inner = row.get("components") or [{}]
            item, label, description = inner[0], inner[0].get("label", ""), ""
        if item.get("type") == 4:
            fields.append({"id": item["custom_id"], "label": label, "description": description,
                           "paragraph": item.get("style") == 2, "value": item.get("value") or "",
                           "placeholder": item.get("placeholder") or "", "required": item.get("required", True),
                           "min": item.get("min_length", 0), "max": item.get("max_length", 4000)})
    return {"title": data.get("title") or "", "fields": fields}
