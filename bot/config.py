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

DEFAULT_DATABASE_PATH = "kakehashi.db"
DEFAULT_KEEP_LEFT_DAYS = 30
MAX_KEEP_LEFT_DAYS = 365
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

    def __repr__(self) -> str:
        # Never let the token reach a log line or a traceback through repr().
        return (
            f"Settings(token=<hidden>, database_path={str(self.database_path)!r}, "
            f"dev_guild_id={self.dev_guild_id!r}, log_level={logging.getLevelName(self.log_level)!r}, "
            f"keep_left_days={self.keep_left_days!r})"
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

    base = cwd if cwd is not None else Path.cwd()
    raw_path = env.get("DATABASE_PATH", "").strip() or DEFAULT_DATABASE_PATH
    database_path = Path(raw_path).expanduser()
    if not database_path.is_absolute():
        database_path = base / database_path
    check_database_location(database_path)

    return Settings(
        token=token,
        database_path=database_path,
        dev_guild_id=dev_guild_id,
        log_level=logging.getLevelName(level_name),
        keep_left_days=int(keep_raw),
    )


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
