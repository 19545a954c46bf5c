"""A cog used only by tests: commands that exercise the bot's shared machinery.

It is loaded into the real bot next to the real cogs, so what it proves (the
error path on deferred and expired interactions, modals, persistent buttons,
gateway events) is proved for the machinery every feature uses. It holds no
feature logic of its own. Some commands only drive the fake Discord's rules
through discord.py: a select menu, a user command, files.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import KakehashiBot
from bot.errors import UserError
from bot.interactions import defer, send
from bot.ui import Form, RoutedItem, View


class ProbeButton(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"probe:echo:(?P<n>[0-9]+)"):
    def __init__(self, n: int) -> None:
        super().__init__(discord.ui.Button(label=f"Echo {n}", custom_id=f"probe:echo:{n}"))
        self.n = n

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> ProbeButton:
        return cls(int(match["n"]))

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        if self.n == 0:
            raise UserError("errors.not_allowed")
        if self.n == 1:  # acknowledge silently, then edit the message that carries the button
            await interaction.response.defer()
            await interaction.edit_original_response(content="button 1, pressed", view=None)
            return
        await send(interaction, f"echo {self.n}")


class ProbeForm(Form, template=r"probe:form"):
    fields = ("first", "second")

    def __init__(self) -> None:
        super().__init__(title="Probe", custom_id="probe:form")
        self.add_item(discord.ui.TextInput(label="First", max_length=20, custom_id="first"))
        self.add_item(discord.ui.TextInput(label="Second", style=discord.TextStyle.paragraph, required=False,
                                           custom_id="second"))

    @classmethod
    async def submit(cls, interaction: discord.Interaction[Any], match: re.Match[str],
                     values: Mapping[str, str]) -> None:
        given = cls.read(values)
        if given["first"] == "fail":
            raise RuntimeError("probe modal failure")
        await send(interaction, f"got {given['first']!r} and {given['second']!r}")


class RetiredForm(ProbeForm, template=r"probe:retired"):
    """A form the bot does not route (never added to ``bot.forms``): one of an older version."""

    def __init__(self) -> None:
        Form.__init__(self, title="Retired", custom_id="probe:retired")
        self.add_item(discord.ui.TextInput(label="First", max_length=20, custom_id="first"))


class ProbePicker(View):
    """A persistent view: one select of three colours (one or two to pick), one disabled select."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.select(custom_id="probe:pick", min_values=1, max_values=2,
                       options=[discord.SelectOption(label=c, value=c.lower()) for c in ("Red", "Green", "Blue")])
    async def pick(self, interaction: discord.Interaction[Any], select: discord.ui.Select[Any]) -> None:
        await send(interaction, f"picked {' '.join(select.values)}")

    @discord.ui.select(custom_id="probe:off", disabled=True, options=[discord.SelectOption(label="Off", value="off")])
    async def off(self, interaction: discord.Interaction[Any], select: discord.ui.Select[Any]) -> None:
        await send(interaction, "the disabled select was used")


def probe_file(text: str) -> discord.File:
    return discord.File(io.BytesIO(json.dumps({"text": text}).encode()), "probe.json")


class Probe(commands.Cog):
    probe = app_commands.Group(name="probe", description="Test-only probes")

    def __init__(self, bot: KakehashiBot) -> None:
        self.bot = bot
        self.events: list[tuple[str, Any]] = []

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(ProbeButton)
        self.bot.forms.add(ProbeForm)
        self.bot.add_view(ProbePicker())

    @probe.command(name="user-error", description="Raise a UserError, optionally after deferring")
    async def user_error(self, interaction: discord.Interaction[KakehashiBot], deferred: bool = False) -> None:
        if deferred:
            await defer(interaction)
        raise UserError("errors.not_allowed")

    @probe.command(name="crash", description="Raise an unexpected error")
    async def crash(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        raise RuntimeError("probe crash")

    @probe.command(name="slow", description="Answer after some seconds")
    async def slow(self, interaction: discord.Interaction[KakehashiBot], seconds: float) -> None:
        await asyncio.sleep(seconds)
        await send(interaction, "finally")

    @probe.command(name="say", description="Answer with some text")
    async def say(self, interaction: discord.Interaction[KakehashiBot], text: str, public: bool = False) -> None:
        await send(interaction, text, ephemeral=not public)

    @probe.command(name="modal", description="Open a modal")
    async def modal(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        await interaction.response.send_modal(ProbeForm())

    @probe.command(name="retired-form", description="Open a form the bot no longer routes")
    async def retired_form(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        await interaction.response.send_modal(RetiredForm())

    @probe.command(name="button", description="Post a message with a persistent button")
    async def button(self, interaction: discord.Interaction[KakehashiBot], n: int) -> None:
        view = discord.ui.View(timeout=None)
        view.add_item(ProbeButton(n))
        assert isinstance(interaction.channel, discord.TextChannel)
        await interaction.channel.send(f"button {n}", view=view)
        await send(interaction, "posted")

    @probe.command(name="pick", description="Post a message with select menus")
    async def pick(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        await send(interaction, "pick colours", view=ProbePicker(), ephemeral=False)

    @probe.command(name="file", description="Answer with a JSON file")
    async def file(self, interaction: discord.Interaction[KakehashiBot], text: str,
                   how: Literal["response", "followup", "channel"] = "response") -> None:
        if how == "response":
            await interaction.response.send_message("a file", file=probe_file(text))
        elif how == "followup":
            await defer(interaction)
            await interaction.followup.send("a file", file=probe_file(text), ephemeral=True)
        else:
            assert isinstance(interaction.channel, discord.TextChannel)
            await interaction.channel.send("a file", file=probe_file(text))
            await send(interaction, "posted")

    @commands.Cog.listener()
    async def on_member_join(self, member: discord.Member) -> None:
        self.events.append(("join", member.id))

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        self.events.append(("message", (message.author.id, message.content)))


class ProbeUserCommands(commands.Cog):
    """User commands (Apps on a member's context menu): one for everyone, one for those who may manage the
    server. A cog of its own, so that the slash command tree with :class:`Probe` stays as it is."""

    NAMES = ("Probe member", "Probe member (admin)")

    def __init__(self, bot: KakehashiBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        everyone, admin_only = (app_commands.ContextMenu(name=name, callback=self.describe) for name in self.NAMES)
        admin_only.default_permissions = discord.Permissions(manage_guild=True)
        self.bot.tree.add_command(everyone)
        self.bot.tree.add_command(admin_only)

    async def cog_unload(self) -> None:
        for name in self.NAMES:
            self.bot.tree.remove_command(name, type=discord.AppCommandType.user)

    async def describe(self, interaction: discord.Interaction[KakehashiBot], member: discord.Member) -> None:
        joined = member.joined_at.isoformat() if member.joined_at else "?"
        await send(interaction, f"{member.display_name} ({member.id}) joined {joined}")
