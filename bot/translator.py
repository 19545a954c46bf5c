"""Command, option and choice texts for Discord, from the same catalogs as replies.

Commands declare their descriptions with :func:`described`, which takes the
English text from the catalog as the default and keeps the key, so the
translator below can give Discord every other language's text when the
commands are synced.
"""

from __future__ import annotations

from discord import Locale, app_commands

from bot.i18n import DEFAULT_LANGUAGE, Catalog, default_catalog, language_of_locale


def described(key: str) -> app_commands.locale_str:
    """The catalog's English text for ``key``, carrying the key for translation."""
    english = default_catalog().template(DEFAULT_LANGUAGE, key)
    if english is None:
        raise KeyError(f"no English text for {key!r} in data/locales/en.toml")
    return app_commands.locale_str(english, key=key)


class CatalogTranslator(app_commands.Translator):
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        key = string.extras.get("key")
        language = language_of_locale(locale.value)
        if key is None or language is None or language == DEFAULT_LANGUAGE:
            return None  # Discord shows the default (English) text.
        return self._catalog.template(language, key)
