"""The audit site in a real browser: Debian's headless Chromium, driven through chromedriver by
Selenium, against ``migrabot audit`` (gunicorn) on a free port. An operator signs in through the
form, filters the requests by environment, searches, opens a request and reads its plan and the
link to its Slack thread; screenshots go to the test run's artifacts folder.

The browser comes from the OS packages ``chromium`` and ``chromium-driver`` (``./scripts/test``
installs them where it may). Where either is missing this test fails and names it: it is never
skipped. Selenium Manager is never asked for anything: the driver and the browser are given by
path (``SE_OFFLINE`` forbids it downloading, should some Selenium ask all the same).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from audit_records import approved_rollback_that_ran, denied_rollback, environment, read, unattached
from django.contrib.auth.models import User
from serving import REPO, audit_server

CHROMIUM = Path(os.environ.get("MIGRABOT_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("MIGRABOT_CHROMEDRIVER", "/usr/bin/chromedriver"))
#: Where a run keeps what a person would look at afterwards (.gitignore ignores it).
ARTIFACTS = Path(os.environ.get("MIGRABOT_ARTIFACTS", REPO / "artifacts"))
PASSWORD = "a long browser-test password"
WAIT_SECONDS = 15


def missing_browser() -> list[str]:
    return [
        f"{path} (Debian package {package})"
        for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver"))
        if not (path.is_file() and os.access(path, os.X_OK))
    ]


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    missing = missing_browser()
    if missing:
        pytest.fail(
            "the browser test needs headless Chromium and its driver, missing: "
            + ", ".join(missing)
            + ". Install them with `apt-get install chromium chromium-driver` (./scripts/test does, as root "
            "or with passwordless sudo), or point MIGRABOT_CHROMIUM / MIGRABOT_CHROMEDRIVER at them.",
            pytrace=False,
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager, if ever asked, may not download
    monkeypatch.setenv("SE_AVOID_STATS", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the test may run as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.implicitly_wait(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, name: str, request: pytest.FixtureRequest) -> Path:
    """The whole page (the window grown to its height) as ``ARTIFACTS/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(int(height), 1000), 6000))
    assert driver.save_screenshot(str(path)), path
    request.node.add_report_section("call", "artifacts", f"screenshot: {path}")  # listed after the run
    return path


@contextmanager
def navigating(driver: Any) -> Iterator[None]:
    """Until the page the block's click leaves is gone: a lookup right after a click may otherwise
    find the old page's element (the sign-in page has a #site-name too) and go stale under it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    yield
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(page))


def test_an_operator_signs_in_filters_searches_and_reads_a_request(
    browser: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from selenium.webdriver.common.by import By

    env = f"web{uuid.uuid4().hex[:6]}"
    configured = environment(env, tmp_path)
    ran = approved_rollback_that_ran(configured, tmp_path)
    denied_rollback(configured)
    read(configured)
    unattached(env)
    name = f"operator-{uuid.uuid4().hex[:6]}"
    User.objects.create_superuser(name, "operator@example.test", PASSWORD)

    with audit_server(tmp_path / "audit.log") as url:
        browser.get(f"{url}/")
        assert "/login/" in browser.current_url  # nothing without signing in
        browser.find_element(By.ID, "id_username").send_keys(name)
        browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
        with navigating(browser):
            browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        assert browser.find_element(By.ID, "site-name").text == "migrabot audit"
        assert browser.find_element(By.LINK_TEXT, "Events without a request").is_displayed()

        with navigating(browser):
            browser.find_element(By.LINK_TEXT, "Requests").click()
        with navigating(browser):
            browser.find_element(By.ID, "changelist-filter").find_element(By.LINK_TEXT, env).click()  # by environment
        assert f"environment={env}" in browser.current_url
        assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 3

        search = browser.find_element(By.ID, "searchbar")
        search.send_keys("marketplace")
        with navigating(browser):
            search.submit()
        rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
        assert [row.find_element(By.CSS_SELECTOR, "th a").text for row in rows] == [str(ran.pk)]
        assert f"environment={env}" in browser.current_url  # the search kept the filter
        screenshot(browser, "audit-requests-filtered", request)

        with navigating(browser):
            rows[0].find_element(By.CSS_SELECTOR, "th a").click()
        plan = browser.find_element(By.CSS_SELECTOR, ".field-plan_message .audit-slack").text
        for line in (
            f"Plan for #{ran.pk} rollback {env} marketplace 0005",
            "↩️ unapply media.0004_banner — 🔥 destroys data in media_banner",
            "↩️ unapply marketplace.0006_alter_listing_title",
            "Tables: media_banner (3 rows), marketplace_listing (1,204 rows)",
            "[Approve] [Deny]",
        ):
            assert line in plan, (line, plan)
        assert "`" not in plan and "*" not in plan and "<@" not in plan  # read as in Slack, not as mrkdwn
        thread = browser.find_element(By.CSS_SELECTOR, "a.audit-thread")
        assert thread.text == "Open the thread in Slack"
        assert (
            thread.get_attribute("href") == "https://slack.com/app_redirect?channel=C0OPS&message_ts=1717000000.000100"
        )
        approvals = browser.find_element(By.ID, "approvals-group").text
        assert "U0BOB" in approvals and "Approve" in approvals
        assert "request.approved" in browser.find_element(By.ID, "events-group").text
        shot = screenshot(browser, "audit-request", request)
    assert shot.stat().st_size > 10_000
