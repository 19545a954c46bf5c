"""What a person does on the playground's page, in the browser: the tests' vocabulary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import ARTIFACTS, LivePlayground

WAIT = 20.0


class Page:
    def __init__(self, driver: Any, live: LivePlayground) -> None:
        self.driver = driver
        self.live = live

    # ---------------------------------------------------------------- waiting and finding

    def wait(self, check: Callable[[], Any], timeout: float = WAIT, what: str = "the page") -> Any:
        def attempt(_: Any) -> Any:
            try:
                return check()
            except StaleElementReferenceException:   # re-rendered meanwhile: look again
                return None

        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(attempt, f"waiting for {what}")

    def find(self, css: str, within: Any = None) -> WebElement:
        return (within or self.driver).find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str, within: Any = None) -> list[WebElement]:
        return list((within or self.driver).find_elements(By.CSS_SELECTOR, css))

    def wait_for(self, css: str, text: str = "", timeout: float = WAIT) -> WebElement:
        """The first element matching ``css`` whose text contains ``text``, once there is one."""
        def found() -> WebElement | None:
            return next((e for e in self.find_all(css) if text in e.text), None)

        return self.wait(found, timeout, f"{css} with {text!r}")

    def click(self, css: str, text: str = "", timeout: float = WAIT) -> None:
        """Click the first element matching ``css`` whose text contains ``text``, once there is one (found again if
        the page redrew it meanwhile)."""
        def clicked() -> bool:
            element = next((e for e in self.find_all(css) if text in e.text and e.is_displayed()), None)
            if element is None:
                return False
            element.click()
            return True

        self.wait(clicked, timeout, f"{css} with {text!r} to click")

    def screenshot(self, name: str) -> None:
        """A picture of the page now, beside the one every test leaves at its end."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))

    def text(self, css: str) -> str:
        return str(self.find(css).text)

    # ---------------------------------------------------------------- who, where

    def open(self) -> None:
        self.driver.get(self.live.url)
        self.wait(lambda: self.driver.execute_script("return document.body.dataset.ready === 'true'"),
                  what="the page to load")

    def act_as(self, name: str, language: str | None = None) -> None:
        Select(self.find("#who")).select_by_visible_text(name)
        self.wait(lambda: self.find(".member.me .name").text == name, what=f"acting as {name}")
        if language is not None:
            self.language(language)
        self.wait(lambda: self.driver.execute_script("return !!document.body.dataset.ready"))

    def act_as_id(self, member_id: int | str) -> None:
        Select(self.find("#who")).select_by_value(str(member_id))
        self.wait(lambda: self.find(".member.me").get_attribute("data-member-id") == str(member_id),
                  what=f"acting as {member_id}")

    def language(self, code: str) -> None:
        Select(self.find("#lang")).select_by_value(code)
        self.wait(lambda: self.driver.execute_script("return document.documentElement.lang") == code)

    def channel(self, name: str) -> None:
        self.click("#channels .channel", name)
        self.wait(lambda: self.text("#chat-header .channel-title") == name, what=f"#{name} to open")

    def open_channel_id(self, channel_id: int | str) -> None:
        self.click(f'#channels [data-channel-id="{channel_id}"]')
        self.wait(lambda: f'"{channel_id}"' in str(self.driver.execute_script(
            "return JSON.stringify(location.hash.match(/channel=([^&]*)/)[1])")), what="the channel to open")

    def dms(self) -> None:
        self.click('#dms [data-channel-id="dm"]')
        self.wait(lambda: "channel=dm" in self.driver.current_url, what="the DMs to open")

    def channel_ids(self) -> set[str]:
        return {str(e.get_attribute("data-channel-id")) for e in self.find_all("#channels .channel")}

    # ---------------------------------------------------------------- doing

    def command(self, path: str, **options: str) -> None:
        """Type ``/path``, pick it from the menu, fill its options (values of selects, or text), send it."""
        box = self.find("#message-input")
        box.clear()
        box.send_keys("/" + path)
        self.click(f'#command-menu .menu-item[data-command="{path}"]')
        self.wait(lambda: self.find("#command-form").is_displayed(), what=f"the form of /{path}")
        for name, value in options.items():
            control = self.find(f'#command-form [data-option="{name}"] [name="{name}"]')
            if control.tag_name == "select":
                Select(control).select_by_value(value)
            else:
                control.send_keys(value)
        self.find("#run-command").click()
        self.wait(lambda: not self.find("#command-form").is_displayed(), what=f"/{path} to be sent")

    def messages(self) -> list[WebElement]:
        return self.find_all("#messages article.message")

    def message_with(self, text: str = "", css: str = "", timeout: float = WAIT) -> WebElement:
        """The last message holding ``text`` (and an element matching ``css``), once there is one."""
        def found() -> WebElement | None:
            for message in reversed(self.messages()):
                if text in message.text and (not css or self.find_all(css, message)):
                    return message
            return None

        return self.wait(found, timeout, f"a message with {text!r} {css}")

    def button(self, message: WebElement, custom_id_prefix: str) -> WebElement:
        return next(b for b in self.find_all("button.btn", message)
                    if str(b.get_attribute("data-custom-id")).startswith(custom_id_prefix))

    def modal(self, timeout: float = WAIT) -> WebElement:
        return self.wait(lambda: self.find("#modal-backdrop").is_displayed() and self.find("#modal"), timeout,
                         "a form to open")

    def fill_modal(self, values: dict[str, str]) -> None:
        form = self.modal()
        for field, value in values.items():
            control = self.find(f'[data-field="{field}"] [name="{field}"]', form)
            control.clear()
            control.send_keys(value)
        self.find("#modal-submit", form).click()
        self.wait(lambda: not self.find("#modal-backdrop").is_displayed(), what="the form to close")
