"""``python -m playground.fakediscord`` as the rehearsal in docs/deploying.md runs it: a process of its own, the
env file it writes, what it prints as a bot (``python -m playground.launch``, a process of its own too) connects
and answers, its exit status."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli import ROOT, assert_one_line_error, clean_env, run

SERVERS = 3
WITHIN = 20.0   # seconds from the command to every server's answer


async def line(process: asyncio.subprocess.Process, deadline: float) -> str:
    assert process.stdout is not None
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        text = await asyncio.wait_for(process.stdout.readline(), max(remaining, 0.01))
    except TimeoutError:
        raise AssertionError("the local Discord printed nothing more in time") from None
    if not text:
        _, stderr = await process.communicate()
        raise AssertionError(f"the local Discord ended: {process.returncode}, {stderr.decode()[-2000:]}")
    return text.decode().rstrip("\n")


async def stop(process: asyncio.subprocess.Process) -> tuple[int, bytes, bytes]:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 15)
    assert process.returncode is not None
    return process.returncode, stdout, stderr


@pytest.mark.parametrize("shards", [1, 2])
async def test_a_bot_process_connects_and_answers_every_server(tmp_path: Path, shards: int) -> None:
    """One bot without SHARD settings, on SQLite: it starts as many shards as the local Discord recommends."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN
    env_file = tmp_path / "discord.env"
    fake = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "playground.fakediscord", "--port", "0", "--servers", str(SERVERS),
        "--shard-count", str(shards), "--env-file", str(env_file), cwd=tmp_path, env=clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    bot: asyncio.subprocess.Process | None = None
    try:
        printed = [await line(fake, deadline) for _ in range(3)]
        # What it printed is what it wrote, as KEY=value lines a shell can source.
        assert env_file.read_text().splitlines() == printed
        values = dict(entry.split("=", 1) for entry in printed)
        assert set(values) == {"FAKE_DISCORD_REST", "FAKE_DISCORD_GATEWAY", "DISCORD_TOKEN"}
        assert values["FAKE_DISCORD_REST"].startswith("http://127.0.0.1:")
        assert values["FAKE_DISCORD_GATEWAY"].startswith("ws://127.0.0.1:")

        with (tmp_path / "bot.log").open("wb") as log:
            bot = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "playground.launch", cwd=tmp_path,
                env=clean_env(**values, DATABASE_PATH=str(tmp_path / "kakehashi.db")),
                stdout=log, stderr=asyncio.subprocess.STDOUT)
        connected = {f"shard {shard}/{shards} connected: " + ", ".join(f"s{n}" for n in range(shard, SERVERS, shards))
                     for shard in range(shards)}
        answered = [f"s{n} (shard {n % shards}): /stats answered" for n in range(SERVERS)]
        seen = [await line(fake, deadline) for _ in range(shards + SERVERS)]
        assert (set(seen[:shards]), seen[shards:]) == (connected, answered), \
            (tmp_path / "bot.log").read_text(errors="replace")[-3000:]

        status, _, _ = await stop(bot)
        assert status == 0, (tmp_path / "bot.log").read_text(errors="replace")[-3000:]
        status, stdout, stderr = await stop(fake)
        assert status == 0, stderr.decode()
        printed = stdout.decode().splitlines()
        assert sorted(printed[:-1]) == [f"shard {shard}/{shards} disconnected" for shard in range(shards)]
        assert printed[-1] == "Stopped."
        assert "Traceback" not in stderr.decode()
    finally:
        for process in (bot, fake):
            if process is not None and process.returncode is None:
                process.kill()
                await process.wait()


async def test_a_busy_port_stops_with_one_line_and_status_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        outcome = await run(["-m", "playground.fakediscord", "--port", str(port), "--env-file",
                             str(tmp_path / "discord.env")], clean_env(), tmp_path)
    assert_one_line_error(outcome, 2, f"port {port} on 127.0.0.1 is already in use", "--port")
    assert not (tmp_path / "discord.env").exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])
async def test_a_host_other_than_loopback_is_refused(tmp_path: Path, host: str) -> None:
    outcome = await run(["-m", "playground.fakediscord", "--port", "0", "--host", host, "--env-file",
                         str(tmp_path / "discord.env")], clean_env(), tmp_path)
    assert_one_line_error(outcome, 2, "loopback", host)


def test_the_module_is_where_the_rehearsal_says() -> None:
    rehearsal = (ROOT / "docs" / "deploying.md").read_text().split("## Rehearsal", 1)[1]
    assert "python -m playground.fakediscord --port 8800 --servers 4 --shard-count 2 --env-file" in rehearsal
