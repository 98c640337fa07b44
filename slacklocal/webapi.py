"""A local Slack Web API over real HTTP, for `slack_sdk.WebClient(base_url=api.base_url)`.

This module is transport plus what Slack does before a method runs: routing, the bot token check,
body decoding, rate limits (off unless asked for), outages and injected errors, and the call log.
What each method does lives in `methods.py`; what was posted lives in `store.py`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from .faults import Faults, Mode, Outage
from .limits import SLACK_RATE_LIMITS, Limit, RateLimiter
from .methods import ChannelAccess, WebAPIMethods
from .store import Conversation

log = logging.getLogger(__name__)

# Call-log names of what is not a Web API method: POSTs to an upload URL and to a response_url.
UPLOAD_CALL = "(upload)"
RESPONSE_URL_CALL = "(response_url)"
CLOSED = 0  # the status logged when the connection was closed without an answer (outage "down")

RateLimits = bool | Mapping[str, Limit]  # True: Slack's own numbers (limits.SLACK_RATE_LIMITS)


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]  # without the token
    at: float  # time.time() when it arrived
    answer: dict[str, Any]
    status: int = 200  # the HTTP status; 429 when rate-limited, CLOSED when nothing was answered


@dataclass(frozen=True)
class Response:
    status: int
    answer: dict[str, Any]  # what the call log records; also the JSON body unless `text` is set
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str | None = None  # a plain-text body instead (an upload URL answers "OK - <length>")


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
        rate_limits: RateLimits = False,
        channels_not_joined: Iterable[str] = (),
        private_channels: Iterable[str] = (),
        unknown_channels: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`users` maps id -> {"name": ..., "real_name": ..., "display_name": ...} (the last two
        optional, as in Slack: the real name defaults to the username here, the display name to "");
        `usergroups` maps group id -> user ids.

        `usergroups_available=False` answers `usergroups.users.list` as a free workspace does.
        Every channel exists and has the bot as a member, except those named: `channels_not_joined`
        (public: `not_in_channel`), `private_channels` (private or DM the bot is not in: Slack
        answers `channel_not_found`) and `unknown_channels`. Size limits always apply; rate limits
        only when asked for (see `set_rate_limits`). `clock` times rate limits and response URLs.
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
            response_url=lambda hook_id: f"{self.url}response/{hook_id}",
            clock=clock,
        )
        declared: list[tuple[Iterable[str], ChannelAccess]] = [
            (channels_not_joined, "not_joined"),
            (private_channels, "private"),
            (unknown_channels, "unknown"),
        ]
        for channels, access in declared:
            for channel in channels:
                self.set_channel(channel, access)
        self._clock = clock
        self.limiter: RateLimiter | None = None
        self.set_rate_limits(rate_limits)
        self.faults = Faults()
        self._calls: list[Call] = []
        self._calls_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        # A short poll interval keeps stop() fast; the cost is a few idle wake-ups per second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="slacklocal-webapi", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.faults.end_all()  # stalled requests get their answer instead of hanging their clients
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- how Slack treats the bot: channels, rate limits, bad days ---------------------------

    def set_channel(self, channel: str, access: ChannelAccess) -> None:
        """E.g. `set_channel("C0OPS", "not_joined")`; "member" invites the bot back."""
        self.methods.channels[channel] = access

    def set_rate_limits(self, limits: RateLimits = True) -> None:
        """True: Slack's numbers; a mapping: those (e.g. {"chat.update": Limit(5, per=10)}); False: off."""
        chosen = SLACK_RATE_LIMITS if limits is True else limits or {}
        self.limiter = RateLimiter(chosen, self._clock) if chosen else None

    def outage(self, seconds: float | None = None, mode: Mode = "down", methods: Iterable[str] | None = None) -> Outage:
        """Slack fails for `seconds` (None: until `end()` or the end of a `with` block).

        "down" closes each connection unanswered, "error" answers 500 `internal_error`, "stall"
        holds each request until the outage is over. `methods` limits it to those call-log names.
        """
        return self.faults.outage(seconds, mode, methods)

    def fail_next(self, method: str, error: str, count: int = 1) -> None:
        """The next `count` calls of `method` answer `error` ("ratelimited": a 429, Retry-After 1)."""
        self.faults.fail_next(method, error, count)

    # -- the call log ------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every request received, oldest first."""
        with self._calls_lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # -- request handling (called from the server's threads) ---------------------------------

    def handle_api(self, method: str, params: dict[str, Any], bearer: str | None) -> Response:
        # Slack takes the token from the Authorization header or, in form bodies, a `token` field.
        form_token = params.pop("token", None)
        return self._serve(method, params, lambda: self._api(method, params, bearer or form_token))

    def handle_upload(self, file_id: str, data: bytes) -> Response:
        def upload() -> Response:
            if self.methods.receive_upload(file_id, data):
                return Response(HTTPStatus.OK, {"ok": True}, text=f"OK - {len(data)}")
            return Response(HTTPStatus.NOT_FOUND, {"ok": False}, text="Not Found")

        return self._serve(UPLOAD_CALL, {"file_id": file_id, "length": len(data)}, upload)

    def handle_response_url(self, hook_id: str, payload: dict[str, Any]) -> Response:
        def respond() -> Response:
            status, answer = self.methods.respond(hook_id, payload)
            return Response(status, answer)

        return self._serve(RESPONSE_URL_CALL, {"hook": hook_id, **payload}, respond)

    def handle_unreadable(self, name: str, response: Response) -> Response:
        """A body that could not be decoded: answered and logged, nothing run."""
        return self._serve(name, {}, lambda: response)

    def _serve(self, name: str, params: dict[str, Any], work: Callable[[], Response]) -> Response:
        """Answer a request unless an outage covers it; log it either way."""
        arrived = time.time()
        while (outage := self.faults.outage_for(name)) is not None and outage.mode == "stall":
            outage.hold()
        if outage is None:
            response = work()
        elif outage.mode == "down":
            response = Response(CLOSED, {"ok": False})
        else:
            response = Response(HTTPStatus.INTERNAL_SERVER_ERROR, {"ok": False, "error": "internal_error"})
        with self._calls_lock:
            self._calls.append(Call(name, params, arrived, response.answer, int(response.status)))
        return response

    def _api(self, method: str, params: dict[str, Any], token: str | None) -> Response:
        if token != self.token:
            return Response(HTTPStatus.OK, {"ok": False, "error": "invalid_auth"})
        error, wait = self.faults.take_failure(method), 0
        if error is None and self.limiter is not None:
            wait = self.limiter.retry_after(method, str(params.get("channel", "")))
            error = "ratelimited" if wait else None
        if error == "ratelimited":
            # As Slack: HTTP 429, whole seconds in Retry-After (slack_sdk's retry handler int()s it).
            answer = {"ok": False, "error": "ratelimited"}
            return Response(HTTPStatus.TOO_MANY_REQUESTS, answer, {"Retry-After": str(wait or 1)})
        if error is not None:
            return Response(HTTPStatus.OK, {"ok": False, "error": error})
        # Slack answers errors with HTTP 200 and ok=false; slack_sdk raises SlackApiError on that.
        return Response(HTTPStatus.OK, self.methods.call(method, params))


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


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None


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
        api, url = self.server.api, urlsplit(self.path)
        if url.path.startswith("/api/"):
            self._api(url.path.removeprefix("/api/"), url.query, body)
        elif url.path.startswith("/upload/") and self.command == "POST":
            self._send(api.handle_upload(url.path.removeprefix("/upload/"), body))
        elif url.path.startswith("/response/") and self.command == "POST":
            payload = _json_object(body)
            if payload is None:
                rejected = Response(HTTPStatus.BAD_REQUEST, {"ok": False, "error": "invalid_payload"})
                self._send(api.handle_unreadable(RESPONSE_URL_CALL, rejected))
            else:
                self._send(api.handle_response_url(url.path.removeprefix("/response/"), payload))
        else:
            self._reply(HTTPStatus.NOT_FOUND, "text/plain", "Not Found")

    def _api(self, method: str, query: str, body: bytes) -> None:
        try:
            params = _params(query, self.headers.get_content_type(), body)
        except ValueError:
            rejected = Response(HTTPStatus.OK, {"ok": False, "error": "invalid_json"})
            self._send(self.server.api.handle_unreadable(method, rejected))
            return
        auth = self.headers.get("Authorization", "")
        bearer = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        self._send(self.server.api.handle_api(method, params, bearer))

    def _send(self, response: Response) -> None:
        if response.status == CLOSED:
            self.close_connection = True  # hang up without a word, as a dead load balancer does
            return
        if response.text is not None:
            self._reply(response.status, "text/plain", response.text, response.headers)
        else:
            self._reply(response.status, "application/json", json.dumps(response.answer), response.headers)

    def _reply(self, status: int, content_type: str, text: str, headers: Mapping[str, str] | None = None) -> None:
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        try:
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a stalled request timed out)
            log.debug("client left before the answer to %s", self.path)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)
