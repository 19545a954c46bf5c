"""Every file shipped in data/ loads."""

from __future__ import annotations

import tomllib

from bot import DATA_DIR
from bot.i18n import LANGUAGES, Catalog
from bot.prompts.essays import ESSAYS_DIR, load_essays


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


def test_every_bundled_essay_loads_clean() -> None:
    essays = load_essays()
    assert len(essays) == len(list(ESSAYS_DIR.glob("*.md")))
    slugs = [essay.slug for essay in essays]
    network, rivalry = "why-japanese-professionals-dont-network", "silent-rivalry-overseas"
    assert {network, rivalry} <= set(slugs) and slugs.index(network) < slugs.index(rivalry)
    for essay in essays:
        for language in LANGUAGES:
            assert essay.title[language].strip() and essay.summary[language].strip(), (essay.slug, language)
            assert len(essay.questions[language]) >= 3, (essay.slug, language)
        # What the cleaning removed from the originals: a reader's comment, the blog's footer, "〇" bullets.
        assert "As always Jules" not in essay.body and "Post a Comment" not in essay.body, essay.slug
        assert not any(line.startswith("〇") for line in essay.body.splitlines()), essay.slug
    first = essays[slugs.index(network)]
    assert not first.body.startswith(first.title["en"])
    assert not first.body.startswith("Why Japanese Professionals Don't Network")
