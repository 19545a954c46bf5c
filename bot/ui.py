"""Bases for buttons, views and forms whose errors take the one error path.

discord.py logs and drops an exception raised in a view or a dynamic item;
these bases hand it to :func:`bot.interactions.report_error` instead, so the
member hears about it in their language.

Forms (modals) are routed by their custom id, as buttons are (:class:`Form`,
:class:`Forms`): nothing of an open form is kept in the process.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import discord

from bot.errors import UserError
from bot.interactions import report_error

log = logging.getLogger(__name__)


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


# ---------------------------------------------------------------- forms

# Each opened form ends its custom id with a part of its own: this process's tag and a count, so no two
# forms opened by one process share an id, and forms of two processes (or before and after a restart)
# almost never do. Optional when read back: forms opened by versions before it have none.
_PROCESS_TAG = f"{secrets.randbits(32):08x}"
_opened = itertools.count(1)
_OWN_PART = r"(?::[0-9a-f]{1,32})?"


def _own_part() -> str:
    return f"{_PROCESS_TAG}{next(_opened):x}"


class Form(discord.ui.Modal):
    """A modal whose submit is handled by its custom id, the way discord.py handles a ``DynamicItem``: the id
    carries what the form needs (a server, a member, a prompt) and ends with a part of its own; the values
    are read from the submit. So a form opened before a restart is saved after it, and a form opened again
    while the last one's save is still running does not take its place (discord.py keeps open modals by
    custom id and drops a submit it does not know, silently).

    A subclass gives ``template=`` (a regex for the id without its own part, with named groups) and
    ``fields`` (its text inputs' custom ids), builds its inputs in ``__init__``, implements :meth:`submit`,
    and is registered in its cog's ``setup()`` with ``bot.forms.add(...)``.
    """

    __form_template__: ClassVar[re.Pattern[str]]
    fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, *, template: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if template is not None:
            cls.__form_template__ = re.compile(f"(?:{template}){_OWN_PART}")

    def __init__(self, *, title: str, custom_id: str) -> None:
        if not self.__form_template__.fullmatch(custom_id):
            raise ValueError(f"{custom_id!r} does not match {type(self).__name__}'s template")
        custom_id = f"{custom_id}:{_own_part()}"
        if len(custom_id) > 100:
            raise ValueError(f"{custom_id!r} is longer than Discord's 100 characters")
        super().__init__(title=title, custom_id=custom_id, timeout=None)

    def is_finished(self) -> bool:
        # discord.py keeps every modal it sends that is not finished, by custom id, until it is submitted or
        # times out. A form is routed by its id instead (Forms.dispatch), so it is never kept: one never
        # submitted costs nothing, and no form can take another's place.
        return True

    @classmethod
    def read(cls, values: Mapping[str, str]) -> dict[str, str]:
        """The submitted value of each of ``fields``; a submit that lacks one is of a form this version does
        not open (an older shape), and is asked to be opened again."""
        if any(name not in values for name in cls.fields):
            raise UserError("errors.form_gone")
        return {name: values[name] for name in cls.fields}

    @classmethod
    async def submit(cls, interaction: discord.Interaction[Any], match: re.Match[str],
                     values: Mapping[str, str]) -> None:
        """Handle a submit of this form: ``match`` is the template's match of its custom id, ``values`` the
        submitted text by input id. Exceptions take the one error path."""
        raise NotImplementedError


def submitted_values(components: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """The text a modal submit carries, by input id (inputs in action rows or in labels)."""
    values: dict[str, str] = {}
    for component in components:
        if component.get("type") == 1:      # an action row
            values.update(submitted_values(component.get("components") or ()))
        elif component.get("type") == 18:   # a label around one input
            values.update(submitted_values((component.get("component") or {},)))
        elif isinstance(component.get("custom_id"), str) and isinstance(component.get("value"), str):
            values[component["custom_id"]] = component["value"]
    return values


class Forms:
    """The forms a bot opens. A modal submit goes to the form whose template matches its custom id; one that
    none matches (a form of an older version, or of a feature since removed) is answered in the member's
    language with "open it again", never with silence."""

    def __init__(self) -> None:
        self._forms: list[type[Form]] = []

    def add(self, *forms: type[Form]) -> None:
        self._forms.extend(form for form in forms if form not in self._forms)

    def __contains__(self, form: type[Form]) -> bool:
        return form in self._forms

    async def dispatch(self, interaction: discord.Interaction[Any]) -> None:
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: Mapping[str, Any] = interaction.data or {}
        custom_id = str(data.get("custom_id", ""))
        try:
            for form in self._forms:
                match = form.__form_template__.fullmatch(custom_id)
                if match is not None:
                    await form.submit(interaction, match, submitted_values(data.get("components") or ()))
                    return
            log.info("A form this version does not open was submitted: %s (user %s)", custom_id,
                     interaction.user.id)
            raise UserError("errors.form_gone")
        except Exception as error:
            await report_error(interaction, error)
