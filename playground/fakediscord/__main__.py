"""``python -m playground.fakediscord``: the local Discord on its own, for bots in processes of their own (the
rehearsal in docs/deploying.md: shard processes on one PostgreSQL, without Discord).

    python -m playground.fakediscord --port 8800 --servers 4 --shard-count 2 --env-file PATH [--host 127.0.0.1]
        [--token TOKEN]

It holds ``--servers`` servers, s0, s1, …, server n on shard n % ``--shard-count``, each with an admin (Manage
Server), a few members and the channels general, introductions and matches. Once it listens it writes where it
listens and the token to the env file (``KEY=value`` lines, for ``set -a; . PATH``, or for playground.launch's
environment) and prints them. It prints each shard as it identifies, with its servers; once every shard of
``--shard-count`` is connected and the bot's commands are synced, it runs ``/stats`` as each server's admin
and prints whether the answer came. A bot without SHARD_COUNT is told to start ``--shard-count`` shards
(GET /gateway/bot), as Discord recommends a count.

Exit status: 0 after SIGINT or SIGTERM; 2, with one line, when it cannot start (a busy port, a host other than
loopback, an env file it cannot write).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from playground.demo import EXIT_CANNOT_START, EXIT_OK, CannotStart, is_loopback
from playground.fakediscord.model import Guild, Member, Perm, shard_of
from playground.fakediscord.server import CommandNotAvailable, FakeDiscord, GatewaySession

DEFAULT_HOST: Final = "127.0.0.1"
CHANNELS: Final = ("general", "introductions", "matches")
MEMBERS: Final = 3                  # besides the admin, in every server
ANSWER_WITHIN: Final = 15.0         # seconds a server's /stats may take before "no answer"
PROBE: Final = "stats"


@dataclass(frozen=True)
class Server:
    guild: Guild
    admin: Member
    shard: int


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m playground.fakediscord",
        description="A local Discord for bots in processes of their own (docs/deploying.md, Rehearsal).")
    parser.add_argument("--port", type=int, required=True, help="the port on --host (0 picks a free one)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help=f"a loopback address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--servers", type=_at_least_one, default=4, help="how many servers, s0, s1, … (default 4)")
    parser.add_argument("--shard-count", type=_at_least_one, default=1,
                        help="the deployment's SHARD_COUNT: server n is on shard n %% shard-count (default 1)")
    parser.add_argument("--env-file", type=Path, required=True,
                        help="where to write FAKE_DISCORD_REST, FAKE_DISCORD_GATEWAY and DISCORD_TOKEN")
    parser.add_argument("--token", help="the bot token it accepts (default: a new random one)")
    return parser.parse_args(argv)


def _at_least_one(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number}: at least 1")
    return number


def build(discord: FakeDiscord, servers: int, shard_count: int) -> list[Server]:
    built = []
    for n in range(servers):
        name = f"s{n}"
        shard = n % shard_count
        guild = discord.add_guild(name, shard=(shard, shard_count))
        admins = discord.add_role(guild, "Admin", Perm.MANAGE_GUILD)
        for channel in CHANNELS:
            discord.add_channel(guild, channel)
        admin = discord.add_member(guild, f"{name}-admin", roles=(admins,))
        for number in range(1, MEMBERS + 1):
            discord.add_member(guild, f"{name}-member{number}")
        built.append(Server(guild, admin, shard))
    return built


def env_lines(discord: FakeDiscord) -> list[str]:
    return [f"FAKE_DISCORD_REST={discord.rest_url}", f"FAKE_DISCORD_GATEWAY={discord.gateway_url}",
            f"DISCORD_TOKEN={discord.token}"]


def write_env(path: Path, lines: list[str]) -> None:
    """All at once (a file beside it, then renamed), so a shell that waits for the file never reads half."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text("".join(f"{line}\n" for line in lines))
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise CannotStart(f"--env-file {path}: cannot write it: {exc.strerror or exc}.") from None


async def listen(discord: FakeDiscord, host: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise CannotStart(f"--port {port}: a port is a number from 0 to 65535.")
    try:
        await discord.start(port, host=host)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CannotStart(f"port {port} on {host} is already in use (another local Discord?): stop it, or "
                              "choose another port with --port.") from None
        if exc.errno == errno.EACCES:
            raise CannotStart(f"port {port} on {host} needs privileges: choose a port above 1023 with --port.") \
                from None
        raise CannotStart(f"cannot listen on {host} port {port}: {exc.strerror or exc}.") from None


class Watch:
    """Prints each shard as it connects (with its servers), resumes or drops; says when every shard of the
    deployment is connected and the commands are synced."""

    def __init__(self, discord: FakeDiscord, shard_count: int) -> None:
        self.discord = discord
        self.shard_count = shard_count
        self.ready = asyncio.Event()
        self.quiet = False               # stopping: the connections it closes itself are not news
        self._connected: dict[str, bool] = {}   # session id -> connected when last seen

    def __call__(self) -> None:
        if self.quiet:
            return
        for session in list(self.discord.sessions.values()):
            now = session.connection is not None
            before = self._connected.get(session.session_id)
            if before is None and now:
                servers = ", ".join(g.name for g in self.discord.guilds.values() if session.owns(g)) or "no servers"
                print(f"{self._name(session)} connected: {servers}", flush=True)
            elif before is False and now:
                print(f"{self._name(session)} resumed", flush=True)
            elif before and not now:
                print(f"{self._name(session)} disconnected", flush=True)
            self._connected[session.session_id] = now
        if not self.ready.is_set() and self._all_connected() and self._synced():
            self.ready.set()

    @staticmethod
    def _name(session: GatewaySession) -> str:
        return f"shard {session.shard_id}/{session.shard_count}"

    def _all_connected(self) -> bool:
        return all((shard := self.discord.sessions.get((n, self.shard_count))) is not None
                   and shard.connection is not None for n in range(self.shard_count))

    def _synced(self) -> bool:
        return any(command["name"] == PROBE for command in self.discord.global_commands)


async def ask(discord: FakeDiscord, server: Server) -> str:
    """``/stats`` as the server's admin: what happened, in a few words."""
    try:
        reply = await (await discord.slash(server.admin, PROBE)).reply(timeout=ANSWER_WITHIN)
    except CommandNotAvailable as exc:
        return f"cannot ask: {exc}"
    except AssertionError:   # the fake's wait_until: nothing in time
        return "no answer"
    if not reply.embeds:
        return f"/{PROBE} answered without the stats: {reply.content[:100]!r}"
    return f"/{PROBE} answered"


async def probe(discord: FakeDiscord, watch: Watch, servers: list[Server]) -> None:
    await watch.ready.wait()
    asked = [asyncio.create_task(ask(discord, server)) for server in servers]
    for server, outcome in zip(servers, asked, strict=True):   # in the servers' order, each as soon as it can
        print(f"{server.guild.name} (shard {server.shard}): {await outcome}", flush=True)


async def serve(args: argparse.Namespace) -> None:
    discord = FakeDiscord(token=args.token)
    # A bot without SHARD_COUNT starts the count GET /gateway/bot recommends: the deployment's.
    discord.recommended_shards = args.shard_count
    servers = build(discord, args.servers, args.shard_count)
    assert all(shard_of(s.guild.id, args.shard_count) == s.shard for s in servers)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await listen(discord, args.host, args.port)
    try:
        lines = env_lines(discord)
        write_env(args.env_file, lines)
        print("\n".join(lines), flush=True)
        watch = Watch(discord, args.shard_count)
        discord.listeners.append(watch)
        prober = asyncio.create_task(probe(discord, watch, servers), name="probe")
        await stop.wait()
        watch.quiet = True
        prober.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await prober
    finally:
        await discord.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not is_loopback(args.host):
        print(f"kakehashi: the local Discord lets whoever reaches it act as any member and as the bot, so it "
              f"listens only on loopback (127.0.0.1, ::1): not on {args.host}.", file=sys.stderr)
        return EXIT_CANNOT_START
    try:
        asyncio.run(serve(args))
    except CannotStart as exc:
        print(f"kakehashi: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    print("Stopped.", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
