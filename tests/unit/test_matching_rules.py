"""The matching rule and score on plain data: worked examples, and the array forms held to the scalar ones
on random communities."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.intros.profile import tag_key
from bot.matching.index import Members
from bot.matching.model import (
    MET_RECENTLY,
    NO_LANGUAGE,
    REASON_INTERESTS,
    REASON_SAME_TIMEZONE,
    REASON_THEY_OFFER,
    REASON_THREAD,
    REASON_TIMEZONE,
    REASON_YOU_OFFER,
    SAME_COMPANY,
    SELF,
    UNAVAILABLE,
    YOU_AVOID,
    YOU_UNAVAILABLE,
    Candidate,
    History,
)
from bot.matching.rules import eligible, why_not
from bot.matching.score import UNITS, hours_apart, in_own_words, reasons, score
from bot.matching.terms import phrase_terms, phrases

# --- random communities (shared with the index and pairing tests) ----------------------------------------

COMPANIES = ("sony", "toyota", "rakuten", "mercari", "ソニー")
LANGUAGES = ("ja", "en", "other")
TAGS = ("ai", "AI", "supply chain", "Supply  Chain", "fintech", "採用", "design", "ｄｅｓｉｇｎ")
PHRASES = ("Vietnam market entry", "ベトナム進出", "ベトナム市場参入", "hiring engineers", "エンジニア採用",
           "fundraising", "資金調達", "UX design", "data analysis", "AI/ML", "market research")
OFFSETS = (None, 9.0, 8.0, 5.5, 5.75, 0.0, -5.0, -8.0, 14.0, -12.0)


def pairs_of(draw: st.DrawFn, users: list[int], most: int) -> MappingProxyType[int, frozenset[int]]:
    """Random pairs, sometimes stored one way only (the rule must hold either way)."""
    linked: dict[int, set[int]] = {}
    for a, b, both in draw(st.lists(st.tuples(st.sampled_from(users), st.sampled_from(users), st.booleans()),
                                    max_size=most)):
        linked.setdefault(a, set()).add(b)
        if both:
            linked.setdefault(b, set()).add(a)
    return MappingProxyType({user: frozenset(others) for user, others in linked.items()})


@st.composite
def communities(draw: st.DrawFn, least: int = 1, most: int = 12, available: float = 0.85,
                ) -> tuple[list[Candidate], History]:
    size = draw(st.integers(least, most))
    users = draw(st.lists(st.integers(1, 10_000), min_size=size, max_size=size, unique=True))
    members = [
        Candidate(
            user_id=user,
            company=draw(st.sampled_from(COMPANIES)),
            languages=frozenset(draw(st.lists(st.sampled_from(LANGUAGES), min_size=1, max_size=3))),
            interests=frozenset(draw(st.lists(st.sampled_from(TAGS), max_size=5))),
            offers=tuple(dict.fromkeys(draw(st.lists(st.sampled_from(PHRASES), max_size=2)))),
            seeks=tuple(dict.fromkeys(draw(st.lists(st.sampled_from(PHRASES), max_size=2)))),
            utc_offset=draw(st.sampled_from(OFFSETS)),
            avoid=frozenset(draw(st.lists(st.sampled_from(COMPANIES), max_size=2)))
            if draw(st.integers(0, 4)) == 0 else frozenset(),
            available=draw(st.floats(0, 1)) < available,
        )
        for user in users
    ]
    history = History(met=pairs_of(draw, users, size), declined=pairs_of(draw, users, size // 2 + 1),
                      threads=pairs_of(draw, users, size))
    return members, history


def member(user_id: int, company: str = "sony", **fields: object) -> Candidate:
    fields.setdefault("languages", frozenset({"en"}))
    return Candidate(user_id=user_id, company=company, **fields)  # type: ignore[arg-type]


def both_ways(*pairs: tuple[int, int]) -> MappingProxyType[int, frozenset[int]]:
    linked: dict[int, set[int]] = {}
    for a, b in pairs:
        linked.setdefault(a, set()).add(b)
        linked.setdefault(b, set()).add(a)
    return MappingProxyType({user: frozenset(others) for user, others in linked.items()})


NONE = History()

# --- terms -----------------------------------------------------------------------------------------------


def test_tags_fold_width_case_and_spaces() -> None:
    assert tag_key("  Supply\u3000 Chain ") == tag_key("ｓｕｐｐｌｙ chain") == "supply chain"


def test_phrases_split_on_commas_dots_and_lines_and_keep_the_writing() -> None:
    text = "Vietnam market entry, hiring、採用；sales and marketing\nAI/ML・データ分析, HIRING"
    assert phrases(text) == ("Vietnam market entry", "hiring", "採用", "sales", "marketing", "AI/ML", "データ分析")
    assert phrases(" ,、\n ") == ()


def test_japanese_phrases_share_bigrams_and_english_ones_share_words() -> None:
    assert phrase_terms("ベトナム進出") & phrase_terms("ベトナム市場参入") == {"ベト", "トナ", "ナム"}
    assert phrase_terms("Hiring ENGINEERS") == {"hiring", "engineers"}
    # Short words, stopwords, particles and lone characters say nothing.
    assert phrase_terms("looking for an AI person") == {"person"}
    assert phrase_terms("市場への参入") == {"市場", "参入"}
    assert phrase_terms("新") == frozenset()


@given(st.text(max_size=30))
def test_a_tag_key_is_its_own_key(tag: str) -> None:
    assert tag_key(tag_key(tag)) == tag_key(tag)


# --- the rule, by example --------------------------------------------------------------------------------


def test_the_same_member_and_the_same_company() -> None:
    assert why_not(member(1), member(1), NONE) == SELF
    assert why_not(member(1, "sony"), member(2, "sony"), NONE) == SAME_COMPANY
    assert why_not(member(1, "sony"), member(2, "toyota"), NONE) is None


def test_availability_is_told_neutrally_about_the_other() -> None:
    assert why_not(member(1, available=False), member(2, "toyota"), NONE) == YOU_UNAVAILABLE
    assert why_not(member(1), member(2, "toyota", available=False), NONE) == UNAVAILABLE


def test_avoid_lists_both_ways_round() -> None:
    mine = member(1, "sony", avoid=frozenset({"toyota"}))
    theirs = member(2, "toyota")
    assert why_not(mine, theirs, NONE) == YOU_AVOID
    # Their avoid list is theirs to keep: the asker hears only that they are unavailable.
    assert why_not(theirs, mine, NONE) == UNAVAILABLE
    assert not eligible(theirs, mine, NONE)


def test_a_shared_language_is_needed() -> None:
    ja = member(1, "sony", languages=frozenset({"ja"}))
    en = member(2, "toyota", languages=frozenset({"en"}))
    both = member(3, "rakuten", languages=frozenset({"en", "ja"}))
    assert why_not(ja, en, NONE) == NO_LANGUAGE
    assert why_not(ja, both, NONE) is None and why_not(en, both, NONE) is None


def test_history_keeps_pairs_apart_even_when_stored_one_way() -> None:
    a, b = member(1, "sony"), member(2, "toyota")
    assert why_not(a, b, History(met=both_ways((1, 2)))) == MET_RECENTLY
    one_way = History(met=MappingProxyType({2: frozenset({1})}))
    assert why_not(a, b, one_way) == why_not(b, a, one_way) == MET_RECENTLY
    assert why_not(a, b, History(declined=MappingProxyType({2: frozenset({1})}))) == UNAVAILABLE
    assert why_not(a, b, History(threads=both_ways((1, 2)))) is None


def test_the_first_reason_wins() -> None:
    asker = member(1, "sony", available=False, avoid=frozenset({"sony"}))
    assert why_not(asker, member(2, "sony"), History(met=both_ways((1, 2)))) == YOU_UNAVAILABLE
    assert why_not(member(1, "sony", avoid=frozenset({"toyota"})),
                   member(2, "toyota", languages=frozenset({"ja"})), NONE) == YOU_AVOID
    # What the other member chose privately never hides a reason the asker can know.
    closed = member(2, "toyota", languages=frozenset({"ja"}), available=False, avoid=frozenset({"sony"}))
    assert why_not(member(1, "sony", languages=frozenset({"en"})), closed, NONE) == NO_LANGUAGE
    assert why_not(member(1, "sony"), member(2, "sony", available=False), NONE) == SAME_COMPANY


@settings(max_examples=40)
@given(communities(least=2, most=6))
def test_the_rule_is_symmetric(community: tuple[list[Candidate], History]) -> None:
    members, history = community
    for a, b in itertools.permutations(members, 2):
        assert eligible(a, b, history) == eligible(b, a, history)


# --- the rule for many at once ---------------------------------------------------------------------------


def assert_columns_agree(members: Members, history: History, given: Sequence[Candidate]) -> None:
    """``given``: every candidate put in ``members``, in order (the last of a member is the one held)."""
    latest = {c.user_id: c for c in given}
    held = [(slot, latest[user]) for user, slot in members.slot_of.items()]
    for slot, a in held:
        mask = members.rules.mask(slot)
        expected = np.zeros(len(mask), np.bool_)
        for other, b in held:
            expected[other] = eligible(a, b, history)
        assert mask.tolist() == expected.tolist(), a


@settings(max_examples=40)
@given(communities(most=14, available=0.8))
def test_rule_columns_agree_with_the_rule(community: tuple[list[Candidate], History]) -> None:
    candidates, history = community
    assert_columns_agree(Members(candidates, history), history, candidates)


@settings(max_examples=30)
@given(communities(most=14, available=0.8))
def test_rule_columns_agree_when_companies_are_ranges(community: tuple[list[Candidate], History]) -> None:
    candidates, history = community
    members = Members(sorted(candidates, key=lambda c: (c.company, c.user_id)), history)
    members.rules.sort_by_company()
    assert_columns_agree(members, history, candidates)


@settings(max_examples=30)
@given(communities(least=2, most=10), st.data())
def test_rule_columns_agree_after_edits(community: tuple[list[Candidate], History], data: st.DataObject) -> None:
    candidates, history = community
    members = Members(candidates[: len(candidates) // 2], history)
    for candidate in candidates[len(candidates) // 2:]:
        members.extend([candidate])
    given = list(candidates)
    # Edit some profiles (a new slot each) and drop others.
    for candidate in data.draw(st.lists(st.sampled_from(candidates), max_size=4)):
        given.append(Candidate(**{**candidate.__dict__, "company": data.draw(st.sampled_from(COMPANIES)),
                                  "available": data.draw(st.booleans())}))
        members.extend([given[-1]])
    for gone in data.draw(st.lists(st.sampled_from(candidates), max_size=2)):
        if gone.user_id in members.slot_of:
            members.retire(members.slot_of[gone.user_id])
    assert_columns_agree(members, history, given)


# --- the score, by example -------------------------------------------------------------------------------


def test_any_eligible_pair_scores_something() -> None:
    assert score(member(1), member(2, "toyota"), NONE) == 1.0


def test_interests_count_up_to_three_whatever_the_spelling_and_are_named_as_the_reader_wrote_them() -> None:
    written = ("AI", "Supply Chain", "fintech", "design")
    a = member(1, interests=frozenset(map(tag_key, written)))
    theirs = ("ai", "supply  chain", "ＦＩＮＴＥＣＨ", "design", "web3")
    b = member(2, "toyota", interests=frozenset(map(tag_key, theirs)))
    assert score(a, b, NONE) == 1.0 + 3 * 2.0
    top = reasons(a, b, NONE)[0]
    assert top.key == REASON_INTERESTS and top.weight == 6.0
    assert top.values["topics"] == ("ai", "design", "fintech")
    (told,) = in_own_words((top,), written)
    assert told.values["topics"] == ("AI", "design", "fintech") and told.weight == 6.0


def test_offers_meet_seeks_each_way() -> None:
    a = member(1, offers=("資金調達",), seeks=("ベトナム進出",))
    b = member(2, "toyota", offers=("ベトナム市場参入, Vietnam market entry",), seeks=("seed fundraising",))
    b = Candidate(**{**b.__dict__, "offers": phrases(b.offers[0])})
    assert score(a, b, NONE) == 1.0 + 3.0     # b offers what a seeks; a's 資金調達 is not "fundraising"
    found = {reason.key: reason for reason in reasons(a, b, NONE)}
    assert found[REASON_THEY_OFFER].values["what"] == "ベトナム市場参入"
    c = member(3, "rakuten", seeks=("資金調達の相談",))
    assert {reason.key for reason in reasons(a, c, NONE)} == {REASON_YOU_OFFER}
    assert reasons(c, a, NONE)[0].key == REASON_THEY_OFFER


def test_time_zones_around_the_clock() -> None:
    assert hours_apart(9, -10) == 5.0 and hours_apart(14, -12) == 2.0
    a = member(1, utc_offset=9.0)
    assert score(a, member(2, "toyota", utc_offset=9.0), NONE) == 3.0
    assert reasons(a, member(2, "toyota", utc_offset=9.0), NONE)[0].key == REASON_SAME_TIMEZONE
    near = reasons(a, member(2, "toyota", utc_offset=7.0), NONE)[0]
    assert near.key == REASON_TIMEZONE and near.values["hours"] == 2
    assert score(a, member(2, "toyota", utc_offset=7.0), NONE) == pytest.approx(1.0 + 2.0 * (1 - 2 / 12))
    assert reasons(a, member(2, "toyota", utc_offset=3.0), NONE) == ()   # 6 hours: a bonus, no reason
    assert score(a, member(2, "toyota", utc_offset=-3.0), NONE) == 1.0   # 12 hours apart
    assert score(a, member(2, "toyota"), NONE) == 1.0


def test_a_shared_thread_is_a_bonus_and_a_reason() -> None:
    history = History(threads=MappingProxyType({1: frozenset({2})}))
    assert score(member(1), member(2, "toyota"), history) == score(member(2, "toyota"), member(1), history) == 3.0
    assert reasons(member(2, "toyota"), member(1), history)[0].key == REASON_THREAD


def test_reasons_are_strongest_first_and_limited() -> None:
    a = member(1, interests=frozenset({"ai"}), offers=("mentoring",), seeks=("fundraising",), utc_offset=9.0)
    b = member(2, "toyota", interests=frozenset({"ai"}), offers=("fundraising",), seeks=("mentoring",),
               utc_offset=9.0)
    found = reasons(a, b, NONE, limit=5)
    assert [r.key for r in found] == [REASON_THEY_OFFER, REASON_YOU_OFFER, REASON_INTERESTS, REASON_SAME_TIMEZONE]
    assert [r.weight for r in found] == sorted((r.weight for r in found), reverse=True)
    assert len(reasons(a, b, NONE)) == 3


@settings(max_examples=40)
@given(communities(least=2, most=6))
def test_the_score_is_symmetric_and_its_reasons_add_up(community: tuple[list[Candidate], History]) -> None:
    members, history = community
    for a, b in itertools.permutations(members, 2):
        assert score(a, b, history) == score(b, a, history)
        assert math_sum(r.weight for r in reasons(a, b, history, limit=10)) <= score(a, b, history) - 1.0 + 1e-9


def math_sum(values: object) -> float:
    return float(sum(values))  # type: ignore[call-overload]


# --- the score for many at once --------------------------------------------------------------------------


@settings(max_examples=40)
@given(communities(most=14, available=1.0))
def test_score_columns_agree_with_the_score(community: tuple[list[Candidate], History]) -> None:
    candidates, history = community
    members = Members(candidates, history)
    slots = list(range(len(candidates)))
    block = np.zeros((len(slots), members.capacity), np.uint8)
    members.scores.units(slots, block)
    for a in slots:
        others = np.array(slots)
        exact = members.scores.exact(a, others, block[a, others])
        for b in slots:
            if a == b:
                continue
            expected = score(candidates[a], candidates[b], history)
            # Units round the time zone up; the float is restored to the bit.
            assert expected * UNITS - 1e-9 <= block[a, b] < expected * UNITS + 1
            assert exact[b] == expected
