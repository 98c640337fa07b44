"""SignedSender against a real Bolt app served over HTTP: Bolt's own signature check is the judge."""

from __future__ import annotations

import time
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from slacklocal import SignedSender, SlackWebAPI

CHANNEL = "C0MIGRATE"


def _button(action_id: str, label: str) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "value": "req-42", "text": {"type": "plain_text", "text": label}}


def _count_commands(app: App) -> list[str]:
    reached: list[str] = []

    @app.command("/migrate")
    def migrate(ack: Ack, command: dict[str, Any]) -> None:
        reached.append(command["text"])
        ack()

    return reached


def test_signed_slash_command_reaches_the_listener(bolt_app: App, sender: SignedSender) -> None:
    seen: list[dict[str, Any]] = []

    @bolt_app.command("/migrate")
    def migrate(ack: Ack, command: dict[str, Any]) -> None:
        seen.append(command)
        ack()

    first = sender.slash_command("/migrate", "plan staging", "U1ALICE", CHANNEL)
    second = sender.slash_command("/migrate", "envs", "U1ALICE", CHANNEL)

    assert (first.status, first.body) == (200, "")
    assert second.status == 200
    command = seen[0]
    assert (command["text"], command["user_id"], command["user_name"], command["channel_id"]) == (
        "plan staging",
        "U1ALICE",
        "alice",
        CHANNEL,
    )
    assert {"team_id", "team_domain", "api_app_id", "response_url", "channel_name"} <= command.keys()
    assert seen[0]["trigger_id"] != seen[1]["trigger_id"]


def test_ack_text_is_shown_to_the_requester_only(bolt_app: App, sender: SignedSender, api: SlackWebAPI) -> None:
    @bolt_app.command("/migrate")
    def migrate(ack: Ack) -> None:
        ack("Unknown verb `rollbak`. Try: plan, rollback, showmigrations")

    reply = sender.slash_command("/migrate", "rollbak staging", "U1ALICE", CHANNEL)

    # Bolt answers a text-only ack as text/plain.
    assert (reply.status, reply.body) == (200, "Unknown verb `rollbak`. Try: plan, rollback, showmigrations")
    (shown,) = api.store.ephemerals("U1ALICE")
    assert (shown.channel, shown.text) == (CHANNEL, reply.body)
    assert api.store.messages(CHANNEL) == []


def test_ack_blocks_are_shown_to_the_requester_only(bolt_app: App, sender: SignedSender, api: SlackWebAPI) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Environments*: dev, staging, prod"}}]

    @bolt_app.command("/migrate")
    def migrate(ack: Ack) -> None:
        ack(text="Environments: dev, staging, prod", blocks=blocks)

    reply = sender.slash_command("/migrate", "envs", "U1ALICE", CHANNEL)

    assert reply.status == 200 and reply.body["blocks"] == blocks  # Bolt answers JSON
    (shown,) = api.store.ephemerals("U1ALICE")
    assert list(shown.blocks) == blocks


def test_wrong_secret_is_rejected_with_401(bolt_app: App, sender: SignedSender, api: SlackWebAPI) -> None:
    reached = _count_commands(bolt_app)

    reply = sender.slash_command("/migrate", "envs", "U1ALICE", CHANNEL, signing_secret="not-the-secret")

    assert reply.status == 401 and reached == []
    assert api.store.ephemerals() == []


def test_timestamp_older_than_five_minutes_is_rejected(bolt_app: App, sender: SignedSender) -> None:
    reached = _count_commands(bolt_app)
    now = int(time.time())

    stale = sender.slash_command("/migrate", "envs", "U1ALICE", CHANNEL, timestamp=now - 5 * 60 - 10)
    fresh = sender.slash_command("/migrate", "envs", "U1ALICE", CHANNEL, timestamp=now - 60)

    assert (stale.status, fresh.status) == (401, 200)
    assert reached == ["envs"]


def test_click_reaches_the_action_handler_which_replies_in_the_thread(
    bolt_app: App, sender: SignedSender, api: SlackWebAPI, web: WebClient
) -> None:
    card = web.chat_postMessage(channel=CHANNEL, text="rollback staging marketplace 0002")["ts"]
    buttons = [
        {
            "type": "actions",
            "block_id": "decision",
            "elements": [_button("approve", "Approve"), _button("deny", "Deny")],
        }
    ]
    plan = web.chat_postMessage(channel=CHANNEL, thread_ts=card, text="plan", blocks=buttons)["ts"]
    clicks: list[dict[str, Any]] = []

    @bolt_app.action("approve")
    def approve(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        clicks.append(body)
        # After the ack, as a real handler does: the answer arrives asynchronously.
        client.chat_postMessage(channel=body["channel"]["id"], thread_ts=body["message"]["thread_ts"], text="Approved")

    reply = sender.click("approve", "req-42", "U2BOB", CHANNEL, plan)

    assert reply.status == 200
    api.store.wait_for(lambda: any(m.text == "Approved" for m in api.store.replies(CHANNEL, card)), timeout=5)
    (body,) = clicks
    action = body["actions"][0]
    assert (body["user"]["id"], action["value"], action["block_id"]) == ("U2BOB", "req-42", "decision")
    assert body["container"]["message_ts"] == body["message"]["ts"] == plan
    assert body["message"]["blocks"] == buttons


def test_click_with_bad_signature_never_reaches_the_handler(bolt_app: App, sender: SignedSender) -> None:
    clicks: list[str] = []

    @bolt_app.action("approve")
    def approve(ack: Ack) -> None:
        clicks.append("approve")
        ack()

    reply = sender.click("approve", "req-1", "U2BOB", CHANNEL, "1700000000.000100", signing_secret="forged")

    assert reply.status == 401 and clicks == []
