"""Bases for buttons, views and modals whose errors take the one error path.

discord.py logs and drops an exception raised in a view, a modal or a
dynamic item; these bases hand it to :func:`bot.interactions.report_error`
instead, so the member hears about it in their language.
"""

from __future__ import annotations

from typing import Any

import discord

from bot.interactions import report_error


class Modal(discord.ui.Modal):
    # discord.py's Modal drops BaseView's ``item`` argument; mypy sees only the base.
    async def on_error(self, interaction: discord.Interaction[Any], error: Exception, /) -> None:  # type: ignore[override]
        await report_error(interaction, error)


class View(discord.ui.View):
    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, item: discord.ui.Item[Any], /
    ) -> None:
        await report_error(interaction, error)


class RoutedItem:
    """Mix in before ``discord.ui.DynamicItem``; implement :meth:`run` instead of ``callback``.

    ``class Accept(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]], template=...)``
    """

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await self.run(interaction)
        except Exception as error:
            await report_error(interaction, error)

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        raise NotImplementedError
