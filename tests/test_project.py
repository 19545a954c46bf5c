"""The documents agree with the code: README, .env.example, .ci/run."""

from __future__ import annotations

import re
from pathlib import Path

from bot.client import REQUIRED_PERMISSIONS
from bot.i18n import default_catalog

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    command = next(line for line in ci.splitlines() if "pytest" in line)
    assert f"\n{command}\n" in README


def test_env_example_documents_every_setting_the_bot_reads() -> None:
    source = (ROOT / "bot" / "config.py").read_text(encoding="utf-8")
    read = set(re.findall(r'env\.get\("([A-Z_]+)"', source))
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(encoding="utf-8"), re.M))
    assert read == documented == {"DISCORD_TOKEN", "DATABASE_PATH", "DEV_GUILD_ID", "LOG_LEVEL",
                                  "KEEP_LEFT_MEMBERS_DAYS", "DATABASE_URL", "SHARD_COUNT", "SHARD_IDS",
                                  "JOB_LEASE_SECONDS"}
    for name in read:
        assert f"`{name}`" in README


def test_readme_lists_every_permission_the_invite_asks_for() -> None:
    catalog = default_catalog()
    asked = [name for name, granted in REQUIRED_PERMISSIONS if granted]
    rows = re.findall(r"^\s*\| ([A-Z][^|]+?) \| ", README.split("## Discord set-up")[1].split("## Settings")[0], re.M)
    listed = {row for row in rows if row != "permission"}
    named = {catalog.template("en", f"permissions.{'view_channel' if n == 'read_messages' else n}") for n in asked}
    assert listed == named


def test_env_file_is_ignored_by_git() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored and "*.db" in ignored
