"""The Slack side of a conversation with the bot: signed slash commands, button clicks, modal
submissions and events.

Payloads have the fields Slack sends, form-encoded as Slack sends them, and are signed with
Slack's v0 scheme (via slack_sdk's SignatureVerifier, the same code that checks them). With a
store, each command and click carries a trigger_id the store knows (``views.open`` exchanges it),
and a submission's answer is applied to the modal as Slack applies it.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from .methods import show_response
from .store import Conversation, Message, Modal

if TYPE_CHECKING:
    from .webapi import SlackWebAPI

# Without a stand-in to serve them, response URLs point nowhere: `.invalid` fails fast.
RESPONSE_URL_BASE = "https://hooks.slack.invalid"


class Reply(NamedTuple):
    status: int
    body: Any  # parsed JSON when the bot answered JSON, otherwise the text ("" for a bare ack)


class SignedSender:
    """POSTs what Slack would POST to the bot's request URL (e.g. http://127.0.0.1:3000/slack/events)."""

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        *,
        api: SlackWebAPI | None = None,
        store: Conversation | None = None,
        user_names: Mapping[str, str] | None = None,
        team_id: str = "T0LOCAL",
        team_domain: str = "local",
        api_app_id: str = "A0MIGRABOT",
        verification_token: str = "local-verification-token",  # deprecated by Slack, still sent
        timeout: float = 10.0,
    ) -> None:
        """With a `store`, ack texts are recorded as ephemerals and clicks carry the stored message.

        With the Web API stand-in as `api` (its store is the default `store`), response URLs point at
        it and work as Slack's do; without, they point nowhere.
        """
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.api = api
        self.store = store if store is not None or api is None else api.store
        self.user_names = dict(user_names or {})
        self.team_id, self.team_domain, self.api_app_id = team_id, team_domain, api_app_id
        self.verification_token = verification_token
        self.timeout = timeout
        self._seq = itertools.count(1)

    # -- what a person does ------------------------------------------------------------------

    def slash_command(
        self,
        command: str,
        text: str,
        user_id: str,
        channel_id: str,
        *,
        channel_name: str = "migrations",
        timestamp: int | None = None,
        signing_secret: str | None = None,
    ) -> Reply:
        """Type `command text` in a channel. Whatever the bot acks with is shown as Slack shows it."""
        n = next(self._seq)
        form = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": self._name(user_id),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url("commands", n, user_id, channel_id),
            "trigger_id": self._trigger_id(n, user_id),
        }
        reply = self.post(urlencode(form), timestamp=timestamp, signing_secret=signing_secret)
        if reply.status == 200 and self.store is not None:
            _show_ack(self.store, reply.body, user_id, channel_id)
        return reply

    def click(
        self,
        action_id: str,
        value: str,
        user_id: str,
        channel_id: str,
        message_ts: str,
        *,
        block_id: str | None = None,
        thread_ts: str | None = None,
        channel_name: str = "migrations",
        timestamp: int | None = None,
        signing_secret: str | None = None,
        trigger_age: float = 0.0,
    ) -> Reply:
        """Click a button on a message. With a store, the payload carries the message as stored,
        and its trigger_id was handed out `trigger_age` seconds ago (past 3, it has expired)."""
        n, name = next(self._seq), self._name(user_id)
        stored = self.store.message(channel_id, message_ts) if self.store is not None else None
        message: dict[str, Any] = stored.as_api() if stored else {"type": "message", "ts": message_ts, "text": ""}
        thread_ts = thread_ts or message.get("thread_ts")
        if thread_ts:
            message["thread_ts"] = thread_ts
        button = _find_button(message.get("blocks", []), action_id)
        action = {
            "type": "button",
            "action_id": action_id,
            "block_id": block_id or button.get("block_id", "actions"),
            "text": button.get("text", {"type": "plain_text", "text": action_id}),
            "value": value,
            "action_ts": f"{time.time():.6f}",
        }
        container = {"type": "message", "message_ts": message_ts, "channel_id": channel_id, "is_ephemeral": False}
        if thread_ts:
            container["thread_ts"] = thread_ts
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user_id, "username": name, "name": name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": container,
            "trigger_id": self._trigger_id(n, user_id, trigger_age),
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": channel_name},
            "message": message,
            "state": {"values": {}},
            "response_url": self._response_url("actions", n, user_id, channel_id, stored, thread_ts),
            "actions": [action],
        }
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, timestamp=timestamp, signing_secret=signing_secret)

    def submit_view(
        self,
        user_id: str,
        values: Mapping[str, str | None] | None = None,
        *,
        view_id: str | None = None,
        view: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        signing_secret: str | None = None,
    ) -> Reply:
        """Press a modal's submit button as `user_id`, with `values` typed into its inputs (by
        action_id; an input left empty is sent as Slack sends it, ``null``). The modal is `user_id`'s
        newest open one in the store, or `view_id`; or `view`, any view at all (a forged one, or
        another person's), which nothing in the store remembers. Slack's own client refuses to send
        an empty required input or one longer than its ``max_length``; this sends what it is given,
        so that the bot's own checks can be tested. The bot's answer is applied to the stored modal
        (``Conversation.answer_submission``): closed, errors shown, or the view updated."""
        n, name = next(self._seq), self._name(user_id)
        modal: Modal | None = None
        if view is None and self.store is not None:
            opened = self.store.modals(user_id, open_only=True)
            modal = self.store.modal(view_id) if view_id else (opened[-1] if opened else None)
            if modal is None:
                raise LookupError(f"no modal open for {user_id}")
        shown = dict(view if view is not None else modal.view if modal else {})
        typed = values or {}
        state = {
            block["block_id"]: {
                block["element"]["action_id"]: {
                    "type": block["element"].get("type", "plain_text_input"),
                    "value": typed.get(block["element"]["action_id"]),
                }
            }
            for block in shown.get("blocks", [])
            if block.get("type") == "input" and "block_id" in block and "action_id" in block.get("element", {})
        }
        payload: dict[str, Any] = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": {"id": user_id, "username": name, "name": name, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": self._trigger_id(n, user_id),
            "view": {
                "private_metadata": "",
                "callback_id": "",
                **shown,
                "id": modal.id if modal else shown.get("id", f"V{n:010d}"),
                "team_id": self.team_id,
                "state": {"values": state},
                "hash": modal.hash if modal else shown.get("hash", ""),
                "app_id": self.api_app_id,
            },
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        body = urlencode({"payload": json.dumps(payload)})
        reply = self.post(body, timestamp=timestamp, signing_secret=signing_secret)
        if reply.status == 200 and modal is not None and self.store is not None:
            self.store.answer_submission(modal.id, reply.body)
        return reply

    def event(
        self,
        type: str,
        user_id: str,
        *,
        channel_id: str = "D0HOME",
        tab: str = "home",
        timestamp: int | None = None,
        signing_secret: str | None = None,
        **fields: Any,
    ) -> Reply:
        """An Events API delivery (JSON, an ``event_callback``), e.g. ``app_home_opened`` when
        `user_id` opens the app's Home tab; `fields` go into the event as they are."""
        now = time.time()
        event: dict[str, Any] = {"type": type, "user": user_id, "channel": channel_id, "event_ts": f"{now:.6f}"}
        if type == "app_home_opened":
            event["tab"] = tab
        event.update(fields)
        payload = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(now),
        }
        body = json.dumps(payload)
        return self.post(body, timestamp=timestamp, signing_secret=signing_secret, content_type="application/json")

    # -- the wire ----------------------------------------------------------------------------

    def post(
        self,
        body: str,
        *,
        timestamp: int | None = None,
        signing_secret: str | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> Reply:
        """Sign a body (form-encoded, or JSON for events) as Slack does and POST it to the bot."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        verifier = SignatureVerifier(signing_secret or self.signing_secret)
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body) or "",
        }
        request = urllib.request.Request(self.bot_url, data=body.encode("utf-8"), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return Reply(resp.status, _decode(resp.headers.get_content_type(), resp.read()))
        except urllib.error.HTTPError as err:  # 401 for a bad signature is an answer, not a failure
            return Reply(err.code, _decode(err.headers.get_content_type(), err.read()))

    def _name(self, user_id: str) -> str:
        return self.user_names.get(user_id, user_id)

    def _response_url(
        self,
        kind: str,
        n: int,
        user_id: str,
        channel_id: str,
        original: Message | None = None,
        thread_ts: str | None = None,
    ) -> str:
        if self.api is not None:
            return self.api.methods.issue_response_url(user_id, channel_id, original, thread_ts)
        return f"{RESPONSE_URL_BASE}/{kind}/{self.team_id}/{n}/{uuid.uuid4().hex}"

    def _trigger_id(self, n: int, user_id: str, age: float = 0.0) -> str:
        """Slack's form, "12345.98765.abcd2358fdea"; one the store knows when there is one."""
        if self.store is not None:
            return self.store.issue_trigger(user_id, age=age)
        return f"{n}.{int(time.time())}.{uuid.uuid4().hex}"


def _show_ack(store: Conversation, body: Any, user_id: str, channel_id: str) -> None:
    # Bolt's ack(...) becomes the HTTP response: plain text for ack("text"), JSON when it has
    # blocks or options. Slack shows either to the requester only, unless response_type=in_channel.
    if isinstance(body, str):
        body = {"text": body}
    if isinstance(body, dict) and (body.get("text") or body.get("blocks")):
        show_response(store, body, user_id, channel_id)


def _find_button(blocks: list[dict[str, Any]], action_id: str) -> dict[str, Any]:
    """The button with `action_id` (plus its block's block_id), or {} if the message has none."""
    for block in blocks:
        candidates = list(block.get("elements", [])) + ([block["accessory"]] if "accessory" in block else [])
        for element in candidates:
            if element.get("action_id") == action_id:
                return {**element, "block_id": block.get("block_id", "actions")}
    return {}


def _decode(content_type: str, data: bytes) -> Any:
    text = data.decode("utf-8", "replace")
    return json.loads(text) if content_type == "application/json" and text else text
