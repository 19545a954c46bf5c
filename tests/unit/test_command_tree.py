"""The command tree as the bot builds it, checked without connecting to anything."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.client import KakehashiBot

# The contract of DESIGN.md: these names must not change.
CONTRACT = {"config show", "config channel", "config timezone", "config language", "config prompts",
            "prompts post", "prompts queue", "prompts skip", "prompts add", "prompts stats",
            "config reminders", "config company-alias", "intro edit", "intro show", "intro delete", "intro export",
            "stats", "config rounds", "match suggest", "match request", "match join", "match leave", "match pause",
            "match avoid", "match unavoid", "rounds run", "rounds stats"}
CONTEXT_MENUS = {"View intro", "Suggest an intro to…"}


def walk(command: Any) -> list[Any]:
    found = [command]
    for child in getattr(command, "commands", []):
        found.extend(walk(child))
    return found


async def test_the_contract_commands_exist(bot: KakehashiBot) -> None:
    names = {c.qualified_name for top in bot.tree.get_commands() for c in walk(top)
             if isinstance(c, app_commands.Command)}
    assert names >= CONTRACT
    menus = {c.name for c in bot.tree.get_commands(type=discord.AppCommandType.user)}
    assert menus >= CONTEXT_MENUS


async def test_context_menus_have_japanese_names(bot: KakehashiBot) -> None:
    translator = bot.tree.translator
    assert translator is not None
    for menu in bot.tree.get_commands(type=discord.AppCommandType.user):
        payload = await menu.get_translated_payload(bot.tree, translator)
        assert payload["name_localizations"].get("ja"), menu.name


async def test_command_names_are_unique(bot: KakehashiBot) -> None:
    names = [c.qualified_name for top in bot.tree.get_commands() for c in walk(top)]
    assert len(names) == len(set(names))


async def test_every_command_option_and_choice_has_english_and_japanese_text(bot: KakehashiBot) -> None:
    translator = bot.tree.translator
    assert translator is not None
    for top in bot.tree.get_commands():
        payload = await top.get_translated_payload(bot.tree, translator)
        stack = [payload]
        while stack:
            item = stack.pop()
            if "description" in item:
                assert item["description"], item["name"]
                assert item.get("description_localizations", {}).get("ja"), f"{item['name']} has no Japanese"
            for choice in item.get("choices", []):
                assert choice.get("name_localizations", {}).get("ja"), f"choice {choice['value']} has no Japanese"
            stack.extend(item.get("options", []))


async def test_admin_commands_are_hidden_from_members_and_guild_only(bot: KakehashiBot) -> None:
    config = bot.tree.get_command("config")
    assert isinstance(config, app_commands.Group)
    assert config.default_permissions == discord.Permissions(manage_guild=True)
    assert config.guild_only
