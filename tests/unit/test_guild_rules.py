"""Rules for server settings, on plain data."""

from __future__ import annotations

import contextlib
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import UserError
from bot.guilds import rules
from bot.guilds.model import ChannelKind, Purpose
from bot.i18n import shorten

ZONES = zoneinfo.available_timezones()


@pytest.mark.parametrize(("purpose", "kind", "allowed"), [
    (Purpose.PROMPTS, ChannelKind.TEXT, True),
    (Purpose.PROMPTS, ChannelKind.FORUM, True),
    (Purpose.PROMPTS, ChannelKind.VOICE, False),
    (Purpose.PROMPTS, ChannelKind.CATEGORY, False),
    (Purpose.PROMPTS, ChannelKind.ANNOUNCEMENT, False),
    (Purpose.MATCHES, ChannelKind.TEXT, True),
    (Purpose.MATCHES, ChannelKind.FORUM, False),
    (Purpose.MATCHES, ChannelKind.ANNOUNCEMENT, False),  # private threads cannot live there
    (Purpose.WELCOME, ChannelKind.ANNOUNCEMENT, True),
    (Purpose.INTRODUCTIONS, ChannelKind.THREAD, False),
    (Purpose.LOG, ChannelKind.STAGE, False),
])
def test_channel_kinds_per_purpose(purpose: Purpose, kind: ChannelKind, allowed: bool) -> None:
    if allowed:
        rules.check_channel_kind(purpose, kind, "#c")
    else:
        with pytest.raises(UserError) as caught:
            rules.check_channel_kind(purpose, kind, "#c")
        assert caught.value.key == "config.channel.wrong_kind"


def test_no_purpose_accepts_a_voice_channel_or_a_category() -> None:
    for purpose in Purpose:
        assert not {ChannelKind.VOICE, ChannelKind.CATEGORY, ChannelKind.STAGE} & rules.CHANNEL_KINDS[purpose]


def test_missing_permissions_are_listed_in_a_stable_order() -> None:
    assert rules.missing_permissions(Purpose.LOG, {"view_channel"}) == ["send_messages", "embed_links"]
    assert rules.missing_permissions(Purpose.LOG, rules.all_required_permissions()) == []


@pytest.mark.parametrize(("typed", "canonical"), [
    ("Asia/Tokyo", "Asia/Tokyo"),
    ("asia/tokyo", "Asia/Tokyo"),
    ("  America/New York ", "America/New_York"),
    ("utc", "UTC"),
])
def test_timezones_are_canonicalised(typed: str, canonical: str) -> None:
    assert rules.parse_timezone(typed) == canonical


@pytest.mark.parametrize("typed", ["Tokyo", "Mars/Olympus_Mons", "", "Asia/Tokyo\u200b", "x" * 5000, "../etc/passwd"])
def test_unknown_timezones_are_refused_with_a_short_echo(typed: str) -> None:
    with pytest.raises(UserError) as caught:
        rules.parse_timezone(typed)
    assert caught.value.key == "config.timezone.unknown"
    assert len(caught.value.params["name"]) <= 80


@given(st.text(max_size=300))
def test_parsing_any_text_gives_a_real_zone_or_a_user_error(typed: str) -> None:
    with contextlib.suppress(UserError):
        assert rules.parse_timezone(typed) in ZONES


@given(st.text(max_size=300))
def test_autocomplete_gives_at_most_25_real_zones_for_any_text(typed: str) -> None:
    choices = rules.timezone_choices(typed)
    assert len(choices) <= 25
    assert set(choices) <= ZONES


def test_autocomplete_ranks_the_city_first() -> None:
    assert rules.timezone_choices("tokyo")[0] == "Asia/Tokyo"
    assert rules.timezone_choices("new y")[0] == "America/New_York"
    assert rules.timezone_choices("")[0] == "Asia/Tokyo"
    assert set(rules.COMMON_TIMEZONES) <= ZONES


@pytest.mark.parametrize(("typed", "code"), [("ja", "ja"), ("EN", "en"), (" ja ", "ja")])
def test_languages(typed: str, code: str) -> None:
    assert rules.parse_language(typed) == code


@pytest.mark.parametrize("typed", ["fr", "", "日本語", "x" * 5000])
def test_other_languages_are_refused(typed: str) -> None:
    with pytest.raises(UserError):
        rules.parse_language(typed)


def test_purposes_are_parsed_and_unknown_ones_refused() -> None:
    assert rules.parse_purpose("Prompts") is Purpose.PROMPTS
    with pytest.raises(UserError) as caught:
        rules.parse_purpose("p" * 5000)
    assert len(caught.value.params["purpose"]) <= 80


@given(st.text(max_size=10_000), st.integers(min_value=2, max_value=500))
def test_shorten_is_bounded_and_one_line(text: str, limit: int) -> None:
    short = shorten(text, limit)
    assert len(short) <= limit
    assert "\n" not in short
