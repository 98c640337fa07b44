"""Where the bot may post (channels it is not in) and the slash command's response_url, as Slack has them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from slacklocal import SignedSender, SlackWebAPI
from slacklocal.render import render_ephemeral, render_thread

TOKEN = "xoxb-local-test"  # the conftest's `api` fixture token and secret
SIGNING_SECRET = "local-signing-secret"
CHANNEL, PUBLIC, SECRET, GONE = "C0MIGRATE", "C0RANDOM", "G0SECRET", "C0GONE"
Send = Callable[[WebClient, str], Any]

SENDS: dict[str, Send] = {
    "chat.postMessage": lambda web, channel: web.chat_postMessage(channel=channel, text="plan"),
    "chat.update": lambda web, channel: web.chat_update(channel=channel, ts="1.000100", text="plan"),
    "chat.postEphemeral": lambda web, channel: web.chat_postEphemeral(channel=channel, user="U1ALICE", text="no"),
}


@pytest.fixture
def guarded() -> Iterator[SlackWebAPI]:
    users = {"U1ALICE": {"name": "alice"}}
    api = SlackWebAPI(
        TOKEN, users=users, channels_not_joined=[PUBLIC], private_channels=[SECRET], unknown_channels=[GONE]
    )
    with api:
        yield api


@pytest.mark.parametrize("method", SENDS)
@pytest.mark.parametrize(
    ("channel", "error"), [(PUBLIC, "not_in_channel"), (SECRET, "channel_not_found"), (GONE, "channel_not_found")]
)
def test_channels_the_bot_cannot_post_in(guarded: SlackWebAPI, method: str, channel: str, error: str) -> None:
    web = WebClient(token=TOKEN, base_url=guarded.base_url)
    with pytest.raises(SlackApiError) as err:
        SENDS[method](web, channel)
    assert err.value.response["error"] == error
    assert guarded.calls_to(method)[-1].answer == {"ok": False, "error": error}
    assert guarded.store.messages(channel) == [] and guarded.store.ephemerals() == []


def test_every_other_channel_exists_with_the_bot_in_it(guarded: SlackWebAPI) -> None:
    assert WebClient(token=TOKEN, base_url=guarded.base_url).chat_postMessage(channel="C0ANY", text="hi")["ok"]


def test_inviting_and_removing_the_bot(guarded: SlackWebAPI) -> None:
    web = WebClient(token=TOKEN, base_url=guarded.base_url)
    guarded.set_channel(PUBLIC, "member")
    card = web.chat_postMessage(channel=PUBLIC, text="awaiting approval")["ts"]

    guarded.set_channel(PUBLIC, "not_joined")  # someone removed the bot from the channel
    with pytest.raises(SlackApiError) as err:
        web.chat_update(channel=PUBLIC, ts=card, text="approved")
    assert err.value.response["error"] == "not_in_channel"
    stored = guarded.store.parent(PUBLIC, card)
    assert stored is not None and stored.text == "awaiting approval"


# -- response_url -----------------------------------------------------------------------------


def _command_urls(bolt_app: App) -> list[str]:
    urls: list[str] = []

    @bolt_app.command("/migrate")
    def migrate(ack: Ack, command: dict[str, Any]) -> None:
        urls.append(command["response_url"])
        ack()

    return urls


@pytest.fixture
def served_sender(bot_url: str, api: SlackWebAPI) -> SignedSender:
    return SignedSender(bot_url, SIGNING_SECRET, api=api, user_names={"U1ALICE": "alice"})


def test_the_response_url_points_at_the_stand_in(bolt_app: App, served_sender: SignedSender, api: SlackWebAPI) -> None:
    urls = _command_urls(bolt_app)
    served_sender.slash_command("/migrate", "envs", "U1ALICE", CHANNEL)
    (url,) = urls
    assert url.startswith(f"{api.url}response/")
    assert served_sender.store is api.store


def test_response_url_takes_five_answers_then_refuses(
    bolt_app: App, served_sender: SignedSender, api: SlackWebAPI
) -> None:
    api.set_channel(SECRET, "private")  # the bot is not in the channel: response_url still reaches the user
    urls = _command_urls(bolt_app)
    served_sender.slash_command("/migrate", "showmigrations staging", "U1ALICE", SECRET)
    hook = WebhookClient(urls[0])

    answers = [hook.send(text=f"answer {i}", response_type="ephemeral") for i in range(6)]

    assert [a.status_code for a in answers] == [200] * 5 + [404]
    assert json.loads(answers[0].body) == {"ok": True}
    assert json.loads(answers[5].body) == {"ok": False, "error": "used_url"}
    shown = api.store.ephemerals(user="U1ALICE", channel=SECRET)
    assert [e.text for e in shown] == [f"answer {i}" for i in range(5)]
    assert render_ephemeral(shown[0]) == "(only visible to you)\nanswer 0"
    assert [c.status for c in api.calls_to("(response_url)")] == [200] * 5 + [404]


def test_response_url_in_channel_and_replace_original(
    bolt_app: App, served_sender: SignedSender, api: SlackWebAPI
) -> None:
    urls = _command_urls(bolt_app)
    served_sender.slash_command("/migrate", "envs", "U1ALICE", CHANNEL)
    hook = WebhookClient(urls[0])

    assert hook.send(text="Working…").status_code == 200  # ephemeral unless said otherwise
    assert hook.send(text="Environments: dev, staging", replace_original=True).status_code == 200
    assert hook.send(text="For everyone", response_type="in_channel").status_code == 200

    assert [e.text for e in api.store.ephemerals(user="U1ALICE")] == ["Environments: dev, staging"]
    (public,) = api.store.messages(CHANNEL)
    assert (public.text, public.user) == ("For everyone", None)


def test_response_url_expires_after_thirty_minutes() -> None:
    now = [0.0]
    with SlackWebAPI(TOKEN, users={"U1ALICE": {"name": "alice"}}, clock=lambda: now[0]) as api:
        url = api.methods.issue_response_url("U1ALICE", CHANNEL)
        assert WebhookClient(url).send(text="soon").status_code == 200
        now[0] += 30 * 60 + 1
        late = WebhookClient(url).send(text="too late")
        assert (late.status_code, json.loads(late.body)) == (404, {"ok": False, "error": "Expired url"})
        assert WebhookClient(f"{api.url}response/never-issued").send(text="x").status_code == 404


def test_response_url_checks_message_limits(api: SlackWebAPI) -> None:
    url = api.methods.issue_response_url("U1ALICE", CHANNEL)
    rejected = WebhookClient(url).send(text="x", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": ""}}])
    assert (rejected.status_code, json.loads(rejected.body)["error"]) == (400, "invalid_blocks")
    assert api.store.ephemerals() == []


def test_a_clicks_response_url_replaces_the_clicked_message(
    bolt_app: App, served_sender: SignedSender, api: SlackWebAPI, web: WebClient
) -> None:
    card = web.chat_postMessage(channel=CHANNEL, text="rollback staging")["ts"]
    button = {"type": "button", "action_id": "approve", "value": "req-1", "text": {"type": "plain_text", "text": "Go"}}
    blocks = [{"type": "actions", "elements": [button]}]
    plan = web.chat_postMessage(channel=CHANNEL, thread_ts=card, text="plan", blocks=blocks)["ts"]
    urls: list[str] = []

    @bolt_app.action("approve")
    def approve(ack: Ack, body: dict[str, Any]) -> None:
        urls.append(body["response_url"])
        ack()

    served_sender.click("approve", "req-1", "U1ALICE", CHANNEL, plan)
    hook = WebhookClient(urls[0])
    assert hook.send(text="Only you can see this").status_code == 200
    assert hook.send(text="Approved by alice", replace_original=True).status_code == 200

    replaced = api.store.message(CHANNEL, plan)
    assert replaced is not None and (replaced.text, replaced.blocks) == ("Approved by alice", ())
    thread = render_thread(api.store, CHANNEL, card, viewer="U1ALICE")
    assert "(only visible to you)\n    Only you can see this" in thread and "Approved by alice" in thread
