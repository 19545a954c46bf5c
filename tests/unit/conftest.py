"""The bot as its cogs build it, not connected to anything: for what it registers (commands, forms)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.client import EXTENSIONS, KakehashiBot
from bot.config import Settings
from bot.translator import CatalogTranslator


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[KakehashiBot]:
    bot = KakehashiBot(Settings(token="t", database_path=tmp_path / "k.db", dev_guild_id=None,
                                log_level=logging.INFO))
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    await bot.tree.set_translator(CatalogTranslator(bot.catalog))
    yield bot
    await bot.close()
