"""The fake Discord itself: what it refuses, as Discord would. (The bot-facing behaviour is covered by the
tests that run the bot; these pin the fake's own rules.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakediscord import ChannelType, FakeDiscord, Perm


@pytest.fixture
async def server() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    guild = server.add_guild("Club")
    server.add_channel(guild, "general")
    await server.start()
    yield server
    await server.stop()


async def put_commands(server: FakeDiscord, commands: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    url = f"{server.rest_url}/applications/{server.application_id}/commands"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bot {server.token}"}) as session, \
            session.put(url, json=commands) as response:
        return response.status, await response.json()


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


def test_permissions_follow_discord_including_implicit_denials() -> None:
    server = FakeDiscord()
    guild = server.add_guild("Club")
    member = server.add_member(guild, "ben")
    from tests.fakediscord import Overwrite

    quiet = server.add_channel(guild, "quiet", overwrites=(Overwrite(guild.id, 0, deny=Perm.SEND_MESSAGES),))
    hidden = server.add_channel(guild, "hidden", overwrites=(Overwrite(guild.id, 0, deny=Perm.VIEW_CHANNEL),))
    perms = guild.permissions_in(member, quiet)
    assert perms & Perm.VIEW_CHANNEL and not perms & (Perm.SEND_MESSAGES | Perm.EMBED_LINKS | Perm.ATTACH_FILES)
    assert guild.permissions_in(member, hidden) == 0
    assert guild.permissions_in(guild.members[server.owner.id], hidden) == Perm.ALL
    voice = server.add_channel(guild, "voice", ChannelType.VOICE)
    assert voice.payload()["bitrate"] == 64000
