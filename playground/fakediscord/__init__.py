"""The local Discord on 127.0.0.1 the playground and the end-to-end tests run the bot against (tests/README.md)."""

from playground.fakediscord.model import (
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
    shard_of,
)
from playground.fakediscord.server import (
    CHAOS_EXCLUDE,
    Call,
    CommandNotAvailable,
    DiscordError,
    FakeDiscord,
    Fault,
    GatewaySession,
    Hold,
    Interaction,
)

__all__ = [
    "CHAOS_EXCLUDE", "Attachment", "Call", "Channel", "ChannelType", "CommandNotAvailable", "DiscordError", "Emoji",
    "FakeDiscord", "Fault", "GatewaySession", "Guild", "Hold", "Interaction", "Member", "Message", "Overwrite", "Perm",
    "Role", "User", "shard_of",
]
