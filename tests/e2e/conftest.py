"""Fixtures that start the fake Discord and the real bot against it, in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.client import KakehashiBot
from playground.clock import FakeClock
from playground.fakediscord import Channel, ChannelType, FakeDiscord, Guild, Member, Message, Perm
from playground.runner import BotRunner


@dataclass
class World:
    """The default community: one Japanese-speaking server, one English one."""

    guild: Guild
    other: Guild
    admin: Member
    member: Member
    ja_member: Member
    other_admin: Member


def build_world(server: FakeDiscord) -> World:
    guild = server.add_guild("Nihonjin Professionals", locale="en-US")
    admin_role = server.add_role(guild, "Admin", Perm.MANAGE_GUILD)
    for name in ("general", "introductions", "matches", "welcome", "mod-log"):
        server.add_channel(guild, name)
    server.add_channel(guild, "announcements", ChannelType.ANNOUNCEMENT)
    server.add_channel(guild, "discussions", ChannelType.FORUM, tags=("Discussion", "議論"), require_tag=True)
    server.add_channel(guild, "Lounge", ChannelType.VOICE)
    server.add_channel(guild, "Community", ChannelType.CATEGORY)
    admin = server.add_member(guild, "aiko", roles=(admin_role,))
    member = server.add_member(guild, "ben")
    ja_member = server.add_member(guild, "chie", locale="ja")

    other = server.add_guild("Other Club")
    other_admin_role = server.add_role(other, "Admin", Perm.MANAGE_GUILD)
    server.add_channel(other, "general")
    other_admin = server.add_member(other, "dan", roles=(other_admin_role,))
    return World(guild, other, admin, member, ja_member, other_admin)


async def ask(server: FakeDiscord, member: Member, command: str, /, **options: object) -> Message:
    """Run a command and return its answer, which must be private (ephemeral)."""
    reply = await (await server.slash(member, command, **options)).reply(timeout=30)
    assert reply.ephemeral, f"/{command} answered publicly: {reply.text!r}"
    return reply


async def use_channel(server: FakeDiscord, world: World, purpose: str, name: str) -> Channel:
    """As the admin, point ``purpose`` at the world's channel called ``name``."""
    channel = world.guild.channel_named(name)
    await ask(server, world.admin, "config channel", purpose=purpose, channel=channel)
    return channel


@pytest.fixture
async def discord_server() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    with server.pointed_at():
        yield server
    await server.stop()


@pytest.fixture
def world(discord_server: FakeDiscord) -> World:
    return build_world(discord_server)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def bot_runner(discord_server: FakeDiscord, world: World, tmp_path: Path,
                     clock: FakeClock) -> AsyncIterator[BotRunner]:
    runner = BotRunner(discord_server, tmp_path / "kakehashi.db", clock)
    yield runner
    await runner.stop()
    # Whatever the test did, the bot must not have called an API the fake does not know
    # (a typo'd route, or one the fake must learn), nor left a member without an answer.
    assert discord_server.unhandled_calls() == []
    assert discord_server.unanswered_interactions() == []
    # Nothing the bot sends may ping anyone a test did not declare (never @everyone, @here or a role).
    sent = [m for m in discord_server.messages.values() if m.author.id == discord_server.bot_user.id]
    assert [m for m in sent if m.mention_everyone or m.mention_roles
            or set(m.mentions) - discord_server.expected_pings] == []


@pytest.fixture
async def running_bot(bot_runner: BotRunner) -> KakehashiBot:
    return await bot_runner.start()
