"""Settings from the environment (bot/config.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.config import SettingsError, load_settings

TOKEN = "MTIz.abc.def"


def test_defaults_put_the_database_under_the_working_folder(tmp_path: Path) -> None:
    settings = load_settings({"DISCORD_TOKEN": f"  {TOKEN}\n"}, cwd=tmp_path)
    assert settings.token == TOKEN
    assert settings.database_path == tmp_path / "kakehashi.db"
    assert settings.dev_guild_id is None
    assert settings.log_level == logging.INFO
    assert settings.keep_left_days == 30


def test_every_setting_is_read(tmp_path: Path) -> None:
    settings = load_settings({"DISCORD_TOKEN": TOKEN, "DATABASE_PATH": "var/bot.db",
                              "DEV_GUILD_ID": " 123456789012345678 ", "LOG_LEVEL": "debug",
                              "KEEP_LEFT_MEMBERS_DAYS": "7"}, cwd=tmp_path)
    assert settings.database_path == tmp_path / "var" / "bot.db"
    assert (tmp_path / "var").is_dir()
    assert settings.dev_guild_id == 123456789012345678
    assert settings.log_level == logging.DEBUG
    assert settings.keep_left_days == 7


def test_postgresql_shards_and_leases_are_read(tmp_path: Path) -> None:
    url = "postgresql://bot:s3cret@db.internal:5432/kakehashi"
    settings = load_settings({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": f" {url} ", "SHARD_COUNT": "8",
                              "SHARD_IDS": "0-1, 4,6-7", "JOB_LEASE_SECONDS": "30",
                              "DATABASE_PATH": "no/such/folder/unused.db"}, cwd=tmp_path)
    assert settings.database == settings.database_url == url
    assert not (tmp_path / "no").exists()   # the SQLite file is not used, so its folder is not made
    assert settings.shard_count == 8 and settings.shard_ids == (0, 1, 4, 6, 7)
    assert settings.lease_seconds == 30
    assert "s3cret" not in repr(settings)
    alone = load_settings({"DISCORD_TOKEN": TOKEN, "SHARD_COUNT": "2"}, cwd=tmp_path)
    assert alone.database == tmp_path / "kakehashi.db"
    assert alone.shard_count == 2 and alone.shard_ids == (0, 1)   # SQLite, one process running every shard
    default = load_settings({"DISCORD_TOKEN": TOKEN}, cwd=tmp_path)
    assert default.shard_count is None and default.shard_ids is None and default.lease_seconds == 60


def test_the_token_never_appears_in_repr(tmp_path: Path) -> None:
    settings = load_settings({"DISCORD_TOKEN": TOKEN}, cwd=tmp_path)
    assert TOKEN not in repr(settings) and "<hidden>" in repr(settings)


@pytest.mark.parametrize(("env", "message"), [
    ({}, "DISCORD_TOKEN is not set"),
    ({"DISCORD_TOKEN": " "}, "DISCORD_TOKEN is not set"),
    ({"DISCORD_TOKEN": f"Bot {TOKEN}"}, "leading"),
    ({"DISCORD_TOKEN": "a\nb"}, "spaces or line breaks"),
    ({"DISCORD_TOKEN": TOKEN, "DEV_GUILD_ID": "abc"}, "DEV_GUILD_ID"),
    ({"DISCORD_TOKEN": TOKEN, "DEV_GUILD_ID": "-123456789012345678"}, "DEV_GUILD_ID"),
    ({"DISCORD_TOKEN": TOKEN, "DEV_GUILD_ID": "９８７６５４３２１０９８７６５４３２"}, "DEV_GUILD_ID"),
    ({"DISCORD_TOKEN": TOKEN, "LOG_LEVEL": "verbose"}, "LOG_LEVEL"),
    ({"DISCORD_TOKEN": TOKEN, "KEEP_LEFT_MEMBERS_DAYS": "0"}, "KEEP_LEFT_MEMBERS_DAYS"),
    ({"DISCORD_TOKEN": TOKEN, "KEEP_LEFT_MEMBERS_DAYS": "thirty"}, "KEEP_LEFT_MEMBERS_DAYS"),
    ({"DISCORD_TOKEN": TOKEN, "KEEP_LEFT_MEMBERS_DAYS": "３０"}, "KEEP_LEFT_MEMBERS_DAYS"),
    ({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": "mysql://bot:s3cret@db/kakehashi"}, "must be a PostgreSQL URL"),
    ({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": "bot:s3cret@db/kakehashi"}, "must be a PostgreSQL URL"),
    ({"DISCORD_TOKEN": TOKEN, "SHARD_IDS": "0-1"}, "SHARD_IDS needs SHARD_COUNT"),
    ({"DISCORD_TOKEN": TOKEN, "SHARD_COUNT": "0"}, "SHARD_COUNT must be"),
    ({"DISCORD_TOKEN": TOKEN, "SHARD_COUNT": "two"}, "SHARD_COUNT must be"),
    ({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": "postgresql://db/k", "SHARD_COUNT": "4", "SHARD_IDS": "2-4"},
     "SHARD_COUNT=4 has shards 0 to 3"),
    ({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": "postgresql://db/k", "SHARD_COUNT": "4", "SHARD_IDS": "3-1"},
     "runs backwards"),
    ({"DISCORD_TOKEN": TOKEN, "DATABASE_URL": "postgresql://db/k", "SHARD_COUNT": "4", "SHARD_IDS": "a"},
     "SHARD_IDS must list"),
    ({"DISCORD_TOKEN": TOKEN, "SHARD_COUNT": "4", "SHARD_IDS": "0-1"}, "set DATABASE_URL"),
    ({"DISCORD_TOKEN": TOKEN, "JOB_LEASE_SECONDS": "0"}, "JOB_LEASE_SECONDS"),
])
def test_bad_settings_say_what_to_do(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        load_settings(env, cwd=tmp_path)
    assert "\n" not in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_a_database_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SettingsError, match="Cannot write the database"):
        load_settings({"DISCORD_TOKEN": TOKEN, "DATABASE_PATH": str(tmp_path / "file" / "k.db")}, cwd=tmp_path)
