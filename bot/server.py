"""Serving the Bolt app over HTTP: gunicorn in production, a threaded server for local mode and tests.

Before Bolt sees a request, its body is bounded: Slack's largest posts (a button click carries the
clicked message, at most 50 blocks) stay well under ``MAX_BODY_BYTES``; a longer body is answered
413 without being read, and one that is not UTF-8 (Bolt would fail decoding it) 400; a request
timestamp that is not a number (Bolt would fail reading it) 401. Signatures and the five-minute
replay window are Bolt's checks, after these.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.request.internals import build_context

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1024 * 1024


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


class BackgroundServer:
    """The app on 127.0.0.1 in a daemon thread; ``url`` is where Slack (or the stand-in) posts."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = make_server(host, port, slack_wsgi(app), _ThreadingWSGIServer, _QuietHandler)
        self.url = f"http://{host}:{self._server.server_port}{EVENTS_PATH}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="bot-http", daemon=True)

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def slack_wsgi(app: App) -> Callable[..., Iterable[bytes]]:
    return bounded(_FormSafeHandler(app, path=EVENTS_PATH))


class _FormSafeHandler(SlackRequestHandler):
    """Bolt reads any form body containing the word "payload" as an interactive payload, so a
    slash command like ``lock prod payload fix`` would be answered 404. Such a body is parsed
    again here as the plain form it is; the raw body, and so the signature check, is untouched."""

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        bolt_request = BoltRequest(body=request.get_body(), query=request.query_string, headers=request.get_headers())
        if not bolt_request.body and bolt_request.raw_body:
            form = dict(parse_qsl(bolt_request.raw_body, keep_blank_values=True))
            if "command" in form and "payload" not in form:
                bolt_request.body = form
                bolt_request.context = build_context(BoltContext({}), form)
        return self.app.dispatch(bolt_request)


def bounded(handler: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """The WSGI ``handler`` behind a size and encoding check of the request body."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "0").isdigit():
            return _refuse(start_response, "401 Unauthorized", "invalid request")
        if length > MAX_BODY_BYTES:
            return _refuse(start_response, "413 Content Too Large", f"at most {MAX_BODY_BYTES} bytes")
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            length = -1
        if length < 0:
            return _refuse(start_response, "400 Bad Request", "bad request body")
        environ["wsgi.input"] = io.BytesIO(body)
        return handler(environ, start_response)

    return application


def _refuse(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    data = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))])
    return [data]


def serve_with_gunicorn(application: Any, *, bind: str, workers: int = 1, threads: int = 8) -> None:
    """Production HTTP for a WSGI app. One process for the bot (its follow-up pool and group
    cache live in it), threads for concurrency."""
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {"bind": bind, "workers": workers, "threads": threads}.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    _Gunicorn().run()
