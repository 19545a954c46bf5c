"""``python -m bot`` as an operator runs it: a process of its own, its exit status, what it prints."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.storage import load_migrations
from playground.fakediscord import FakeDiscord
from tests.postgres import PASSWORD, PostgresServer

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.SECRET.never-print-this-token-value"


@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: str


def clean_env(**values: str) -> dict[str, str]:
    """Only what a fresh shell would have, plus ``values``: nothing leaks in from the test run."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "SYSTEMROOT") if key in os.environ}
    env["PYTHONPATH"] = str(ROOT)
    env.update(values)
    return env


async def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 30) -> Outcome:
    process = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return Outcome(process.returncode, stdout.decode(), stderr.decode())


def assert_one_line_error(outcome: Outcome, status: int, *phrases: str) -> None:
    assert outcome.status == status, outcome
    assert outcome.stdout == ""
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("kakehashi: ")
    for phrase in phrases:
        assert phrase in lines[0]
    assert "Traceback" not in outcome.stderr
    assert TOKEN not in outcome.stderr and "SECRET" not in outcome.stderr


@pytest.mark.parametrize(("env", "phrases"), [
    ({}, ["DISCORD_TOKEN is not set", ".env"]),
    ({"DISCORD_TOKEN": ""}, ["DISCORD_TOKEN is not set"]),
    ({"DISCORD_TOKEN": "   \t"}, ["DISCORD_TOKEN is not set"]),
    ({"DISCORD_TOKEN": f"Bot {TOKEN}"}, ['remove the leading "Bot "']),
    ({"DISCORD_TOKEN": f"{TOKEN} {TOKEN}"}, ["spaces or line breaks"]),
    ({"DISCORD_TOKEN": TOKEN, "DEV_GUILD_ID": "my-server"}, ["DEV_GUILD_ID must be a Discord id"]),
    ({"DISCORD_TOKEN": TOKEN, "DEV_GUILD_ID": "12345"}, ["DEV_GUILD_ID must be a Discord id"]),
    ({"DISCORD_TOKEN": TOKEN, "DEV_GUILD_ID": "9" * 20}, ["DEV_GUILD_ID must be a Discord id"]),
    ({"DISCORD_TOKEN": TOKEN, "LOG_LEVEL": "loud"}, ["LOG_LEVEL must be one of"]),
    ({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": "mysql://bot:db-SECRET@db.internal/k"},
     ["DATABASE_URL must be a PostgreSQL URL"]),
    ({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": "postgresql://bot:db-SECRET@db.internal/k", "SHARD_COUNT": "2",
      "SHARD_IDS": "1-2"}, ["SHARD_IDS names shard 2", "SHARD_COUNT=2"]),
    ({"DISCORD_TOKEN": TOKEN, "SHARD_IDS": "0"}, ["SHARD_IDS needs SHARD_COUNT"]),
    ({"DISCORD_TOKEN": TOKEN, "SHARD_COUNT": "2", "SHARD_IDS": "0"}, ["set DATABASE_URL"]),
])
async def test_bad_settings_stop_with_one_line_and_status_2(tmp_path: Path, env: dict[str, str],
                                                            phrases: list[str]) -> None:
    outcome = await run(["-m", "bot"], clean_env(**env), tmp_path)
    assert_one_line_error(outcome, 2, *phrases)


async def test_an_unwritable_database_folder_stops_with_status_2(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    for path in (blocker / "kakehashi.db", Path("/proc/kakehashi/kakehashi.db")):
        outcome = await run(["-m", "bot"], clean_env(DISCORD_TOKEN=TOKEN, DATABASE_PATH=str(path)), tmp_path)
        assert_one_line_error(outcome, 2, "Cannot write the database", "DATABASE_PATH")


async def test_a_folder_as_database_path_stops_with_status_2(tmp_path: Path) -> None:
    outcome = await run(["-m", "bot"], clean_env(DISCORD_TOKEN=TOKEN, DATABASE_PATH=str(tmp_path)), tmp_path)
    assert_one_line_error(outcome, 2, "is a folder")


async def test_settings_are_read_from_dotenv_in_the_working_folder(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={TOKEN}\nDEV_GUILD_ID=not-an-id\n")
    outcome = await run(["-m", "bot"], clean_env(), tmp_path)
    assert_one_line_error(outcome, 2, "DEV_GUILD_ID must be a Discord id")


async def test_invite_prints_the_link_with_exactly_the_needed_permissions(tmp_path: Path) -> None:
    outcome = await run(["-m", "bot", "invite", "--client-id", "123456789012345678"], clean_env(), tmp_path)
    assert outcome.status == 0 and outcome.stderr == ""
    url = urlsplit(outcome.stdout.strip())
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == ("https", "discord.com", "/oauth2/authorize")
    assert query["client_id"] == ["123456789012345678"]
    assert query["scope"] == ["bot applications.commands"]
    # View Channels, Add Reactions, Send Messages, Embed Links, Read Message History,
    # Create Public Threads, Create Private Threads, Send Messages in Threads.
    expected = (1 << 10) | (1 << 6) | (1 << 11) | (1 << 14) | (1 << 16) | (1 << 35) | (1 << 36) | (1 << 38)
    assert query["permissions"] == [str(expected)]


async def test_invite_refuses_a_malformed_client_id(tmp_path: Path) -> None:
    outcome = await run(["-m", "bot", "invite", "--client-id", "kakehashi"], clean_env(), tmp_path)
    assert_one_line_error(outcome, 2, "--client-id must be a Discord id")


# ---------------------------------------------------------------------- against the fake Discord


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord(token=TOKEN)
    guild = server.add_guild("Club")
    server.add_channel(guild, "general")
    await server.start()
    yield server
    await server.stop()


def fake_env(server: FakeDiscord, **values: str) -> dict[str, str]:
    return clean_env(FAKE_DISCORD_REST=server.rest_url, FAKE_DISCORD_GATEWAY=server.gateway_url, **values)


async def test_a_token_discord_rejects_stops_with_a_clear_message_and_status_1(
        fake: FakeDiscord, tmp_path: Path) -> None:
    wrong = TOKEN.replace("SECRET", "WRONG")
    outcome = await run(["-m", "playground.launch"], fake_env(fake, DISCORD_TOKEN=wrong), tmp_path)
    assert outcome.status == 1, outcome
    assert outcome.stderr.strip().splitlines()[-1].startswith("kakehashi: Discord rejected DISCORD_TOKEN")
    assert "Traceback" not in outcome.stderr and wrong not in outcome.stderr + outcome.stdout
    assert [c.status for c in fake.calls_to("GET", "/users/@me")] == [401]


async def test_privileged_intents_not_enabled_stop_with_a_clear_message_and_status_1(
        fake: FakeDiscord, tmp_path: Path) -> None:
    fake.privileged_intents = False
    outcome = await run(["-m", "playground.launch"], fake_env(fake, DISCORD_TOKEN=TOKEN), tmp_path)
    assert outcome.status == 1, outcome
    last = outcome.stderr.strip().splitlines()[-1]
    assert "Server Members Intent" in last and "Message Content Intent" in last
    assert "Traceback" not in outcome.stderr and TOKEN not in outcome.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_shuts_down_cleanly_and_closes_the_database(
        fake: FakeDiscord, tmp_path: Path, signum: signal.Signals) -> None:
    database = tmp_path / "data" / "kakehashi.db"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "playground.launch", cwd=tmp_path,
        env=fake_env(fake, DISCORD_TOKEN=TOKEN, DATABASE_PATH="data/kakehashi.db", LOG_LEVEL="INFO"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        await fake.wait_until_ready(20)
        assert database.exists() and Path(f"{database}-wal").exists()  # open, in WAL mode
        process.send_signal(signum)
        _, stderr = await asyncio.wait_for(process.communicate(), 15)
    finally:
        if process.returncode is None:
            process.kill()
    log = stderr.decode()
    assert process.returncode == 0, log
    assert "Shutting down" in log and "Database closed" in log
    assert "Traceback" not in log and TOKEN not in log
    # A clean close checkpoints the write-ahead log and removes it.
    assert not Path(f"{database}-wal").exists()
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 1


async def test_a_file_that_is_not_a_database_stops_with_status_2(fake: FakeDiscord, tmp_path: Path) -> None:
    (tmp_path / "kakehashi.db").write_bytes(b"this is not SQLite" * 100)
    outcome = await run(["-m", "playground.launch"], fake_env(fake, DISCORD_TOKEN=TOKEN), tmp_path)
    assert outcome.status == 2, outcome
    assert outcome.stderr.strip().splitlines()[-1].startswith("kakehashi: database:")
    assert "not a usable SQLite database" in outcome.stderr and "Traceback" not in outcome.stderr


async def test_a_database_from_a_newer_version_is_left_alone_with_status_2(fake: FakeDiscord,
                                                                          tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "kakehashi.db") as db:
        db.execute("PRAGMA user_version = 999")
    outcome = await run(["-m", "playground.launch"], fake_env(fake, DISCORD_TOKEN=TOKEN), tmp_path)
    assert outcome.status == 2, outcome
    assert "written by a newer Kakehashi" in outcome.stderr and "Traceback" not in outcome.stderr


@pytest.mark.parametrize(("change", "phrase"), [
    ({"password": "wrong-SECRET"}, "refused the login"),
    ({"port": 1}, "cannot reach PostgreSQL at postgresql://kakehashi@127.0.0.1:1/"),
    ({"host": "no-such-host.invalid"}, "cannot reach PostgreSQL"),
])
async def test_a_postgresql_the_bot_cannot_use_stops_it_with_one_line_and_status_2(
        fake: FakeDiscord, tmp_path: Path, postgres_server: PostgresServer, change: dict[str, object],
        phrase: str) -> None:
    url = postgres_server.url(**change)  # type: ignore[arg-type]
    outcome = await run(["-m", "playground.launch"], fake_env(fake, DISCORD_TOKEN=TOKEN, DATABASE_URL=url), tmp_path)
    assert outcome.status == 2, outcome
    last = outcome.stderr.strip().splitlines()[-1]
    assert last.startswith("kakehashi: database: ") and phrase in last
    assert "Traceback" not in outcome.stderr and TOKEN not in outcome.stderr
    assert "SECRET" not in outcome.stderr + outcome.stdout and PASSWORD not in outcome.stderr + outcome.stdout
    assert not (tmp_path / "kakehashi.db").exists()   # the SQLite file is not the fallback


async def test_migrate_brings_a_database_up_to_date_alone_and_once(tmp_path: Path,
                                                                    postgres_server: PostgresServer) -> None:
    outcome = await run(["-m", "bot", "migrate"], clean_env(), tmp_path)
    assert outcome.status == 0, outcome
    assert outcome.stdout.strip() == f"kakehashi: {tmp_path / 'kakehashi.db'} is at schema {len(load_migrations()):04d}"
    # On PostgreSQL, from two processes at once (as two shard processes starting together): one migrates, the
    # other waits for it and finds the schema current.
    url = postgres_server.new_database()
    both = await asyncio.gather(*(run(["-m", "bot", "migrate"], clean_env(DATABASE_URL=url), tmp_path)
                                  for _ in range(2)))
    for outcome in both:
        assert outcome.status == 0, outcome
        assert outcome.stdout.strip().endswith(f"is at schema {len(load_migrations()):04d}")
        assert PASSWORD not in outcome.stdout + outcome.stderr
    assert sum(outcome.stdout.count("Migrated") + outcome.stderr.count("Migrated") for outcome in both) == \
        len(load_migrations())


async def test_a_dev_guild_the_bot_is_not_in_stops_with_a_clear_message_and_status_1(
        fake: FakeDiscord, tmp_path: Path) -> None:
    env = fake_env(fake, DISCORD_TOKEN=TOKEN, DEV_GUILD_ID="123456789012345678")
    outcome = await run(["-m", "playground.launch"], env, tmp_path)
    assert outcome.status == 1, outcome
    last = outcome.stderr.strip().splitlines()[-1]
    assert last.startswith("kakehashi: Discord refused the command sync to the server DEV_GUILD_ID=1234")
    assert "applications.commands" in last and "Traceback" not in outcome.stderr


async def test_run_with_sync_syncs_even_unchanged_commands(fake: FakeDiscord, tmp_path: Path) -> None:
    for number, args in enumerate((["run"], ["run"], ["run", "--sync"]), start=1):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "playground.launch", *args, cwd=tmp_path,
            env=fake_env(fake, DISCORD_TOKEN=TOKEN), stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        await fake.wait_until(lambda n=number: fake.identify_count == n, 20, "the bot to connect")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    assert len(fake.calls_to("PUT", r"/applications/{app}/commands")) == 2
