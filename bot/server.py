"""Serving the Bolt app over HTTP: gunicorn in production, a threaded server for local mode and tests.

Two gates stand before Bolt. ``bounded`` checks the envelope: a body longer than
``MAX_BODY_BYTES`` (Slack's largest posts, a click carrying a 50-block message, stay well under)
is answered 413 unread, one that is not UTF-8 400, a timestamp or signature header not in Slack's
form (ASCII digits; ``v0=`` and 64 hex digits) 401 — Bolt would fail with a 500 reading them.
``_SlackDoor`` then reads the body as the shapes Slack sends this bot, a slash command form, a
``block_actions`` payload, a ``view_submission`` (the Deny dialog's reason) or an Events API
``app_home_opened`` callback (JSON), copied field by field with the types Slack uses, so neither
Bolt nor a listener ever meets an unexpected shape.
Signatures and the five-minute replay window are Bolt's checks, run on the raw body.

Who is told what: a request rejected before its signature is checked (a bad envelope, a bad
signature, a stale timestamp) is answered 4xx and logged, never audited — unauthenticated traffic
must not be able to fill the system of record. A signed request is always answered and, when it is
not something the bot takes (malformed, or no listener for it), answered 400/404 and audited as
``input.refused``; the listeners audit their own refusals.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any, Self
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.db import close_old_connections, connections
from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.request.internals import build_context

from bot.endpoints import with_endpoints
from bot.refusals import audit_refusal
from slackui.home import OPEN_THREAD

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 1024 * 1024
# Explicit ASCII classes: ``str.isdigit`` and ``int`` accept "²" or "٣", which Bolt then fails on.
_DIGITS = re.compile(r"[0-9]{1,12}")  # a Content-Length or a request timestamp
_SIGNATURE = re.compile(r"(v0=[0-9a-f]{64})?")
_USER_ID = re.compile(r"[UW][A-Z0-9]{1,31}")
_CHANNEL_ID = re.compile(r"[CDG][A-Z0-9]{1,31}")
_TRIGGER_ID = re.compile(r"[A-Za-z0-9._-]{1,255}")
# What Slack sends with a slash command and with a click; every other field is dropped unread.
_COMMAND_FIELDS = (
    "token", "team_id", "team_domain", "enterprise_id", "enterprise_name", "channel_id", "channel_name",
    "user_id", "user_name", "command", "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id",
)  # fmt: skip
_CLICK_FIELDS = ("api_app_id", "token", "trigger_id", "response_url")
_ACTION_FIELDS = ("type", "action_id", "block_id", "value", "action_ts")
_HOME_LINK = re.compile(f"{OPEN_THREAD}:[0-9]{{1,19}}")
_VIEW_FIELDS = ("id", "type", "callback_id", "private_metadata", "hash", "team_id", "app_id")
MAX_INPUTS = 100  # a view holds at most 100 blocks, so at most 100 inputs
_EVENT_FIELDS = ("token", "team_id", "api_app_id", "type", "event_id")


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            # A thread per request (robust to a slow client): its connection, which ``bot.app``
            # keeps for a thread's next request, must end with it.
            connections.close_all()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        pass


class BackgroundServer:
    """The app on 127.0.0.1 in a daemon thread; ``url`` is where Slack (or the stand-in) posts."""

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = make_server(host, port, slack_wsgi(app), _ThreadingWSGIServer, _QuietHandler)
        self.url = f"http://{host}:{self._server.server_port}{EVENTS_PATH}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="bot-http", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def slack_wsgi(app: App) -> Callable[..., Iterable[bytes]]:
    """Slack's request URL, and beside it the unsigned ``/healthz`` and ``/metrics`` (``bot.endpoints``)."""
    return with_endpoints(bounded(_SlackDoor(app, path=EVENTS_PATH)))


class Malformed(ValueError):
    """A body that is not one Slack sends this bot; the text says what is wrong with it."""


def slack_body(raw: str) -> dict[str, Any]:
    """The body as this bot takes it, or ``Malformed``. Parsed as a form whatever its content type:
    Slack posts commands and clicks form-encoded (a command whose text holds the word "payload" is
    still a command, which Bolt's own parser gets wrong)."""
    if raw.lstrip().startswith("{"):  # the Events API posts JSON
        return _event(raw)
    form = dict(parse_qsl(raw, keep_blank_values=True))
    if "payload" in form:
        return _click(form["payload"])
    if "ssl_check" in form:  # Slack's periodic certificate check, answered by Bolt
        return {key: form[key] for key in ("ssl_check", "token") if key in form}
    body = {key: form[key] for key in _COMMAND_FIELDS if key in form}
    if not body.get("command", "").startswith("/"):
        raise Malformed("neither a slash command nor a button click")
    _check(body.get("user_id"), _USER_ID, "user")
    _check(body.get("channel_id"), _CHANNEL_ID, "channel")
    if "trigger_id" in body:
        _check(body["trigger_id"], _TRIGGER_ID, "trigger_id")
    return body


def _click(text: str) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except Exception:  # noqa: BLE001 - ValueError, RecursionError for deep nesting: any failure is a bad payload
        raise Malformed("the payload is not JSON") from None
    if isinstance(payload, dict) and payload.get("type") == "view_submission":
        return _submission(payload)
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise Malformed("neither a slash command nor a button click")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not all(
        isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions
    ):
        raise Malformed("a click without its action")
    user = _strings(payload.get("user"), ("id", "username", "name", "team_id"))
    channel = _strings(payload.get("channel"), ("id", "name"))
    _check(user.get("id"), _USER_ID, "user")
    container = payload.get("container")
    on_home = isinstance(container, dict) and container.get("type") == "view" and "id" not in channel
    if on_home and all(_HOME_LINK.fullmatch(a["action_id"]) for a in actions):
        # A link button on the Home tab (it opens in the browser; Slack still sends the click,
        # which is only acked): it has no channel, and carries nothing else that is read.
        return {
            "type": "block_actions",
            "user": user,
            "team": _strings(payload.get("team"), ("id", "domain")),
            "container": {"type": "view"},
            "actions": [_strings(action, _ACTION_FIELDS) for action in actions],
            **_strings(payload, _CLICK_FIELDS),
        }
    _check(channel.get("id"), _CHANNEL_ID, "channel")
    return {
        "type": "block_actions",
        "user": user,
        "channel": channel,
        "team": _strings(payload.get("team"), ("id", "domain")),
        "container": _strings(payload.get("container"), ("type", "message_ts", "channel_id", "thread_ts")),
        "actions": [_strings(action, _ACTION_FIELDS) for action in actions],
        **_strings(payload, _CLICK_FIELDS),
    }


def _submission(payload: dict[str, Any]) -> dict[str, Any]:
    """A dialog submitted: who, the view's own strings, and what was typed into its inputs (each
    a string or absent, as Slack sends an empty input: ``null``)."""
    user = _strings(payload.get("user"), ("id", "username", "name", "team_id"))
    _check(user.get("id"), _USER_ID, "user")
    view = payload.get("view")
    # Bolt reads the view's type unguarded (workflow steps): only a modal's submission comes in.
    if not isinstance(view, dict) or not isinstance(view.get("callback_id"), str) or view.get("type") != "modal":
        raise Malformed("a submission without its modal")
    state = view.get("state")
    typed = state.get("values") if isinstance(state, dict) else None
    values: dict[str, dict[str, dict[str, str]]] = {}
    for block_id, inputs in list(typed.items())[:MAX_INPUTS] if isinstance(typed, dict) else []:
        if isinstance(inputs, dict):
            values[block_id] = {
                action_id: _strings(value, ("type", "value"))
                for action_id, value in list(inputs.items())[:MAX_INPUTS]
                if isinstance(value, dict)
            }
    return {
        "type": "view_submission",
        "user": user,
        "team": _strings(payload.get("team"), ("id", "domain")),
        "view": {**_strings(view, _VIEW_FIELDS), "state": {"values": values}},
        **_strings(payload, _CLICK_FIELDS),
    }


def _event(text: str) -> dict[str, Any]:
    """An Events API body: Slack's URL check, or an ``app_home_opened`` callback (the one event
    this bot subscribes to), copied field by field."""
    try:
        payload = json.loads(text)
    except Exception:  # noqa: BLE001 - as in _click
        raise Malformed("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise Malformed("not an event this bot takes")
    if payload.get("type") == "url_verification":
        return _strings(payload, ("type", "token", "challenge"))
    event = payload.get("event")
    if payload.get("type") != "event_callback" or not isinstance(event, dict):
        raise Malformed("not an event this bot takes")
    if event.get("type") != "app_home_opened":
        raise Malformed("not an event this bot takes")
    _check(event.get("user"), _USER_ID, "user")
    body: dict[str, Any] = {
        **_strings(payload, _EVENT_FIELDS),
        "event": _strings(event, ("type", "user", "tab", "channel", "event_ts")),
    }
    if type(payload.get("event_time")) is int:
        body["event_time"] = payload["event_time"]
    return body


def _strings(source: object, keys: Iterable[str]) -> dict[str, str]:
    """The string fields among ``keys`` of ``source`` (nothing if it is not an object)."""
    if not isinstance(source, dict):
        return {}
    return {key: source[key] for key in keys if isinstance(source.get(key), str)}


def _check(value: object, pattern: re.Pattern[str], name: str) -> None:
    if not (isinstance(value, str) and pattern.fullmatch(value)):
        raise Malformed(f"no valid {name} id")


class _SlackDoor(SlackRequestHandler):
    """Bolt behind ``slack_body``: Bolt checks the signature on the raw body but only ever sees the
    parsed body, and a signed request that no listener takes is audited (see the module's doc)."""

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        raw = request.get_body()
        try:
            body, problem = slack_body(raw), ""
        except Malformed as error:
            body, problem = {}, str(error)  # an empty body, which no listener takes
        bolt_request = BoltRequest(body="", query=request.query_string, headers=request.get_headers())
        bolt_request.raw_body, bolt_request.body = raw, body
        bolt_request.context = build_context(BoltContext({}), body)
        response = self.app.dispatch(bolt_request)
        if response.status != 404:  # Bolt's answer when it verified the request but no listener matched
            return response
        reason = problem or "not a command or button this bot takes"
        try:
            audit_refusal(actor=_actor(body), action="input.refused", reason=reason, kind=_kind(body))
        finally:
            close_old_connections()  # this thread is outside Bolt's middleware, which does it otherwise
        return BoltResponse(status=400 if problem else 404, body=reason)


def _actor(body: dict[str, Any]) -> str:
    user = body.get("user") or body.get("event", {}).get("user")
    return str(body.get("user_id") or (user.get("id") if isinstance(user, dict) else user) or "unknown")


def _kind(body: dict[str, Any]) -> str:
    """What was asked for, for the audit trail: the command or the clicked action, cut short."""
    if "event" in body:
        return f"event:{body['event'].get('type', '')}"[:100]
    if "actions" in body:
        return f"{body['type']}:{body['actions'][0]['action_id']}"[:100]
    if "view" in body:
        return f"{body['type']}:{body['view']['callback_id']}"[:100]
    return str(body.get("command", ""))[:100]


def bounded(handler: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """The WSGI ``handler`` behind a check of the envelope: headers, body size and encoding."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        announced = environ.get("CONTENT_LENGTH") or "0"
        length = int(announced) if _DIGITS.fullmatch(announced) else -1
        if not _DIGITS.fullmatch(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "0")) or not _SIGNATURE.fullmatch(
            environ.get("HTTP_X_SLACK_SIGNATURE", "")
        ):
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
        environ["CONTENT_LENGTH"] = str(length)
        return handler(environ, start_response)

    return application


def _refuse(start_response: Callable[..., Any], status: str, text: str) -> list[bytes]:
    log.info("request.rejected status=%r", status)
    data = text.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))])
    return [data]


def serve_with_gunicorn(
    application: Any, *, bind: str, workers: int = 1, threads: int = 8, post_fork: Callable[[], None] | None = None
) -> None:
    """Production HTTP for a WSGI app. One process for the bot (its follow-up pool and group
    cache live in it), threads for concurrency; ``post_fork`` runs in each serving process."""
    from gunicorn.app.base import BaseApplication

    settings: dict[str, Any] = {"bind": bind, "workers": workers, "threads": threads}
    if post_fork is not None:
        settings["post_fork"] = lambda server, worker: post_fork()

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            for key, value in settings.items():
                self.cfg.set(key, value)
            # Newer gunicorn opens a control socket at one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl):
            # the bot, its replicas and the audit server on one host would remove each other's, and
            # it is a management interface nobody here uses.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return application

    _Gunicorn().run()
