"""Forms (modals) as the cogs build them: every one is routed by its custom id, and no two opened share one."""

from __future__ import annotations

import sys

import discord
import pytest

from bot.client import KakehashiBot
from bot.errors import UserError
from bot.interactions import Localizer
from bot.profile_form import AboutForm
from bot.ui import Form, submitted_values
from cogs.matching import NoteForm
from cogs.prompts import PromptForm

BIGGEST = 2**63 - 1  # the largest snowflake: the longest id a form can carry


async def test_every_modal_of_the_bot_is_a_form_and_every_form_is_routed(bot: KakehashiBot) -> None:
    # The cogs as the bot loaded them (discord.py imports an extension afresh), and every module of bot/.
    modules = [*bot.extensions.values(), *(m for name, m in sys.modules.items() if name.split(".")[0] == "bot")]
    ours = {cls for module in modules for cls in vars(module).values()
            if isinstance(cls, type) and issubclass(cls, discord.ui.Modal) and cls.__module__ == module.__name__}
    assert {cls.__name__ for cls in ours} >= {"AboutForm", "MoreForm", "NoteForm", "PromptForm", "TranslationForm"}
    assert [cls for cls in ours if not issubclass(cls, Form)] == []
    assert [cls for cls in ours if "__form_template__" in vars(cls) and cls not in bot.forms] == []


async def test_each_opened_form_has_an_id_of_its_own_within_discords_length(bot: KakehashiBot) -> None:
    localize = Localizer("ja", bot.catalog)
    forms = [AboutForm(BIGGEST, BIGGEST, localize, {}) for _ in range(1000)]
    forms += [NoteForm(BIGGEST, BIGGEST, BIGGEST, localize, "name"), PromptForm(BIGGEST, localize)]
    ids = [form.custom_id for form in forms]
    assert len(set(ids)) == len(ids)
    assert max(map(len, ids)) <= 100
    for form in forms:
        match = type(form).__form_template__.fullmatch(form.custom_id)
        assert match is not None and int(match["guild"]) == BIGGEST
    assert all(form.is_finished() for form in forms)  # so discord.py keeps none of them


async def test_a_form_opened_before_forms_had_an_own_part_is_still_read() -> None:
    match = AboutForm.__form_template__.fullmatch("intro:about:12:34")
    assert match is not None and (match["guild"], match["user"]) == ("12", "34")
    assert NoteForm.__form_template__.fullmatch("match:note:1:2") is None


async def test_a_form_refuses_an_id_its_template_does_not_read(bot: KakehashiBot) -> None:
    with pytest.raises(ValueError, match="template"):
        NoteForm(1, 2, -3, Localizer("en", bot.catalog), "name")


def test_submitted_values_are_read_from_rows_and_labels() -> None:
    components = [
        {"type": 1, "components": [{"type": 4, "custom_id": "company", "value": "Sony"}]},
        {"type": 18, "component": {"type": 4, "custom_id": "bio", "value": "改行\nあり"}},
        {"type": 1, "components": [{"type": 3, "custom_id": "menu", "values": ["a"]}]},
        {"type": 10, "content": "text only"},
    ]
    assert submitted_values(components) == {"company": "Sony", "bio": "改行\nあり"}


def test_a_submit_missing_a_field_is_asked_to_be_opened_again() -> None:
    with pytest.raises(UserError) as raised:
        AboutForm.read({"display_name": "Ben", "company": "Sony"})
    assert raised.value.key == "errors.form_gone"
    assert AboutForm.read(dict.fromkeys(AboutForm.fields, "x") | {"extra": "y"}) == dict.fromkeys(
        AboutForm.fields, "x")
