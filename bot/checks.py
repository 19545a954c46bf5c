"""Who may run a command, checked in the bot as well as by Discord.

``default_member_permissions`` only hides a command; a server admin can
loosen it in Server Settings → Integrations. The bot checks again, so a
member without Manage Server is refused whatever the server's overrides say.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

ADMIN_PERMISSIONS = discord.Permissions(manage_guild=True)


def require_manage_guild(interaction: discord.Interaction[Any]) -> bool:
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    if not interaction.permissions.manage_guild:
        raise app_commands.MissingPermissions(["manage_guild"])
    return True


class AdminGroup(app_commands.Group):
    """A command group for server admins: hidden from others by Discord and refused by the bot."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            guild_only=True,
            allowed_contexts=app_commands.AppCommandContext(guild=True),
            allowed_installs=app_commands.AppInstallationType(guild=True),
            default_permissions=ADMIN_PERMISSIONS,
            **kwargs,
        )

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        return require_manage_guild(interaction)
