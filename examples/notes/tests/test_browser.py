"""The application in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium) against a real server started by the
``live_server`` fixture, under uvicorn (ASGI) and gunicorn (WSGI).

On failure the page as the browser last showed it is saved as a PNG (the path is in the
failure's message)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

#: Where ``install_browser.sh`` (the test command's set-up) puts them.
CHROMIUM = "chromium"
DRIVER = "chromedriver"
#: Seconds a page may take to load.
LOAD_TIMEOUT = 20


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    binary, driver = shutil.which(CHROMIUM), shutil.which(DRIVER)
    if binary is None or driver is None:
        pytest.fail(
            "The browser test needs Debian's chromium and chromium-driver: run"
            " `sh examples/notes/tests/install_browser.sh` (the README's test command"
            " does)."
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    # As root in a container: no sandbox, and /tmp instead of a small /dev/shm.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    chrome.set_page_load_timeout(LOAD_TIMEOUT)
    try:
        yield chrome
    finally:
        chrome.quit()


@contextlib.contextmanager
def screenshot_on_failure(chrome: webdriver.Chrome, path: Path) -> Iterator[None]:
    try:
        yield
    except (AssertionError, WebDriverException) as error:
        chrome.save_screenshot(str(path))
        raise AssertionError(
            f"{error}\n(the browser's page at {chrome.current_url} is saved as {path})"
        ) from error


class Page:
    """What a user does and sees in the browser."""

    def __init__(self, chrome: webdriver.Chrome, base_url: str) -> None:
        self.chrome = chrome
        self.base_url = base_url.rstrip("/")

    def open(self, path: str) -> None:
        self.chrome.get(self.base_url + path)

    def follow(self, text: str) -> None:
        self._navigate(self.chrome.find_element(By.LINK_TEXT, text).click)

    def submit(self, **fields: str) -> None:
        for name, value in fields.items():
            element = self.chrome.find_element(By.NAME, name)
            element.clear()
            element.send_keys(value)
        submit = self.chrome.find_element(By.CSS_SELECTOR, "input[type=submit]")
        self._navigate(submit.click)

    def _navigate(self, click: Callable[[], None]) -> None:
        # A click returns before the next page is there: wait until the old page is
        # gone and the new one loaded, or assertions would read the old one.
        old = self.chrome.find_element(By.TAG_NAME, "html")
        click()
        wait = WebDriverWait(self.chrome, LOAD_TIMEOUT)
        wait.until(expected_conditions.staleness_of(old))
        wait.until(
            lambda chrome: (
                chrome.execute_script("return document.readyState") == "complete"
            )
        )

    @property
    def heading(self) -> str:
        return self.chrome.find_element(By.CSS_SELECTOR, "header h2").text

    @property
    def path(self) -> str:
        return self.chrome.current_url.removeprefix(self.base_url)

    def flashes(self, category: str) -> list[str]:
        found = self.chrome.find_elements(By.CSS_SELECTOR, f"p.flash.{category}")
        return [element.text for element in found]

    def menu(self) -> list[str]:
        return [
            item.text for item in self.chrome.find_elements(By.CSS_SELECTOR, "nav li")
        ]


@pytest.mark.ctxflask_live_server(app="live_app:app")
def test_register_log_in_write_a_note_and_log_out(served, browser, tmp_path):
    page = Page(browser, served.url)
    with screenshot_on_failure(browser, tmp_path / f"browser-{served.server}.png"):
        page.open("/")
        assert page.heading == "All notes"
        assert page.menu() == ["Register", "Log in"]

        page.follow("Register")
        page.submit(username="walker", password="long enough")
        assert page.path == "/auth/login"
        assert page.flashes("success") == ["Registered. You can log in now."]

        page.submit(username="walker", password="long enough")
        assert page.path == "/"
        assert page.flashes("success") == ["Welcome back, walker!"]
        assert page.menu() == ["walker", "New note", "Log out"]

        # A validation error is flashed and the form keeps what was typed.
        page.follow("New note")
        page.submit(title="", body="kept while the title is missing")
        assert page.path == "/notes/new"
        assert page.flashes("error") == ["Title is required."]
        body = browser.find_element(By.NAME, "body").get_attribute("value")
        assert body == "kept while the title is missing"

        page.submit(title="From the browser", body="written in headless Chromium")
        assert page.heading == "From the browser"
        assert page.flashes("success") == ["Note saved."]

        page.open("/")
        titles = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "article h3")]
        assert "From the browser" in titles
        assert page.flashes("success") == []  # shown once, then gone

        page.follow("Log out")
        assert page.flashes("success") == ["You have been logged out."]
        assert page.menu() == ["Register", "Log in"]
        page.open("/notes/new")
        assert page.path.startswith("/auth/login")
        assert page.flashes("error") == ["Please log in first."]
