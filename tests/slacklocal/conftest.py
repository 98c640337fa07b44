"""Fixtures for the Slack stand-in: a running Web API, a WebClient on it, and a real Bolt app over HTTP."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from slacklocal import SignedSender, SlackWebAPI

TOKEN = "xoxb-local-test"
SIGNING_SECRET = "local-signing-secret"
BOT = "U0MIGRABOT"
USERS = {
    "U1ALICE": {"name": "alice", "real_name": "Alice Liddell"},
    "U2BOB": {"name": "bob", "real_name": "Bob Tables"},
}
USERGROUPS = {"S0DBAS": ["U2BOB"]}


@pytest.fixture
def api() -> Iterator[SlackWebAPI]:
    with SlackWebAPI(TOKEN, bot_user_id=BOT, users=USERS, usergroups=USERGROUPS) as server:
        yield server


@pytest.fixture
def web(api: SlackWebAPI) -> WebClient:
    return WebClient(token=TOKEN, base_url=api.base_url)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def bolt_app(api: SlackWebAPI, web: WebClient) -> App:
    # App() calls auth.test here, so the stand-in is already running (the `api` fixture).
    return App(signing_secret=SIGNING_SECRET, client=web)  # the token comes with the client


@pytest.fixture
def bot_url(bolt_app: App) -> Iterator[str]:
    """The Bolt app served over real HTTP, as in production behind a WSGI server."""
    server = make_server(
        "127.0.0.1", 0, SlackRequestHandler(bolt_app), server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/slack/events"
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture
def sender(bot_url: str, api: SlackWebAPI) -> SignedSender:
    return SignedSender(bot_url, SIGNING_SECRET, store=api.store, user_names={k: v["name"] for k, v in USERS.items()})
