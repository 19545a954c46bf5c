"""One server's big round does not hold up another server's welcome (issue 13), under rate limits shaped like
Discord's.

Discord publishes only two of its figures, and asks bots to read the headers rather than hard-code any:
50 requests a second for a bot (the global limit), and, long ago, 5 messages per 5 s per channel. The others
below are ours, chosen to be in the range bots report meeting, and written down here so that the test and
``bench/delivery.py`` use the same ones (see :data:`DISCORD_LIMITS`). Every bucket counts per channel (the
path's major parameter), as Discord counts these routes; a DM is a channel of its own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from bot.client import KakehashiBot
from playground.clock import FakeClock
from playground.fakediscord import FakeDiscord
from tests.e2e.conftest import BotRunner, World, ask, use_channel
from tests.e2e.test_intros import bot_messages
from tests.e2e.test_matching import bot_posts, threads_in
from tests.seeding import people, seed_community


@dataclass(frozen=True)
class Limit:
    """A per-route bucket for :meth:`FakeDiscord.rate_limit`: ``limit`` calls per ``per_seconds`` on each
    channel, and why that figure."""

    method: str
    pattern: str
    limit: int
    per_seconds: float
    why: str

    @property
    def per_second(self) -> float:
        return self.limit / self.per_seconds


MESSAGES = Limit("POST", r"/channels/\d+/messages", 5, 5.0,
                 "a channel's messages, a DM's and a thread's too: Discord's long-published 5 per 5 s")
THREADS = Limit("POST", r"/channels/\d+/threads", 10, 2.0,
                "threads started in one channel: Discord publishes no figure (its answers show a bucket "
                "per channel, sometimes with long waits); ours is 5 a second, 10 at once")
THREAD_MEMBERS = Limit("PUT", r"/channels/\d+/thread-members/\d+", 10, 10.0,
                       "members added to one thread: no published figure; 10 per 10 s a thread")
DISCORD_LIMITS = (MESSAGES, THREADS, THREAD_MEMBERS)
GLOBAL_PER_SECOND = 50   # Discord's global limit for a bot: 50 requests a second, whatever the route


def limit_like_discord(server: FakeDiscord, limits: tuple[Limit, ...] = DISCORD_LIMITS,
                       global_per_second: int = GLOBAL_PER_SECOND) -> None:
    for limit in limits:
        server.rate_limit(limit.method, limit.pattern, limit.limit, limit.per_seconds)
    server.global_rate_limit(global_per_second)


WELCOME_WITHIN = 5.0   # seconds, the target


async def test_a_member_joining_another_server_is_welcomed_within_5_s_while_a_round_of_200_groups_goes_out(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    members = [discord_server.add_member(world.guild, f"m{n:03d}") for n in range(400)]
    await seed_community(bot_runner.database_path, world.guild.id, people(members), now=clock.now())
    other_welcome = discord_server.add_channel(world.other, "welcome")
    bot: KakehashiBot = await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    await ask(discord_server, world.other_admin, "config channel", purpose="welcome", channel=other_welcome)
    discord_server.expected_pings.update(m.id for m in members)
    limit_like_discord(discord_server)

    ran = await ask(discord_server, world.admin, "rounds run")
    assert "pairs: 200" in ran.text, ran.text

    def introduced_threads() -> int:
        return sum(1 for thread in threads_in(discord_server, matches) if bot_posts(discord_server, thread))

    # Under way: the round's delivery has begun, its first groups are introduced.
    await discord_server.wait_until(lambda: introduced_threads() >= 10, 30, "the round's first threads")
    loop = asyncio.get_running_loop()
    joined_at = loop.time()
    newcomer = await discord_server.member_join(world.other, "newcomer")
    discord_server.expected_pings.add(newcomer.id)
    await discord_server.wait_until(lambda: bool(bot_messages(discord_server, other_welcome)),
                                    WELCOME_WITHIN + 5, "the other server's welcome")
    waited = loop.time() - joined_at
    delivered = introduced_threads()
    (greeting,) = bot_messages(discord_server, other_welcome)
    assert greeting.mentions == [newcomer.id]
    assert waited <= WELCOME_WITHIN, f"the welcome waited {waited:.1f} s"
    # The welcome did not wait for the round: most of its groups were still to be introduced.
    assert delivered < 200, f"the round was over ({delivered} groups) before the welcome came"
    latest = await bot.matching.store.latest_round(world.guild.id)
    assert latest is not None
    assert not (await bot.matching.progress(latest.id)).finished


async def test_an_interaction_sent_while_a_round_is_planned_with_an_empty_kernel_cache_is_answered_within_1_s(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the first round after a fresh install: the round's kernels are compiled, in the worker process."""
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "empty-kernel-cache"))
    members = [discord_server.add_member(world.guild, f"m{n:03d}") for n in range(300)]
    await seed_community(bot_runner.database_path, world.guild.id, people(members), now=clock.now())
    bot: KakehashiBot = await bot_runner.start()
    await use_channel(discord_server, world, "matches", "matches")
    discord_server.expected_pings.update(m.id for m in members)
    round_run = await discord_server.slash(world.admin, "rounds run")
    await discord_server.wait_until(lambda: bot.matching.planning, 20, "the round to be planned")
    loop = asyncio.get_running_loop()
    answered_in = []
    while bot.matching.planning:
        asked = loop.time()
        reply = await (await discord_server.slash(members[len(answered_in) % 300], "intro show")).reply(timeout=10)
        answered_in.append(loop.time() - asked)
        assert reply.ephemeral
        await asyncio.sleep(0.2)
    assert "pairs: 150" in (await round_run.reply(timeout=60)).text
    assert answered_in, "the round was planned before any interaction could be sent"
    assert max(answered_in) <= 1.0, answered_in


async def test_an_interaction_sent_while_the_first_suggest_builds_the_index_of_3000_profiles_is_answered_within_1_s(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    """The index is built after the start, in the round worker, before anyone asks; the first /match suggest
    waits for it while everything else is answered."""
    members = [discord_server.add_member(world.guild, f"m{n:04d}") for n in range(3000)]
    await seed_community(bot_runner.database_path, world.guild.id, people(members), now=clock.now())
    bot: KakehashiBot = await bot_runner.start()
    first = await discord_server.slash(members[0], "match suggest")
    await discord_server.wait_until(lambda: bot.matching.building_index(world.guild.id), 20, "the index to be built")
    loop = asyncio.get_running_loop()
    answered_in = []
    while bot.matching.building_index(world.guild.id):
        asked = loop.time()
        reply = await (await discord_server.slash(members[len(answered_in) + 1], "intro show")).reply(timeout=10)
        answered_in.append(loop.time() - asked)
        assert reply.ephemeral
        await asyncio.sleep(0.1)
    suggested = await first.reply(timeout=30)
    assert suggested.custom_ids and all(c.startswith(f"match:ask:{world.guild.id}:") for c in suggested.custom_ids)
    assert answered_in, "the index was built before any interaction could be sent"
    assert max(answered_in) <= 1.0, answered_in
    started = loop.time()
    await (await discord_server.slash(members[1], "match suggest")).reply()
    assert loop.time() - started <= 1.0


async def test_after_a_restart_the_first_suggest_of_3000_profiles_finds_the_stored_index_loaded(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock,
        caplog: pytest.LogCaptureFixture) -> None:
    """The round worker stores the index it builds (bot/matching/snapshots.py); the next start loads it
    before it connects, so nothing is built again and the first /match suggest is as fast as any."""
    members = [discord_server.add_member(world.guild, f"m{n:04d}") for n in range(3000)]
    await seed_community(bot_runner.database_path, world.guild.id, people(members), now=clock.now())
    clock.advance(timedelta(hours=1))   # the profiles were saved well before the index was built
    bot: KakehashiBot = await bot_runner.start()
    await (await discord_server.slash(members[0], "match suggest")).reply(timeout=30)   # built once
    caplog.set_level(logging.INFO, "bot.matching.service")
    bot = await bot_runner.restart()
    loop = asyncio.get_running_loop()
    started = loop.time()
    suggested = await (await discord_server.slash(members[1], "match suggest")).reply(timeout=10)
    assert loop.time() - started <= 1.0
    assert suggested.custom_ids and all(c.startswith(f"match:ask:{world.guild.id}:") for c in suggested.custom_ids)
    loaded = [r.getMessage() for r in caplog.records if "loaded" in r.getMessage()]
    assert loaded and "(3000 members" in loaded[0], loaded
    assert not bot.matching.building_index(world.guild.id)
