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
from tests.fakediscord.server import (
    CHAOS_EXCLUDE,
    Call,
    CommandNotAvailable,
    DiscordError,
    FakeDiscord,
    Fault,
    Hold,
    Interaction,
)

__all__ = [
    "CHAOS_EXCLUDE", "Attachment", "Call", "Channel", "ChannelType", "CommandNotAvailable", "DiscordError", "Emoji",
    "FakeDiscord", "Fault", "Guild", "Hold", "Interaction", "Member", "Message", "Overwrite", "Perm", "Role", "User",
]
