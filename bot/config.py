"""Settings from the environment, validated before anything connects.

Every problem becomes a :class:`SettingsError` whose message is one line that
says what to do. Nothing here ever puts the token into a message.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.storage import is_postgres_url

DEFAULT_DATABASE_PATH = "kakehashi.db"
DEFAULT_KEEP_LEFT_DAYS = 30
MAX_KEEP_LEFT_DAYS = 365
DEFAULT_LEASE_SECONDS = 60
MAX_LEASE_SECONDS = 3600
MAX_SHARDS = 65536
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_SNOWFLAKE = re.compile(r"[0-9]{15,21}")


class SettingsError(Exception):
    """A setting is missing or wrong; the message tells the operator what to do."""


@dataclass(frozen=True, repr=False)
class Settings:
    token: str
    database_path: Path
    dev_guild_id: int | None
    log_level: int
    # Days a member's profile is kept (hidden) after they leave a server, in case they return.
    keep_left_days: int = 30
    # PostgreSQL instead of the SQLite file, for several processes (it may hold a password: never shown).
    database_url: str | None = None
    # SHARD_COUNT and the shards this process runs (SHARD_IDS); None: every shard Discord recommends.
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    # Seconds a claimed job stays this process's without a renewal (bot/outbox/runner.py).
    lease_seconds: int = DEFAULT_LEASE_SECONDS

    @property
    def database(self) -> str | Path:
        """What ``Storage.open`` opens: the PostgreSQL URL if given, else the SQLite file."""
        return self.database_url if self.database_url is not None else self.database_path

    def __repr__(self) -> str:
        # Never let the token (or the database's password) reach a log line or a traceback through repr().
        database = "<postgresql url>" if self.database_url is not None else str(self.database_path)
        return (
            f"Settings(token=<hidden>, database={database!r}, "
            f"dev_guild_id={self.dev_guild_id!r}, log_level={logging.getLevelName(self.log_level)!r}, "
            f"keep_left_days={self.keep_left_days!r}, shard_count={self.shard_count!r}, "
            f"shard_ids={self.shard_ids!r}, lease_seconds={self.lease_seconds!r})"
        )


def parse_snowflake(value: str, name: str) -> int:
    """A Discord id: 15 to 21 digits and within 64 bits."""
    text = value.strip()
    if not _SNOWFLAKE.fullmatch(text) or int(text) >= 2**63:
        raise SettingsError(
            f"{name} must be a Discord id (digits only, e.g. 123456789012345678); "
            "copy it with Developer Mode on (right-click → Copy ID)."
        )
    return int(text)


def load_settings(env: Mapping[str, str], *, cwd: Path | None = None) -> Settings:
    token = env.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise SettingsError(
            "DISCORD_TOKEN is not set: copy .env.example to .env and paste your bot's token "
            "(Developer Portal → your application → Bot → Reset Token)."
        )
    if token.lower().startswith("bot "):
        raise SettingsError('DISCORD_TOKEN must be the token alone: remove the leading "Bot ".')
    if any(ch.isspace() for ch in token):
        raise SettingsError("DISCORD_TOKEN contains spaces or line breaks: paste the token alone, on one line.")

    dev_guild_raw = env.get("DEV_GUILD_ID", "").strip()
    dev_guild_id = parse_snowflake(dev_guild_raw, "DEV_GUILD_ID") if dev_guild_raw else None

    level_name = env.get("LOG_LEVEL", "").strip().upper() or "INFO"
    if level_name not in LOG_LEVELS:
        raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}.")

    keep_raw = env.get("KEEP_LEFT_MEMBERS_DAYS", "").strip() or str(DEFAULT_KEEP_LEFT_DAYS)
    if not keep_raw.isascii() or not keep_raw.isdigit() or not 1 <= int(keep_raw) <= MAX_KEEP_LEFT_DAYS:
        raise SettingsError(f"KEEP_LEFT_MEMBERS_DAYS must be a whole number of days from 1 to {MAX_KEEP_LEFT_DAYS}.")

    lease_raw = env.get("JOB_LEASE_SECONDS", "").strip() or str(DEFAULT_LEASE_SECONDS)
    if not lease_raw.isascii() or not lease_raw.isdigit() or not 1 <= int(lease_raw) <= MAX_LEASE_SECONDS:
        raise SettingsError(f"JOB_LEASE_SECONDS must be a whole number of seconds from 1 to {MAX_LEASE_SECONDS}.")

    database_url, database_path = load_database(env, cwd=cwd)

    shard_count, shard_ids = parse_shards(env.get("SHARD_COUNT", ""), env.get("SHARD_IDS", ""))
    if database_url is None and shard_ids is not None and shard_count is not None and len(shard_ids) < shard_count:
        raise SettingsError("SHARD_IDS runs only some of the shards, so other processes run the rest, and they "
                            "must share the database: set DATABASE_URL to a PostgreSQL database (SQLite is for "
                            "one process).")

    return Settings(
        token=token,
        database_path=database_path,
        dev_guild_id=dev_guild_id,
        log_level=logging.getLevelName(level_name),
        keep_left_days=int(keep_raw),
        database_url=database_url,
        shard_count=shard_count,
        shard_ids=shard_ids,
        lease_seconds=int(lease_raw),
    )


def load_database(env: Mapping[str, str], *, cwd: Path | None = None) -> tuple[str | None, Path]:
    """DATABASE_URL (None when not set) and DATABASE_PATH (checked writable only when it is the one used): all
    ``python -m bot migrate`` needs."""
    database_url = parse_database_url(env.get("DATABASE_URL", ""))
    base = cwd if cwd is not None else Path.cwd()
    raw_path = env.get("DATABASE_PATH", "").strip() or DEFAULT_DATABASE_PATH
    database_path = Path(raw_path).expanduser()
    if not database_path.is_absolute():
        database_path = base / database_path
    if database_url is None:
        check_database_location(database_path)
    return database_url, database_path


def parse_database_url(value: str) -> str | None:
    """A PostgreSQL URL, or None when not set. The message of a bad one never repeats it (it may carry a
    password)."""
    url = value.strip()
    if not url:
        return None
    if not is_postgres_url(url):
        raise SettingsError("DATABASE_URL must be a PostgreSQL URL, postgresql://user:password@host:5432/database "
                            "(leave it empty to use the SQLite file of DATABASE_PATH).")
    return url


def parse_shards(count_raw: str, ids_raw: str) -> tuple[int | None, tuple[int, ...] | None]:
    """SHARD_COUNT and SHARD_IDS ("0-3", "0,2", "0-1,4"): (None, None) when neither is set (every shard
    Discord recommends); SHARD_COUNT alone runs every shard of that count."""
    count_text, ids_text = count_raw.strip(), ids_raw.strip()
    if not count_text:
        if ids_text:
            raise SettingsError("SHARD_IDS needs SHARD_COUNT: set how many shards the whole bot runs, e.g. "
                                "SHARD_COUNT=4 with SHARD_IDS=0-1 here and SHARD_IDS=2-3 in the other process.")
        return None, None
    if not count_text.isascii() or not count_text.isdigit() or not 1 <= int(count_text) <= MAX_SHARDS:
        raise SettingsError(f"SHARD_COUNT must be a whole number from 1 to {MAX_SHARDS}.")
    count = int(count_text)
    if not ids_text:
        return count, tuple(range(count))
    ids: set[int] = set()
    for part in ids_text.split(","):
        first, dash, last = part.strip().partition("-")
        bounds = [first.strip(), last.strip()] if dash else [first.strip()]
        if not all(b.isascii() and b.isdigit() for b in bounds):
            raise SettingsError('SHARD_IDS must list shard numbers and ranges, e.g. "0-3" or "0,2,5".')
        low, high = int(bounds[0]), int(bounds[-1])
        if low > high:
            raise SettingsError(f'SHARD_IDS has the range "{part.strip()}", which runs backwards: write {high}-{low}.')
        if high >= count:
            raise SettingsError(f"SHARD_IDS names shard {high}, but SHARD_COUNT={count} has shards 0 to {count - 1}.")
        ids.update(range(low, high + 1))
    return count, tuple(sorted(ids))


def check_database_location(path: Path) -> None:
    """Make sure the database's folder exists and takes new files.

    SQLite in WAL mode writes ``-wal`` and ``-shm`` files beside the database,
    so a writable database file in a read-only folder is not enough.
    """
    if path.exists() and path.is_dir():
        raise SettingsError(f"DATABASE_PATH {path} is a folder: give the path of a file, e.g. {path / 'kakehashi.db'}.")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SettingsError(
            f"Cannot write the database in {folder} ({reason}): set DATABASE_PATH to a file in a "
            "folder this user can write to."
        ) from None
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise SettingsError(f"Cannot read and write {path}: fix its permissions or set DATABASE_PATH elsewhere.")
