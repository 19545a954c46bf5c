"""``/prompts``: discussion prompts for admins, the language button, and posting through the outbox.

The posting itself is glue (it talks to Discord), so it lives here, in
:class:`PromptPoster`; what to post, when, and in which order is decided in
``bot/prompts``. Every step of a post is recorded right after Discord
accepts it, and the channel is recorded right before the first send, so a
post interrupted by a crash is finished, not repeated: the next attempt looks
in that channel for the first message by its marker and in the thread for
the parts already there.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.channels import channel_ref
from bot.checks import AdminGroup, require_manage_guild
from bot.client import KakehashiBot
from bot.errors import UserError
from bot.guilds import rules as guild_rules
from bot.guilds.model import Purpose
from bot.i18n import LANGUAGES, Text, permission_texts, shorten
from bot.interactions import Localizer, defer, known_thread, localizer_for, send
from bot.outbox.model import Failure, Job, JobState, RetryLater
from bot.posting import discord_error, post_to_log
from bot.prompts import render
from bot.prompts.model import POST_JOB, Post, PostState, Prompt, QueueView
from bot.prompts.service import SUMMARY_MAX, other_language
from bot.translator import described
from bot.ui import Form, RoutedItem

log = logging.getLogger(__name__)

POST_WAIT_SECONDS = 20.0  # how long /prompts post waits to say "posted" before saying "on its way"
# An interrupted post is looked for among what was created since it was recorded (less this margin, for
# clocks that differ a little), up to this many messages of a text channel.
RECONCILE_MARGIN = timedelta(minutes=5)
RECONCILE_MESSAGES = 500
STATS_LIMIT = 10
EMBED_COLOR = 0x3B82F6


class LanguageButton(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]],
                     template=r"prompt:lang:(?P<post>[0-9]+):(?P<language>[a-z]{2})"):
    """On a prompt's first message: the summary and questions in the other language, just for whoever
    asks. The custom id carries the post and the language, so it works after any restart."""

    def __init__(self, post_id: int, language: str, label: str) -> None:
        super().__init__(discord.ui.Button(label=label, style=discord.ButtonStyle.secondary,
                                           custom_id=f"prompt:lang:{post_id}:{language}"))
        self.post_id = post_id
        self.language = language

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> LanguageButton:
        return cls(int(match["post"]), match["language"], item.label or "")

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        bot: KakehashiBot = interaction.client
        if self.language not in LANGUAGES:
            raise UserError("errors.bad_value")
        post = await bot.prompts.post(self.post_id)
        prompt = await bot.prompts.prompt_of(post)
        await send(interaction, render.translation(prompt, self.language, bot.catalog))


def _admins_server(interaction: discord.Interaction[Any], match: re.Match[str]) -> int:
    """The server of an admin's form, submitted by an admin there (as its command and button check)."""
    require_manage_guild(interaction)
    guild_id = int(match["guild"])
    if interaction.guild_id != guild_id:
        raise UserError("errors.form_gone")
    return guild_id


class PromptForm(Form, template=r"prompt:add:(?P<guild>[0-9]+)"):
    """/prompts add: a title, the text, and up to three questions."""

    fields = ("title", "text", "q1", "q2", "q3")

    def __init__(self, guild_id: int, localize: Localizer) -> None:
        super().__init__(title=localize(Text("prompts.add.modal_title")), custom_id=f"prompt:add:{guild_id}")
        self.add_item(discord.ui.TextInput(
            label=localize(Text("prompts.add.field_title")), max_length=100, required=False,
            placeholder=localize(Text("prompts.add.field_title_hint")), custom_id="title"))
        self.add_item(discord.ui.TextInput(
            label=localize(Text("prompts.add.field_text")), style=discord.TextStyle.paragraph, max_length=4000,
            placeholder=localize(Text("prompts.add.field_text_hint")), custom_id="text"))
        for number in (1, 2, 3):
            self.add_item(discord.ui.TextInput(
                label=localize(Text("prompts.add.field_question", number=number)), max_length=300,
                required=False, style=discord.TextStyle.paragraph, custom_id=f"q{number}"))

    @classmethod
    async def submit(cls, interaction: discord.Interaction[Any], match: re.Match[str],
                     values: Mapping[str, str]) -> None:
        guild_id = _admins_server(interaction, match)
        bot: KakehashiBot = interaction.client
        given = cls.read(values)
        prompt, place = await bot.prompts.add(guild_id, given["title"], given["text"],
                                              [given["q1"], given["q2"], given["q3"]], author_id=interaction.user.id)
        localize = await localizer_for(interaction)
        written = prompt.languages[0]
        other = Text(f"language.{other_language(written)}")
        view = discord.ui.View(timeout=None)
        view.add_item(TranslateButton(guild_id, prompt.key,
                                      localize(Text("prompts.add.translate_button", other=other))))
        await send(interaction, localize(Text("prompts.add.added", title=_title(prompt, written), place=place,
                                              language=Text(f"language.{written}"), other=other)), view=view)


class TranslateButton(RoutedItem, discord.ui.DynamicItem[discord.ui.Button[Any]],
                      template=r"prompt:translate:(?P<guild>[0-9]+):(?P<prompt>custom:[0-9]+)"):
    """Under "Added": opens the form for the prompt in the other language (again: what was given, to change)."""

    def __init__(self, guild_id: int, key: str, label: str) -> None:
        super().__init__(discord.ui.Button(label=label, style=discord.ButtonStyle.secondary,
                                           custom_id=f"prompt:translate:{guild_id}:{key}"))
        self.guild_id = guild_id
        self.key = key

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> TranslateButton:
        return cls(int(match["guild"]), match["prompt"], item.label or "")

    async def run(self, interaction: discord.Interaction[Any]) -> None:
        require_manage_guild(interaction)
        if interaction.guild_id != self.guild_id:
            raise UserError("errors.bad_value")
        bot: KakehashiBot = interaction.client
        prompt = next((p for p in await bot.prompts.catalogue(self.guild_id) if p.key == self.key), None)
        if prompt is None:
            raise UserError("prompts.translate.gone")
        await interaction.response.send_modal(TranslationForm(self.guild_id, await localizer_for(interaction), prompt))


class TranslationForm(Form, template=r"prompt:translation:(?P<guild>[0-9]+):(?P<prompt>custom:[0-9]+)"):
    """The optional second step of /prompts add: the title, a summary and the questions in the other language
    (the text itself is posted as written)."""

    fields = ("title", "summary", "q1", "q2", "q3")

    def __init__(self, guild_id: int, localize: Localizer, prompt: Prompt) -> None:
        language = other_language(prompt.languages[0])
        named = Text(f"language.{language}")
        super().__init__(title=shorten(localize(Text("prompts.translate.modal_title", language=named)), 45),
                         custom_id=f"prompt:translation:{guild_id}:{prompt.key}")
        given = prompt.translated
        self.add_item(discord.ui.TextInput(
            label=localize(Text("prompts.translate.field_title", language=named)), max_length=100, required=False,
            default=prompt.titles.get(language) if given else None, custom_id="title"))
        self.add_item(discord.ui.TextInput(
            label=localize(Text("prompts.translate.field_summary", language=named)), style=discord.TextStyle.paragraph,
            max_length=SUMMARY_MAX, required=False, placeholder=localize(Text("prompts.translate.field_summary_hint")),
            default=prompt.summary(language) or None, custom_id="summary"))
        mine = prompt.questions.get(language, ()) if given else ()
        for number in (1, 2, 3):
            self.add_item(discord.ui.TextInput(
                label=localize(Text("prompts.translate.field_question", number=number, language=named)),
                max_length=300, required=False, style=discord.TextStyle.paragraph,
                default=mine[number - 1] if number <= len(mine) else None, custom_id=f"q{number}"))

    @classmethod
    async def submit(cls, interaction: discord.Interaction[Any], match: re.Match[str],
                     values: Mapping[str, str]) -> None:
        guild_id = _admins_server(interaction, match)
        bot: KakehashiBot = interaction.client
        given = cls.read(values)
        prompt, language = await bot.prompts.translate(guild_id, match["prompt"], given["title"], given["summary"],
                                                       [given["q1"], given["q2"], given["q3"]])
        await send(interaction, Text("prompts.translate.saved", title=_title(prompt, language),
                                     language=Text(f"language.{language}")))


class Prompts(commands.Cog):
    prompts = AdminGroup(name="prompts", description=described("commands.prompts.description"))

    def __init__(self, bot: KakehashiBot) -> None:
        self.bot = bot
        self.poster = PromptPoster(bot)

    async def cog_load(self) -> None:
        self.bot.outbox.register(POST_JOB, self.poster.deliver, on_failure=self.poster.report)
        self.bot.outbox.add_ticker(self._tick)

    async def _tick(self, now: datetime) -> None:
        await self.bot.prompts.materialise_due(now, self.bot.outbox.shards)

    @prompts.command(name="post", description=described("commands.prompts.post.description"))
    @app_commands.describe(essay=described("commands.prompts.post.essay"))
    async def post(self, interaction: discord.Interaction[KakehashiBot],
                   essay: app_commands.Range[str, 1, 200] | None = None) -> None:
        guild_id = _guild_id(interaction)
        await defer(interaction)
        post, job = await self.bot.prompts.post_now(guild_id, essay)
        self.bot.outbox.kick()
        job_now = await self.bot.outbox.wait_for(job.id, POST_WAIT_SECONDS)
        post = await self.bot.prompts.post(post.id)
        prompt = await self.bot.prompts.prompt_of(post)
        localize = await localizer_for(interaction)
        title = _title(prompt, localize.language)
        if post.state is PostState.POSTED:
            where = f"<#{post.thread_id}>" if post.thread_id else f"<#{post.channel_id}>"
            await send(interaction, localize(Text("prompts.post.done", title=title, where=where)))
        elif job_now is not None and job_now.state is JobState.PENDING and job_now.last_error is not None:
            await send(interaction, localize(Text(
                "prompts.post.failed", title=title, reason=failure_text(job_now.last_error),
                next_try=_relative(job_now.due_at))))
        else:
            await send(interaction, localize(Text("prompts.post.on_its_way", title=title)))

    @post.autocomplete("essay")
    async def post_autocomplete(self, interaction: discord.Interaction[KakehashiBot],
                                current: str) -> list[app_commands.Choice[str]]:
        guild_id = _guild_id(interaction)
        wanted = current.casefold().strip()
        choices = []
        for prompt in await self.bot.prompts.catalogue(guild_id):
            titles = list(dict.fromkeys(shorten(t, 100) for t in prompt.titles.values() if shorten(t, 100)))
            if wanted and not any(wanted in t.casefold() for t in titles):
                continue
            label = " / ".join(titles) or prompt.key
            choices.append(app_commands.Choice(name=shorten(label, 100), value=prompt.key))
        return choices[:25]

    @prompts.command(name="queue", description=described("commands.prompts.queue.description"))
    async def queue(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        view = await self.bot.prompts.queue(_guild_id(interaction))
        localize = await localizer_for(interaction)
        await send(interaction, None, embed=_queue_embed(localize, view))

    @prompts.command(name="skip", description=described("commands.prompts.skip.description"))
    async def skip(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        skipped = await self.bot.prompts.skip(_guild_id(interaction))
        localize = await localizer_for(interaction)
        following = _title(skipped.next, localize.language) if skipped.next else localize(Text("prompts.nothing"))
        await send(interaction, localize(Text("prompts.skip.done", title=_title(skipped.skipped, localize.language),
                                              next=following)))

    @prompts.command(name="add", description=described("commands.prompts.add.description"))
    async def add(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        await interaction.response.send_modal(PromptForm(_guild_id(interaction), await localizer_for(interaction)))

    @prompts.command(name="stats", description=described("commands.prompts.stats.description"))
    async def stats(self, interaction: discord.Interaction[KakehashiBot]) -> None:
        guild_id = _guild_id(interaction)
        posts, total = await self.bot.prompts.most_discussed(guild_id, STATS_LIMIT)
        localize = await localizer_for(interaction)
        if not posts:
            await send(interaction, localize(Text("prompts.stats.none")))
            return
        titles = {p.key: p for p in await self.bot.prompts.catalogue(guild_id)}
        lines = []
        for number, post in enumerate(posts, start=1):
            prompt = titles.get(post.prompt_key)
            title = _title(prompt, localize.language) if prompt else shorten(post.title, 100)
            where = f"<#{post.thread_id}>" if post.thread_id else title
            lines.append(localize(Text(
                "prompts.stats.line", number=number, title=title, where=where,
                posted=f"<t:{int(post.posted_at.timestamp())}:d>" if post.posted_at else "—",
                replies=post.replies, participants=post.participants)))
        embed = discord.Embed(title=localize(Text("prompts.stats.title", shown=len(posts), total=total)),
                              description="\n".join(lines), color=EMBED_COLOR)
        await send(interaction, None, embed=embed)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Engagement: a member's message in a prompt's thread counts as a reply (its content is not read)."""
        if message.guild is None or message.author.bot or not isinstance(message.channel, discord.Thread):
            return
        if await self.bot.prompts.record_reply(message.guild.id, message.channel.id, message.author.id):
            # A new participant: who replied in one prompt thread counts in /match suggest, read again.
            self.bot.matching.history_changed(message.guild.id)


class PromptPoster:
    """Sends one prompt post, step by step, each step recorded as soon as Discord has it."""

    def __init__(self, bot: KakehashiBot) -> None:
        self.bot = bot

    async def deliver(self, job: Job) -> None:
        service = self.bot.prompts
        post = await service.post(int(job.payload["post"]))
        if post.state is PostState.POSTED:
            return
        guild = self.bot.get_guild(post.guild_id)
        if guild is None:
            raise RetryLater("prompts.failure.no_guild")
        try:
            prompt = await service.prompt_of(post)
        except UserError:
            raise RetryLater("prompts.failure.gone", title=post.title) from None
        if post.language is None:
            settings = await self.bot.guild_config.settings(guild.id)
            await service.store.set_language(post.id, settings.effective_language(guild.preferred_locale.value))
            post = await service.post(post.id)
        assert post.language is not None
        try:
            if post.message_id is None:
                post = await self._first_message(guild, post, prompt)
            thread = await self._thread(guild, post, prompt)
            if thread is None:
                log.warning("The thread of post %s in guild %s was deleted before the essay was complete; "
                            "the post ends there", post.id, guild.id)
            else:
                await self._parts(thread, post, prompt, resumed=job.attempts > 1)
        except discord.Forbidden as exc:
            raise RetryLater("prompts.failure.forbidden", channel=f"<#{post.channel_id}>",
                             detail=discord_error(exc)) from None
        except discord.NotFound:
            raise RetryLater("prompts.failure.channel_gone", channel=f"<#{post.channel_id}>") from None
        except discord.HTTPException as exc:
            if exc.code == 40067:  # the forum requires a tag and we could apply none
                raise RetryLater("prompts.failure.tag_required", channel=f"<#{post.channel_id}>") from None
            raise
        await service.store.mark_posted(post.id, self.bot.clock.now())
        log.info("Posted prompt %s (post %s) in guild %s", post.prompt_key, post.id, guild.id)

    async def _first_message(self, guild: discord.Guild, post: Post, prompt: Prompt) -> Post:
        """Find the first message an interrupted attempt sent, or send it."""
        store = self.bot.prompts.store
        assert post.language is not None
        if post.channel_id is not None:
            found = await self._find_sent(guild, post)
            if found is not None:
                message_id, thread_id = found
                log.info("Post %s was already on Discord (message %s); finishing it", post.id, message_id)
                await store.set_message(post.id, message_id, thread_id)
                return await self.bot.prompts.post(post.id)
        settings = await self.bot.guild_config.settings(guild.id)
        channel_id = settings.channel(Purpose.PROMPTS)
        if channel_id is None:
            raise RetryLater("prompts.failure.no_channel")
        ref = channel_ref(guild, channel_id)
        channel = guild.get_channel(channel_id)
        if ref is None or channel is None:
            raise RetryLater("prompts.failure.channel_gone", channel=f"<#{channel_id}>")
        missing = guild_rules.missing_permissions(Purpose.PROMPTS, ref.bot_permissions)
        if missing:
            raise RetryLater("prompts.failure.missing_permissions", channel=ref.mention, permissions=list(missing))
        await store.set_channel(post.id, channel.id)  # recorded before sending: where to look after a crash
        title = render.display_title(prompt, post.language, post.id, self.bot.catalog)
        view = self._language_view(post, prompt)
        if isinstance(channel, discord.ForumChannel):
            tags = [(tag.id, tag.name, tag.moderated) for tag in channel.available_tags]
            tag_id = render.choose_tag(tags, required=channel.flags.require_tag)
            applied = [tag for tag in channel.available_tags if tag.id == tag_id]
            content = render.opening(prompt, post.language, post.id, self.bot.catalog, with_title=False)
            created = await channel.create_thread(name=title, content=content, applied_tags=applied,
                                                  **({"view": view} if view else {}))
            await store.set_message(post.id, created.message.id, created.thread.id)
        elif isinstance(channel, discord.TextChannel):
            content = render.opening(prompt, post.language, post.id, self.bot.catalog, with_title=True)
            message = await channel.send(content, **({"view": view} if view else {}))
            await store.set_message(post.id, message.id, None)
        else:
            raise RetryLater("prompts.failure.channel_gone", channel=f"<#{channel_id}>")
        return await self.bot.prompts.post(post.id)

    def _language_view(self, post: Post, prompt: Prompt) -> discord.ui.View | None:
        if not prompt.translated:
            return None
        view = discord.ui.View(timeout=None)
        for language in prompt.languages:
            if language != post.language:
                label = self.bot.catalog.render(language, Text(f"language.{language}"))
                view.add_item(LanguageButton(post.id, language, label))
        return view

    async def _find_sent(self, guild: discord.Guild, post: Post) -> tuple[int, int | None] | None:
        """The first message (and, in a forum, its post) an interrupted attempt left in the post's channel,
        found by the marker that ends it. Only what was created since the post was recorded is searched,
        so a busy channel does not push it out of reach."""
        assert post.channel_id is not None
        me = guild.me.id
        since = discord.Object(discord.utils.time_snowflake(post.created_at - RECONCILE_MARGIN))
        channel = guild.get_channel(post.channel_id)
        try:
            if isinstance(channel, discord.ForumChannel):
                threads = [t for t in await guild.active_threads()
                           if t.parent_id == channel.id and t.owner_id == me and t.id > since.id]
                for thread in sorted(threads, key=lambda t: t.id):
                    try:
                        starter = await thread.fetch_message(thread.id)
                    except discord.NotFound:
                        continue  # a moderator deleted that post's first message; it is not ours to find
                    if render.marks(starter.content, post.id):
                        return starter.id, thread.id
            elif isinstance(channel, discord.TextChannel):
                async for message in channel.history(limit=RECONCILE_MESSAGES, after=since):
                    if message.author.id == me and render.marks(message.content, post.id):
                        return message.id, None
        except (discord.NotFound, discord.Forbidden):
            # The channel is gone or hidden: nothing the bot sent there can be seen again, so nothing
            # stands against posting in the channel configured now.
            return None
        return None

    async def _thread(self, guild: discord.Guild, post: Post, prompt: Prompt) -> discord.Thread | None:
        """The post's thread: known, or already started from the first message (a thread started from a
        message has the message's id), or started now. None if a moderator deleted it."""
        store = self.bot.prompts.store
        assert post.message_id is not None and post.language is not None
        thread_id = post.thread_id or post.message_id
        thread = await known_thread(guild, thread_id)
        if thread is None:
            if post.thread_id is not None:
                return None  # deleted by a moderator while the essay was being posted: the post is over
            assert post.channel_id is not None
            channel = guild.get_channel(post.channel_id)
            if not isinstance(channel, discord.TextChannel):
                raise RetryLater("prompts.failure.channel_gone", channel=f"<#{post.channel_id}>")
            name = render.display_title(prompt, post.language, post.id, self.bot.catalog)
            thread = await channel.get_partial_message(post.message_id).create_thread(name=name)
        if post.thread_id != thread.id:
            await store.set_thread(post.id, thread.id)
        return thread

    async def _parts(self, thread: discord.Thread, post: Post, prompt: Prompt, *, resumed: bool) -> None:
        """The essay in order. On a resumed attempt, the parts already in the thread are counted first
        (one may have been sent and not recorded)."""
        store = self.bot.prompts.store
        parts = render.parts(prompt)
        sent = post.parts_sent
        if resumed and sent < len(parts):
            sent = max(sent, await self._parts_in_thread(thread, post, parts))
            await store.set_parts_sent(post.id, sent)
        for index in range(sent, len(parts)):
            await thread.send(parts[index])
            await store.set_parts_sent(post.id, index + 1)

    async def _parts_in_thread(self, thread: discord.Thread, post: Post, parts: list[str]) -> int:
        me = thread.guild.me.id
        # Only plain messages: a thread started from a message opens with a system message pointing at it.
        delivered = [m.content.strip() async for m in thread.history(limit=len(parts) + 5, oldest_first=True)
                     if m.author.id == me and m.id != post.message_id and m.type is discord.MessageType.default]
        count = 0
        while count < len(parts) and count < len(delivered) and delivered[count] == parts[count].strip():
            count += 1
        return count

    async def report(self, job: Job, failure: Failure, next_try: datetime) -> None:
        """Tell the server's admins in the log channel, once per kind of failure (not at every retry)."""
        if job.last_error is not None and job.last_error.key == failure.key:
            return
        guild = self.bot.get_guild(job.guild_id)
        if guild is None:
            return
        post = await self.bot.prompts.post(int(job.payload["post"]))
        await post_to_log(self.bot, guild, Text("prompts.failure.report", title=shorten(post.title, 100),
                                                reason=failure_text(failure), next_try=_relative(next_try)))


def failure_text(failure: Failure) -> Text:
    params = dict(failure.params)
    if "permissions" in params:
        params["permissions"] = permission_texts(params["permissions"])
    return Text(failure.key, **params)


def _relative(moment: datetime) -> str:
    return f"<t:{int(moment.timestamp())}:R>"


def _title(prompt: Prompt | None, language: str) -> str:
    if prompt is None:
        return "—"
    return shorten(prompt.title(language), 100) or shorten(prompt.body, 60)


def _guild_id(interaction: discord.Interaction[Any]) -> int:
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id


def _queue_embed(localize: Localizer, view: QueueView) -> discord.Embed:
    embed = discord.Embed(title=localize(Text("prompts.queue.title")), color=EMBED_COLOR)
    if view.next_slot is not None:
        schedule = localize(Text("prompts.queue.next_slot", when=f"<t:{int(view.next_slot.timestamp())}:F>",
                                 timezone=view.timezone))
    else:
        schedule = localize(Text("prompts.queue.schedule_off"))
    embed.description = schedule
    lines = [localize(Text("prompts.queue.line", number=number, title=_title(prompt, localize.language),
                           kind=Text(f"prompts.kind.{prompt.kind.value}")))
             for number, prompt in enumerate(view.upcoming, start=1)]
    embed.add_field(name=localize(Text("prompts.queue.upcoming")),
                    value="\n".join(lines) or localize(Text("prompts.nothing")), inline=False)
    if view.pending:
        waiting = []
        for pending in view.pending:
            title = _title(pending.prompt, localize.language) if pending.prompt else shorten(pending.post.title, 80)
            if pending.failure is None:
                waiting.append(localize(Text("prompts.queue.waiting", title=title)))
            else:
                waiting.append(localize(Text("prompts.queue.failing", title=title, attempts=pending.attempts,
                                             reason=failure_text(pending.failure),
                                             next_try=_relative(pending.next_try))))
        embed.add_field(name=localize(Text("prompts.queue.pending")), value="\n".join(waiting)[:1024], inline=False)
    return embed


async def setup(bot: KakehashiBot) -> None:
    bot.add_dynamic_items(LanguageButton, TranslateButton)
    bot.forms.add(PromptForm, TranslationForm)
    await bot.add_cog(Prompts(bot))
