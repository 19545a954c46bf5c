"""Splitting long text into Discord messages: nothing lost, nothing too long, cuts where a reader pauses."""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.prompts.split import MESSAGE_LIMIT, split_message

limits = st.integers(1, 300)
small_limits = st.integers(20, 300)


def assert_pieces(text: str, pieces: list[str], limit: int) -> None:
    assert "".join(pieces) == text
    assert all(1 <= len(piece) <= limit for piece in pieces)


def cuts(pieces: list[str]) -> list[int]:
    """The positions in the text where one piece ends and the next begins."""
    positions, at = [], 0
    for piece in pieces[:-1]:
        at += len(piece)
        positions.append(at)
    return positions


# --- any text --------------------------------------------------------------------------------------------


@given(st.text(), limits)
def test_any_text_joins_back_and_fits(text: str, limit: int) -> None:
    assert_pieces(text, split_message(text, limit), limit)


@given(st.text(min_size=1, max_size=4000))
def test_any_text_fits_discord(text: str) -> None:
    pieces = split_message(text)
    assert_pieces(text, pieces, MESSAGE_LIMIT)
    if len(text) <= MESSAGE_LIMIT:
        assert pieces == [text]


paragraph = st.text(st.characters(blacklist_characters="\n"), min_size=1, max_size=300)
# A paragraph over 2,000 characters: some unit (maybe with spaces or line breaks, maybe not) repeated.
long_paragraph = st.builds(lambda unit, times: unit * times, st.text(min_size=1, max_size=20), st.integers(2001, 3000))
paragraph_break = st.sampled_from(["\n\n", "\n\n\n", "\n \n", "\r\n\r\n"])


@st.composite
def paragraphs_with_a_long_one(draw: st.DrawFn) -> str:
    shorts = draw(st.lists(paragraph, max_size=6))
    shorts.insert(draw(st.integers(0, len(shorts))), draw(long_paragraph))
    text = shorts[0]
    for part in shorts[1:]:
        text += draw(paragraph_break) + part
    return text


@given(paragraphs_with_a_long_one())
def test_paragraphs_with_one_over_the_limit(text: str) -> None:
    assert_pieces(text, split_message(text), MESSAGE_LIMIT)


@given(paragraphs_with_a_long_one(), small_limits)
def test_paragraphs_with_small_limits(text: str, limit: int) -> None:
    assert_pieces(text, split_message(text, limit), limit)


# --- words are not cut ----------------------------------------------------------------------------------

word = st.text(string.ascii_letters, min_size=1, max_size=50)


@st.composite
def words(draw: st.DrawFn) -> str:
    parts = draw(st.lists(word, min_size=1, max_size=200))
    text = parts[0]
    for part in parts[1:]:
        text += draw(st.sampled_from([" ", "\n"])) + part
    return text


@given(words(), st.integers(51, 300))
def test_words_are_never_cut_between_two_letters(text: str, limit: int) -> None:
    pieces = split_message(text, limit)
    assert_pieces(text, pieces, limit)
    for cut in cuts(pieces):
        assert not (text[cut - 1].isalpha() and text[cut].isalpha()), (cut, text[cut - 5 : cut + 5])
        assert text[cut - 1] in " \n"  # the separator ends the earlier piece


# --- Japanese -------------------------------------------------------------------------------------------

kana = st.text("あいうえおかきくけこさしすせそ日本語会社仕事人脈", min_size=1, max_size=40)
japanese_sentence = st.one_of(st.builds(lambda s: s + "。", kana), st.builds(lambda s: "「" + s + "。」", kana))


@given(st.lists(japanese_sentence, min_size=1, max_size=60).map("".join), st.integers(50, 300))
def test_japanese_is_cut_only_after_a_full_stop_and_its_bracket(text: str, limit: int) -> None:
    pieces = split_message(text, limit)
    assert_pieces(text, pieces, limit)
    for cut in cuts(pieces):
        assert text[cut - 1] in "。」"
        assert text[cut] != "」"  # a closing bracket stays with its sentence


@given(st.lists(japanese_sentence, min_size=1, max_size=60).map("".join), limits)
def test_japanese_with_any_limit(text: str, limit: int) -> None:
    assert_pieces(text, split_message(text, limit), limit)


# --- hard cuts keep characters whole --------------------------------------------------------------------

marks = st.text("\u0301\u0308\u3099\ufe0f", max_size=3)  # acute, diaeresis, kana voicing mark, emoji presentation
base = st.sampled_from(["a", "か", "👍", "👩\u200d💻", "👍🏽"])
cluster = st.builds(lambda b, m: b + m, base, marks)


@given(st.lists(cluster, min_size=1, max_size=200).map("".join), st.integers(7, 60))
def test_a_hard_cut_keeps_marks_and_joiners_with_their_character(text: str, limit: int) -> None:
    pieces = split_message(text, limit)
    assert_pieces(text, pieces, limit)
    for piece in pieces[1:]:
        assert unicodedata.category(piece[0]) not in {"Mn", "Mc", "Me"} and piece[0] not in "\u200d🏽"
    for piece in pieces[:-1]:
        assert not piece.endswith("\u200d")


# --- examples -------------------------------------------------------------------------------------------


def test_no_text_no_pieces() -> None:
    assert split_message("") == []


def test_short_text_is_one_piece() -> None:
    assert split_message("Hello.\n\nこんにちは。") == ["Hello.\n\nこんにちは。"]


def test_a_full_modal_without_breaks_is_two_pieces() -> None:
    text = "x" * 4000  # the most a Discord modal's text input takes
    assert split_message(text) == ["x" * 2000, "x" * 2000]


def test_a_full_modal_of_two_paragraphs_is_two_pieces() -> None:
    first, second = ("Tea is good. " * 154)[:1998], ("Sake too. " * 200)[:2000]
    text = first + "\n\n" + second
    assert len(text) == 4000
    assert split_message(text) == [first + "\n\n", second]


def test_a_paragraph_break_beats_a_later_sentence_end() -> None:
    first = "word " * 60 + "end.\n\n"
    text = first + "Another sentence here. " * 60
    pieces = split_message(text, 1000)
    assert pieces[0] == first
    assert_pieces(text, pieces, 1000)


def test_a_tiny_first_paragraph_runs_on_to_a_sentence_end() -> None:
    text = "Hi.\n\n" + "Sentence here. " * 100
    pieces = split_message(text, 200)
    assert len(pieces[0]) > len("Hi.\n\n") and pieces[0].endswith(". ")


def test_a_tiny_boundary_beats_a_hard_cut() -> None:
    assert split_message("ab " + "x" * 100, 50) == ["ab ", "x" * 50, "x" * 50]


def test_the_space_after_a_sentence_stays_with_it() -> None:
    pieces = split_message("One two three. Four five six seven eight nine", 30)
    assert pieces == ["One two three. ", "Four five six seven eight nine"]


def test_a_closing_bracket_stays_with_its_sentence() -> None:
    text = "「" + "あ" * 30 + "。」" + "い" * 30
    assert split_message(text, 40) == ["「" + "あ" * 30 + "。」", "い" * 30]


def test_a_no_break_space_is_not_a_boundary() -> None:
    text = "x" * 30 + "\xa0" + "y" * 30
    assert split_message(text, 40) == [text[:40], text[40:]]


def test_a_heading_starts_a_message_with_its_text() -> None:
    text = "First paragraph. " * 3 + "\n\n## Heading\n\n" + "Body text. " * 20
    pieces = split_message(text, 80)
    assert pieces[1].startswith("## Heading\n\nBody text.")


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        split_message("text", limit)
