"""What a valid profile is: bounded fields, interests as tags, languages, a time zone.

Text is stored as the member typed it (trimmed): Markdown, mentions and any
script are kept, since the bot only ever shows them in embeds and with pings
disabled. A field that holds nothing visible (only spaces or zero-width
characters) counts as empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from bot.errors import UserError
from bot.guilds.rules import parse_timezone
from bot.i18n import Text, fold, shorten, visible, without_invisible
from bot.intros.model import PROFILE_LANGUAGES, TEXT_FIELDS

# The most each field may hold, in characters; the modal says the same to Discord.
LIMITS: Final[dict[str, int]] = {
    "display_name": 80,
    "company": 100,
    "role": 100,
    "industry": 60,
    "location": 100,
    "timezone": 64,
    "interests": 300,
    "offer": 300,
    "seek": 300,
    "bio": 1000,
}
REQUIRED: Final = frozenset({"display_name", "company"})
MAX_TAGS: Final = 10
TAG_LIMIT: Final = 30
# Tags are separated by commas (also Japanese 、), semicolons or line breaks ("AI/ML" stays one tag).
_TAG_SEPARATORS = re.compile(r"[,、;\n，；]+")

assert set(LIMITS) == set(TEXT_FIELDS)


def clean_field(name: str, value: str) -> str:
    """The value to store for a text field: trimmed, checked against its limit; "" if nothing visible."""
    text = value.strip()
    if not visible(text):
        text = ""
    if not text and name in REQUIRED:
        raise UserError("intros.field.required", field=Text(f"intros.field.{name}"))
    limit = LIMITS[name]
    if len(text) > limit:
        raise UserError("intros.field.too_long", field=Text(f"intros.field.{name}"), limit=limit,
                        length=len(text))
    return text


def tag_key(tag: str) -> str:
    """The key two interests are one tag by, wherever they are compared (a profile's list, matching):
    "Supply  Chain", "ｓｕｐｐｌｙ chain" and "#supply chain" are one."""
    return tag_text(fold(tag))


def tag_text(raw: str) -> str:
    """One interest as the member wrote it, tidied only: invisible characters dropped, spaces single, no
    leading "#"."""
    return " ".join(without_invisible(raw).split()).lstrip("#＃").strip()


def parse_tags(text: str) -> tuple[str, ...]:
    """Interests typed as a list ("Supply Chain, AI、 ai") as distinct tags, in the order given and as the
    member spelled them (the first spelling of a tag given twice: "AI" and "ai" are one tag)."""
    clean_field("interests", text)
    tags: list[str] = []
    seen: set[str] = set()
    for piece in _TAG_SEPARATORS.split(text):
        tag = tag_text(piece)
        key = tag_key(tag)
        if not key or key in seen:
            continue
        if len(tag) > TAG_LIMIT:
            raise UserError("intros.interests.tag_too_long", tag=shorten(tag, 40), limit=TAG_LIMIT)
        seen.add(key)
        tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise UserError("intros.interests.too_many", count=len(tags), limit=MAX_TAGS)
    return tuple(tags)


def parse_languages(values: Iterable[str]) -> tuple[str, ...]:
    """The languages a member chose, in a stable order; at least one."""
    chosen = {value.strip().casefold() for value in values}
    unknown = chosen - set(PROFILE_LANGUAGES)
    if unknown or not chosen:
        raise UserError("intros.languages.invalid")
    return tuple(language for language in PROFILE_LANGUAGES if language in chosen)


def parse_profile_timezone(text: str) -> str | None:
    """An IANA name ("Asia/Tokyo", any case), or None when left empty."""
    value = clean_field("timezone", text)
    if not value:
        return None
    try:
        return parse_timezone(value)
    except UserError:
        raise UserError("intros.timezone.unknown", name=shorten(value)) from None


def default_languages(locale: str | None) -> tuple[str, ...]:
    """Until the member picks: the language of their Discord client."""
    return ("ja",) if (locale or "").lower().startswith("ja") else ("en",)
