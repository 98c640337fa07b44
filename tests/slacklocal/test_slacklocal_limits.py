"""Slack's limits in the stand-in, seen through a real slack_sdk WebClient: message sizes and rate tiers."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler
from slack_sdk.models import blocks as kit

from slacklocal import SLACK_RATE_LIMITS, Limit, SlackWebAPI
from slacklocal import limits as slack_limits

TOKEN = "xoxb-local-test"  # the conftest's `api` fixture token
CHANNEL = "C0MIGRATE"
Send = Callable[..., Any]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(text: str = "Approve", value: str = "req-1") -> dict[str, Any]:
    button = {"type": "button", "action_id": "approve", "text": {"type": "plain_text", "text": text}, "value": value}
    return {"type": "actions", "elements": [button]}


def _senders(web: WebClient) -> dict[str, Send]:
    """The three methods that carry a message, each called the way the bot calls it."""
    card = web.chat_postMessage(channel=CHANNEL, text="card")["ts"]
    return {
        "chat.postMessage": lambda **m: web.chat_postMessage(channel=CHANNEL, **m),
        "chat.update": lambda **m: web.chat_update(channel=CHANNEL, ts=card, **m),
        "chat.postEphemeral": lambda **m: web.chat_postEphemeral(channel=CHANNEL, user="U1ALICE", **m),
    }


METHODS = ["chat.postMessage", "chat.update", "chat.postEphemeral"]

# (what, blocks just within Slack's limit, the same one character or item over, where Slack points)
AT_THE_LIMIT = [
    ("50 blocks", [{"type": "divider"}] * 50, [{"type": "divider"}] * 51, "/blocks"),
    ("section text", [_section("x" * 3000)], [_section("x" * 3001)], "/blocks/0/text/text"),
    (
        "context text",
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "x" * 3000}]}],
        [{"type": "context", "elements": [{"type": "mrkdwn", "text": "x" * 3001}]}],
        "/blocks/0/elements/0/text",
    ),
    (
        "header text",
        [{"type": "header", "text": {"type": "plain_text", "text": "x" * 150}}],
        [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
        "/blocks/0/text/text",
    ),
    ("button text", [_button(text="x" * 75)], [_button(text="x" * 76)], "/blocks/0/elements/0/text/text"),
    ("button value", [_button(value="x" * 2000)], [_button(value="x" * 2001)], "/blocks/0/elements/0/value"),
]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("what", "fits", "too_big", "pointer"), AT_THE_LIMIT, ids=[c[0] for c in AT_THE_LIMIT])
def test_block_limits_answer_invalid_blocks_like_slack(
    api: SlackWebAPI, web: WebClient, method: str, what: str, fits: list[Any], too_big: list[Any], pointer: str
) -> None:
    send = _senders(web)[method]
    assert send(text="fallback", blocks=fits)["ok"]

    with pytest.raises(SlackApiError) as err:
        send(text="fallback", blocks=too_big)

    answer = err.value.response.data
    assert answer["error"] == "invalid_blocks"
    assert len(answer["errors"]) == 1 and answer["errors"][0].endswith(f"[json-pointer:{pointer}]")
    assert answer["response_metadata"]["messages"] == [f"[ERROR] {answer['errors'][0]}"]
    assert api.calls[-1].answer == answer  # the rejection is in the call log like any call


@pytest.mark.parametrize("method", METHODS)
def test_message_text_over_40000_characters_is_msg_too_long(api: SlackWebAPI, web: WebClient, method: str) -> None:
    send = _senders(web)[method]
    assert send(text="x" * 40_000)["ok"]
    with pytest.raises(SlackApiError) as err:
        send(text="x" * 40_001)
    assert err.value.response["error"] == "msg_too_long"


def test_a_rejected_message_is_not_stored(api: SlackWebAPI, web: WebClient) -> None:
    card = web.chat_postMessage(channel=CHANNEL, text="card", blocks=[_section("awaiting approval")])["ts"]
    with pytest.raises(SlackApiError):
        web.chat_update(channel=CHANNEL, ts=card, text="x", blocks=[_section("")])  # empty text: Slack says no
    with pytest.raises(SlackApiError):
        web.chat_postMessage(channel=CHANNEL, thread_ts=card, text="x", blocks=[_section("y" * 3001)])

    stored = api.store.parent(CHANNEL, card)
    assert stored is not None and (stored.edits, list(stored.blocks)) == (0, [_section("awaiting approval")])
    assert api.store.replies(CHANNEL, card) == []


def test_blocks_that_are_not_json_are_invalid_blocks_format(api: SlackWebAPI) -> None:
    body = f"channel={CHANNEL}&text=hi&blocks=[{{not json"
    request = urllib.request.Request(
        api.base_url + "chat.postMessage",
        data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request) as resp:
        assert json.load(resp) == {"ok": False, "error": "invalid_blocks_format"}


def test_the_numbers_are_slack_sdks_own() -> None:
    # If slack_sdk's Block Kit models change a limit, this says so.
    assert kit.SectionBlock.text_max_length == slack_limits.SECTION_TEXT
    assert kit.SectionBlock.fields_max_length == slack_limits.SECTION_FIELDS
    assert kit.HeaderBlock.text_max_length == slack_limits.HEADER_TEXT
    assert kit.ButtonElement.text_max_length == slack_limits.BUTTON_TEXT
    assert kit.ButtonElement.value_max_length == slack_limits.BUTTON_VALUE
    assert kit.ButtonElement.url_max_length == slack_limits.BUTTON_URL
    assert kit.ActionsBlock.elements_max_length == slack_limits.ACTIONS_ELEMENTS
    assert kit.ContextBlock.elements_max_length == slack_limits.CONTEXT_ELEMENTS


# -- rate limits -----------------------------------------------------------------------------


def test_rate_limits_are_off_by_default(api: SlackWebAPI, web: WebClient) -> None:
    ts = web.chat_postMessage(channel=CHANNEL, text="progress")["ts"]
    for i in range(60):  # more than Tier 3 allows in a minute
        web.chat_update(channel=CHANNEL, ts=ts, text=f"step {i}")
    assert all(c.status == 200 for c in api.calls)


def test_over_the_limit_is_429_with_retry_after_as_slack_answers() -> None:
    with SlackWebAPI(TOKEN, rate_limits={"chat.update": Limit(3, per=3.0)}) as api:
        web = WebClient(token=TOKEN, base_url=api.base_url)
        ts = web.chat_postMessage(channel=CHANNEL, text="progress")["ts"]
        for i in range(3):
            web.chat_update(channel=CHANNEL, ts=ts, text=f"step {i}")
        with pytest.raises(SlackApiError) as err:
            web.chat_update(channel=CHANNEL, ts=ts, text="step 3")

        response = err.value.response
        assert (response.status_code, response.data) == (429, {"ok": False, "error": "ratelimited"})
        assert response.headers["Retry-After"] == "1"  # one call is earned back each second
        refused = [c for c in api.calls_to("chat.update") if c.status == 429]
        assert len(refused) == 1 and refused[0].params["text"] == "step 3"
        card = api.store.parent(CHANNEL, ts)
        assert card is not None and card.text == "step 2"


def test_slack_sdks_retry_handler_waits_and_succeeds() -> None:
    with SlackWebAPI(TOKEN, rate_limits={"chat.update": Limit(3, per=3.0)}) as api:
        handlers = [RateLimitErrorRetryHandler(max_retry_count=2)]
        web = WebClient(token=TOKEN, base_url=api.base_url, retry_handlers=handlers)
        ts = web.chat_postMessage(channel=CHANNEL, text="progress")["ts"]
        started = time.monotonic()
        for i in range(4):
            web.chat_update(channel=CHANNEL, ts=ts, text=f"step {i}")
        waited = time.monotonic() - started

        statuses = [c.status for c in api.calls_to("chat.update")]
        assert statuses == [200, 200, 200, 429, 200]  # 4 updates, 5 calls, 1 refused
        assert waited >= 1.0  # the handler slept Retry-After (plus up to a second of jitter)
        card = api.store.parent(CHANNEL, ts)
        assert card is not None and card.text == "step 3"


def test_post_message_is_limited_per_channel_with_a_burst() -> None:
    now = [1000.0]
    with SlackWebAPI(TOKEN, rate_limits=True, clock=lambda: now[0]) as api:
        web = WebClient(token=TOKEN, base_url=api.base_url)
        burst = SLACK_RATE_LIMITS["chat.postMessage"].burst or 1
        for i in range(burst):
            web.chat_postMessage(channel=CHANNEL, text=f"line {i}")
        with pytest.raises(SlackApiError) as err:
            web.chat_postMessage(channel=CHANNEL, text="one too many")
        assert err.value.response.headers["Retry-After"] == "1"
        assert web.chat_postMessage(channel="C0OTHER", text="another channel has its own allowance")["ok"]

        now[0] += 1.0  # one message a second per channel
        assert web.chat_postMessage(channel=CHANNEL, text="a second later")["ok"]
        with pytest.raises(SlackApiError):
            web.chat_postMessage(channel=CHANNEL, text="and straight after")


def test_each_tier_is_slacks() -> None:
    per_minute = {method: limit.calls * 60 / limit.per for method, limit in SLACK_RATE_LIMITS.items()}
    assert per_minute["chat.update"] == 50  # Tier 3
    assert per_minute["users.info"] == per_minute["chat.postEphemeral"] == 100  # Tier 4
    assert per_minute["chat.getPermalink"] == 100  # "special": hundreds a minute, held to Tier 4's floor
    assert per_minute["usergroups.users.list"] == 20  # Tier 2
    assert SLACK_RATE_LIMITS["chat.postMessage"].per_channel


def test_tight_tier_2_limit_on_users_and_groups_from_a_real_minute() -> None:
    now = [0.0]
    limits = {"usergroups.users.list": SLACK_RATE_LIMITS["usergroups.users.list"]}
    users = {"U1ALICE": {"name": "alice"}}
    with SlackWebAPI(
        TOKEN, users=users, usergroups={"S0DBAS": ["U2BOB"]}, rate_limits=limits, clock=lambda: now[0]
    ) as api:
        web = WebClient(token=TOKEN, base_url=api.base_url)
        for _ in range(20):
            web.usergroups_users_list(usergroup="S0DBAS")
        with pytest.raises(SlackApiError) as err:
            web.usergroups_users_list(usergroup="S0DBAS")
        assert err.value.response.headers["Retry-After"] == "3"  # 20 a minute: one every 3 s
        assert web.users_info(user="U1ALICE")["ok"]  # not limited here: only the methods named are
