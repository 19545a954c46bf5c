"""Profile rules on plain data: fields, interest tags, languages, and reading a free-form introduction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import UserError
from bot.intros.parse import parse_intro
from bot.intros.profile import (
    LIMITS,
    clean_field,
    default_languages,
    parse_languages,
    parse_profile_timezone,
    parse_tags,
    tag_key,
)


def test_tags_keep_the_members_spelling_and_drop_duplicates_whatever_the_case_or_width() -> None:
    assert parse_tags("Supply Chains, ＡＩ、ai; #AI\n  market   entry ,, ") == ("Supply Chains", "ＡＩ", "market entry")
    assert parse_tags("AI, Supply Chain, Tokyo startups") == ("AI", "Supply Chain", "Tokyo startups")
    assert parse_tags("営業，マーケティング；営業") == ("営業", "マーケティング")
    assert parse_tags("\u200bAI\u200f, a\u200bi") == ("AI",)
    assert parse_tags("AI/ML") == ("AI/ML",)
    assert parse_tags("") == ()
    assert parse_tags("\u200b, \u200f") == ()


@given(st.text(max_size=40))
def test_a_tag_is_already_normal(raw: str) -> None:
    once = tag_key(raw)
    assert tag_key(once) == once
    assert once == once.strip() and "  " not in once


@given(st.lists(st.sampled_from(["AI", "ai", "ＡＩ", "Ai ", "supply chains", "Supply  Chains", "営業"]),
                max_size=10))
def test_tags_are_distinct_whatever_the_spelling(tags: list[str]) -> None:
    parsed = parse_tags(", ".join(tags))
    assert len(parsed) == len(set(parsed)) == len({tag_key(t) for t in tags})


def test_fields_are_trimmed_and_bounded() -> None:
    assert clean_field("role", "  Sales  ") == "Sales"
    assert clean_field("role", "\u200b\u200f ") == ""
    assert clean_field("bio", "b" * LIMITS["bio"]) == "b" * LIMITS["bio"]
    with pytest.raises(UserError) as caught:
        clean_field("bio", "b" * (LIMITS["bio"] + 1))
    assert caught.value.key == "intros.field.too_long" and caught.value.params["length"] == LIMITS["bio"] + 1
    with pytest.raises(UserError):
        clean_field("company", " \u200b ")


def test_languages_and_time_zones() -> None:
    assert parse_languages(["other", "EN", "ja"]) == ("ja", "en", "other")
    assert default_languages("ja") == ("ja",) and default_languages("en-GB") == ("en",)
    assert parse_profile_timezone(" asia/tokyo ") == "Asia/Tokyo"
    assert parse_profile_timezone("") is None
    with pytest.raises(UserError) as caught:
        parse_profile_timezone("Tokyo time")
    assert caught.value.key == "intros.timezone.unknown"


def test_labelled_lines_are_read_in_either_language() -> None:
    text = """Hello everyone! I'm Aiko.
- **Company:** Olympus
* 役職：営業部長
Industry - not a label line
業界: 医療機器
Based in: Singapore
Company: Second company is ignored
Interests: supply chains, AI
"""
    assert parse_intro(text) == {"company": "Olympus", "role": "営業部長", "industry": "医療機器",
                                 "location": "Singapore", "interests": "supply chains, AI"}


def test_reading_cuts_values_to_their_limit_and_ignores_empty_ones() -> None:
    found = parse_intro("Company: " + "x" * 500 + "\nRole:   \n会社名：")
    assert found == {"company": "x" * LIMITS["company"]}
    assert parse_intro("") == {}
    assert parse_intro("just a friendly hello: nice to meet you") == {}


@given(st.text(max_size=300))
def test_reading_never_fails_and_stays_within_limits(text: str) -> None:
    for name, value in parse_intro(text).items():
        assert 0 < len(value) <= LIMITS[name]
