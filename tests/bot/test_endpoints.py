"""``/healthz`` and ``/metrics`` on the bot's HTTP app, beside Slack's request URL, with no signature."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from wsgiref.util import setup_testing_defaults

import pytest
from django.db import OperationalError, connections
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from bot.app import Bot, build_app
from bot.server import EVENTS_PATH, slack_wsgi
from controlplane import services
from migrabot.broker import app as celery_app
from migrabot.config import load_config

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example" / "backend"
SECRET = "endpoints-signing-secret"
ENV = f"ops{uuid.uuid4().hex[:8]}"
CONFIG = f"""
[environments.{ENV}]
project = "{EXAMPLE_PROJECT}"
settings = "backend.settings"
[environments.{ENV}.policy]
readers = ["*"]
"""
WsgiApp = Callable[..., Iterable[bytes]]


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    folder = tmp_path_factory.mktemp("endpoints")
    (folder / "migrabot.toml").write_text(CONFIG)
    services.catalog_publish(environment=ENV, apps={"accounts": ["0001_initial", "0002_profile"]})
    client = WebClient(token="xoxb-endpoints", base_url="http://127.0.0.1:9/")  # never called here
    bot = build_app(
        config=load_config(folder / "migrabot.toml"), client=client, signing_secret=SECRET, enqueue=_nowhere
    )
    yield bot
    bot.close()
    connections.close_all()


@pytest.fixture
def wsgi(bot: Bot) -> WsgiApp:
    return slack_wsgi(bot.app)  # what gunicorn serves


@pytest.fixture
def broker_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(celery_app.conf, "broker_url", "memory://localhost/")


def _nowhere(request_id: int, *, queue: str) -> None:
    pass


def call(app: WsgiApp, path: str, *, method: str = "GET", body: bytes = b"", **headers: str) -> tuple[str, bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method, "wsgi.input": io.BytesIO(body)}
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.update({f"HTTP_{name.upper()}": value for name, value in headers.items()})
    environ.update({"CONTENT_TYPE": "application/x-www-form-urlencoded"} if body else {})
    setup_testing_defaults(environ)
    said: list[str] = []
    chunks = app(environ, lambda status, headers, exc_info=None: said.append(status))
    return said[0], b"".join(chunks)


def test_healthz_is_200_when_the_control_plane_and_the_broker_answer(wsgi: WsgiApp, broker_up: None) -> None:
    assert call(wsgi, "/healthz") == ("200 OK", b'{"controlplane": "ok", "broker": "ok"}')


def test_healthz_is_503_naming_the_control_plane_when_it_does_not_answer(
    wsgi: WsgiApp, broker_up: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable() -> None:
        raise OperationalError('connection to server at "db" failed: postgres://u:hunter2@db/x')

    monkeypatch.setattr(connections["default"], "cursor", unreachable)
    assert call(wsgi, "/healthz") == ("503 Service Unavailable", b'{"controlplane": "unreachable", "broker": "ok"}')
    assert "healthz.controlplane_unreachable" in caplog.text and "hunter2" not in caplog.text


def test_healthz_is_503_naming_the_broker_when_it_does_not_answer(
    wsgi: WsgiApp, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Port 9 on loopback (discard): nothing listens there, so the connection is refused at once.
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://:s3cret-broker@127.0.0.1:9/0")
    assert call(wsgi, "/healthz") == ("503 Service Unavailable", b'{"controlplane": "ok", "broker": "unreachable"}')
    assert "healthz.broker_unreachable" in caplog.text and "s3cret-broker" not in caplog.text


def test_the_endpoints_answer_get_only_and_other_paths_stay_slacks(wsgi: WsgiApp) -> None:
    assert call(wsgi, "/metrics", method="POST")[0] == "405 Method Not Allowed"
    assert call(wsgi, "/healthz", method="POST")[0] == "405 Method Not Allowed"
    assert call(wsgi, "/nowhere")[0].startswith("404")


def test_metrics_count_a_request_received_from_a_command(wsgi: WsgiApp) -> None:
    before = _received(call(wsgi, "/metrics"))
    body = urlencode(
        {"command": "/migrate", "text": f"showmigrations {ENV} accounts", "user_id": "U0ALICE",
         "channel_id": "C0OPS", "trigger_id": f"ops.{uuid.uuid4().hex}", "team_id": "T0LOCAL"}
    ).encode()  # fmt: skip
    stamp = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=stamp, body=body.decode())
    status, _ = call(
        wsgi, EVENTS_PATH, method="POST", body=body, X_SLACK_REQUEST_TIMESTAMP=stamp, X_SLACK_SIGNATURE=signature
    )
    assert status == "200 OK"
    assert _received(call(wsgi, "/metrics")) == before + 1


def _received(answer: tuple[str, bytes]) -> float:
    status, body = answer
    assert status == "200 OK"
    wanted = {"verb": "showmigrations", "state": "received", "environment": ENV}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "migrabot_requests_total" and sample.labels == wanted:
                return sample.value
    return 0.0
