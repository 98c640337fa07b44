"""Serving the Bolt app over HTTP: gunicorn in production, a threaded server for local mode and tests."""

from __future__ import annotations

import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

EVENTS_PATH = "/slack/events"


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


def slack_wsgi(app: App) -> SlackRequestHandler:
    return SlackRequestHandler(app, path=EVENTS_PATH)


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
