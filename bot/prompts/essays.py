"""The bundled essays: discussion prompts kept as Markdown files with a TOML header.

Each ``data/essays/<slug>.md`` starts with a header between two ``+++`` lines
(slug, order, source, tags, and the title, summary and questions in every
supported language), then the essay in Markdown. The whole shape is checked
here, when the files load, so that a typo in a data file fails the test suite
and the bot's start instead of a post weeks later; every error names the file
and what is wrong on one line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

from bot import DATA_DIR
from bot.i18n import LANGUAGES

ESSAYS_DIR: Final = DATA_DIR / "essays"
FENCE: Final = "+++"
TITLE_LIMIT: Final = 100  # the title becomes a forum post's (a thread's) name, which Discord caps at 100
SUMMARY_LIMIT: Final = 600  # leaves room for the questions in one 2,000-character message
QUESTION_LIMIT: Final = 200
QUESTIONS: Final = range(3, 6)  # 3 to 5 questions: enough to start a talk, few enough to read
TAGS: Final = range(3, 6)
# Slugs end up in prompt keys and custom ids, so they stay plain: lowercase words joined by hyphens.
_SLUG: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_FIELDS: Final = ("slug", "order", "source", "tags", "title", "summary", "questions")


@dataclass(frozen=True)
class Essay:
    """One bundled essay. Per-language fields map a code of :data:`bot.i18n.LANGUAGES` to its text."""

    slug: str
    order: int
    source: str
    tags: tuple[str, ...]
    title: Mapping[str, str]
    summary: Mapping[str, str]
    questions: Mapping[str, tuple[str, ...]]
    body: str


class EssayError(Exception):
    """A bundled essay file that cannot be used; the message names the file and the fault, on one line."""


def parse_essay(text: str, *, name: str) -> Essay:
    """The essay in ``text``; ``name`` (the file name) only labels errors.

    The body is everything after the closing ``+++`` line, without the line
    break that ends that line and without trailing whitespace; it is otherwise
    kept exactly, since it is Markdown and its line breaks are the author's.
    Whether the slug matches the file name is :func:`load_essays`'s check.
    """
    check = _Check(name)
    header, body = _split(text, check)
    try:
        table = tomllib.loads(header)
    except tomllib.TOMLDecodeError as error:
        raise check.fault(f"the +++ header is not valid TOML: {error}") from None
    for key in _FIELDS:
        if key not in table:
            raise check.fault(f"the header has no {key!r}")
    unknown = sorted(set(table) - set(_FIELDS))
    if unknown:
        raise check.fault(f"unknown header field(s): {', '.join(unknown)}")

    slug = check.string(table["slug"], "slug")
    if not _SLUG.fullmatch(slug):
        raise check.fault(f"slug {slug!r} must be lowercase letters and digits joined by hyphens")
    order = table["order"]
    # bool is an int in Python, but `order = true` is a mistake, not the number 1.
    if not isinstance(order, int) or isinstance(order, bool):
        raise check.fault(f"order must be an integer, not {_kind(order)}")
    if order < 1:
        raise check.fault(f"order must be 1 or more, not {order}")
    source = check.string(table["source"], "source")
    tags = check.strings(table["tags"], "tags", TAGS)
    for tag in tags:
        if tag != tag.lower():
            raise check.fault(f"tag {tag!r} must be lowercase")

    title = check.per_language(table["title"], "title")
    for language, value in title.items():
        if len(value) > TITLE_LIMIT:
            raise check.fault(f"title.{language} is {len(value)} characters; at most {TITLE_LIMIT}")
    summary = check.per_language(table["summary"], "summary")
    for language, value in summary.items():
        if len(value) > SUMMARY_LIMIT:
            raise check.fault(f"summary.{language} is {len(value)} characters; at most {SUMMARY_LIMIT}")
    questions = check.questions(table["questions"])

    if not body.strip():
        raise check.fault("the essay has no text after the +++ header")
    return Essay(
        slug=slug,
        order=order,
        source=source,
        tags=tags,
        title=title,
        summary=summary,
        questions=questions,
        body=body,
    )


def load_essays(folder: Path = ESSAYS_DIR) -> tuple[Essay, ...]:
    """Every ``*.md`` in ``folder``, parsed and checked, sorted by (order, slug): the bundled queue's order.

    A folder that does not exist holds no essays.
    """
    found: dict[str, tuple[Path, Essay]] = {}
    for path in sorted(folder.glob("*.md")):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise EssayError(f"{path.name}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        essay = parse_essay(text, name=path.name)
        # Checked before the file name, so two files claiming one slug are named together.
        if essay.slug in found:
            raise EssayError(f"{path.name}: slug {essay.slug!r} is already used by {found[essay.slug][0].name}")
        found[essay.slug] = path, essay
    for path, essay in found.values():
        if essay.slug != path.stem:
            raise EssayError(f"{path.name}: slug {essay.slug!r} does not match the file name (expected {path.stem!r})")
    return tuple(sorted((essay for _, essay in found.values()), key=lambda e: (e.order, e.slug)))


def _split(text: str, check: _Check) -> tuple[str, str]:
    """The header between the ``+++`` lines, and the body after them."""
    lines = text.removeprefix("\ufeff").split("\n")
    if lines[0].rstrip("\r") != FENCE:
        raise check.fault("the file must start with a +++ line opening the header")
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r") == FENCE:
            header = "\n".join(line.rstrip("\r") for line in lines[1:index])
            return header, "\n".join(lines[index + 1 :]).rstrip()
    raise check.fault("the +++ header is never closed by a second +++ line")


def _kind(value: object) -> str:
    """A value's type as TOML calls it, for error messages."""
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
    )
    return next((label for kind, label in kinds if isinstance(value, kind)), f"a {type(value).__name__}")


class _Check:
    """Type and shape checks for one file's header, failing with the file's name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fault(self, problem: str) -> EssayError:
        return EssayError(f"{self.name}: {' '.join(problem.split())}")

    def string(self, value: object, where: str) -> str:
        if not isinstance(value, str):
            raise self.fault(f"{where} must be a string, not {_kind(value)}")
        if not value.strip():
            raise self.fault(f"{where} is empty")
        return value.strip()

    def strings(self, value: object, where: str, count: range) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fault(f"{where} must be an array of strings, not {_kind(value)}")
        if len(value) not in count:
            raise self.fault(f"{where} has {len(value)} entries; it needs {count.start} to {count.stop - 1}")
        return tuple(self.string(item, f"{where}[{index}]") for index, item in enumerate(value))

    def languages(self, value: object, where: str) -> dict[str, object]:
        """A table with exactly one entry per supported language, in :data:`LANGUAGES` order."""
        if not isinstance(value, dict):
            raise self.fault(f"{where} must be a table of languages ({', '.join(LANGUAGES)}), not {_kind(value)}")
        for language in LANGUAGES:
            if language not in value:
                raise self.fault(f"{where} has no {language!r} entry")
        unknown = sorted(set(value) - set(LANGUAGES))
        if unknown:
            raise self.fault(f"{where} has unsupported language(s) {', '.join(unknown)}; known: {', '.join(LANGUAGES)}")
        return {language: value[language] for language in LANGUAGES}

    def per_language(self, value: object, where: str) -> Mapping[str, str]:
        texts = self.languages(value, where)
        checked = {language: self.string(text, f"{where}.{language}") for language, text in texts.items()}
        return MappingProxyType(checked)

    def questions(self, value: object) -> Mapping[str, tuple[str, ...]]:
        lists = self.languages(value, "questions")
        questions = {
            language: self.strings(items, f"questions.{language}", QUESTIONS) for language, items in lists.items()
        }
        counts = {language: len(items) for language, items in questions.items()}
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"{count} in {language}" for language, count in counts.items())
            raise self.fault(f"every language needs the same questions; found {listed}")
        for language, items in questions.items():
            for index, question in enumerate(items):
                if len(question) > QUESTION_LIMIT:
                    raise self.fault(
                        f"questions.{language}[{index}] is {len(question)} characters; at most {QUESTION_LIMIT}"
                    )
        return MappingProxyType(questions)
