"""The playground's community: a server of Japanese professionals at home and abroad, set up the way its
admin and members would set it up, through the real bot (commands, forms and menus on the local Discord).

``build`` lays out what exists before the bot arrives (the server, its channels, the members who were
there already); ``configure`` then runs, against the bot, what the admin and the introduced members did:
``/config``, the profile form, the menus under the card, ``/match avoid`` and ``/match join``. Newcomers
join after that, so #welcome greets them as it greets anyone new.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Final

from playground.fakediscord import Channel, ChannelType, FakeDiscord, Guild, Interaction, Member, Message, Perm

SERVER: Final = "Kakehashi Playground"
TIMEZONE: Final = "Asia/Tokyo"
# Channels and what the bot uses them for (/config channel purpose).
CHANNELS: Final = (("welcome", "welcome"), ("introductions", "introductions"), ("matches", "matches"),
                   ("log", "log"))
FORUM: Final = "discussions"
FORUM_TAGS: Final = ("Discussion", "議論", "Events")
# Discord answers a form's opening before discord.py files the form away; a submit sent sooner is lost.
FORM_SETTLE: Final = 0.25


@dataclass(frozen=True)
class Person:
    """A member of the community; ``company`` set: introduced with a full profile."""

    name: str
    locale: str = "en-US"
    company: str = ""
    role: str = ""
    industry: str = ""
    location: str = ""
    timezone: str = ""
    interests: str = ""
    offer: str = ""
    seek: str = ""
    bio: str = ""
    languages: tuple[str, ...] = ("en", "ja")
    hides_company: bool = False               # their company only for the people they are introduced to
    avoids: tuple[str, ...] = ()              # companies they asked never to be matched with
    rounds: bool = True                       # takes part in match rounds
    newcomer: bool = False                    # joins once the bot is there (and is welcomed)


ADMIN: Final = Person("森 亜希 (Aki Mori)", "en-US")

INTRODUCED: Final = (
    Person("佐藤 美咲", "ja", "Hoshino Electric", "事業開発", "Electronics", "Tokyo", "Asia/Tokyo",
           "IoT, サプライチェーン, Hardware startups", "日本の商習慣と稟議の通し方", "欧州の部品メーカーとのつながり",
           "電機メーカーで新規事業を担当しています。"),
    Person("Kenji Watanabe", "en-US", "Kitsune Games", "Producer", "Gaming", "San Francisco", "America/Los_Angeles",
           "Game design, AI, Localization", "US publishing contacts", "Japanese indie studios",
           "Shipping games between Tokyo and California for ten years."),
    Person("田中 陽介", "ja", "Sakura Logistics", "営業マネージャー", "Logistics", "Osaka", "Asia/Tokyo",
           "物流, DX, Supply chain", "関西の物流ネットワーク", "シンガポールの倉庫パートナー",
           "大阪で国際物流の営業をしています。", ("ja",)),
    Person("Anna Schmidt", "en-GB", "Minato Bank Europe", "Credit analyst", "Finance", "Düsseldorf",
           "Europe/Berlin", "Fintech, ESG, Supply chain", "Trade finance in Europe", "Japanese firms expanding to EU",
           "Düsseldorf, where half the Japanese companies in Germany are.", ("en",)),
    Person("鈴木 花子", "ja", "Umi Shipping", "マネージャー", "Shipping", "Singapore", "Asia/Singapore",
           "海運, ESG, Hiring", "東南アジアの採用事情", "日本の荷主との勉強会", "シンガポール駐在3年目です。",
           hides_company=True),
    Person("David Lim", "en-US", "Aozora Foods", "Brand marketing", "Food", "Singapore", "Asia/Singapore",
           "Marketing, Food, Localization", "Marketing in Southeast Asia", "Japanese food makers going abroad",
           "Bringing Japanese snacks to Southeast Asia.", ("en",)),
    Person("山本 健", "ja", "Tsubasa Motors", "エンジニア", "Automotive", "Tokyo", "Asia/Tokyo",
           "EV, Battery, Supply chain", "電池の品質管理", "欧州のEV規制に詳しい人",
           "自動車メーカーで電池を開発しています。", avoids=("Kaze Motors",)),
    Person("Maria Rossi", "en-GB", "Kaze Motors", "Purchasing lead", "Automotive", "Düsseldorf", "Europe/Berlin",
           "EV, Purchasing, ESG", "European supplier landscape", "Battery suppliers in Japan",
           "Buying parts for an EV maker.", ("en",), avoids=("Tsubasa Motors",)),
    Person("高橋 翔", "ja", "Nami Robotics", "Founder", "Robotics", "San Francisco", "America/Los_Angeles",
           "Robotics, AI, Hardware startups", "シリコンバレーでの資金調達", "日本の製造業の現場",
           "物流ロボットのスタートアップを経営しています。"),
    Person("小林 由紀", "ja", "Kaede Pharma", "研究員", "Pharma", "Osaka", "Asia/Tokyo",
           "創薬, AI, Hiring", "治験の進め方", "海外のバイオベンチャー", "製薬会社の研究所にいます。",
           hides_company=True),
    Person("Tom Becker", "en-US", "Fuji Precision GmbH", "Sales", "Manufacturing", "Düsseldorf", "Europe/Berlin",
           "Manufacturing, IoT, Sales", "German machine builders", "Japanese precision parts makers",
           "Selling Japanese precision parts in Germany.", ("en",)),
    Person("伊藤 さくら", "ja", "Hikari Solar", "渉外", "Energy", "Tokyo", "Asia/Tokyo",
           "Energy, ESG, Policy", "再エネ政策の動向", "東南アジアの電力会社",
           "太陽光発電の会社で政策渉外をしています。", rounds=False),
)

NOT_INTRODUCED: Final = (
    Person("中村 大輔", "ja"), Person("Emily Chen"), Person("小林 直樹", "ja"), Person("Lukas Wagner", "en-GB"),
    Person("加藤 真由美", "ja"), Person("Priya Nair"), Person("吉田 拓也", "ja", newcomer=True),
    Person("Sophie Martin", "en-GB", newcomer=True), Person("松本 あや", "ja", newcomer=True),
    Person("James Park", newcomer=True), Person("井上 誠", "ja", newcomer=True),
)


@dataclass
class Community:
    """The server as built: its channels by name, and each person's member."""

    guild: Guild
    admin: Member
    members: dict[str, Member] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)

    def member(self, name: str) -> Member:
        return self.members[name]


def build(discord: FakeDiscord) -> Community:
    """The server before the bot arrives: channels, the admin, the members who were there already."""
    guild = discord.add_guild(SERVER, locale="ja")
    admins = discord.add_role(guild, "Admin", Perm.MANAGE_GUILD)
    community = Community(guild, discord.add_member(guild, ADMIN.name, roles=(admins,), locale=ADMIN.locale))
    # The admin made the server: its owner, in place of the local Discord's own.
    del guild.members[guild.owner_id]
    guild.owner_id = community.admin.id
    community.members[ADMIN.name] = community.admin
    for name, _ in CHANNELS:
        community.channels[name] = discord.add_channel(guild, name)
    community.channels[FORUM] = discord.add_channel(guild, FORUM, ChannelType.FORUM, tags=FORUM_TAGS,
                                                    require_tag=True)
    for person in (*INTRODUCED, *NOT_INTRODUCED):
        if not person.newcomer:
            community.members[person.name] = discord.add_member(guild, person.name, locale=person.locale)
    return community


def found(discord: FakeDiscord) -> Community:
    """The community of a world a playground kept (``FakeDiscord.restore``), as ``build`` made it."""
    guild = next(g for g in discord.guilds.values() if g.name == SERVER)
    people = Community(guild, guild.members[guild.owner_id])
    people.members.update((m.user.username, m) for m in guild.members.values() if not m.user.bot)
    people.channels.update((c.name, c) for c in guild.channels.values()
                           if c.type in (ChannelType.TEXT, ChannelType.FORUM) and c.parent_id is None)
    return people


async def configure(discord: FakeDiscord, community: Community) -> None:
    """With the bot connected: the admin's settings, the introduced members' profiles and choices, then the
    newcomers' arrival."""
    admin = community.admin
    for name, purpose in CHANNELS:
        await _ask(discord, admin, "config channel", purpose=purpose, channel=community.channels[name])
    await _ask(discord, admin, "config channel", purpose="prompts", channel=community.channels[FORUM])
    await _ask(discord, admin, "config timezone", name=TIMEZONE)
    await _ask(discord, admin, "config prompts", weekday="monday", time="09:00", enabled=True)
    await _ask(discord, admin, "config rounds", cadence="biweekly", weekday="wednesday", time="18:00", enabled=True)
    await _ask(discord, admin, "config welcome", mode="channel")
    await _ask(discord, admin, "config reminders", enabled=True, after_days=3)
    # Members fill in their profiles at the same time, as they would.
    await asyncio.gather(*(_introduce(discord, community.member(p.name), p) for p in INTRODUCED))
    newcomers = [person for person in NOT_INTRODUCED if person.newcomer]
    for person in newcomers:
        community.members[person.name] = await discord.member_join(community.guild, person.name,
                                                                   locale=person.locale)
    welcome = community.channels["welcome"]
    await discord.wait_until(lambda: len([m for m in discord.channel_messages(welcome)
                                          if m.author.id == discord.bot_user.id]) >= len(newcomers),
                             30, "the newcomers' welcomes")


async def _ask(discord: FakeDiscord, member: Member, command: str, /, **options: Any) -> Message:
    return await (await discord.slash(member, command, **options)).reply(timeout=30)


async def _form(discord: FakeDiscord, member: Member, opened: Interaction, values: dict[str, str]) -> Message:
    await opened.modal(timeout=30)
    await asyncio.sleep(FORM_SETTLE)
    return await (await discord.submit(opened, values)).reply(timeout=30)


async def _introduce(discord: FakeDiscord, member: Member, person: Person) -> None:
    """The profile form's two steps, the menus under the private card, the avoid list and rounds."""
    guild_id = member.guild.id
    card = await _form(discord, member, await discord.slash(member, "intro edit"), {
        "display_name": person.name, "company": person.company, "role": person.role, "industry": person.industry,
        "location": person.location})
    await asyncio.sleep(FORM_SETTLE)
    card = await _form(discord, member, await discord.click(member, card, f"intro:step:{guild_id}:more"), {
        "timezone": person.timezone, "interests": person.interests, "offer": person.offer, "seek": person.seek,
        "bio": person.bio})
    await asyncio.sleep(FORM_SETTLE)
    await (await discord.select(member, card, f"intro:languages:{guild_id}", list(person.languages))).response()
    if person.hides_company:
        await asyncio.sleep(FORM_SETTLE)
        await (await discord.select(member, card, f"intro:visibility:{guild_id}", ["matches"])).response()
    for company in person.avoids:
        await _ask(discord, member, "match avoid", company=company)
    if person.rounds:
        await _ask(discord, member, "match join")
