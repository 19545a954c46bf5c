"""Every file shipped in data/ loads."""

from __future__ import annotations

import tomllib

from bot import DATA_DIR
from bot.i18n import LANGUAGES, Catalog


def test_every_data_file_loads() -> None:
    files = [p for p in DATA_DIR.rglob("*") if p.is_file()]
    assert files
    for path in files:
        if path.suffix == ".toml":
            with path.open("rb") as handle:
                tomllib.load(handle)
        else:
            path.read_text(encoding="utf-8")


def test_the_locales_are_exactly_the_supported_languages() -> None:
    assert sorted(p.stem for p in (DATA_DIR / "locales").glob("*.toml")) == sorted(LANGUAGES)
    Catalog.load()
