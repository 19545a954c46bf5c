"""The texts of a prompt post, in one language: pure functions over the catalog."""

from __future__ import annotations

from bot.i18n import Catalog, Text, shorten
from bot.prompts.essays import TITLE_LIMIT
from bot.prompts.model import Prompt, PromptKind
from bot.prompts.split import split_message


def display_title(prompt: Prompt, language: str, post_id: int, catalog: Catalog) -> str:
    """The title as a thread name: one visible line of at most 100 characters. A custom prompt's title
    is stored as the admin typed it; if nothing visible is left, the post is named by its number."""
    title = shorten(prompt.title(language), TITLE_LIMIT)
    return title or catalog.render(language, Text("prompts.post.untitled", post=post_id))


def marker(language: str, post_id: int, catalog: Catalog) -> str:
    """The last line of a post's first message. It names the post, so after a crash the bot can tell
    whether Discord already has it."""
    return catalog.render(language, Text("prompts.post.marker", post=post_id))


def marks(content: str, post_id: int) -> bool:
    """Whether a message's last line is the marker of post ``post_id``, in any language (the texts around
    the number may change between versions; the number does not)."""
    last = content.rstrip().rsplit("\n", 1)[-1]
    return last.startswith("-# ") and last.endswith(f"#{post_id}")


def opening(prompt: Prompt, language: str, post_id: int, catalog: Catalog, *, with_title: bool) -> str:
    """The first message: (the title, where the channel shows none,) the summary and the questions, and
    the marker. The essay or the prompt's text follows in the thread."""
    lines = []
    if with_title:
        lines += [f"## {display_title(prompt, language, post_id, catalog)}", ""]
    lines += _summary_and_questions(prompt, language, catalog)
    follows = "prompts.post.follows_essay" if prompt.kind is PromptKind.ESSAY else "prompts.post.follows_text"
    lines += [catalog.render(language, Text(follows)), marker(language, post_id, catalog)]
    return "\n".join(lines)


def translation(prompt: Prompt, language: str, catalog: Catalog) -> str:
    """What the language button shows: the title, summary and questions in ``language``."""
    lines = [f"## {shorten(prompt.title(language), TITLE_LIMIT)}", ""]
    lines += _summary_and_questions(prompt, language, catalog)
    return "\n".join(lines).rstrip()


def parts(prompt: Prompt) -> list[str]:
    """The essay (or the custom prompt's text) as messages Discord accepts. A piece of nothing but
    whitespace (a long run of blank lines in a custom prompt) is left out: Discord refuses an empty
    message, and would have trimmed that whitespace anyway."""
    return [piece for piece in split_message(prompt.body) if piece.strip()]


def _summary_and_questions(prompt: Prompt, language: str, catalog: Catalog) -> list[str]:
    lines = []
    summary = prompt.summary(language)
    if summary:
        lines += [catalog.render(language, Text("prompts.post.summary_heading")), summary, ""]
    questions = prompt.questions_in(language)
    if questions:
        lines.append(catalog.render(language, Text("prompts.post.questions_heading")))
        lines += [f"{number}. {question}" for number, question in enumerate(questions, start=1)]
        lines.append("")
    return lines


DISCUSSION_TAGS = ("discussion", "discussions", "議論", "ディスカッション", "discuss")


def choose_tag(tags: list[tuple[int, str, bool]], *, required: bool) -> int | None:
    """The forum tag for a prompt post, from ``(id, name, moderated)``: one named like "Discussion" or
    "議論" if the forum has it; else, only when the forum requires a tag, the first one the bot may apply
    (moderated tags need Manage Threads, so they come last)."""
    for tag_id, name, _ in tags:
        if name.strip().casefold() in DISCUSSION_TAGS:
            return tag_id
    if not required or not tags:
        return None
    return sorted(tags, key=lambda tag: tag[2])[0][0]
