"""The playground's community, set up through the real bot on the local Discord, and its clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from playground import community
from playground.fakediscord import Channel, ChannelType, FakeDiscord, Message
from playground.session import Playground

MONDAY_MORNING = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)   # 09:00 in Tokyo


def posts(discord: FakeDiscord, channel: Channel) -> list[Message]:
    return [m for m in discord.channel_messages(channel) if m.author.id == discord.bot_user.id and not m.ephemeral]


async def test_the_community_is_set_up_through_the_bot_and_the_clock_brings_the_next_prompt(
        tmp_path: Path) -> None:
    started = time.monotonic()
    playground = await Playground.start(tmp_path / "playground.db", now=MONDAY_MORNING)
    took = time.monotonic() - started
    try:
        discord, people = playground.discord, playground.community
        humans = [m for m in people.guild.members.values() if not m.user.bot]
        assert len(humans) == 24 and people.guild.owner_id == people.admin.id
        assert took < 10, took
        cards = posts(discord, people.channels["introductions"])
        assert len(cards) == len(community.INTRODUCED) == 12
        companies = {p.company for p in community.INTRODUCED}
        assert len(companies) >= 12
        hidden = [p for p in community.INTRODUCED if p.hides_company]
        shown = "\n".join(str(card.embeds) for card in cards)
        assert hidden and all(p.company not in shown for p in hidden)   # kept for the people they meet
        greetings = posts(discord, people.channels["welcome"])
        assert len(greetings) == sum(p.newcomer for p in community.NOT_INTRODUCED) == 5
        assert all(f"intro:start:{people.guild.id}" in g.custom_ids for g in greetings)

        admin = people.admin
        settings = await (await discord.slash(admin, "config show")).reply()
        assert settings.ephemeral and "Time zone\nAsia/Tokyo" in settings.text
        assert "Reminders: after 3 days" in settings.text
        assert "Every two weeks, Wednesday 18:00 (Asia/Tokyo)" in settings.text
        misaki = people.member("佐藤 美咲")
        suggested = await (await discord.slash(misaki, "match suggest")).reply()
        assert len(suggested.embeds[0]["fields"]) == 3 and "Hoshino" not in suggested.text
        # Tsubasa Motors and Kaze Motors avoid each other: never suggested to each other, nor introduced.
        ken, maria = people.member("山本 健"), people.member("Maria Rossi")
        refused = await (await discord.slash(ken, "match request", member=maria)).reply()
        assert refused.ephemeral and "Kaze" not in refused.text

        assert await playground.to_next_prompt() is not None
        forum = people.channels[community.FORUM]
        await discord.wait_until(lambda: bool(discord.threads(forum)), 10, "the Monday prompt")
        (post,) = [t for t in discord.threads(forum) if t.type == ChannelType.PUBLIC_THREAD]
        assert post.applied_tags
    finally:
        await playground.stop()
