"""A local Slack Web API over real HTTP, for `slack_sdk.WebClient(base_url=api.base_url)`.

This module is only transport: routing, the bot token check, body decoding and the call log.
What each method does lives in `methods.py`; what was posted lives in `store.py`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .methods import WebAPIMethods
from .store import Conversation

log = logging.getLogger(__name__)

UPLOAD_CALL = "(upload)"  # the call-log name of a POST to an upload URL (not a Web API method)


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]  # without the token
    at: float  # time.time() when it arrived
    answer: dict[str, Any]


class SlackWebAPI:
    """Serves the Web API methods migrabot uses on 127.0.0.1 (port 0 = any free port).

    The socket is bound at construction, so `base_url` is known before `start()`.
    One instance serves once: `stop()` closes the socket for good.
    """

    def __init__(
        self,
        token: str,
        *,
        bot_user_id: str = "U0MIGRABOT",
        bot_name: str = "migrabot",
        users: Mapping[str, Mapping[str, str]] | None = None,
        usergroups: Mapping[str, list[str]] | None = None,
        usergroups_available: bool = True,
        store: Conversation | None = None,
        team_id: str = "T0LOCAL",
        team_domain: str = "local",
        port: int = 0,
    ) -> None:
        """`users` maps id -> {"name": ..., "real_name": ...}; `usergroups` maps group id -> user ids.

        `usergroups_available=False` answers `usergroups.users.list` as a free workspace does.
        """
        self.token = token
        self.store = store if store is not None else Conversation()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.api = self
        self.url = f"http://127.0.0.1:{self._server.server_port}/"
        self.base_url = f"{self.url}api/"
        self.methods = WebAPIMethods(
            self.store,
            bot_user_id=bot_user_id,
            bot_name=bot_name,
            team_id=team_id,
            team_domain=team_domain,
            users=users or {},
            usergroups=usergroups or {},
            usergroups_available=usergroups_available,
            upload_url=lambda file_id: f"{self.url}upload/{file_id}",
        )
        self._calls: list[Call] = []
        self._calls_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> SlackWebAPI:
        # A short poll interval keeps stop() fast; the cost is a few idle wake-ups per second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="slacklocal-webapi", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> SlackWebAPI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- the call log ------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every request received, oldest first."""
        with self._calls_lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def _record(self, method: str, params: dict[str, Any], answer: dict[str, Any]) -> None:
        with self._calls_lock:
            self._calls.append(Call(method, params, time.time(), answer))

    # -- request handling (called from the server's threads) ---------------------------------

    def handle_api(self, method: str, params: dict[str, Any], bearer: str | None) -> dict[str, Any]:
        # Slack takes the token from the Authorization header or, in form bodies, a `token` field.
        form_token = params.pop("token", None)
        if (bearer or form_token) != self.token:
            answer = {"ok": False, "error": "invalid_auth"}
        else:
            answer = self.methods.call(method, params)
        self._record(method, params, answer)
        return answer

    def handle_upload(self, file_id: str, data: bytes) -> bool:
        accepted = self.methods.receive_upload(file_id, data)
        self._record(UPLOAD_CALL, {"file_id": file_id, "length": len(data)}, {"ok": accepted})
        return accepted


def _params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """Query-string plus body parameters; slack_sdk sends JSON for some methods, forms for others."""
    params: dict[str, Any] = dict(parse_qsl(query))
    if content_type == "application/json" and body:
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ValueError("a JSON body must be an object")
        params.update(decoded)
    elif content_type == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode("utf-8")))
    return params


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: SlackWebAPI


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # Slack accepts GET with query parameters for every method
        self._dispatch(b"")

    def do_POST(self) -> None:
        self._dispatch(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _dispatch(self, body: bytes) -> None:
        url = urlsplit(self.path)
        if url.path.startswith("/api/"):
            self._api(url.path.removeprefix("/api/"), url.query, body)
        elif url.path.startswith("/upload/") and self.command == "POST":
            accepted = self.server.api.handle_upload(url.path.removeprefix("/upload/"), body)
            status = HTTPStatus.OK if accepted else HTTPStatus.NOT_FOUND
            self._reply(status, "text/plain", f"OK - {len(body)}" if accepted else "Not Found")
        else:
            self._reply(HTTPStatus.NOT_FOUND, "text/plain", "Not Found")

    def _api(self, method: str, query: str, body: bytes) -> None:
        try:
            params = _params(query, self.headers.get_content_type(), body)
        except ValueError:
            self._reply(HTTPStatus.OK, "application/json", json.dumps({"ok": False, "error": "invalid_json"}))
            return
        auth = self.headers.get("Authorization", "")
        bearer = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        answer = self.server.api.handle_api(method, params, bearer)
        # Slack answers errors with HTTP 200 and ok=false; slack_sdk raises SlackApiError on that.
        self._reply(HTTPStatus.OK, "application/json", json.dumps(answer))

    def _reply(self, status: HTTPStatus, content_type: str, text: str) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)
