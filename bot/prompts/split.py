"""Cutting a long text into messages Discord accepts (2,000 characters each), where a reader would pause.

Pieces join back to exactly the original text, so nothing is lost or
reformatted and the rule can be tested on any input. Separators (blank lines,
line breaks, the space after a full stop) stay at the end of the earlier piece:
each message then ends where the text paused and the next one starts with
words, and Discord, which trims the ends of a message, shows both cleanly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Final

MESSAGE_LIMIT: Final = 2000

# Whitespace a line may break at; the no-break spaces exist precisely to forbid that.
_SPACE: Final = r"[^\S\xa0\u2007\u202f]"
# The end of a blank (or whitespace-only) line: a cut here ends a paragraph.
_PARAGRAPH: Final = re.compile(r"(?<=\n)[^\S\n]*\n")
_LINE: Final = re.compile(r"\n")
_HEADING: Final = re.compile(r"#{1,6}[^\S\n]")
# A Latin sentence ends in . ! or ?, maybe closing quotes or brackets, then whitespace (so "3.5" and
# "example.com" are not ends). A Japanese one ends in 。！？ and its closing brackets; no space follows.
_SENTENCE: Final = re.compile(rf"[.!?]+[\"'”’)\]]*({_SPACE}+)|[。！？]+[」』）)]*({_SPACE}*)")
_GAP: Final = re.compile(rf"{_SPACE}+")

_ZWJ: Final = "\u200d"

_Spans = Iterator[tuple[int, int]]


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """``text`` as pieces of 1 to ``limit`` characters that join back to ``text``; no text, no pieces.

    Greedy from the start, each piece ends at the last boundary that fits, the
    first kind that has one winning: a paragraph break, a line break, a
    sentence end, a space. A line break right after a Markdown heading does
    not count, so that a heading opens a message together with its text.

    A boundary that would leave a piece shorter than ``limit // 4`` is passed
    over for a later boundary of a weaker kind, so a short opening paragraph
    does not become a message of its own when the message could run on to a
    sentence end. A short piece is still better than a cut inside a word, which
    only happens when the window holds no boundary at all (a very long "word",
    or Japanese without punctuation). Even then the cut never separates a
    combining mark, variation selector or joiner from the character it
    modifies, which would show as a broken glyph on both sides.

    A piece may be whitespace only (a long run of blank lines); a caller that
    posts the pieces should skip those, as Discord refuses an empty message.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    pieces: list[str] = []
    start = 0
    while len(text) - start > limit:
        cut = _cut(text, start, start + limit, limit // 4)
        pieces.append(text[start:cut])
        start = cut
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _paragraphs(text: str, start: int, stop: int) -> _Spans:
    for match in _PARAGRAPH.finditer(text, start, stop + 1):
        yield match.end(), match.end()


def _lines(text: str, start: int, stop: int) -> _Spans:
    for match in _LINE.finditer(text, start, stop + 1):
        yield match.end(), match.end()


def _sentences(text: str, start: int, stop: int) -> _Spans:
    for match in _SENTENCE.finditer(text, start, stop + 1):
        if match.start(1) >= 0:  # Latin: at least one whitespace character must stay with the sentence
            yield match.start(1) + 1, match.end(1)
        else:
            yield match.start(2), match.end(2)


def _gaps(text: str, start: int, stop: int) -> _Spans:
    for match in _GAP.finditer(text, start, stop + 1):
        yield match.start() + 1, match.end()


# Each kind of boundary gives, per occurrence, the range of positions a cut may take: from just after the
# mark that makes it a boundary to the end of the whitespace after it (a cut at the window's edge may fall
# inside that whitespace). Searching one character past the window tells a boundary that ends at the edge
# from one that goes on beyond it (a 。 at the edge whose 」 lies outside is not a sentence end there).
# The flag says whether a boundary right after a heading is passed over (line breaks: yes; a space inside
# a heading line is no better than one after it, so the weaker kinds need not ask).
_KINDS: Final[tuple[tuple[Callable[[str, int, int], _Spans], bool], ...]] = (
    (_paragraphs, True),
    (_lines, True),
    (_sentences, False),
    (_gaps, False),
)


def _cut(text: str, start: int, stop: int, shortest: int) -> int:
    """Where the piece from ``start`` ends, at most at ``stop``."""
    fallback: int | None = None
    for spans, not_after_heading in _KINDS:
        cut = _last_cut(text, start, stop, list(spans(text, start, stop)), not_after_heading)
        if cut is None:
            continue
        if cut - start >= shortest:
            return cut
        if fallback is None:
            fallback = cut
    return fallback if fallback is not None else _hard_cut(text, start, stop)


def _last_cut(text: str, start: int, stop: int, spans: list[tuple[int, int]], not_after_heading: bool) -> int | None:
    """The last allowed cut within ``spans``, searched from the end so the first one found wins."""
    # Cuts after this position follow a heading: the whitespace between them was scanned once already.
    heading_end = stop + 1
    for first, last in reversed(spans):
        for cut in range(min(last, stop), max(first, start + 1) - 1, -1):
            if not _can_cut(text, cut) or cut > heading_end:
                continue
            if not_after_heading:
                content_end = _content_end(text, start, cut)
                if _is_heading(text, start, content_end):
                    heading_end = content_end
                    continue
            return cut
    return None


def _content_end(text: str, start: int, cut: int) -> int:
    """Where the text before ``cut`` ends, not counting the whitespace in between."""
    end = cut
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _is_heading(text: str, start: int, end: int) -> bool:
    """Whether the line that ends at ``end`` is a Markdown heading. A heading belongs with the text under it,
    so a message must not end with one."""
    line = text.rfind("\n", start, end) + 1 or start
    return _HEADING.match(text, line, end) is not None


def _hard_cut(text: str, start: int, stop: int) -> int:
    for cut in range(stop, start, -1):
        if _can_cut(text, cut):
            return cut
    return stop  # a whole window of combining marks: nothing to keep them with, so any cut will do


def _can_cut(text: str, cut: int) -> bool:
    """Whether ``text`` may be cut before index ``cut`` without breaking what is drawn as one character."""
    if cut >= len(text):
        return True
    before, after = text[cut - 1], text[cut]
    if before == "\r" and after == "\n":
        return False
    return before != _ZWJ and not _clings(after)


def _clings(char: str) -> bool:
    """A character that modifies the one before it: combining marks (including the kana voicing marks and
    variation selectors), the zero-width joiner, emoji skin tones and emoji tag characters."""
    point = ord(char)
    return (
        unicodedata.category(char) in {"Mn", "Mc", "Me"}
        or char == _ZWJ
        or 0x1F3FB <= point <= 0x1F3FF
        or 0xE0020 <= point <= 0xE007F
    )
