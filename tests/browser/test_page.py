"""The playground's page in a real browser: the acceptance points of issue 15 that concern the page.

Each test starts from the seeded community (``live``), acts through the page as a person would (the "You are"
picker, the channel list, the message box and its / commands, buttons, forms, the clock) and checks what that
person sees; where it says who must *not* see something, it checks the page and the server's answer both.
"""

from __future__ import annotations

from typing import Any

from selenium.common.exceptions import NoAlertPresentException

from bot.i18n import default_catalog
from playground import community
from playground.fakediscord import ChannelType
from tests.browser.conftest import LivePlayground
from tests.browser.pages import Page

CATALOG = default_catalog()
SERVER = community.SERVER


def text(lang: str, key: str, **values: Any) -> str:
    """The bot's text ``key`` in ``lang``, as it reads on the page."""
    return CATALOG.template(lang, key).format(**values)


def view_of(page: Page, member_id: int | str, channel: int | str) -> dict[str, Any]:
    """What the page's server sends the browser for ``member_id`` asking for ``channel``."""
    script = """const [member, channel, done] = arguments;
        fetch(`/api/view?as=${member}&channel=${channel}`).then((r) => r.json()).then(done);"""
    view: dict[str, Any] = page.driver.execute_async_script(script, str(member_id), str(channel))
    return view


def test_as_the_admin_config_show_answers_privately(page: Page, live: LivePlayground) -> None:
    page.channel("welcome")
    page.command("config show")
    reply = page.message_with(text("en", "config.show.title", guild=SERVER), ".ephemeral-note")
    assert "Only you can see this" in reply.text
    assert "Asia/Tokyo" in reply.text
    # Another member, in the same channel, does not see it.
    page.act_as("Kenji Watanabe")
    page.channel("welcome")
    assert not [m for m in page.messages() if text("en", "config.show.title", guild=SERVER) in m.text]


def test_as_the_admin_prompts_post_makes_a_forum_post_whose_language_button_answers_in_japanese(
        page: Page, live: LivePlayground) -> None:
    page.channel("welcome")
    # The community's server speaks Japanese; the admin makes the bot post in English, through the code's choices.
    page.command("config language", code="en")
    page.message_with(text("en", "config.language.set", language="English", old="").split("(")[0].strip())
    # /prompts post, its essay picked from the bot's autocomplete.
    page.find("#message-input").send_keys("/prompts post")
    page.click('#command-menu .menu-item[data-command="prompts post"]')
    page.find('#command-form [name="essay"]').send_keys("Silent")
    page.click("#command-form .suggestion", "Silent Rivalry")
    page.find("#run-command").click()
    title = "Silent Rivalry: Japanese Companies Overseas"
    page.message_with(f"Posted “{title}”", ".ephemeral-note")

    page.channel("discussions")
    page.click(".post-card", title)
    page.wait(lambda: len(page.messages()) >= 3, what="the summary and the essay in parts")
    forum = live.playground.community.channels[community.FORUM]
    post = live.call(lambda: next(t for t in live.playground.discord.threads(forum) if t.name == title))
    parts = live.call(lambda: live.playground.discord.channel_messages(post))
    assert len(parts) >= 3 and all(len(m.content) <= 2000 for m in parts)
    assert post.applied_tags and post.type == ChannelType.PUBLIC_THREAD
    shown = page.messages()
    assert len(shown) == len(parts)
    assert "Summary" in shown[0].text and "Questions for discussion" in shown[0].text

    page.button(shown[0], "prompt:lang:").click()
    answer = page.message_with("中国から発信する筆者は", ".ephemeral-note")
    assert text("ja", "prompts.post.questions_heading").strip("*") in answer.text


def test_a_newcomer_introduces_themselves_through_the_two_step_form(page: Page, live: LivePlayground) -> None:
    page.act_as("Sophie Martin")
    page.channel("welcome")
    welcome = page.message_with("@Sophie Martin", "button.btn")
    page.button(welcome, "intro:start:").click()
    first = page.modal()
    assert page.find('[name="display_name"]', first).get_attribute("value") == "Sophie Martin"
    page.fill_modal({"company": "Lumière Conseil", "role": "Strategy consultant", "industry": "Consulting",
                     "location": "Paris"})
    saved = page.message_with(text("en", "intros.edit.saved_about"), ".ephemeral-note")
    page.button(saved, "intro:step:").click()
    page.fill_modal({"timezone": "Europe/Paris", "interests": "Strategy, Wine, AI",
                     "offer": "French market entry", "seek": "Japanese partners in Osaka",
                     "bio": "Helping Japanese firms open offices in France."})
    saved = page.message_with(text("en", "intros.edit.saved_more"), ".ephemeral-note")
    # The menus under the private card: her languages, several at once (English is picked already).
    languages = page.find('.select[data-custom-id^="intro:languages:"]', saved)
    assert page.find(".select-toggle", languages).text.startswith("English")
    page.find(".select-toggle", languages).click()
    page.click('.select[data-custom-id^="intro:languages:"] .select-option', "Japanese")
    page.click('.select[data-custom-id^="intro:languages:"] .apply')

    page.channel("introductions")
    card = page.message_with("Lumière Conseil", ".embed")
    assert "Sophie Martin" in card.text and "French market entry" in card.text
    assert "Only you can see this" not in card.text   # the card is public
    page.wait(lambda: "日本語、英語" in page.message_with("Lumière Conseil", ".embed").text, what="her languages")


def test_suggest_request_accept_opens_a_private_thread_both_see_and_a_third_member_does_not(
        page: Page, live: LivePlayground) -> None:
    guild = live.playground.community.guild
    page.act_as("Kenji Watanabe")
    kenji = page.find(".member.me").get_attribute("data-member-id")
    page.channel("welcome")
    page.command("match suggest")
    suggestions = page.message_with(text("en", "match.suggest.title"), ".ephemeral-note")
    asks = [b for b in page.find_all("button.btn", suggestions)
            if str(b.get_attribute("data-custom-id")).startswith("match:ask:")]
    assert len(asks) == 3
    fields = page.find_all(".embed-field", suggestions)
    assert len(fields) == 3 and all(page.find(".embed-field-value", f).text.strip() for f in fields)
    targets = [int(str(b.get_attribute("data-custom-id")).rsplit(":", 1)[1]) for b in asks]
    companies = {p.name: p.company for p in community.INTRODUCED}
    names = live.call(lambda: [guild.members[t].user.username for t in targets])
    assert all(companies[name] != "Kitsune Games" for name in names)   # people of other companies
    page.screenshot("match-suggest")   # the one in docs/playground.png

    asks[0].click()
    page.fill_modal({"note": "I'd love to compare notes on localization."})
    page.message_with(text("en", "match.request.sent_dm", name=names[0]))

    page.act_as_id(targets[0])
    page.channel("welcome")   # Kenji's suggestions were his alone
    assert not [m for m in page.messages() if text("en", "match.suggest.title") in m.text]
    page.dms()
    request = page.message_with("Kenji Watanabe", "button.btn")
    assert "I'd love to compare notes on localization." in request.text
    page.button(request, "match:accept:").click()
    thread = page.wait(lambda: page.find_all("#channels .channel.kind-private"), 30, "the private thread")[0]
    thread_id = str(thread.get_attribute("data-channel-id"))
    page.open_channel_id(thread_id)
    page.message_with("@Kenji Watanabe")

    page.act_as("Kenji Watanabe")
    assert thread_id in page.channel_ids()
    page.open_channel_id(thread_id)
    page.message_with(f"@{names[0]}")

    page.act_as("Emily Chen")
    emily = page.find(".member.me").get_attribute("data-member-id")
    assert thread_id not in page.channel_ids()
    assert view_of(page, emily, thread_id)["channel"]["id"] != thread_id   # the server does not send it either
    assert view_of(page, emily, "dm")["messages"] == []                    # nor another member's DMs
    assert view_of(page, kenji, thread_id)["channel"]["id"] == thread_id


def test_as_the_admin_rounds_run_delivers_and_the_follow_up_asks_in_the_round_threads(
        page: Page, live: LivePlayground) -> None:
    page.channel("matches")
    page.command("rounds run")
    # The first round in a fresh checkout compiles the planner (numba): allow for it.
    page.message_with("5 / 5", ".ephemeral-note", timeout=120)
    matches = live.playground.community.channels["matches"]
    threads = live.call(lambda: [t for t in live.playground.discord.threads(matches)
                                 if t.type == ChannelType.PRIVATE_THREAD])
    assert len(threads) == 5
    page.wait(lambda: len(page.find_all("#channels .channel.kind-private")) == 5, what="the round threads")

    page.find('[data-step="follow-up"]').click()
    question = text("ja", "match.follow_up.question")   # the server's language
    page.open_channel_id(threads[0].id)
    asked = page.message_with(question, "button.btn", timeout=30)
    assert page.button(asked, "match:met:")
    discord = live.playground.discord
    page.wait(lambda: live.call(lambda: all(any(question in m.text for m in discord.channel_messages(t))
                                            for t in threads)), 30, "the follow-up in every round thread")


def test_with_the_language_set_to_ja_replies_and_command_descriptions_are_japanese(
        page: Page, live: LivePlayground) -> None:
    page.language("ja")
    assert page.text('label.picker [data-i18n="youAre"]') == "操作する人"
    page.find("#message-input").send_keys("/config")
    described = live.call(lambda: next(o for c in live.playground.discord.commands_for(
        live.playground.community.guild) if c["name"] == "config" for o in c["options"] if o["name"] == "show"))
    item = page.wait_for('#command-menu .menu-item[data-command="config show"]')
    assert page.find(".command-description", item).text == described["description_localizations"]["ja"]
    item.click()
    page.find("#run-command").click()
    reply = page.message_with(text("ja", "config.show.title", guild=SERVER), ".ephemeral-note")
    assert "これはあなただけに表示されています" in reply.text
    asked = live.call(lambda: list(live.playground.discord.interactions.values())[-1])
    assert asked.payload["locale"] == "ja"


def test_a_member_s_context_menu_runs_the_bot_s_user_commands(page: Page, live: LivePlayground) -> None:
    page.act_as("Kenji Watanabe")
    page.channel("welcome")
    page.click("#members .member", "Anna Schmidt")
    page.click("#popover .pop-item", "View intro")
    card = page.message_with("Minato Bank Europe", ".ephemeral-note")
    assert "Anna Schmidt" in card.text


def test_intro_export_attaches_the_member_s_file_for_them_and_nobody_else(page: Page, live: LivePlayground) -> None:
    page.act_as("Anna Schmidt")
    page.channel("welcome")
    page.command("intro export")
    reply = page.message_with("", "a.attachment")
    link = page.find("a.attachment", reply)
    assert link.text.startswith("kakehashi-") and ".json" in link.text
    href = str(link.get_attribute("href"))
    fetch = """const [url, done] = arguments;
        fetch(url).then(async (r) => done([r.status, await r.text()]));"""
    status, body = page.driver.execute_async_script(fetch, href)
    assert status == 200 and "Minato Bank Europe" in body
    emily = live.call(lambda: live.playground.discord.member(live.playground.community.guild, "Emily Chen").id)
    status, _ = page.driver.execute_async_script(fetch, href.replace(href.split("as=")[1], str(emily)))
    assert status == 404


def test_a_member_named_like_html_is_shown_as_text_and_no_script_runs(page: Page, live: LivePlayground) -> None:
    name = "<img src=x onerror=alert(1)>"
    playground = live.playground
    member = live.run(playground.discord.member_join(playground.community.guild, name))
    welcome = playground.community.channels["welcome"]
    live.run(playground.discord.send_message(member, welcome, "<script>window.pwned = 1</script> **<b>hi</b>**"))
    page.channel("welcome")
    page.wait_for("#messages .mention", f"@{name}")
    said = page.message_with("<script>window.pwned = 1</script>")
    assert page.find("strong", said).text == "<b>hi</b>"
    page.wait_for("#members .member", name)
    page.act_as(name)
    assert page.text(".member.me .name") == name
    assert not [e for e in page.find_all("img") if e.get_attribute("src") and
                e.get_attribute("src").rstrip("/").endswith("/x")]
    assert not page.find_all("#messages script, #members img, #messages img, #messages b")
    try:
        alert = page.driver.switch_to.alert
    except NoAlertPresentException:
        alert = None
    assert alert is None
    assert page.driver.execute_script("return window.pwned === undefined")
