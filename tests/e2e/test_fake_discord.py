"""The fake Discord itself: what it refuses, as Discord would. (The bot-facing behaviour is covered by the
tests that run the bot; these pin the fake's own rules.)"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
import discord
import pytest

from bot.client import KakehashiBot
from playground.fakediscord import (
    Channel,
    ChannelType,
    CommandNotAvailable,
    FakeDiscord,
    GatewaySession,
    Guild,
    Member,
    Message,
    Overwrite,
    Perm,
    shard_of,
)
from tests.e2e.conftest import BotRunner, World
from tests.e2e.probe import Probe, ProbeUserCommands


@pytest.fixture
async def server() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    guild = server.add_guild("Club")
    server.add_channel(guild, "general")
    await server.start()
    yield server
    await server.stop()


async def put_commands(server: FakeDiscord, commands: list[dict[str, Any]]) -> tuple[int, Any]:
    url = f"{server.rest_url}/applications/{server.application_id}/commands"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {server.token}"}) as session, \
            session.put(url, json=commands) as response:
        return response.status, await response.json()


async def rest(server: FakeDiscord, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """A raw call as the bot, for what discord.py would not send or does not show."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {server.token}"}) as session, \
            session.request(method, f"{server.rest_url}{path}", json=body) as response:
        return response.status, (await response.json() if response.status != 204 else None)


def command(**fields: Any) -> dict[str, Any]:
    return {"name": "thing", "description": "Does a thing", "type": 1, **fields}


def sub(name: str, options: list[dict[str, Any]] | None = None, kind: int = 1) -> dict[str, Any]:
    return {"name": name, "description": "d", "type": kind, "options": options or []}


STRING = {"name": "text", "description": "d", "type": 3}


@pytest.mark.parametrize("bad", [
    [command(description="x" * 101)],
    [command(description_localizations={"ja": "あ" * 101})],
    [command(description_localizations={"xx": "?"})],
    [command(name="Has Space")],
    [command(), command()],
    [command(options=[sub("a", [sub("b")])])],                      # a subcommand in a subcommand
    [command(options=[sub("g", [STRING], kind=2)])],                # a group holding a plain option
    [command(options=[sub("a"), STRING])],                          # subcommands beside plain options
    [command(options=[sub("g", [sub("h", [sub("i")], kind=2)], kind=2)])],  # a group in a group
    [command(options=[{**STRING, "required": False}, {**STRING, "name": "more", "required": True}])],
    [command(options=[{**STRING, "choices": [{"name": str(n), "value": str(n)} for n in range(26)]}])],
])
async def test_command_payloads_discord_refuses_are_refused(server: FakeDiscord, bad: list[dict[str, Any]]) -> None:
    status, body = await put_commands(server, bad)
    assert (status, body["code"]) == (400, 50035)
    assert server.global_commands == []


async def test_a_valid_tree_is_stored_with_ids(server: FakeDiscord) -> None:
    status, body = await put_commands(server, [command(options=[sub("g", [sub("h", [STRING])], kind=2), sub("a")])])
    assert status == 200 and body[0]["id"] and server.global_commands == body


async def test_requests_without_the_bot_token_are_unauthorized(server: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{server.rest_url}/users/@me") as response:
        assert response.status == 401


async def test_unknown_routes_are_recorded_as_unhandled(server: FakeDiscord) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {server.token}"}) as session, \
            session.get(f"{server.rest_url}/no/such/route") as response:
        assert response.status == 404
    assert [c.path for c in server.unhandled_calls()] == ["/no/such/route"]


async def test_it_listens_on_the_port_it_is_given_and_a_busy_one_raises() -> None:
    first = FakeDiscord()
    await first.start()
    second = FakeDiscord()
    try:
        with pytest.raises(OSError, match=r"(?i)in use") as busy:
            await second.start(first.port)
        assert busy.value.errno == errno.EADDRINUSE
        await first.stop()
        await second.start(first.port)
        assert second.rest_url == f"http://127.0.0.1:{first.port}/api/v10"
        assert second.gateway_url == f"ws://127.0.0.1:{first.port}/gateway"
        status, _ = await rest(second, "GET", "/users/@me")
        assert status == 200
    finally:
        await first.stop()
        await second.stop()


def test_permissions_follow_discord_including_implicit_denials() -> None:
    server = FakeDiscord()
    guild = server.add_guild("Club")
    member = server.add_member(guild, "ben")
    quiet = server.add_channel(guild, "quiet", overwrites=(Overwrite(guild.id, 0, deny=Perm.SEND_MESSAGES),))
    hidden = server.add_channel(guild, "hidden", overwrites=(Overwrite(guild.id, 0, deny=Perm.VIEW_CHANNEL),))
    perms = guild.permissions_in(member, quiet)
    assert perms & Perm.VIEW_CHANNEL and not perms & (Perm.SEND_MESSAGES | Perm.EMBED_LINKS | Perm.ATTACH_FILES)
    assert guild.permissions_in(member, hidden) == 0
    assert guild.permissions_in(guild.members[server.owner.id], hidden) == Perm.ALL
    voice = server.add_channel(guild, "voice", ChannelType.VOICE)
    assert voice.payload()["bitrate"] == 64000


# ---------------------------------------------------------------------- threads and forum posts
#
# Driven through a bare, real discord.py client wherever it can be: the point is that discord.py accepts what
# the fake answers (ThreadWithMessage from a forum post, Thread from a message, active threads) and routes what
# it dispatches (THREAD_CREATE, MESSAGE_CREATE in a thread).


@dataclass
class Club:
    guild: Guild
    general: Channel
    news: Channel
    forum: Channel  # tags required
    open_forum: Channel  # tags optional
    member: Member


@pytest.fixture
def club(server: FakeDiscord) -> Club:
    guild = next(iter(server.guilds.values()))
    return Club(
        guild=guild,
        general=guild.channel_named("general"),
        news=server.add_channel(guild, "news", ChannelType.ANNOUNCEMENT),
        forum=server.add_channel(guild, "discussions", ChannelType.FORUM, tags=("Discussion", "議論"),
                                 require_tag=True),
        open_forum=server.add_channel(guild, "ideas", ChannelType.FORUM, tags=("Idea",)),
        member=server.add_member(guild, "ben"),
    )


@contextlib.asynccontextmanager
async def logged_in(server: FakeDiscord, club: Club, intents: discord.Intents) -> AsyncIterator[discord.Client]:
    """A bare discord.py client with ``intents``, logged into the fake until the block ends."""
    client = discord.Client(intents=intents)
    with server.pointed_at():
        task = asyncio.create_task(client.start(server.token))
        await server.wait_until(lambda: client.get_guild(club.guild.id) is not None or task.done(), 10,
                                "the client to receive its guild")
        if task.done():
            task.result()
        try:
            yield client
        finally:
            await client.close()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def bot_intents() -> discord.Intents:
    """Guilds and guild messages, as the bot asks (and no reactions)."""
    intents = discord.Intents.none()
    intents.guilds = intents.guild_messages = True
    return intents


@pytest.fixture
async def client(server: FakeDiscord, club: Club) -> AsyncIterator[discord.Client]:
    """A bare discord.py client (guilds and guild messages, as the bot asks) logged into the fake."""
    async with logged_in(server, club, bot_intents()) as client:
        yield client


def channel_of(client: discord.Client, channel: Channel) -> Any:
    found = client.get_channel(channel.id)
    assert found is not None, f"discord.py does not know channel {channel.name}"
    return found


async def soon(coroutine: Awaitable[Any]) -> asyncio.Task[Any]:
    """Start ``coroutine`` (a ``client.wait_for``) so that it listens before what it waits for can happen."""
    task = asyncio.ensure_future(coroutine)
    await asyncio.sleep(0)
    return task


def deny_bot(server: FakeDiscord, guild: Guild, channel: Channel, permissions: int) -> None:
    channel.overwrites.append(Overwrite(guild.role_named("Kakehashi").id, 0, deny=permissions))


async def test_a_forum_post_is_a_thread_and_its_starter_message_as_discord_py_reads_them(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    forum = channel_of(client, club.forum)
    assert isinstance(forum, discord.ForumChannel)
    created = await soon(client.wait_for("thread_create", timeout=5))
    starter_seen = await soon(client.wait_for("message", timeout=5))
    post = await forum.create_thread(name="Weekly topic", content="What did you learn <@1>?",
                                     applied_tags=[forum.available_tags[1]],
                                     allowed_mentions=discord.AllowedMentions.none())
    thread, message = post
    assert isinstance(thread, discord.Thread) and thread.id == message.id
    assert (thread.parent_id, thread.owner_id, thread.name) == (forum.id, client.user.id, "Weekly topic")
    assert thread.type is discord.ChannelType.public_thread and thread.applied_tags == [forum.available_tags[1]]
    assert thread.me is not None and thread.me.id == client.user.id
    assert message.content == "What did you learn <@1>?" and message.channel.id == thread.id
    # The gateway told discord.py too: on_thread_create (newly created, not a join), then the starter message.
    assert (await created).id == thread.id
    assert (await starter_seen).channel is client.get_guild(club.guild.id).get_thread(thread.id)
    # And the fake keeps it as Discord does.
    fake_thread = server.thread_for(server.messages[message.id])
    assert fake_thread is not None and server.threads(club.forum) == [fake_thread]
    assert fake_thread.applied_tags == [club.forum.available_tags[1].id] and club.forum.last_message_id == thread.id
    assert [m.content for m in server.channel_messages(fake_thread)] == [message.content]
    assert server.messages[message.id].mentions == []


async def test_a_forum_post_with_a_file_arrives_as_multipart(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    forum = channel_of(client, club.open_forum)
    post = await forum.create_thread(name="Slides", file=discord.File(io.BytesIO(b"hello"), "slides.txt"))
    call = server.calls_to("POST", rf"/channels/{club.open_forum.id}/threads")[-1]
    assert call.files == [("slides.txt", b"hello")] and call.json["name"] == "Slides"
    assert server.thread_for(server.messages[post.message.id]) is not None
    assert server.messages[post.message.id].attachments == [("slides.txt", b"hello")]
    assert [a.filename for a in post.message.attachments] == ["slides.txt"]


@pytest.mark.parametrize(("forum_name", "options", "status", "code"), [
    ("forum", {}, 400, 40067),  # the forum requires a tag
    ("forum", {"applied_tags": [discord.Object(id=123)]}, 400, 50035),  # not one of the forum's tags
    ("open_forum", {"applied_tags": [discord.Object(id=123)]}, 400, 50035),
    ("open_forum", {"name": ""}, 400, 50035),
    ("open_forum", {"name": "x" * 101}, 400, 50035),
    ("open_forum", {"content": "x" * 2001}, 400, 50035),
    ("open_forum", {"content": None}, 400, 50006),  # a post needs a starter message
])
async def test_forum_posts_discord_refuses_are_refused(
        server: FakeDiscord, club: Club, client: discord.Client, forum_name: str, options: dict[str, Any],
        status: int, code: int) -> None:
    forum = channel_of(client, getattr(club, forum_name))
    arguments: dict[str, Any] = {"name": "Weekly topic", "content": "Hello", **options}
    with pytest.raises(discord.HTTPException) as refused:
        await forum.create_thread(**arguments)
    assert (refused.value.status, refused.value.code) == (status, code)
    assert server.threads(getattr(club, forum_name)) == []


async def test_more_than_five_tags_are_refused_and_five_or_a_100_character_name_are_not(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    forum = channel_of(client, club.open_forum)
    tag = forum.available_tags[0]
    with pytest.raises(discord.HTTPException) as refused:
        await forum.create_thread(name="Too many", content="Hello", applied_tags=[tag] * 6)
    assert refused.value.code == 50035
    post = await forum.create_thread(name="x" * 100, content="Hello", applied_tags=[tag] * 5)
    assert len(post.thread.name) == 100 and len(post.thread.applied_tags) == 5


async def test_posting_in_a_forum_takes_send_messages_and_seeing_it(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    forum = channel_of(client, club.open_forum)
    deny_bot(server, club.guild, club.open_forum, Perm.SEND_MESSAGES)
    with pytest.raises(discord.Forbidden) as refused:
        await forum.create_thread(name="Weekly topic", content="Hello")
    assert refused.value.code == 50013
    club.open_forum.overwrites[-1].deny = Perm.VIEW_CHANNEL
    with pytest.raises(discord.Forbidden) as hidden:
        await forum.create_thread(name="Weekly topic", content="Hello")
    assert hidden.value.code == 50001
    assert server.threads(club.open_forum) == []


async def test_a_thread_from_a_message_shares_its_id_and_a_message_takes_only_one(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    general = channel_of(client, club.general)
    prompt = await general.send("This week's question")
    created = await soon(client.wait_for("thread_create", timeout=5))
    thread = await prompt.create_thread(name="Answers")
    assert isinstance(thread, discord.Thread) and thread.id == prompt.id
    assert thread.type is discord.ChannelType.public_thread and thread.parent_id == general.id
    assert (await created).id == thread.id
    with pytest.raises(discord.HTTPException) as twice:
        await prompt.create_thread(name="Answers again")
    assert (twice.value.status, twice.value.code) == (400, 160004)
    # Discord shows the thread on the message.
    fetched = await general.fetch_message(prompt.id)
    assert fetched.thread is not None and fetched.thread.id == thread.id and fetched.flags.has_thread
    fake_thread = server.thread_for(server.messages[prompt.id])
    assert fake_thread is not None and server.threads(club.general) == [fake_thread]
    # An announcement channel gives an announcement thread.
    news = channel_of(client, club.news)
    headline = await news.send("Headline")
    assert (await headline.create_thread(name="Comments")).type is discord.ChannelType.news_thread


@pytest.mark.parametrize("name", ["", "x" * 101])
async def test_a_thread_name_outside_1_to_100_characters_is_refused(
        server: FakeDiscord, club: Club, client: discord.Client, name: str) -> None:
    prompt = await channel_of(client, club.general).send("Question")
    with pytest.raises(discord.HTTPException) as refused:
        await prompt.create_thread(name=name)
    assert refused.value.code == 50035 and server.threads(club.general) == []


async def test_starting_threads_takes_the_thread_permissions(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    general = channel_of(client, club.general)
    prompt = await general.send("Question")
    deny_bot(server, club.guild, club.general, Perm.CREATE_PUBLIC_THREADS | Perm.CREATE_PRIVATE_THREADS)
    with pytest.raises(discord.Forbidden) as from_message:
        await prompt.create_thread(name="Answers")
    with pytest.raises(discord.Forbidden) as private:
        await general.create_thread(name="Just us")
    with pytest.raises(discord.Forbidden) as public:
        await general.create_thread(name="Everyone", type=discord.ChannelType.public_thread)
    assert [e.value.code for e in (from_message, private, public)] == [50013] * 3
    assert server.threads(club.general) == []


async def test_a_thread_without_a_message_is_private_unless_asked_otherwise(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    general = channel_of(client, club.general)
    private = await general.create_thread(name="Just us")
    public = await general.create_thread(name="Everyone", type=discord.ChannelType.public_thread)
    assert private.type is discord.ChannelType.private_thread and private.invitable
    assert public.type is discord.ChannelType.public_thread
    assert [t.id for t in server.threads(club.general)] == [private.id, public.id]
    assert server.calls_to("POST", rf"/channels/{club.general.id}/messages") == []


async def test_members_are_added_to_a_private_thread_once_and_then_see_it(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    thread = await channel_of(client, club.general).create_thread(name="Intro", invitable=False)
    assert not thread.invitable
    member = discord.Object(club.member.id)
    assert club.guild.active_threads(club.member) == []
    for _ in range(2):  # adding someone already in changes nothing
        await thread.add_user(member)
    fake_thread = server.channels[thread.id]
    assert set(fake_thread.thread_members) == {server.bot_user.id, club.member.id}
    assert club.guild.active_threads(club.member) == [fake_thread]
    with pytest.raises(discord.NotFound) as unknown:
        await thread.add_user(discord.Object(12345))
    assert unknown.value.code == 10013
    with pytest.raises(discord.HTTPException) as not_a_thread:
        await client.http.add_user_to_thread(club.general.id, club.member.id)
    assert not_a_thread.value.code == 50024


async def test_messages_in_a_thread_reach_discord_py_in_the_thread_and_are_counted(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    post = await channel_of(client, club.open_forum).create_thread(name="Topic", content="Starter")
    fake_thread = server.threads(club.open_forum)[0]
    seen = await soon(client.wait_for("message", check=lambda m: m.author.id == club.member.id, timeout=5))
    written = await server.send_message(club.member, fake_thread, "My answer")
    received = await seen
    assert isinstance(received.channel, discord.Thread) and received.channel.id == post.thread.id
    assert received.id == written.id
    reply = await post.thread.send("Thanks!")
    assert [m.id for m in server.channel_messages(fake_thread)] == [post.message.id, written.id, reply.id]
    # The starter message is not counted; both writers are now in the thread.
    fetched = await client.fetch_channel(post.thread.id)
    assert isinstance(fetched, discord.Thread)
    assert (fetched.message_count, fetched.total_message_sent) == (2, 2)
    assert fetched.me is not None and set(fake_thread.thread_members) == {client.user.id, club.member.id}
    await reply.delete()
    assert (fake_thread.message_count, fake_thread.total_message_sent) == (1, 2)


async def test_the_gateway_tells_nothing_of_channels_the_bot_cannot_see(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    post = await channel_of(client, club.open_forum).create_thread(name="Topic", content="Starter")
    deny_bot(server, club.guild, club.open_forum, Perm.VIEW_CHANNEL)
    hidden = await server.send_message(club.member, server.channels[post.thread.id], "Behind its back")
    seen = await server.send_message(club.member, club.general, "In the open")
    assert server.session is not None
    created = [int(p["d"]["id"]) for p in server.session.sent if p["t"] == "MESSAGE_CREATE"]
    assert seen.id in created and hidden.id not in created


async def test_sending_in_a_thread_takes_send_messages_in_threads(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    post = await channel_of(client, club.open_forum).create_thread(name="Topic", content="Starter")
    deny_bot(server, club.guild, club.open_forum, Perm.SEND_MESSAGES_IN_THREADS)
    with pytest.raises(discord.Forbidden) as refused:
        await post.thread.send("Reply")
    assert refused.value.code == 50013


async def test_active_threads_are_those_the_bot_can_see_newest_first_with_its_memberships(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    forum_post = await channel_of(client, club.open_forum).create_thread(name="Topic", content="Starter")
    prompt = await channel_of(client, club.general).send("Question")
    from_message = await prompt.create_thread(name="Answers")
    private = await channel_of(client, club.general).create_thread(name="Just us")
    archived = await channel_of(client, club.news).create_thread(name="Old", type=discord.ChannelType.news_thread)
    server.channels[archived.id].archived = True
    guild = client.get_guild(club.guild.id)
    assert guild is not None
    listed = await guild.active_threads()
    assert [t.id for t in listed] == [private.id, from_message.id, forum_post.thread.id]
    assert all(isinstance(t, discord.Thread) and t.guild is guild for t in listed)
    # The raw answer carries the bot's thread member object for each thread it is in.
    status, body = await rest(server, "GET", f"/guilds/{club.guild.id}/threads/active")
    assert status == 200
    assert [m["id"] for m in body["members"]] == [str(private.id), str(from_message.id), str(forum_post.thread.id)]
    assert {m["user_id"] for m in body["members"]} == {str(server.bot_user.id)}
    # A thread in a channel the bot cannot see is not listed, nor sent in GUILD_CREATE.
    deny_bot(server, club.guild, club.general, Perm.VIEW_CHANNEL)
    assert [t.id for t in await guild.active_threads()] == [forum_post.thread.id]
    bot_member = club.guild.members[server.bot_user.id]
    threads = club.guild.payload(bot_member)["threads"]
    assert [t["id"] for t in threads] == [str(forum_post.thread.id)]
    assert threads[0]["member"]["user_id"] == str(server.bot_user.id)


async def test_thread_routes_refuse_what_discord_refuses(server: FakeDiscord, club: Club) -> None:
    post = {"name": "Topic", "message": {"content": "Hi"}}
    assert await rest(server, "POST", f"/channels/{club.forum.id}/threads", {**post, "applied_tags": []}) == (
        400, {"message": "A tag is required to create a forum post in this channel", "code": 40067})
    status, body = await rest(server, "POST", f"/channels/{club.open_forum.id}/threads",
                              {**post, "message": {"content": "x" * 2001}})
    assert (status, body["code"], list(body["errors"])) == (400, 50035, ["message"])
    status, body = await rest(server, "POST", f"/channels/{club.open_forum.id}/threads",
                              {**post, "auto_archive_duration": 30})
    assert (status, body["code"], list(body["errors"])) == (400, 50035, ["auto_archive_duration"])
    voice = server.add_channel(club.guild, "voice", ChannelType.VOICE)
    assert (await rest(server, "POST", f"/channels/{voice.id}/threads", post))[1]["code"] == 50024
    # A forum post's starter cannot start a second thread, and a forum has no messages to start one from.
    status, created = await rest(server, "POST", f"/channels/{club.open_forum.id}/threads", post)
    assert status == 200 and created["message"]["id"] == created["id"]
    assert (await rest(server, "POST", f"/channels/{club.open_forum.id}/messages/{created['id']}/threads",
                       {"name": "Again"}))[1]["code"] == 50024
    assert (await rest(server, "POST", f"/channels/{club.general.id}/messages/{created['id']}/threads",
                       {"name": "Elsewhere"}))[1]["code"] == 10008
    # GET /channels/{thread} works for threads, and the bot's guild channel list still excludes them.
    assert (await rest(server, "GET", f"/channels/{created['id']}"))[1]["parent_id"] == str(club.open_forum.id)
    _, channels = await rest(server, "GET", f"/guilds/{club.guild.id}/channels")
    assert created["id"] not in [c["id"] for c in channels]


def test_private_threads_are_seen_by_their_members_and_moderators_only() -> None:
    server = FakeDiscord()
    guild = server.add_guild("Club")
    general = server.add_channel(guild, "general")
    member, outsider = server.add_member(guild, "ben"), server.add_member(guild, "chie")
    moderator = server.add_member(guild, "aiko", roles=(server.add_role(guild, "Mods", Perm.MANAGE_THREADS),))
    thread = Channel(id=2, type=ChannelType.PRIVATE_THREAD, name="Just us", guild=guild, parent_id=general.id,
                     owner_id=member.id, thread_members={member.id: general.created_at})
    guild.channels[thread.id] = thread
    assert guild.permissions_in(member, thread) & Perm.SEND_MESSAGES_IN_THREADS
    assert guild.permissions_in(outsider, thread) == 0
    assert guild.permissions_in(moderator, thread) & Perm.VIEW_CHANNEL
    assert guild.active_threads(outsider) == [] and guild.active_threads(moderator) == [thread]


# ---------------------------------------------------------------------- the cap on active threads, archiving


async def fetched_thread(client: discord.Client, thread_id: int) -> discord.Thread:
    thread = await client.fetch_channel(thread_id)
    assert isinstance(thread, discord.Thread)
    return thread


async def test_past_the_cap_of_active_threads_nothing_is_created_until_one_is_archived(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    others = server.add_threads(club.general, 3)  # started by the server's owner; the bot was not told
    assert [t.owner_id for t in others] == [server.owner.id] * 3 and club.guild.active_thread_count == 3
    assert club.guild.thread_cap == 1000
    server.leave_thread_room(club.guild, 1)
    assert (club.guild.thread_cap, server.thread_room(club.guild)) == (4, 1)
    forum, general = channel_of(client, club.open_forum), channel_of(client, club.general)
    post = await forum.create_thread(name="Topic", content="Starter")
    prompt = await general.send("Question")
    attempts: dict[str, Callable[[], Awaitable[Any]]] = {
        "thread from a message": lambda: prompt.create_thread(name="Answers"),
        "private thread": lambda: general.create_thread(name="Just us"),
        "public thread": lambda: general.create_thread(name="All", type=discord.ChannelType.public_thread),
        "forum post": lambda: forum.create_thread(name="Another", content="Starter"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(discord.HTTPException) as full:
            await attempt()
        assert (full.value.status, full.value.code) == (400, 160006), what
    assert await rest(server, "POST", f"/channels/{club.general.id}/threads", {"name": "Raw"}) == (
        400, {"message": "Maximum number of active threads reached", "code": 160006})
    assert (len(server.threads(club.general)), len(server.threads(club.open_forum))) == (3, 1)
    assert [m.content for m in server.channel_messages(club.open_forum)] == []  # no starter message either
    # Archiving the bot's own post frees its place: off the active list and out of discord.py's cache.
    updated = await soon(client.wait_for("thread_update", timeout=5))
    archived = await post.thread.edit(archived=True)
    before, after = await updated
    assert archived.archived and after.archived and not before.archived
    assert server.channels[post.thread.id].archived and server.thread_room(club.guild) == 1
    guild = client.get_guild(club.guild.id)
    assert guild is not None and guild.get_thread(post.thread.id) is None
    assert post.thread.id not in [t.id for t in await guild.active_threads()]
    assert (await prompt.create_thread(name="Answers")).id == prompt.id
    assert server.thread_room(club.guild) == 0
    # Threads archived by others take no room either.
    server.add_threads(club.news, 5, archived=True)
    assert server.thread_room(club.guild) == 0
    with pytest.raises(AssertionError, match="room for 0"):
        server.add_threads(club.general, 1)


async def test_a_message_in_an_archived_thread_unarchives_it_if_there_is_room(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    thread = await (await channel_of(client, club.general).send("Question")).create_thread(name="Answers")
    fake = server.channels[thread.id]
    await thread.edit(archived=True)
    updated = await soon(client.wait_for("raw_thread_update", check=lambda e: e.thread_id == thread.id, timeout=5))
    reply = await thread.send("Still here")
    assert not fake.archived and not (await updated).data["thread_metadata"]["archived"]
    assert [m.id for m in server.channel_messages(fake)] == [reply.id]
    assert server.session is not None
    events = [p["t"] for p in server.session.sent if p["t"] in ("THREAD_UPDATE", "MESSAGE_CREATE")][-2:]
    assert events == ["THREAD_UPDATE", "MESSAGE_CREATE"]  # unarchived, then the message
    # A member's message does the same.
    await thread.edit(archived=True)
    await server.send_message(club.member, fake, "Me too")
    assert not fake.archived
    # Without room under the cap the message is refused, and the thread stays archived.
    await thread.edit(archived=True)
    server.leave_thread_room(club.guild, 0)
    with pytest.raises(discord.HTTPException) as full:
        await thread.send("Hello?")
    assert full.value.code == 160006 and server.channels[thread.id].archived
    with pytest.raises(AssertionError, match="Maximum number of active threads"):
        await server.send_message(club.member, fake, "Hello?")
    # A locked thread takes MANAGE_THREADS: archived, the message is refused as archived, else as forbidden.
    server.leave_thread_room(club.guild, 1)
    fake.locked = True
    deny_bot(server, club.guild, club.general, Perm.MANAGE_THREADS)
    with pytest.raises(discord.HTTPException) as locked_archived:
        await thread.send("Hello?")
    fake.archived = False
    with pytest.raises(discord.Forbidden) as locked:
        await thread.send("Hello?")
    assert (locked_archived.value.status, locked_archived.value.code, locked.value.code) == (400, 50083, 50013)
    with pytest.raises(AssertionError, match="Missing Permissions"):
        await server.send_message(club.member, fake, "Hello?")
    assert [m.content for m in server.channel_messages(fake)] == ["Still here", "Me too"]


async def test_editing_a_thread_follows_discords_rules_on_who_may_change_what(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    general = channel_of(client, club.general)
    own = await general.create_thread(name="Ours", type=discord.ChannelType.public_thread)
    theirs, closed = server.add_threads(club.general, 2)
    closed.thread_members[server.bot_user.id] = closed.created_at  # the bot is in it, it did not start it
    deny_bot(server, club.guild, club.general, Perm.MANAGE_THREADS)
    # Its creator may rename it, archive and unarchive it and set auto_archive_duration, without MANAGE_THREADS.
    edited = await own.edit(name="Renamed", auto_archive_duration=60, archived=True)
    assert (edited.name, edited.auto_archive_duration, edited.archived) == ("Renamed", 60, True)
    fake = server.channels[own.id]
    assert (fake.name, fake.auto_archive_duration, fake.archived) == ("Renamed", 60, True)
    with pytest.raises(discord.HTTPException) as archived:
        await own.edit(name="While archived")  # an archived thread takes edits only with an unarchive
    assert (archived.value.status, archived.value.code) == (400, 50083)
    assert not (await own.edit(archived=False, name="Back")).archived
    change: dict[str, Any]
    for change in ({"locked": True}, {"slowmode_delay": 5}):  # these take MANAGE_THREADS, whoever started it
        with pytest.raises(discord.Forbidden) as refused:
            await own.edit(**change)
        assert refused.value.code == 50013, change
    # Someone else's thread: nothing without MANAGE_THREADS, but unarchiving one the bot is in.
    other = await fetched_thread(client, theirs.id)
    for change in ({"archived": True}, {"name": "Mine now"}, {"auto_archive_duration": 60}, {"locked": True}):
        with pytest.raises(discord.Forbidden) as refused:
            await other.edit(**change)
        assert refused.value.code == 50013, change
    closed.archived = True
    with pytest.raises(discord.Forbidden):
        await other.edit(archived=False, name="And renamed")
    assert not (await (await fetched_thread(client, closed.id)).edit(archived=False)).archived
    # A moderator may do it all, lock included; a locked thread then takes MANAGE_THREADS to unarchive.
    club.general.overwrites.pop()
    locked = await other.edit(locked=True, archived=True, name="Closed by a moderator")
    assert (locked.locked, locked.archived, theirs.locked, theirs.name) == (True, True, True, "Closed by a moderator")
    fetched = await fetched_thread(client, theirs.id)
    assert fetched.locked and fetched.archived
    deny_bot(server, club.guild, club.general, Perm.MANAGE_THREADS)
    closed.locked = True
    closed.archived = True
    with pytest.raises(discord.Forbidden):
        await client.http.edit_channel(closed.id, archived=False)
    # What Discord refuses in any case.
    for body, field in (({"auto_archive_duration": 30}, "auto_archive_duration"), ({"name": ""}, "name"),
                        ({"invitable": False}, "invitable")):  # invitable is for private threads only
        status, answer = await rest(server, "PATCH", f"/channels/{own.id}", body)
        assert (status, answer["code"], list(answer["errors"])) == (400, 50035, [field])
    # The fake edits threads only: anything else is not modelled, and said so.
    assert (await rest(server, "PATCH", f"/channels/{club.general.id}", {"name": "renamed"}))[0] == 404
    assert (await rest(server, "PATCH", f"/channels/{own.id}", {"applied_tags": []}))[0] == 404
    assert [c.json for c in server.unhandled_calls()] == [{"name": "renamed"}, {"applied_tags": []}]


async def test_a_private_thread_shows_invitable_and_strict_invitable_keeps_non_moderators_from_inviting(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    thread = await channel_of(client, club.general).create_thread(name="Intro", invitable=False)
    fake = server.channels[thread.id]
    payload = (await rest(server, "GET", f"/channels/{thread.id}"))[1]
    assert payload["thread_metadata"]["invitable"] is False and payload["thread_metadata"]["locked"] is False
    assert payload["thread_metadata"]["auto_archive_duration"] == fake.auto_archive_duration
    deny_bot(server, club.guild, club.general, Perm.MANAGE_THREADS)
    await thread.add_user(discord.Object(club.member.id))  # by default the fake lets it through
    server.strict_invitable = True
    newcomer = server.add_member(club.guild, "chie")
    with pytest.raises(discord.Forbidden) as refused:
        await thread.add_user(discord.Object(newcomer.id))
    assert refused.value.code == 50013 and newcomer.id not in fake.thread_members
    await thread.add_user(discord.Object(club.member.id))  # one already in changes nothing, so it is no refusal
    assert (await thread.edit(invitable=True)).invitable  # its creator may open it
    await thread.add_user(discord.Object(newcomer.id))  # and with invitations open, a non-moderator adds
    assert set(fake.thread_members) == {server.bot_user.id, club.member.id, newcomer.id}
    assert not (await thread.edit(invitable=False)).invitable and not fake.invitable  # and close it again
    latecomer = server.add_member(club.guild, "dai")
    with pytest.raises(discord.Forbidden):
        await thread.add_user(discord.Object(latecomer.id))
    # Someone else's private thread the bot is in: neither opening nor closing it without MANAGE_THREADS.
    (theirs,) = server.add_threads(club.general, 1)
    theirs.type, theirs.invitable = ChannelType.PRIVATE_THREAD, False
    theirs.thread_members[server.bot_user.id] = theirs.created_at
    for invitable in (True, False):
        status, body = await rest(server, "PATCH", f"/channels/{theirs.id}", {"invitable": invitable})
        assert (status, body["code"]) == (403, 50013)
    assert not theirs.invitable


async def test_a_faked_403_refuses_what_the_rules_allow_and_does_nothing(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    deny_bot(server, club.guild, club.general, Perm.MANAGE_THREADS)
    thread = await channel_of(client, club.general).create_thread(name="Intro", invitable=True)
    refusal = server.fault("PATCH", rf"/channels/{thread.id}", 403)
    with pytest.raises(discord.Forbidden) as refused:
        await thread.edit(invitable=False)  # its creator may, but this once Discord says no
    assert (refused.value.status, refused.value.code) == (403, 50013) and server.channels[thread.id].invitable
    (call,) = refusal.calls
    assert (call.status, call.fault, call.carried_out_status) == (403, "refused", None) and refusal.spent
    assert not (await thread.edit(invitable=False)).invitable  # the next is carried out
    with pytest.raises(ValueError, match="never carried out"):
        server.fault("PATCH", "/x", 403, carried_out=True)
    with pytest.raises(ValueError, match="a fault answers one of"):
        server.fault("PATCH", "/x", 404)


# ---------------------------------------------------------------------- holds


async def test_a_held_answer_comes_after_the_call_is_done_and_only_on_release(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    hold = server.hold("POST", r"/channels/\d+/threads")
    forum = channel_of(client, club.open_forum)
    creating = asyncio.create_task(forum.create_thread(name="Topic", content="Starter"))
    call = await hold.reached()
    assert call.status == 200 and call.json["name"] == "Topic"
    [thread] = server.threads(club.open_forum)  # Discord has it, the client does not know yet
    await asyncio.sleep(0.2)
    assert not creating.done()
    hold.release()
    post = await asyncio.wait_for(creating, 5)
    assert post.thread.id == thread.id
    # A hold catches one call: the next goes through.
    await asyncio.wait_for(forum.create_thread(name="Another", content="Starter"), 5)


async def test_a_hold_can_let_some_calls_through_first(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    hold = server.hold("POST", rf"/channels/{club.general.id}/threads", after=2)
    general = channel_of(client, club.general)
    for name in ("one", "two"):
        await asyncio.wait_for(general.create_thread(name=name), 5)
    third = asyncio.create_task(general.create_thread(name="three"))
    call = await hold.reached()
    assert call.json["name"] == "three" and len(server.threads(club.general)) == 3
    hold.release()
    await asyncio.wait_for(third, 5)


KILLED_CLIENT = """
import json, sys, urllib.request
url, token, body = sys.argv[1], sys.argv[2], sys.argv[3]
request = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Authorization": "Bot " + token, "Content-Type": "application/json"})
urllib.request.urlopen(request, timeout=60)
print("answered")
"""


async def test_a_client_killed_while_its_answer_is_held_leaves_the_fake_serving(
        server: FakeDiscord, club: Club) -> None:
    hold = server.hold("POST", r"/channels/\d+/threads")
    body = json.dumps({"name": "Topic", "message": {"content": "Starter"}})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_CLIENT, f"{server.rest_url}/channels/{club.open_forum.id}/threads",
        server.token, body, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await hold.reached(timeout=15)
    finally:
        process.kill()
    stdout, _ = await process.communicate()
    assert process.returncode == -signal.SIGKILL and stdout == b""
    hold.release()
    await asyncio.sleep(0.1)
    [thread] = server.threads(club.open_forum)
    assert (await rest(server, "GET", f"/channels/{thread.id}"))[0] == 200


async def test_stop_releases_what_is_still_held(server: FakeDiscord, club: Club) -> None:
    hold = server.hold("GET", rf"/guilds/{club.guild.id}/threads/active")
    asking = asyncio.create_task(rest(server, "GET", f"/guilds/{club.guild.id}/threads/active"))
    await hold.reached()
    await asyncio.wait_for(server.stop(), 5)
    assert (await asyncio.wait_for(asking, 5))[0] == 200
    server.hold("GET", "/never")  # a hold that never caught anything does not matter either
    await asyncio.wait_for(server.stop(), 5)


# ---------------------------------------------------------------------- rate limits, faults, nonces
#
# What discord.py does with each answer (discord/http.py, HTTPClient.request): it reads the X-RateLimit headers and
# waits before a bucket runs dry; a 429 with `Via` and a JSON `retry_after` it sleeps out and retries; a 500, 502,
# 504 or 524 it retries after sleeping 1 + 2 * tries seconds; 503 it raises. Five tries in all, 429s included.


async def answer(server: FakeDiscord, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
    """A raw call as the bot: status, headers (case-insensitive) and JSON body."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {server.token}"}) as session, \
            session.request(method, f"{server.rest_url}{path}", json=body) as response:
        return response.status, response.headers, (await response.json() if response.status != 204 else None)


async def test_a_rate_limited_route_announces_its_bucket_and_refuses_past_it(
        server: FakeDiscord, club: Club) -> None:
    server.rate_limit("POST", r"/channels/\d+/messages", 2, 5.0)
    path = f"/channels/{club.general.id}/messages"
    first, second, third = [await answer(server, "POST", path, {"content": "Hi"}) for _ in range(3)]
    assert (first[0], first[1]["X-RateLimit-Limit"], first[1]["X-RateLimit-Remaining"]) == (200, "2", "1")
    assert (second[0], second[1]["X-RateLimit-Remaining"]) == (200, "0")
    assert first[1]["X-RateLimit-Bucket"] == second[1]["X-RateLimit-Bucket"]
    assert 0 < float(second[1]["X-RateLimit-Reset-After"]) <= 5
    assert abs(float(second[1]["X-RateLimit-Reset"]) - time.time() - float(second[1]["X-RateLimit-Reset-After"])) < 1
    status, headers, body = third
    assert status == 429 and body["message"] == "You are being rate limited." and body["global"] is False
    assert 0 < body["retry_after"] <= 5 and int(headers["Retry-After"]) >= body["retry_after"]
    assert (headers["Via"], headers["X-RateLimit-Scope"], headers["X-RateLimit-Remaining"]) == (
        "1.1 google", "user", "0")
    assert len(server.channel_messages(club.general)) == 2  # the refused call did nothing
    assert server.rate_limited == [server.calls[-1]] and server.calls[-1].fault is None
    # Another channel is counted apart (same route, same bucket hash); a route without a rule has no headers.
    elsewhere = await answer(server, "POST", f"/channels/{club.news.id}/messages", {"content": "Hi"})
    assert (elsewhere[0], elsewhere[1]["X-RateLimit-Remaining"]) == (200, "1")
    assert elsewhere[1]["X-RateLimit-Bucket"] == first[1]["X-RateLimit-Bucket"]
    plain = await answer(server, "GET", f"/channels/{club.general.id}")
    assert plain[0] == 200 and "X-RateLimit-Limit" not in plain[1] and plain[1]["Via"] == "1.1 google"


async def test_discord_py_waits_out_a_429_then_reads_the_headers_and_runs_into_none(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    server.rate_limit("POST", r"/channels/\d+/messages", 1, 0.3)
    # Something else (another process with the bot's token) used the channel's bucket: discord.py cannot know.
    assert (await rest(server, "POST", f"/channels/{club.general.id}/messages", {"content": "Elsewhere"}))[0] == 200
    general = channel_of(client, club.general)
    message = await general.send("Hello")
    calls = server.calls_to("POST", rf"/channels/{club.general.id}/messages")
    assert [c.status for c in calls] == [200, 429, 200] and server.rate_limited == [calls[1]]
    assert [m.id for m in server.channel_messages(club.general)][-1] == message.id
    # From then on it waits for the bucket to refill before asking: no more 429s, at the bucket's pace.
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(3):
        await general.send(f"More {n}")
    assert len(server.rate_limited) == 1 and loop.time() - started >= 0.6
    assert len(server.channel_messages(club.general)) == 5


async def test_discord_py_waits_out_the_global_limit(server: FakeDiscord, club: Club, client: discord.Client) -> None:
    server.global_rate_limit(2)
    rooms = [server.add_channel(club.guild, f"room-{n}") for n in range(4)]  # four buckets: sent side by side
    sent = await asyncio.gather(*(client.get_partial_messageable(room.id).send("Hi") for room in rooms))
    assert [[m.id for m in server.channel_messages(room)] for room in rooms] == [[m.id] for m in sent]
    assert server.rate_limited and all(c.json["content"] == "Hi" for c in server.rate_limited)
    server.global_rate_limit(1)  # setting it starts a fresh second
    statuses = [await answer(server, "GET", f"/channels/{club.general.id}") for _ in range(2)]
    status, headers, body = statuses[1]
    assert statuses[0][0] == 200 and status == 429 and body["global"] is True
    assert (headers["X-RateLimit-Global"], headers["X-RateLimit-Scope"], headers["Via"]) == (
        "true", "global", "1.1 google")
    server.global_rate_limit(None)
    assert (await answer(server, "GET", f"/channels/{club.general.id}"))[0] == 200


async def test_a_500_before_the_send_is_retried_by_discord_py_and_creates_one_message(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    fault = server.fault("POST", rf"/channels/{club.general.id}/messages", 500)
    message = await channel_of(client, club.general).send("Hello")  # after sleeping 1 s
    calls = server.calls_to("POST", rf"/channels/{club.general.id}/messages")
    assert [(c.status, c.fault, c.carried_out_status) for c in calls] == [(500, "failed", None), (200, None, None)]
    assert fault.calls == [calls[0]] and fault.spent
    assert [m.id for m in server.channel_messages(club.general)] == [message.id]


async def test_a_send_carried_out_then_answered_502_is_not_doubled_thanks_to_its_nonce(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    server.fault("POST", rf"/channels/{club.general.id}/messages", 502, carried_out=True)
    message = await channel_of(client, club.general).send("Hello")  # after sleeping 1 s
    lost, retried = server.calls_to("POST", rf"/channels/{club.general.id}/messages")
    assert (lost.status, lost.fault, lost.carried_out_status) == (502, "answer_lost", 200)
    assert (retried.status, retried.fault) == (200, None)
    # discord.py sends the same random nonce again, with enforce_nonce: Discord answers with the first message.
    assert retried.json["nonce"] == lost.json["nonce"] and retried.json["enforce_nonce"] is True
    [kept] = server.channel_messages(club.general)
    assert kept.id == message.id and message.nonce == kept.nonce == lost.json["nonce"]


async def test_a_nonce_is_enforced_per_author_and_channel_only_when_asked(server: FakeDiscord, club: Club) -> None:
    path = f"/channels/{club.general.id}/messages"
    enforced = [(await rest(server, "POST", path, {"content": "Hi", "nonce": 7, "enforce_nonce": True}))[1]["id"]
                for _ in range(2)]
    loose = [(await rest(server, "POST", path, {"content": "Hi", "nonce": 8}))[1]["id"] for _ in range(2)]
    elsewhere = await rest(server, "POST", f"/channels/{club.news.id}/messages",
                           {"content": "Hi", "nonce": 7, "enforce_nonce": True})
    assert enforced[0] == enforced[1] and loose[0] != loose[1] and elsewhere[1]["id"] != enforced[0]
    assert len(server.channel_messages(club.general)) == 3
    status, body = await rest(server, "POST", path, {"content": "Hi", "nonce": "x" * 26, "enforce_nonce": True})
    assert (status, body["code"], list(body["errors"])) == (400, 50035, ["nonce"])


async def test_discord_py_gives_up_on_a_503_and_waits_out_a_faked_429(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    general = channel_of(client, club.general)
    server.fault("POST", rf"/channels/{club.general.id}/messages", 503)
    with pytest.raises(discord.DiscordServerError):
        await general.send("Hello")
    server.fault("POST", rf"/channels/{club.general.id}/messages", 429, retry_after=0.2, times=2)
    await general.send("Hello again")
    calls = server.calls_to("POST", rf"/channels/{club.general.id}/messages")
    assert [(c.status, c.fault) for c in calls] == [
        (503, "failed"), (429, "rate_limited"), (429, "rate_limited"), (200, None)]
    assert [m.content for m in server.channel_messages(club.general)] == ["Hello again"]
    with pytest.raises(ValueError, match="never carried out"):
        server.fault("POST", "/x", 429, carried_out=True)


async def test_under_chaos_every_send_arrives_exactly_once(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    """The draws depend on the seed, the route and how many calls it had, so this run is the same every time:
    8 429s, 2 500s and one lost answer among 41 calls, about 4 s of discord.py sleeping."""
    route = rf"/channels/{club.general.id}/messages"
    server.chaos(seed=220, only=route)
    general = channel_of(client, club.general)
    sent = [await general.send(f"Message {n}") for n in range(30)]
    await general.fetch_message(sent[0].id)  # outside `only`: no draw
    server.chaos(None)
    kept = server.channel_messages(club.general)
    assert [m.content for m in kept] == [f"Message {n}" for n in range(30)] and [m.id for m in kept] == [
        m.id for m in sent]
    faults = [c.fault for c in server.calls_to("POST", route)]
    assert (faults.count("rate_limited"), faults.count("failed"), faults.count("answer_lost")) == (8, 2, 1)
    assert all(c.fault is None for c in server.calls_to("GET", rf"{route}/\d+"))
    assert len(server.rate_limited) == 8


# ---------------------------------------------------------------------- reactions


async def test_reactions_are_kept_per_emoji_and_shown_as_discord_py_reads_them(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    logo = server.add_emoji(club.guild, "kakehashi")
    message = await channel_of(client, club.general).send("Welcome!")
    await message.add_reaction("👍")
    await message.add_reaction(f"<:{logo.name}:{logo.id}>")  # discord.py sends name:id, URL-encoded
    await message.add_reaction("👍")  # again: nothing changes
    fake = server.messages[message.id]
    assert fake.reactions == {"👍": {client.user.id}, logo.reaction: {client.user.id}}
    assert [c.status for c in server.calls_to("PUT", r"/channels/\d+/messages/\d+/reactions/.+/@me")] == [204] * 3
    await server.react(club.member, fake, "👍")
    fetched = await message.channel.fetch_message(message.id)
    assert [(str(r.emoji), r.count, r.me) for r in fetched.reactions] == [
        ("👍", 2, True), (f"<:kakehashi:{logo.id}>", 1, True)]
    await message.remove_reaction("👍", client.user)
    await message.remove_reaction(logo.reaction, client.user)
    assert fake.reactions == {"👍": {club.member.id}}
    fetched = await message.channel.fetch_message(message.id)
    assert [(str(r.emoji), r.count, r.me) for r in fetched.reactions] == [("👍", 1, False)]


async def test_reacting_takes_read_message_history_and_add_reactions_unless_the_emoji_is_there(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    message = await channel_of(client, club.general).send("Welcome!")
    deny_bot(server, club.guild, club.general, Perm.ADD_REACTIONS)
    with pytest.raises(discord.Forbidden) as new_emoji:
        await message.add_reaction("🎉")
    assert new_emoji.value.code == 50013
    await server.react(club.member, server.messages[message.id], "🎉")  # someone else put it there first
    await message.add_reaction("🎉")
    assert server.messages[message.id].reactions == {"🎉": {club.member.id, client.user.id}}
    club.general.overwrites[-1].deny = Perm.READ_MESSAGE_HISTORY
    with pytest.raises(discord.Forbidden) as no_history:
        await message.add_reaction("🎉")
    assert no_history.value.code == 50013
    # A member's client refuses the same.
    club.general.overwrites.append(Overwrite(club.member.id, 1, deny=Perm.ADD_REACTIONS))
    with pytest.raises(AssertionError, match="may not react"):
        await server.react(club.member, server.messages[message.id], "👋")


@pytest.mark.parametrize(("target", "emoji", "status", "code"), [
    ("unknown message", "👍", 404, 10008),
    ("message", "thumbsup", 400, 10014),  # a name is not an emoji
    ("message", "ghost:123", 400, 10014),  # nor is a custom emoji of no server the bot is in
])
async def test_reactions_discord_refuses_are_refused(
        server: FakeDiscord, club: Club, client: discord.Client, target: str, emoji: str, status: int,
        code: int) -> None:
    general = channel_of(client, club.general)
    message = await general.send("Welcome!") if target == "message" else general.get_partial_message(12345)
    with pytest.raises(discord.HTTPException) as refused:
        await message.add_reaction(emoji)
    assert (refused.value.status, refused.value.code) == (status, code)


async def test_a_message_takes_at_most_twenty_different_emojis(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    message = await channel_of(client, club.general).send("Vote!")
    for offset in range(20):
        await message.add_reaction(chr(0x1F600 + offset))
    with pytest.raises(discord.HTTPException) as refused:
        await message.add_reaction("🎉")
    assert (refused.value.status, refused.value.code) == (400, 30010)
    await message.add_reaction(chr(0x1F600))  # one already there is fine
    assert len(server.messages[message.id].reactions) == 20


async def test_reacting_in_a_dm_checks_no_permission(server: FakeDiscord, club: Club) -> None:
    _, dm = await rest(server, "POST", "/users/@me/channels", {"recipient_id": str(club.member.id)})
    _, sent = await rest(server, "POST", f"/channels/{dm['id']}/messages", {"content": "Hi"})
    status, _ = await rest(server, "PUT", f"/channels/{dm['id']}/messages/{sent['id']}/reactions/{quote('👋')}/@me")
    assert status == 204 and server.messages[int(sent["id"])].reactions == {"👋": {server.bot_user.id}}


async def test_reaction_events_reach_only_a_client_that_asked_for_them(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    message = await channel_of(client, club.general).send("Welcome!")
    await message.add_reaction("👍")
    assert server.session is not None
    assert [p for p in server.session.sent if p["t"].startswith("MESSAGE_REACTION")] == []
    await client.close()

    intents = bot_intents()
    intents.guild_reactions = True
    async with logged_in(server, club, intents) as listening:
        message = await channel_of(listening, club.general).send("Welcome again!")
        added = await soon(listening.wait_for("raw_reaction_add", timeout=5))
        await message.add_reaction("👍")
        event = await added
        assert (event.user_id, event.message_id, event.emoji.name) == (listening.user.id, message.id, "👍")
        assert event.member is not None and event.message_author_id == listening.user.id
        by_member = await soon(listening.wait_for("reaction_add", timeout=5))
        await server.react(club.member, server.messages[message.id], "👍")
        reaction, user = await by_member
        assert (reaction.count, reaction.me, user.id) == (2, True, club.member.id)
        removed = await soon(listening.wait_for("raw_reaction_remove", timeout=5))
        await message.remove_reaction("👍", listening.user)
        assert (await removed).user_id == listening.user.id


# ---------------------------------------------------------------------- files


async def test_files_stay_on_the_message_and_are_served_as_discord_py_reads_them(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    general = channel_of(client, club.general)
    message = await general.send("Files", files=[
        discord.File(io.BytesIO(b'{"a": 1}'), "data.json"),
        discord.File(io.BytesIO("メモ".encode()), "notes.txt", description="Some notes"),
    ])
    fake = server.messages[message.id]
    assert fake.attachments == [("data.json", b'{"a": 1}'), ("notes.txt", "メモ".encode())]
    data, notes = message.attachments
    assert (data.filename, data.size, data.content_type) == ("data.json", 8, "application/json; charset=utf-8")
    assert (notes.content_type, notes.description) == ("text/plain; charset=utf-8", "Some notes")
    assert await notes.read() == "メモ".encode()  # from the fake's own CDN, not the internet
    # An edit without `attachments` keeps them; with it, the message keeps what it lists, new files included.
    await message.edit(content="Still files")
    assert [name for name, _ in fake.attachments] == ["data.json", "notes.txt"]
    edited = await message.edit(attachments=[notes, discord.File(io.BytesIO(b"new"), "new.txt")])
    assert fake.attachments == [("notes.txt", "メモ".encode()), ("new.txt", b"new")]
    assert [a.filename for a in edited.attachments] == ["notes.txt", "new.txt"] and edited.attachments[0].id == notes.id


async def test_sending_files_takes_attach_files_and_at_most_10_mib_each(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    general = channel_of(client, club.general)
    with pytest.raises(discord.HTTPException) as too_big:
        await general.send(file=discord.File(io.BytesIO(b"x" * (10 * 1024 * 1024 + 1)), "big.bin"))
    assert (too_big.value.status, too_big.value.code) == (413, 40005)
    deny_bot(server, club.guild, club.general, Perm.ATTACH_FILES)
    with pytest.raises(discord.Forbidden) as refused:
        await general.send(file=discord.File(io.BytesIO(b"hello"), "hello.txt"))
    assert refused.value.code == 50013
    await general.send("Text still goes")
    assert [m.content for m in server.channel_messages(club.general)] == ["Text still goes"]


# ---------------------------------------------------------------------- replies


async def test_a_reply_pings_its_author_unless_allowed_mentions_say_otherwise(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    general = channel_of(client, club.general)
    written = await server.send_message(club.member, club.general, "Hi, I am Ben")
    answered = general.get_partial_message(written.id)
    pinging = await answered.reply("Welcome!")  # discord.py sends no allowed_mentions: Discord's default pings
    assert "allowed_mentions" not in server.calls_to("POST", rf"/channels/{club.general.id}/messages")[-1].json
    assert server.messages[pinging.id].mentions == [club.member.id] and [u.id for u in pinging.mentions] == [
        club.member.id]
    assert pinging.type is discord.MessageType.reply and pinging.reference is not None
    assert isinstance(pinging.reference.resolved, discord.Message)
    assert pinging.reference.resolved.content == "Hi, I am Ben"
    explicit = await answered.reply("Welcome!", allowed_mentions=discord.AllowedMentions(replied_user=True))
    assert server.messages[explicit.id].mentions == [club.member.id]
    quiet = [await answered.reply("Welcome!", mention_author=False),
             await answered.reply("Welcome!", allowed_mentions=discord.AllowedMentions.none())]
    assert [server.messages[m.id].mentions for m in quiet] == [[], []]
    own = await general.send("Mine")
    assert server.messages[(await own.reply("Me again")).id].mentions == []  # one's own message pings nobody
    # Once the answered message is gone, Discord shows the reference as deleted.
    server.messages[written.id].deleted = True
    fetched = await general.fetch_message(pinging.id)
    assert isinstance(fetched.reference.resolved, discord.DeletedReferencedMessage)


async def test_a_reply_needs_its_message_in_the_channel_and_read_message_history(
        server: FakeDiscord, club: Club, client: discord.Client) -> None:
    general = channel_of(client, club.general)
    elsewhere = await channel_of(client, club.news).send("Headline")
    for reference in (discord.MessageReference(message_id=12345, channel_id=general.id),
                      elsewhere.to_reference()):
        with pytest.raises(discord.HTTPException) as unknown:
            await general.send("Reply", reference=reference)
        assert (unknown.value.status, unknown.value.code) == (400, 50035)
    plain = await general.send("Reply", reference=discord.MessageReference(
        message_id=12345, channel_id=general.id, fail_if_not_exists=False))
    assert plain.reference is None and plain.type is discord.MessageType.default
    written = await server.send_message(club.member, club.general, "Hi")
    deny_bot(server, club.guild, club.general, Perm.READ_MESSAGE_HISTORY)
    with pytest.raises(discord.Forbidden) as refused:
        await general.get_partial_message(written.id).reply("Welcome!")
    assert refused.value.code == 50013


# ---------------------------------------------------------------------- gateway shards
#
# Four servers, two on each shard of two. The clients are discord.py's AutoShardedClient, as the bot will run:
# several processes, each with some of the shards (shard_count and shard_ids), or one with all of them.


@dataclass
class Shards:
    zero: tuple[Guild, Guild]  # on shard 0 of 2
    one: tuple[Guild, Guild]  # on shard 1 of 2

    @property
    def everyone(self) -> set[int]:
        return {guild.id for guild in (*self.zero, *self.one)}


@pytest.fixture
async def sharded() -> AsyncIterator[tuple[FakeDiscord, Shards]]:
    server = FakeDiscord()
    guilds = []
    for name, shard in (("Zero A", 0), ("One A", 1), ("Zero B", 0), ("One B", 1)):
        guild = server.add_guild(name, shard=(shard, 2))
        server.add_channel(guild, "general")
        server.add_member(guild, f"member of {name}")
        guilds.append(guild)
    await server.start()
    with server.pointed_at():
        yield server, Shards(zero=(guilds[0], guilds[2]), one=(guilds[1], guilds[3]))
    await server.stop()


class QuickShards(discord.AutoShardedClient):
    """discord.py sleeps 5 s before each IDENTIFY after the first (``before_identify_hook``); the fake does not
    hold a bot to ``max_concurrency``, so this client does not wait."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


def shard_intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = intents.members = intents.guild_messages = intents.dm_messages = True
    intents.message_content = True
    return intents


@contextlib.asynccontextmanager
async def ready(server: FakeDiscord, client: discord.Client) -> AsyncIterator[discord.Client]:
    """``client`` logged into the fake until the block ends, once discord.py says it is ready (every shard has
    had its servers)."""
    task = asyncio.create_task(client.start(server.token))
    try:
        await server.wait_until(lambda: client.is_ready() or task.done(), 10, "the client to be ready")
        if task.done():
            task.result()
        yield client
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def shard_client(*shard_ids: int, shard_count: int | None = 2) -> QuickShards:
    return QuickShards(intents=shard_intents(), shard_count=shard_count, shard_ids=list(shard_ids) or None,
                       guild_ready_timeout=0.1)


def servers_named(payload: dict[str, Any]) -> list[int | None]:
    """The servers a dispatched event is about; None for one about no server (a DM)."""
    data = payload["d"]
    if payload["t"] == "READY":
        return [int(g["id"]) for g in data["guilds"]]
    if payload["t"] == "GUILD_CREATE":
        return [int(data["id"])]
    return [int(data["guild_id"]) if "guild_id" in data else None]


def off_its_shard(session: GatewaySession) -> list[str]:
    """The events ``session`` received that another shard (of two) should have."""
    return [p["t"] for p in session.sent
            if any((0 if g is None else shard_of(g, 2)) != session.shard_id for g in servers_named(p))]


async def test_each_shard_receives_its_own_servers_and_only_their_events(
        sharded: tuple[FakeDiscord, Shards]) -> None:
    server, shards = sharded
    async with ready(server, shard_client(0)) as zero, ready(server, shard_client(1)) as one:
        assert {g.id for g in zero.guilds} == {g.id for g in shards.zero}
        assert {g.id for g in one.guilds} == {g.id for g in shards.one}
        assert all(not g.unavailable and g.member_count == 3 for g in (*zero.guilds, *one.guilds))
        assert set(server.sessions) == {(0, 2), (1, 2)} and server.connected_shards == {0, 1}

        joined = await soon(one.wait_for("member_join", timeout=5))
        newcomer = await server.member_join(shards.one[1], "emi")
        assert (await joined).guild.id == shards.one[1].id
        written = await soon(zero.wait_for("message", timeout=5))
        await server.send_message(server.member(shards.zero[0], "member of Zero A"),
                                  shards.zero[0].channel_named("general"), "Hello, shard 0")
        assert (await written).content == "Hello, shard 0"
        await server.member_leave(newcomer)

        status, _ = await put_commands(server, [command()])
        assert status == 200
        interacted = await soon(one.wait_for("interaction", timeout=5))
        await server.slash(server.member(shards.one[0], "member of One A"), "thing")
        assert (await interacted).guild_id == shards.one[0].id

        general = one.get_channel(shards.one[0].channel_named("general").id)
        assert isinstance(general, discord.TextChannel)
        await general.create_thread(name="Shard one's thread", type=discord.ChannelType.public_thread)

        # A DM belongs to no server: shard 0 receives it, whichever shard opened the channel.
        member = server.member(shards.one[0], "member of One A")
        user = one.get_user(member.id)
        assert user is not None
        dm = await user.create_dm()
        direct = await soon(zero.wait_for("message", check=lambda m: m.guild is None, timeout=5))
        await server.send_message(member, server.channels[dm.id], "Hello, bot")
        message = await direct
        assert isinstance(message.channel, discord.DMChannel) and message.author.id == member.id
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="Hi", custom_id="wave"))
        sent = await dm.send("Wave back?", view=view)
        clicked = await soon(zero.wait_for("interaction", timeout=5))
        await server.click(member, server.messages[sent.id], "wave")
        assert (await clicked).guild_id is None

        zero_got = [p["t"] for p in server.sessions[0, 2].sent]
        one_got = [p["t"] for p in server.sessions[1, 2].sent]
        assert one_got.count("GUILD_MEMBER_ADD") == 1 and zero_got.count("INTERACTION_CREATE") == 1
        assert {"GUILD_MEMBER_ADD", "GUILD_MEMBER_REMOVE", "INTERACTION_CREATE", "THREAD_CREATE"} <= set(one_got)
        assert "MESSAGE_CREATE" in zero_got and "MESSAGE_CREATE" not in one_got  # the bot's own DM too
        assert off_its_shard(server.sessions[0, 2]) == [] and off_its_shard(server.sessions[1, 2]) == []


async def test_a_bot_that_does_not_shard_sees_every_server(sharded: tuple[FakeDiscord, Shards]) -> None:
    server, shards = sharded
    async with ready(server, discord.Client(intents=shard_intents(), guild_ready_timeout=0.1)) as client:
        assert {g.id for g in client.guilds} == shards.everyone
        joined = await soon(client.wait_for("member_join", timeout=5))
        await server.member_join(shards.one[0], "emi")
        assert (await joined).guild.id == shards.one[0].id
    assert set(server.sessions) == {(0, 1)} and server.session is server.sessions[0, 1]
    assert "shard" not in server.sessions[0, 1].sent[0]["d"]  # READY names a shard only when IDENTIFY did


async def test_an_auto_sharded_client_without_a_count_starts_the_recommended_shards(
        sharded: tuple[FakeDiscord, Shards]) -> None:
    server, shards = sharded
    server.recommended_shards = 2
    async with ready(server, shard_client(shard_count=None)) as client:
        assert isinstance(client, QuickShards)
        assert client.shard_count == 2 and set(client.shards) == {0, 1}
        assert {g.id for g in client.guilds} == shards.everyone
        assert all(g.shard_id == shard_of(g.id, 2) for g in client.guilds)
        [asked] = server.calls_to("GET", "/gateway/bot")
        assert asked.status == 200
        status, answer = await rest(server, "GET", "/gateway/bot")
        assert (status, answer["url"], answer["shards"]) == (200, server.gateway_url, 2)
        assert answer["session_start_limit"]["max_concurrency"] == 1
        assert answer["session_start_limit"]["remaining"] == answer["session_start_limit"]["total"] - 2

        # Members are asked for on a guild's own shard and answered there.
        guild = client.get_guild(shards.one[0].id)
        assert guild is not None
        assert {m.id for m in await guild.chunk()} == set(shards.one[0].members)
        chunks = {k: [p["d"]["guild_id"] for p in s.sent if p["t"] == "GUILD_MEMBERS_CHUNK"]
                  for k, s in server.sessions.items()}
        assert chunks == {(0, 2): [], (1, 2): [str(guild.id)]}


async def test_a_dropped_shard_resumes_its_own_session_and_gets_what_it_missed(
        sharded: tuple[FakeDiscord, Shards]) -> None:
    server, shards = sharded
    async with ready(server, shard_client(0, 1)) as client:
        zero = server.session_of(0)
        await server.drop_connection(shard=1)
        assert server.connected and server.connected_shards == {0}
        missed = await server.member_join(shards.one[0], "emi")
        await server.wait_until(lambda: server.resume_count == 1, 10, "shard 1 to resume")
        guild = client.get_guild(shards.one[0].id)
        assert guild is not None
        await server.wait_until(lambda: guild.get_member(missed.id) is not None, 5,
                                "the member who joined while shard 1 was away")
        assert server.identify_count == 2 and server.session_of(0) is zero
        assert server.connected_shards == {0, 1}


async def test_a_shard_the_count_does_not_have_is_refused_with_4010(sharded: tuple[FakeDiscord, Shards]) -> None:
    server, _ = sharded
    with pytest.raises(discord.ConnectionClosed) as closed:
        async with ready(server, shard_client(2)):
            pass
    assert closed.value.code == 4010
    assert server.sessions == {}


async def raw_identify(server: FakeDiscord, **fields: Any) -> dict[str, Any] | int:
    """IDENTIFY over a bare websocket: READY's data, or the code the fake closed with."""
    async with aiohttp.ClientSession() as session, session.ws_connect(server.gateway_url) as ws:
        assert (await ws.receive_json())["op"] == 10
        await ws.send_json({"op": 2, "d": {"token": server.token, "intents": 1, "properties": {}, **fields}})
        frame = await ws.receive()
        if frame.type != aiohttp.WSMsgType.TEXT:
            assert ws.close_code is not None
            return ws.close_code
        first = json.loads(frame.data)
        assert first["t"] == "READY"
        return dict(first["d"])


@pytest.mark.parametrize("shard", [[2, 2], [-1, 2], [0, 0], [0], [0, 2, 1], ["0", "2"], [True, 2], "0,2"])
async def test_an_identify_with_an_invalid_shard_is_closed_with_4010(
        sharded: tuple[FakeDiscord, Shards], shard: Any) -> None:
    server, _ = sharded
    assert await raw_identify(server, shard=shard) == 4010


async def test_a_shard_with_more_servers_than_discord_allows_one_session_is_closed_with_4011(
        sharded: tuple[FakeDiscord, Shards]) -> None:
    server, shards = sharded
    server.max_guilds_per_shard = 2
    assert await raw_identify(server) == 4011
    answer = await raw_identify(server, shard=[1, 2])
    assert isinstance(answer, dict) and answer["shard"] == [1, 2]
    assert {int(g["id"]) for g in answer["guilds"]} == {g.id for g in shards.one}


async def test_while_a_bot_reshards_old_and_new_shards_each_get_their_servers_events(
        sharded: tuple[FakeDiscord, Shards]) -> None:
    server, shards = sharded
    async with ready(server, discord.Client(intents=shard_intents(), guild_ready_timeout=0.1)) as before, \
            ready(server, shard_client(1)) as after:
        assert len(before.guilds) == 4 and len(after.guilds) == 2
        joins = [await soon(c.wait_for("member_join", timeout=5)) for c in (before, after)]
        await server.member_join(shards.one[1], "emi")
        assert [(await j).guild.id for j in joins] == [shards.one[1].id] * 2
        await server.member_join(shards.zero[1], "fumi")
        joined = {k: [p["d"]["user"]["username"] for p in s.sent if p["t"] == "GUILD_MEMBER_ADD"]
                  for k, s in server.sessions.items()}
        assert joined == {(0, 1): ["emi", "fumi"], (1, 2): ["emi"]}
        assert server.session is server.sessions[0, 1]  # shard 0 is still only the old bot's


async def test_a_new_identify_replaces_only_its_own_shards_session(sharded: tuple[FakeDiscord, Shards]) -> None:
    server, _ = sharded
    async with ready(server, shard_client(0)), ready(server, shard_client(1)):
        first_zero, one = server.sessions[0, 2], server.sessions[1, 2]
        async with ready(server, shard_client(0)):
            assert server.sessions[0, 2] is not first_zero and server.sessions[1, 2] is one
            assert server.identify_count == 3


# ---------------------------------------------------------------------- commands and components Discord refuses


@pytest.mark.parametrize("bad", [
    [{"name": "Probe member", "type": 2, "description": "Context menus have none"}],
    [{"name": "Probe member", "type": 2, "options": [STRING]}],
    [{"name": "x" * 33, "type": 2}],
    [{"name": "Probe member", "type": 2}, {"name": "Probe member", "type": 2}],
    [{"name": "thing", "type": 7}],
])
async def test_user_commands_discord_refuses_are_refused(server: FakeDiscord, bad: list[dict[str, Any]]) -> None:
    status, body = await put_commands(server, bad)
    assert (status, body["code"]) == (400, 50035)


async def test_user_commands_take_spaces_and_capitals_and_keep_their_ids(server: FakeDiscord) -> None:
    tree = [command(name="probe"), {"name": "probe", "type": 2}, {"name": "Probe Member", "type": 2,
                                                                   "description": ""}]
    status, first = await put_commands(server, tree)
    assert status == 200 and [(c["name"], c["type"], c["description"]) for c in first] == [
        ("probe", 1, "Does a thing"), ("probe", 2, ""), ("Probe Member", 2, "")]
    assert len({c["id"] for c in first}) == 3  # a slash and a user command may share a name, not an id
    _, again = await put_commands(server, list(reversed(tree)))
    assert {(c["name"], c["type"]): c["id"] for c in again} == {(c["name"], c["type"]): c["id"] for c in first}


def select_row(**fields: Any) -> dict[str, Any]:
    menu = {"type": 3, "custom_id": "pick", "options": [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}]}
    return {"type": 1, "components": [{**menu, **fields}]}


@pytest.mark.parametrize("components", [
    [{"type": 1, "components": [select_row()["components"][0],
                                {"type": 2, "style": 1, "label": "Go", "custom_id": "go"}]}],  # a select fills a row
    [select_row(options=[])],
    [select_row(options=[{"label": str(n), "value": str(n)} for n in range(26)])],
    [select_row(options=[{"label": "A", "value": "a"}, {"label": "Also A", "value": "a"}])],
    [select_row(options=[{"label": "", "value": "a"}])],
    [select_row(max_values=26)],
    [select_row(min_values=-1)],
    [select_row(placeholder="x" * 151)],
])
async def test_select_menus_discord_refuses_are_refused(server: FakeDiscord, club: Club,
                                                        components: list[dict[str, Any]]) -> None:
    status, body = await rest(server, "POST", f"/channels/{club.general.id}/messages",
                              {"content": "Pick", "components": components})
    assert (status, body["code"]) == (400, 50035)
    assert server.channel_messages(club.general) == []


# ---------------------------------------------------------------------- through the bot: selects, user commands, files


@pytest.fixture
async def probed_bot(bot_runner: BotRunner) -> KakehashiBot:
    return await bot_runner.start(extra_cogs=(Probe, ProbeUserCommands))


async def posted_picker(discord_server: FakeDiscord, world: World) -> Message:
    return await (await discord_server.slash(world.member, "probe pick")).reply()


async def test_a_select_sends_what_was_picked_and_the_bot_reads_it(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    picker = await posted_picker(discord_server, world)
    assert picker.custom_ids == ["probe:pick", "probe:off"]  # selects inside action rows
    picked = await discord_server.select(world.ja_member, picker, "probe:pick", ["blue", "red"])
    assert picked.payload["data"] == {"custom_id": "probe:pick", "component_type": 3, "values": ["blue", "red"]}
    assert (await picked.reply()).content == "picked blue red"


@pytest.mark.parametrize(("custom_id", "values", "refusal"), [
    ("probe:pick", ["purple"], "offers"),
    ("probe:pick", [], "takes 1 to 2"),
    ("probe:pick", ["red", "green", "blue"], "takes 1 to 2"),
    ("probe:pick", ["red", "red"], "twice"),
    ("probe:off", ["off"], "disabled"),
])
async def test_the_fake_refuses_picks_the_discord_client_would_not_send(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot, custom_id: str, values: list[str],
        refusal: str) -> None:
    picker = await posted_picker(discord_server, world)
    before = len(discord_server.interactions)
    with pytest.raises(AssertionError, match=refusal):
        await discord_server.select(world.member, picker, custom_id, values)
    with pytest.raises(AssertionError, match="not a button"):
        await discord_server.click(world.member, picker, "probe:pick")
    assert len(discord_server.interactions) == before


async def test_a_user_command_resolves_its_target_with_the_time_it_joined(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    synced = {c["name"]: c for c in discord_server.global_commands if c["type"] == 2}
    assert {"Probe member", "Probe member (admin)"} <= set(synced) and synced["Probe member"]["description"] == ""
    joined = datetime(2024, 4, 1, 9, 30, tzinfo=UTC)
    newcomer = await discord_server.member_join(world.guild, "emi", joined_at=joined)
    guild = probed_bot.get_guild(world.guild.id)
    assert guild is not None
    await discord_server.wait_until(lambda: guild.get_member(newcomer.id) is not None, 5, "the join")
    assert guild.get_member(newcomer.id).joined_at == joined  # type: ignore[union-attr]
    used = await discord_server.user_command(world.member, "Probe member", newcomer)
    data = used.payload["data"]
    assert (data["type"], data["name"], data["target_id"]) == (2, "Probe member", str(newcomer.id))
    assert set(data["resolved"]["users"]) == set(data["resolved"]["members"]) == {str(newcomer.id)}
    assert (await used.reply()).content == f"emi ({newcomer.id}) joined 2024-04-01T09:30:00+00:00"
    with pytest.raises(AssertionError, match="not registered"):
        await discord_server.slash(world.member, "Probe member")  # a user command is no slash command


async def test_a_user_command_respects_default_member_permissions(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    with pytest.raises(CommandNotAvailable):
        await discord_server.user_command(world.member, "Probe member (admin)", world.ja_member)
    by_admin = await discord_server.user_command(world.admin, "Probe member (admin)", world.ja_member)
    assert (await by_admin.reply()).content.startswith(f"chie ({world.ja_member.id}) joined")
    discord_server.allow_command(world.guild, "Probe member (admin)", world.member.id, kind=2)
    allowed = await discord_server.user_command(world.member, "Probe member (admin)", world.ja_member)
    assert (await allowed.reply()).ephemeral


@pytest.mark.parametrize("how", ["response", "followup", "channel"])
async def test_files_the_bot_sends_are_kept_on_its_messages(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot, how: str) -> None:
    general = world.guild.channel_named("general")
    answered = await discord_server.slash(world.member, "probe file", where=general, text="日本語 <@1>", how=how)
    reply = await answered.reply()
    sent = reply if how != "channel" else next(m for m in discord_server.channel_messages(general) if m.files)
    assert [name for name, _ in sent.attachments] == ["probe.json"]
    assert json.loads(sent.attachments[0][1]) == {"text": "日本語 <@1>"}
    [attachment] = sent.payload()["attachments"]
    assert attachment["filename"] == "probe.json" and attachment["size"] == len(sent.attachments[0][1])
    assert attachment["content_type"] == "application/json; charset=utf-8"
    assert attachment.get("ephemeral", False) == sent.ephemeral
    async with aiohttp.ClientSession() as session, session.get(attachment["url"]) as served:
        assert await served.read() == sent.attachments[0][1]


async def test_a_file_the_bot_may_not_attach_is_refused_and_apologised_for(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    general = world.guild.channel_named("general")
    deny_bot(discord_server, world.guild, general, Perm.ATTACH_FILES)
    reply = await (await discord_server.slash(world.member, "probe file", where=general, text="x",
                                              how="channel")).reply()
    assert reply.ephemeral and reply.content.startswith("Sorry, something went wrong")
    assert [c.status for c in discord_server.calls_to("POST", rf"/channels/{general.id}/messages")] == [403]


async def test_a_large_server_comes_without_its_members_who_follow_in_chunks_of_1000(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    """As Discord sends a server of more than 250 members to a bot without the presences intent."""
    for n in range(2500):
        discord_server.add_member(world.guild, f"m{n:04d}")
    bot = await bot_runner.start()
    guild = bot.get_guild(world.guild.id)
    assert guild is not None
    await discord_server.wait_until(lambda: guild.chunked, 10, "the members' chunks")
    sent = [p for session in discord_server.sessions.values() for p in session.sent]
    (created,) = [p["d"] for p in sent if p["t"] == "GUILD_CREATE" and p["d"]["id"] == str(world.guild.id)]
    assert created["large"] and [m["user"]["id"] for m in created["members"]] == [str(bot.user.id)]
    chunks = [p["d"] for p in sent if p["t"] == "GUILD_MEMBERS_CHUNK" and p["d"]["guild_id"] == str(world.guild.id)]
    assert [(c["chunk_index"], c["chunk_count"], len(c["members"])) for c in chunks] == [
        (0, 3, 1000), (1, 3, 1000), (2, 3, len(world.guild.members) - 2000)]
    assert len(guild.members) == len(world.guild.members)
    (other,) = [p["d"] for p in sent if p["t"] == "GUILD_CREATE" and p["d"]["id"] == str(world.other.id)]
    assert not other["large"] and len(other["members"]) == len(world.other.members)
