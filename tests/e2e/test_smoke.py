from tests.e2e.conftest import World
from tests.fakediscord import FakeDiscord


async def test_config_show(discord_server: FakeDiscord, world: World, running_bot) -> None:
    interaction = await discord_server.slash(world.admin, "config show")
    reply = await interaction.reply()
    print(reply.payload())
    assert reply.ephemeral
