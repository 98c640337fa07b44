"""The card's permalink: asked of Slack once the request has settled and its thread shows all of
it, stored on the request, and never a cause for the request to wait or fail; where Slack gives
none, the link redirects instead."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.notify import Notifier, with_retries
from bot.permalinks import Permalinks
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


class Chores:
    """The notifier and the permalinks' thread of one bot, making their passes as their loops do."""

    def __init__(self, api: SlackWebAPI, config: Config) -> None:
        client = with_retries(WebClient(token=TOKEN, base_url=api.base_url))
        self.notify, self.links = Notifier(client, config), Permalinks(client, config)

    def once(self) -> None:
        self.notify.reconcile()
        self.links.refresh()

    def until(self, done: Callable[[], object], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "not done in time"
            self.once()
            time.sleep(0.05)


def new_request(config: Config) -> Request:
    (env,) = config.environments
    request, _ = services.request_create(
        verb="showmigrations", environment=env, args=[], requester="U0ALICE", channel=CHANNEL, trigger_id=None
    )
    return request


def settled(request: Request) -> Request:
    """The request ended, as a worker ends a read."""
    for frm, to in ((State.RECEIVED, State.RUNNING), (State.RUNNING, State.SUCCEEDED)):
        moved = services.request_transition(
            request_id=request.pk, from_states=[frm], to=to, actor="worker", action=f"request.{to}"
        )
        assert moved is not None
    return moved


def test_the_cards_permalink_is_stored_and_links_the_thread(api: SlackWebAPI, config: Config) -> None:
    request = new_request(config)
    chores = Chores(api, config)
    chores.once()
    assert api.calls_to("chat.getPermalink") == [], "asked while its result may be coming: it would delay it"
    settled(request)
    chores.until(lambda: Request.objects.get(pk=request.pk).permalink)
    request.refresh_from_db()
    assert request.thread_ts
    expected = f"https://acme.slack.com/archives/{CHANNEL}/p{request.thread_ts.replace('.', '')}"
    assert request.permalink == expected
    assert thread_url(request) == expected
    asked = api.calls_to("chat.getPermalink")
    assert [(c.params["channel"], c.params["message_ts"]) for c in asked] == [(CHANNEL, request.thread_ts)]


def test_a_failed_ask_is_retried_and_never_touches_the_request(api: SlackWebAPI, config: Config) -> None:
    request = settled(new_request(config))
    api.fail_next("chat.getPermalink", "internal_error", count=2)
    chores = Chores(api, config)
    chores.once()
    request.refresh_from_db()
    assert request.thread_ts and not request.permalink and request.state == State.SUCCEEDED
    assert "app_redirect" in (thread_url(request) or "")  # the link works meanwhile
    chores.until(lambda: Request.objects.get(pk=request.pk).permalink)
    assert len(api.calls_to("chat.getPermalink")) == 3
    assert Request.objects.get(pk=request.pk).state == State.SUCCEEDED
    assert not request.posts.filter(pending=True).exists()


def test_a_message_slack_cannot_find_keeps_the_redirect_link(api: SlackWebAPI, config: Config) -> None:
    request = settled(new_request(config))
    api.fail_next("chat.getPermalink", "message_not_found")
    chores = Chores(api, config)
    for _ in range(3):
        chores.once()
    request.refresh_from_db()
    assert len(api.calls_to("chat.getPermalink")) == 1  # not asked again: Slack would say the same
    assert not request.permalink
    assert thread_url(request) == f"https://slack.com/app_redirect?channel={CHANNEL}&message_ts={request.thread_ts}"
