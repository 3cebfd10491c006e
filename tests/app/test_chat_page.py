"""The chat page (`GET /`) in real headless Chromium (Debian's chromium + chromedriver, driven by selenium).

Type a question, watch the answer grow token by token, see the citations under it,
then Reset: the conversation is gone. A screenshot lands in tests/artifacts/.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
VACATION = ("Employees of Acme Corp get 28 days of paid vacation per year. Unused vacation days can be "
            "carried over until the end of March of the following year.")


@pytest.fixture
def browser(tmp_path):
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(binary):
            pytest.fail(f"{binary} is missing: ./scripts/setup installs Debian's chromium and chromium-driver")
    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,760",
                     f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def answer_snapshots(browser, timeout: float = 120) -> list[str]:
    """The last answer's text each time it changed, until the answer is complete (not streaming)."""
    snapshots: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answers = browser.find_elements(By.CSS_SELECTOR, ".message.assistant, .message.error")
        if answers:
            text = answers[-1].find_element(By.CSS_SELECTOR, ".text").text
            if text and (not snapshots or snapshots[-1] != text):
                snapshots.append(text)
            if "streaming" not in answers[-1].get_attribute("class"):
                return snapshots
        time.sleep(0.02)
    raise AssertionError(f"the answer did not finish in {timeout}s; seen: {snapshots[-1:]}")


def test_chat_page_streams_cites_and_resets(platform, documents, browser):
    document = documents.add("acme-corp", "Vacation policy", VACATION)
    browser.get(platform.tenant_urls["acme-corp"] + "/")
    assert browser.find_element(By.ID, "tenant-name").text == "Acme Corp"
    assert "acme-corp" in browser.find_element(By.CSS_SELECTOR, ".tenant-id").text

    browser.find_element(By.ID, "question").send_keys("How many vacation days do I get per year?", Keys.ENTER)
    snapshots = answer_snapshots(browser)
    assert browser.find_elements(By.CSS_SELECTOR, ".message.error") == [], snapshots[-1:]
    # Streamed: the text was seen growing, each view a prefix of the next.
    assert len(snapshots) >= 3, snapshots
    assert all(later.startswith(earlier.rstrip()) for earlier, later in zip(snapshots, snapshots[1:]))
    citations = browser.find_elements(By.CSS_SELECTOR, ".message.assistant .citation")
    assert [c.get_attribute("data-document-id") for c in citations] == [document["id"]]
    assert "Vacation policy" in citations[0].text
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "chat_page.png"))

    browser.find_element(By.ID, "reset").click()
    assert browser.find_elements(By.CSS_SELECTOR, "#messages .message") == []
    browser.find_element(By.ID, "question").send_keys("Hello", Keys.ENTER)
    answer_snapshots(browser)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#messages .message")) == 2  # only the new exchange


def test_chat_page_is_plain_html_with_its_script(platform):
    page = httpx.get(platform.tenant_urls["closed-ai"] + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Closed AI" in page.text and "/static/chat.js" in page.text
    script = httpx.get(platform.tenant_urls["closed-ai"] + "/static/chat.js")
    assert script.status_code == 200 and "getReader" in script.text
