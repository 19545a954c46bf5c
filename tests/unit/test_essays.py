"""Bundled essay files: the header's whole shape is checked, and every fault names its file."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from bot.prompts.essays import Essay, EssayError, load_essays, parse_essay

HEADER = """\
slug = "tea"
order = 1
source = "Written for the tests."
tags = ["one", "two", "three"]
[title]
en = "Tea"
ja = "お茶"
[summary]
en = "About tea."
ja = "お茶について。"
[questions]
en = ["First?", "Second?", "Third?"]
ja = ["一つ目？", "二つ目？", "三つ目？"]
"""
VALID = f"+++\n{HEADER}+++\nBody text.\n"


def essay_text(slug: str = "tea", order: int = 1, body: str = "Body text.\n") -> str:
    header = HEADER.replace('slug = "tea"', f'slug = "{slug}"').replace("order = 1", f"order = {order}")
    return f"+++\n{header}+++\n{body}"


def broken(old: str, new: str) -> str:
    assert old in VALID, old
    return VALID.replace(old, new, 1)


def test_a_valid_essay_parses() -> None:
    essay = parse_essay(VALID, name="tea.md")
    assert essay == Essay(
        slug="tea",
        order=1,
        source="Written for the tests.",
        tags=("one", "two", "three"),
        title={"en": "Tea", "ja": "お茶"},
        summary={"en": "About tea.", "ja": "お茶について。"},
        questions={"en": ("First?", "Second?", "Third?"), "ja": ("一つ目？", "二つ目？", "三つ目？")},
        body="Body text.",
    )
    assert isinstance(essay.title, MappingProxyType) and isinstance(essay.questions, MappingProxyType)


def test_the_body_is_kept_exactly_but_for_the_first_line_break_and_the_trailing_whitespace() -> None:
    body = "\n  indented _Markdown_\n\n\nwith   spaces\t \n\n"
    assert parse_essay(essay_text(body=body), name="tea.md").body == "\n  indented _Markdown_\n\n\nwith   spaces"


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        pytest.param(VALID.removeprefix("+++\n"), "must start with a [+]{3} line", id="no header"),
        pytest.param("Body only.\n", "must start with a [+]{3} line", id="no header at all"),
        pytest.param(" +++\n" + VALID.removeprefix("+++\n"), "must start with a [+]{3} line", id="fence not alone"),
        pytest.param(broken("+++\nBody", "Body"), "never closed", id="unterminated header"),
        pytest.param(broken("order = 1", "order = "), "not valid TOML", id="invalid toml"),
        pytest.param(broken("order = 1\n", ""), "no 'order'", id="missing order"),
        pytest.param(broken('slug = "tea"\n', ""), "no 'slug'", id="missing slug"),
        pytest.param(broken('source = "Written for the tests."\n', ""), "no 'source'", id="missing source"),
        pytest.param(broken('tags = ["one", "two", "three"]\n', ""), "no 'tags'", id="missing tags"),
        pytest.param(broken('[title]\nen = "Tea"\nja = "お茶"\n', ""), "no 'title'", id="missing title"),
        pytest.param(
            broken('[summary]\nen = "About tea."\nja = "お茶について。"\n', ""), "no 'summary'", id="missing summary"
        ),
        pytest.param(VALID.split("[questions]")[0] + "+++\nBody.\n", "no 'questions'", id="missing questions"),
        pytest.param(broken("order = 1", 'author = "x"\norder = 1'), "unknown header field", id="unknown field"),
        pytest.param(broken("order = 1", 'order = "1"'), "order must be an integer, not a string", id="order text"),
        pytest.param(broken("order = 1", "order = true"), "order must be an integer, not a boolean", id="order bool"),
        pytest.param(broken("order = 1", "order = 1.5"), "order must be an integer, not a float", id="order float"),
        pytest.param(broken("order = 1", "order = 0"), "order must be 1 or more", id="order zero"),
        pytest.param(broken('slug = "tea"', "slug = 7"), "slug must be a string", id="slug number"),
        pytest.param(broken('slug = "tea"', 'slug = "Tea Time"'), "lowercase letters and digits", id="slug shape"),
        pytest.param(broken('source = "Written for the tests."', 'source = " "'), "source is empty", id="source blank"),
        pytest.param(broken('tags = ["one", "two", "three"]', 'tags = "one"'), "tags must be an array", id="tags text"),
        pytest.param(broken('["one", "two", "three"]', '["one", "two"]'), "tags has 2 entries", id="too few tags"),
        pytest.param(broken('["one", "two", "three"]', '["a", "b", "c", "d", "e", "f"]'), "tags has 6", id="many tags"),
        pytest.param(broken('["one", "two", "three"]', '["one", 2, "three"]'), r"tags\[1\] must be", id="tag number"),
        pytest.param(broken('["one", "two", "three"]', '["one", "Two", "three"]'), "must be lowercase", id="tag case"),
        pytest.param(
            broken('[title]\nen = "Tea"\nja = "お茶"\n', 'title = "Tea"\n'), "title must be a table", id="title text"
        ),
        pytest.param(broken('ja = "お茶"\n', ""), "title has no 'ja'", id="title missing ja"),
        pytest.param(broken('en = "Tea"\n', ""), "title has no 'en'", id="title missing en"),
        pytest.param(broken('ja = "お茶"', 'ja = "  "'), "title.ja is empty", id="title blank"),
        pytest.param(broken('ja = "お茶"', "ja = 1"), "title.ja must be a string", id="title number"),
        pytest.param(broken('ja = "お茶"', 'ja = "お茶"\nfr = "Thé"'), "unsupported language", id="extra language"),
        pytest.param(broken('en = "Tea"', f'en = "{"x" * 101}"'), "title.en is 101 characters", id="title too long"),
        pytest.param(broken('ja = "お茶について。"\n', ""), "summary has no 'ja'", id="summary missing ja"),
        pytest.param(broken('en = "About tea."', 'en = ""'), "summary.en is empty", id="summary empty"),
        pytest.param(broken('en = "About tea."', f'en = "{"x" * 601}"'), "summary.en is 601", id="summary too long"),
        pytest.param(
            broken('ja = ["一つ目？", "二つ目？", "三つ目？"]\n', ""), "questions has no 'ja'", id="no ja questions"
        ),
        pytest.param(broken('en = ["First?", "Second?", "Third?"]', 'en = "First?"'), "must be an array", id="q text"),
        pytest.param(
            broken('en = ["First?", "Second?", "Third?"]', 'en = ["First?", "Second?"]'),
            "questions.en has 2 entries",
            id="too few questions",
        ),
        pytest.param(
            broken('en = ["First?", "Second?", "Third?"]', 'en = ["1?", "2?", "3?", "4?", "5?", "6?"]'),
            "questions.en has 6 entries",
            id="too many questions",
        ),
        pytest.param(
            broken('en = ["First?", "Second?", "Third?"]', 'en = ["First?", "Second?", "Third?", "Fourth?"]'),
            "same questions; found 4 in en, 3 in ja",
            id="question counts differ",
        ),
        pytest.param(broken('"Second?"', '" "'), r"questions.en\[1\] is empty", id="question blank"),
        pytest.param(broken('"二つ目？"', "2"), r"questions.ja\[1\] must be a string", id="question number"),
        pytest.param(broken('"Third?"', f'"{"x" * 201}"'), r"questions.en\[2\] is 201 characters", id="long question"),
        pytest.param(broken("Body text.\n", ""), "no text after", id="no body"),
        pytest.param(broken("Body text.\n", "\n  \n\t\n"), "no text after", id="blank body"),
    ],
)
def test_a_broken_essay_is_refused_naming_the_file(text: str, fault: str) -> None:
    with pytest.raises(EssayError, match=fault) as caught:
        parse_essay(text, name="tea.md")
    message = str(caught.value)
    assert message.startswith("tea.md: ") and "\n" not in message


def test_a_windows_file_and_a_byte_order_mark_are_read() -> None:
    text = "\ufeff" + VALID.replace("\n", "\r\n")
    assert parse_essay(text, name="tea.md").title["ja"] == "お茶"


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


def test_load_essays_sorts_by_order_then_slug(tmp_path: Path) -> None:
    write(tmp_path, "zen.md", essay_text("zen", order=1))
    write(tmp_path, "bamboo.md", essay_text("bamboo", order=2))
    write(tmp_path, "apple.md", essay_text("apple", order=2))
    write(tmp_path, "notes.txt", "not an essay")
    assert [e.slug for e in load_essays(tmp_path)] == ["zen", "apple", "bamboo"]


def test_load_essays_of_an_empty_or_missing_folder(tmp_path: Path) -> None:
    assert load_essays(tmp_path) == ()
    assert load_essays(tmp_path / "missing") == ()


def test_load_essays_refuses_a_slug_that_is_not_the_file_name(tmp_path: Path) -> None:
    write(tmp_path, "tea.md", essay_text("coffee"))
    with pytest.raises(EssayError, match=r"^tea\.md: slug 'coffee' does not match the file name \(expected 'tea'\)$"):
        load_essays(tmp_path)


def test_load_essays_refuses_a_slug_used_twice(tmp_path: Path) -> None:
    write(tmp_path, "a.md", essay_text("tea"))
    write(tmp_path, "tea.md", essay_text("tea", order=2))
    with pytest.raises(EssayError, match=r"^tea\.md: slug 'tea' is already used by a\.md$"):
        load_essays(tmp_path)


def test_load_essays_names_the_broken_file(tmp_path: Path) -> None:
    write(tmp_path, "tea.md", essay_text())
    write(tmp_path, "bad.md", "no header\n")
    with pytest.raises(EssayError, match=r"^bad\.md: "):
        load_essays(tmp_path)


def test_load_essays_refuses_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "tea.md").write_bytes(essay_text().encode("shift_jis"))
    with pytest.raises(EssayError, match=r"^tea\.md: not UTF-8"):
        load_essays(tmp_path)
