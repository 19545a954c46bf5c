"""Message catalogs: both languages complete, placeholders agree, every key the code uses exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bot.guilds.model import ChannelKind, Purpose, Setting
from bot.guilds.rules import all_required_permissions
from bot.i18n import LANGUAGES, Catalog, Text, default_catalog, language_of_locale, pick_language, placeholders
from bot.intros.service import ALIAS_SETTING, REMINDERS_SETTING, WELCOME_SETTING
from bot.matching.model import Cadence, RoundSettings
from bot.matching.service import ROUNDS_SETTING, read_rounds_value, rounds_value
from bot.prompts.service import SCHEDULE_SETTING

ROOT = Path(__file__).resolve().parents[2]
CATALOG = default_catalog()


def test_every_key_exists_in_every_language() -> None:
    assert CATALOG.missing_keys() == {}


def test_placeholders_agree_between_languages() -> None:
    for key in CATALOG.keys("en"):
        english = placeholders(CATALOG.template("en", key) or "")
        for language in LANGUAGES:
            assert placeholders(CATALOG.template(language, key) or "") == english, f"{language}:{key}"


def test_no_message_is_empty() -> None:
    for language in LANGUAGES:
        for key in CATALOG.keys(language):
            assert (CATALOG.template(language, key) or "").strip(), f"{language}:{key} is empty"


def test_a_key_missing_in_one_language_fails_the_check(tmp_path: Path) -> None:
    (tmp_path / "en.toml").write_text('[a]\nb = "B"\nc = "C"\n')
    (tmp_path / "ja.toml").write_text('[a]\nb = "ビー"\nd = "ディー"\n')
    assert Catalog.load(tmp_path).missing_keys() == {"en": {"a.d"}, "ja": {"a.c"}}


_DOTTED = re.compile(r"[a-z_]+(\.[a-z_]+)+")


def test_every_literal_key_in_the_code_is_in_the_catalog() -> None:
    """Every string literal in bot/ and cogs/ shaped like a key of a catalog namespace is a key."""
    namespaces = {key.split(".", 1)[0] for key in CATALOG.keys("en")}
    used = set()
    for folder in ("bot", "cogs"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and _DOTTED.fullmatch(node.value) and node.value.split(".", 1)[0] in namespaces:
                    used.add(node.value)
    assert len(used) > 20, "the scan found too few keys to be working"
    assert sorted(used - CATALOG.keys("en")) == []


def test_every_key_built_from_a_name_is_in_the_catalog() -> None:
    built = {f"purpose.{p.value}" for p in Purpose} | {f"purpose_kinds.{p.value}" for p in Purpose}
    built |= {f"choices.purpose.{p.value}" for p in Purpose}
    built |= {f"channel_kind.{k.value}" for k in ChannelKind}
    built |= {f"permissions.{name}" for name in all_required_permissions() | {"manage_guild"}}
    built |= {f"language.{code}" for code in LANGUAGES}
    built |= {f"config.setting.{s.value}" for s in Setting} | {"config.setting.channel"}
    # every setting a feature records in the audit trail (/config show names it)
    built |= {f"config.setting.{name}" for name in (REMINDERS_SETTING, WELCOME_SETTING, ALIAS_SETTING,
                                                    ROUNDS_SETTING, SCHEDULE_SETTING)}
    assert sorted(built - CATALOG.keys("en")) == []


def test_render_fills_nested_texts_and_lists_in_the_same_language() -> None:
    text = Text("errors.missing_permissions",
                permissions=[Text("permissions.send_messages"), Text("permissions.embed_links")])
    assert CATALOG.render("en", text) == "You need the Send Messages, Embed Links permission to use this command."
    assert CATALOG.render("ja", text) == "このコマンドを使うには「メッセージを送信、埋め込みリンク」の権限が必要です。"


def test_member_text_in_parameters_is_never_interpreted() -> None:
    hostile = "{purpose} {0} {__class__} %s"
    text = Text("config.timezone.unknown", name=hostile)
    assert hostile in CATALOG.render("en", text)


def test_a_missing_key_falls_back_to_english_then_to_the_key() -> None:
    catalog = Catalog({"en": {"only.en": "Hello {name}"}, "ja": {}})
    assert catalog.render("ja", Text("only.en", name="Aiko")) == "Hello Aiko"
    assert catalog.render("ja", Text("nowhere")) == "nowhere"


@pytest.mark.parametrize(("locale", "server", "expected"), [
    ("ja", None, "ja"),
    ("ja", "en", "ja"),
    ("en-US", "ja", "en"),
    ("en-GB", None, "en"),
    ("fr", "ja", "ja"),
    ("fr", None, "en"),
    ("zh-TW", "en", "en"),
    (None, None, "en"),
])
def test_the_reply_language_follows_member_then_server_then_english(
        locale: str | None, server: str | None, expected: str) -> None:
    assert pick_language(locale, server) == expected


def test_locales_map_to_catalog_languages() -> None:
    assert [language_of_locale(x) for x in ("ja", "en-US", "en-GB", "ko", "", None)] == [
        "ja", "en", "en", None, None, None]


def test_a_list_is_joined_as_each_language_writes_lists() -> None:
    catalog = default_catalog()
    assert catalog.join("en", ["AI", "design"]) == "AI, design"
    assert catalog.join("ja", ["AI", "デザイン"]) == "AI、デザイン"
    assert catalog.join("ja", [Text("intros.language.en"), "AI"]).endswith("、AI")


def test_a_round_schedule_in_the_audit_trail_reads_back_for_any_language() -> None:
    settings = RoundSettings(7, True, Cadence.BIWEEKLY, 4, "18:30", 3, 7)
    assert rounds_value(settings) == "biweekly friday 18:30 on; no repeat 3 rounds; follow-up after 7 days"
    assert read_rounds_value(7, rounds_value(settings)) == settings
    assert read_rounds_value(7, "fortnightly friday 18:30 on; no repeat 3 rounds; follow-up after 7 days") is None
    assert read_rounds_value(7, "something else") is None
