"""Message catalogs (data/locales/<language>.toml) and the choice of language.

Every text a member sees is a key here, in English and Japanese. A message is
a :class:`Text`: a key and its parameters, rendered late, in the language of
whoever reads it. Parameters may themselves be :class:`Text` (a purpose's
name inside a sentence), or lists of them, and are rendered in the same
language.

This module is plain Python; the discord.py translator that feeds command
descriptions to Discord lives in ``bot/translator.py``.
"""

from __future__ import annotations

import logging
import string
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from bot import DATA_DIR

log = logging.getLogger(__name__)

LANGUAGES: Final = ("en", "ja")
DEFAULT_LANGUAGE: Final = "en"
LOCALES_DIR = DATA_DIR / "locales"


class Text:
    """A message to render later: a catalog key and its parameters."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key = key
        self.params: Mapping[str, Any] = MappingProxyType(params)

    def __repr__(self) -> str:
        return f"Text({self.key!r}, **{dict(self.params)!r})"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{key}.")
        elif isinstance(value, str):
            yield key, value
        else:
            raise ValueError(f"{key}: messages must be strings, not {type(value).__name__}")


def placeholders(template: str) -> frozenset[str]:
    """The ``{names}`` a template expects."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


class Catalog:
    def __init__(self, messages: Mapping[str, Mapping[str, str]]) -> None:
        missing = [language for language in LANGUAGES if language not in messages]
        if missing:
            raise ValueError(f"no catalog for {', '.join(missing)}")
        self._messages = {language: dict(table) for language, table in messages.items()}

    @classmethod
    def load(cls, folder: Path = LOCALES_DIR) -> Catalog:
        messages: dict[str, dict[str, str]] = {}
        for language in LANGUAGES:
            path = folder / f"{language}.toml"
            with path.open("rb") as handle:
                messages[language] = dict(_flatten(tomllib.load(handle)))
        return cls(messages)

    def keys(self, language: str) -> frozenset[str]:
        return frozenset(self._messages[language])

    def missing_keys(self) -> dict[str, frozenset[str]]:
        """For each language, the keys another language has and it lacks (empty when complete)."""
        every = frozenset().union(*(self.keys(language) for language in LANGUAGES))
        return {language: every - self.keys(language) for language in LANGUAGES
                if every - self.keys(language)}

    def template(self, language: str, key: str) -> str | None:
        return self._messages.get(language, {}).get(key)

    def render(self, language: str, text: Text | str, /) -> str:
        """The text in ``language``; English if the key is missing there, the key itself as a last resort."""
        if isinstance(text, str):
            return text
        template = self.template(language, text.key)
        if template is None:
            log.error("message %r is missing in %r", text.key, language)
            template = self.template(DEFAULT_LANGUAGE, text.key) or text.key
        values = {name: self._value(language, value) for name, value in text.params.items()}
        try:
            return template.format_map(values)
        except (KeyError, IndexError, ValueError):
            log.exception("message %r in %r does not fit its parameters %r", text.key, language, sorted(values))
            return template


    def join(self, language: str, items: Iterable[Text | str]) -> str:
        """Items as a list is written in ``language``: "AI, design" in English, "AI、デザイン" in Japanese."""
        separator = self.template(language, "list.separator") or ", "
        return separator.join(str(self._value(language, item)) for item in items)

    def _value(self, language: str, value: Any) -> Any:
        if isinstance(value, Text):
            return self.render(language, value)
        if isinstance(value, list | tuple):
            return self.join(language, value)
        return value


@cache
def default_catalog() -> Catalog:
    """The bundled catalog, read once: it is read-only data shipped with the code."""
    return Catalog.load()


def language_of_locale(locale: str | None) -> str | None:
    """The catalog language for a Discord locale ("ja", "en-US", "en-GB"), or None if we have none."""
    if not locale:
        return None
    base = locale.split("-", 1)[0].lower()
    return base if base in LANGUAGES else None


def pick_language(user_locale: str | None, server_language: str | None) -> str:
    """Replies follow the member's client language, then the server's language, then English."""
    return language_of_locale(user_locale) or language_of_locale(server_language) or DEFAULT_LANGUAGE


def permission_texts(names: Iterable[str]) -> list[Text]:
    """Discord permissions (discord.py attribute names) as members know them, e.g. "Send Messages"."""
    return [Text(f"permissions.{name}") for name in names]


def without_invisible(text: str) -> str:
    """The text without invisible format and control characters (zero-width, right-to-left overrides);
    whitespace stays."""
    return "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) not in {"Cf", "Cc"})


def fold(text: str) -> str:
    """How two texts are compared when they name one thing (an interest tag, an essay's title): width and
    case folded, whitespace runs made one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def written_in(text: str) -> str:
    """The catalogue language a text is written in, as far as its letters tell: Japanese when it has kana
    (Japanese sentences cannot do without them; a Japanese word quoted in English brings one or two) and
    kana and kanji are at least a fifth of its letters ("DXとAIのためのcloud strategy" is Japanese), else
    English."""
    letters = [ch for ch in text if ch.isalpha()]
    kana = sum(1 for ch in letters if "\u3041" <= ch <= "\u30ff" or "\uff66" <= ch <= "\uff9d")
    japanese = kana + sum(1 for ch in letters if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff")
    return "ja" if kana >= 3 and japanese * 5 >= len(letters) else DEFAULT_LANGUAGE


def visible(text: str) -> str:
    """What a reader would see of the text: no invisible characters and no whitespace ("" for blank)."""
    return "".join(ch for ch in without_invisible(text) if not ch.isspace())


def shorten(text: str, limit: int = 80) -> str:
    """Member input echoed back: one line, bounded, and without invisible format characters
    (zero-width, right-to-left overrides) that could garble the reply around it."""
    flat = " ".join(without_invisible(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
