"""Two bot processes, shards 0 and 1 of 2, sharing one PostgreSQL, against one fake Discord holding four servers
(two on each shard) and a fifth, larger one on shard 1: each of the four's scheduled prompt and round is done
once, by the process that runs its shard; the process of shard 1, killed in the middle of the fifth's round's
delivery, is started again and the round finishes, nothing twice, nothing lost.

The processes run the real entry point (``python -m bot`` through playground/launch.py) on the real clock, so
the schedules are set for the next minute and the test waits for it (about a minute)."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from playground.fakediscord import Channel, FakeDiscord, Guild, Member, Perm
from tests.e2e.conftest import ask
from tests.e2e.test_cli import clean_env
from tests.e2e.test_matching import bot_posts, humans_in, profile, threads_in
from tests.postgres import PostgresServer

LEASE_SECONDS = 3


@dataclass
class Server:
    guild: Guild
    admin: Member
    members: list[Member]
    shard: int

    def channel(self, name: str) -> Channel:
        return self.guild.channel_named(name)


@dataclass
class Shard:
    """One bot process, running one shard of two."""

    shard: int
    url: str
    log: Path
    process: asyncio.subprocess.Process | None = None
    pids: list[int] = field(default_factory=list)

    async def start(self, server: FakeDiscord) -> None:
        env = clean_env(FAKE_DISCORD_REST=server.rest_url, FAKE_DISCORD_GATEWAY=server.gateway_url,
                        DISCORD_TOKEN=server.token, DATABASE_URL=self.url, SHARD_COUNT="2",
                        SHARD_IDS=str(self.shard), JOB_LEASE_SECONDS=str(LEASE_SECONDS), LOG_LEVEL="INFO")
        identified = server.identify_count
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "playground.launch", cwd=self.log.parent, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=log)
        self.pids.append(self.process.pid)

        def connected() -> bool:
            session = server.session_of(self.shard)
            return server.identify_count > identified and session is not None and session.connection is not None \
                and session.shard_count == 2
        await server.wait_until(connected, 30, f"shard {self.shard} to connect")

    def owner(self, pid: int) -> str:
        return f"{socket.gethostname()}:{pid}"

    async def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


def community(discord: FakeDiscord, name: str, shard: int, members: int) -> Server:
    guild = discord.add_guild(name, shard=(shard, 2))
    admin_role = discord.add_role(guild, "Admin", Perm.MANAGE_GUILD)
    for channel in ("general", "matches"):
        discord.add_channel(guild, channel)
    admin = discord.add_member(guild, f"{name}-admin", roles=(admin_role,))
    people = [discord.add_member(guild, f"{name}-{n}") for n in range(members)]
    return Server(guild, admin, people, shard)


@pytest.fixture
async def discord() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    yield server
    await server.stop()


async def done_jobs(url: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch("SELECT kind, guild_id, claimed_by, attempts, dedupe_key FROM outbox "
                                           "WHERE state = 'done' ORDER BY id"))
    finally:
        await connection.close()


async def test_two_shard_processes_share_the_work_by_server_and_survive_a_kill(
        discord: FakeDiscord, postgres_server: PostgresServer, tmp_path: Path) -> None:
    url = postgres_server.new_database()
    servers = [community(discord, f"s{n}", n % 2, members=2) for n in range(4)]
    crowd = community(discord, "crowd", 1, members=6)   # the round that is cut short, on shard 1
    shards = [Shard(n, url, tmp_path / f"shard{n}.log") for n in range(2)]
    try:
        await asyncio.gather(*(shard.start(discord) for shard in shards))
        # The deployment's commands are synced once, by the process running shard 0.
        assert len(discord.calls_to("PUT", r"/applications/\d+/commands")) == 1

        # Every server set up through the bot: each interaction reaches, and is answered by, its shard's process.
        for server in [*servers, crowd]:
            await ask(discord, server.admin, "config channel", purpose="prompts", channel=server.channel("general"))
            await ask(discord, server.admin, "config channel", purpose="matches", channel=server.channel("matches"))
            for n, member in enumerate(server.members):
                await profile(discord, member, f"{server.guild.name} company {n}")
                await ask(discord, member, "match join")
            discord.expected_pings.update(m.id for m in server.members)

        # The prompt and the round of the four servers are scheduled for the coming minute (UTC, the default).
        slot = (datetime.now(UTC) + timedelta(seconds=65)).replace(second=0, microsecond=0)
        weekday = slot.strftime("%A").lower()
        for server in servers:
            await ask(discord, server.admin, "config prompts", weekday=weekday, time=slot.strftime("%H:%M"),
                      enabled=True)
            await ask(discord, server.admin, "config rounds", cadence="weekly", weekday=weekday,
                      time=slot.strftime("%H:%M"), enabled=True)

        # Meanwhile a round in "crowd" (shard 1) is cut short by a SIGKILL after its second thread.
        matches = crowd.channel("matches")
        hold = discord.hold("POST", f"/channels/{matches.id}/threads", after=1)
        await discord.slash(crowd.admin, "rounds run")
        await hold.reached(30)
        killed = shards[1].pids[-1]
        await shards[1].kill()
        hold.release()
        await shards[1].start(discord)
        await discord.wait_until(lambda: len(threads_in(discord, matches)) == 3 and all(
            bot_posts(discord, t) for t in threads_in(discord, matches)), 60, "the cut round finished")
        await asyncio.sleep(1.0)   # anything done twice would arrive now
        threads = threads_in(discord, matches)
        assert [len(bot_posts(discord, t)) for t in threads] == [1, 1, 1]
        groups = [humans_in(discord, t) for t in threads]
        assert sorted(len(g) for g in groups) == [2, 2, 2]
        assert set().union(*groups) == {m.id for m in crowd.members}

        def scheduled_done() -> bool:
            return all(threads_in(discord, s.channel("matches")) and bot_posts(discord, s.channel("general"))
                       for s in servers)
        wait = (slot - datetime.now(UTC)).total_seconds() + 60
        await discord.wait_until(scheduled_done, max(wait, 30), "every server's scheduled prompt and round")
        await asyncio.sleep(2.0)   # a second post or thread would arrive now
        for server in servers:
            (thread,) = threads_in(discord, server.channel("matches"))
            assert humans_in(discord, thread) == {m.id for m in server.members}
            assert len(bot_posts(discord, thread)) == 1
            prompts = bot_posts(discord, server.channel("general"))
            assert len(prompts) == 1, [m.content[:40] for m in prompts]

        # Who did what: every job of a server was done by the process that runs its shard, once.
        jobs = await done_jobs(url)
        owners = {0: {shards[0].owner(pid) for pid in shards[0].pids},
                  1: {shards[1].owner(pid) for pid in shards[1].pids}}
        by_guild = {s.guild.id: s.shard for s in [*servers, crowd]}
        assert jobs
        for job in jobs:
            assert job["claimed_by"] in owners[by_guild[job["guild_id"]]], dict(job)
        kinds = {(job["guild_id"], job["kind"]) for job in jobs}
        for server in servers:
            assert (server.guild.id, "prompt.post") in kinds and (server.guild.id, "matching.round") in kinds
        # The delivery the kill interrupted ran again (a second attempt) in the restarted process.
        retaken = [job for job in jobs if job["guild_id"] == crowd.guild.id and job["attempts"] > 1]
        assert retaken and all(job["claimed_by"] == shards[1].owner(shards[1].pids[-1]) for job in retaken)
        assert all(job["claimed_by"] != shards[1].owner(killed) or job["attempts"] == 1 for job in jobs)
        assert discord.unhandled_calls() == []
    finally:
        await asyncio.gather(*(shard.stop() for shard in shards))
    for shard in shards:
        log = shard.log.read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]
        assert postgres_server.url().split("@")[0].split(":")[-1] not in log   # the password
