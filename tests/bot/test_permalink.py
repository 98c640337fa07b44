"""The card's permalink: asked of Slack once the card is posted, stored on the request, and never
a cause for the request to wait or fail; where Slack gives none, the link redirects instead."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.notify import Notifier, with_retries
from controlplane import services
from controlplane.models import Request, State
from migrabot.config import Config, load_config
from slacklocal import SlackWebAPI
from slackui.links import thread_url

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example" / "backend"
TOKEN = "xoxb-permalink"
CHANNEL = "C0PERMA"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    env = f"pl{uuid.uuid4().hex[:8]}"
    (tmp_path / "migrabot.toml").write_text(
        f'[environments.{env}]\nproject = "{EXAMPLE_PROJECT}"\nsettings = "backend.settings"\n'
    )
    return load_config(tmp_path / "migrabot.toml")


@pytest.fixture
def api() -> Iterator[SlackWebAPI]:
    with SlackWebAPI(TOKEN, team_domain="acme") as server:
        yield server


def notifier(api: SlackWebAPI, config: Config) -> Notifier:
    return Notifier(with_retries(WebClient(token=TOKEN, base_url=api.base_url)), config)


def new_request(config: Config) -> Request:
    (env,) = config.environments
    request, _ = services.request_create(
        verb="showmigrations", environment=env, args=[], requester="U0ALICE", channel=CHANNEL, trigger_id=None
    )
    return request


def reconciled_until(notify: Notifier, done: object, timeout: float = 10.0) -> None:
    """Notifier passes, as its loop makes them, until ``done()``."""
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not done in time"
        notify.reconcile()
        time.sleep(0.05)


def test_the_cards_permalink_is_stored_and_links_the_thread(api: SlackWebAPI, config: Config) -> None:
    request = new_request(config)
    notifier(api, config).reconcile()
    request.refresh_from_db()
    assert request.thread_ts
    expected = f"https://acme.slack.com/archives/{CHANNEL}/p{request.thread_ts.replace('.', '')}"
    assert request.permalink == expected
    assert thread_url(request) == expected
    asked = api.calls_to("chat.getPermalink")
    assert [(c.params["channel"], c.params["message_ts"]) for c in asked] == [(CHANNEL, request.thread_ts)]


def test_a_failed_ask_is_retried_and_never_touches_the_request(api: SlackWebAPI, config: Config) -> None:
    request = new_request(config)
    api.fail_next("chat.getPermalink", "internal_error", count=2)
    notify = notifier(api, config)
    notify.reconcile()
    request.refresh_from_db()
    assert request.thread_ts and not request.permalink and request.state == State.RECEIVED
    assert "app_redirect" in (thread_url(request) or "")  # the link works meanwhile
    reconciled_until(notify, lambda: Request.objects.get(pk=request.pk).permalink)
    assert len(api.calls_to("chat.getPermalink")) == 3
    assert Request.objects.get(pk=request.pk).state == State.RECEIVED
    assert not request.posts.filter(pending=True).exists()


def test_a_message_slack_cannot_find_keeps_the_redirect_link(api: SlackWebAPI, config: Config) -> None:
    request = new_request(config)
    api.fail_next("chat.getPermalink", "message_not_found")
    notify = notifier(api, config)
    for _ in range(3):
        notify.reconcile()
    request.refresh_from_db()
    assert len(api.calls_to("chat.getPermalink")) == 1  # not asked again: Slack would say the same
    assert not request.permalink
    assert thread_url(request) == f"https://slack.com/app_redirect?channel={CHANNEL}&message_ts={request.thread_ts}"
