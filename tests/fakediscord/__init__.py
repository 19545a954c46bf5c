"""A fake Discord on 127.0.0.1 for end-to-end tests; see tests/README.md."""

from tests.fakediscord.model import (
    Attachment,
    Channel,
    ChannelType,
    Emoji,
    Guild,
    Member,
    Message,
    Overwrite,
    Perm,
    Role,
    User,
)
from tests.fakediscord.server import Call, CommandNotAvailable, DiscordError, FakeDiscord, Hold, Interaction

__all__ = [
    "Attachment", "Call", "Channel", "ChannelType", "CommandNotAvailable", "DiscordError", "Emoji", "FakeDiscord",
    "Guild", "Hold", "Interaction", "Member", "Message", "Overwrite", "Perm", "Role", "User",
]
