"""views.open and modal submissions: the stand-in checks triggers and views as Slack does, and
``SignedSender.submit_view`` presses a modal's submit button, against a real Bolt app over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest
from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, PlainTextObject, SectionBlock
from slack_sdk.models.views import View

from slacklocal import SLACK_RATE_LIMITS, SignedSender, SlackWebAPI, render_modal

CHANNEL = "C0MIGRATE"


def modal(**changes: Any) -> dict[str, Any]:
    """A valid modal with one required input, built with slack_sdk's models as the bot builds its own."""
    view = View(
        type="modal",
        callback_id="why",
        private_metadata='{"request": 7}',
        title=PlainTextObject(text="Deny #7"),
        submit=PlainTextObject(text="Deny"),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            SectionBlock(text="Deny request #7?"),
            InputBlock(
                block_id="reason",
                label="Why deny it?",
                element=PlainTextInputElement(action_id="typed", max_length=500, placeholder="a reason"),
            ),
        ],
    ).to_dict()
    return {key: value for key, value in (view | changes).items() if value is not None}


def open_error(web: WebClient, trigger_id: str, view: dict[str, Any]) -> tuple[str, list[str]]:
    with pytest.raises(SlackApiError) as refused:
        web.views_open(trigger_id=trigger_id, view=view)
    answer = refused.value.response
    return answer["error"], answer.get("response_metadata", {}).get("messages", [])


def test_a_trigger_opens_one_modal_in_front_of_its_person(api: SlackWebAPI, web: WebClient) -> None:
    trigger = api.store.issue_trigger("U1ALICE")

    answer = web.views_open(trigger_id=trigger, view=modal())

    opened = answer["view"]
    assert opened["id"].startswith("V") and opened["hash"] and opened["root_view_id"] == opened["id"]
    assert (opened["callback_id"], opened["private_metadata"]) == ("why", '{"request": 7}')
    assert opened["state"] == {"values": {}}
    (shown,) = api.store.modals("U1ALICE", open_only=True)
    assert (shown.id, shown.view["title"]["text"], shown.closed) == (opened["id"], "Deny #7", False)
    assert api.store.modals("U2BOB") == []
    assert render_modal(shown).splitlines() == [
        "[Deny #7]",
        "│ Deny request #7?",
        "│ Why deny it?: [✎ a reason]",
        "│ [Cancel] [Deny]",
    ]
    # A trigger opens one view: Slack answers a second use so.
    assert open_error(web, trigger, modal()) == ("exchanged_trigger_id", [])


def test_an_unknown_missing_or_expired_trigger_opens_nothing(api: SlackWebAPI, web: WebClient) -> None:
    assert open_error(web, "12345.98765.abcd2358fdea", modal())[0] == "invalid_trigger_id"  # never handed out
    assert open_error(web, "", modal()) == ("invalid_arguments", ["invalid `trigger_id`"])
    late = api.store.issue_trigger("U1ALICE", age=3.5)  # Slack honours a trigger for 3 seconds
    assert open_error(web, late, modal())[0] == "expired_trigger_id"
    assert api.store.modals() == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"type": "home"}, "[ERROR] must be modal [json-pointer:/view/type]"),
        (
            {"title": {"type": "plain_text", "text": "Deny request #123456789012"}},
            "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]",
        ),
        ({"title": None}, "[ERROR] expected object [json-pointer:/view/title]"),
        (
            {"submit": {"type": "plain_text", "text": "Deny it, and tell them why"}},
            "[ERROR] must be less than 25 characters [json-pointer:/view/submit/text]",
        ),
        ({"title": {"type": "mrkdwn", "text": "*Deny*"}}, "[ERROR] must be plain_text [json-pointer:/view/title/type]"),
        ({"callback_id": "x" * 256}, "[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]"),
        (
            {"private_metadata": "x" * 3001},
            "[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]",
        ),
        (
            {"blocks": [{"type": "divider"}] * 101},
            "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]",
        ),
        ({"submit": None}, "[ERROR] must define `submit` to use `input` block [json-pointer:/view/blocks/1/input]"),
    ],
)
def test_a_view_slack_would_refuse_is_refused_as_slack_refuses_it(
    api: SlackWebAPI, web: WebClient, changes: dict[str, Any], expected: str
) -> None:
    error, said = open_error(web, api.store.issue_trigger("U1ALICE"), modal(**changes))
    assert (error, said) == ("invalid_arguments", [expected])
    assert api.store.modals() == []


def test_an_input_slack_would_refuse_is_refused(api: SlackWebAPI, web: WebClient) -> None:
    view = modal()
    view["blocks"][1]["element"]["max_length"] = 3001
    view["blocks"][1]["label"]["text"] = "x" * 2001
    error, said = open_error(web, api.store.issue_trigger("U1ALICE"), view)
    assert error == "invalid_arguments"
    assert said == [
        "[ERROR] must be less than 2001 characters [json-pointer:/view/blocks/1/label/text]",
        "[ERROR] must be an integer from 0 to 3000 [json-pointer:/view/blocks/1/element/max_length]",
    ]


def test_a_view_over_250_kb_is_too_large(api: SlackWebAPI, web: WebClient) -> None:
    big = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2900}}] * 90
    assert open_error(web, api.store.issue_trigger("U1ALICE"), modal(blocks=big))[0] == "view_too_large"


def test_views_open_is_rate_limited_as_tier_4() -> None:
    assert SLACK_RATE_LIMITS["views.open"] == SLACK_RATE_LIMITS["views.publish"]


def _deny_flow(bolt_app: App, answers: list[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """A click on "deny" opens the modal with the click's trigger; each submission is answered
    with the next of ``answers`` (None: a bare ack, which closes the modal). Returns the bodies."""
    submissions: list[dict[str, Any]] = []

    @bolt_app.action("deny")
    def deny(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=modal())

    @bolt_app.view("why")
    def why(ack: Ack, body: dict[str, Any]) -> None:
        submissions.append(body)
        answer = answers.pop(0)
        ack(**answer) if answer else ack()

    return submissions


def _click_deny(sender: SignedSender, web: WebClient, api: SlackWebAPI) -> None:
    button = {"type": "button", "action_id": "deny", "text": {"type": "plain_text", "text": "Deny"}}
    buttons = [{"type": "actions", "elements": [button]}]
    plan = web.chat_postMessage(channel=CHANNEL, text="plan", blocks=buttons)["ts"]
    assert sender.click("deny", "req-7", "U2BOB", CHANNEL, plan).status == 200
    api.store.wait_for(lambda: api.store.modals("U2BOB", open_only=True))


def test_a_click_opens_the_modal_and_submitting_it_sends_what_was_typed(
    bolt_app: App, sender: SignedSender, web: WebClient, api: SlackWebAPI
) -> None:
    errors = {"response_action": "errors", "errors": {"reason": "Say why: 1 to 500 characters."}}
    submissions = _deny_flow(bolt_app, [errors, None])
    _click_deny(sender, web, api)
    (opened,) = api.store.modals("U2BOB")

    refused = sender.submit_view("U2BOB", {"typed": None})
    assert (refused.status, refused.body) == (200, errors)  # Bolt answers JSON
    shown = api.store.modal(opened.id)
    assert shown is not None and not shown.closed and shown.errors == {"reason": "Say why: 1 to 500 characters."}
    assert "│ ⚠️ Say why: 1 to 500 characters." in render_modal(shown).splitlines()

    accepted = sender.submit_view("U2BOB", {"typed": "not during the freeze"})
    assert (accepted.status, accepted.body) == (200, "")
    closed = api.store.modal(opened.id)
    assert closed is not None and closed.closed and api.store.modals("U2BOB", open_only=True) == []

    first, second = submissions
    assert first["type"] == "view_submission" and first["user"]["id"] == "U2BOB" and first["trigger_id"]
    view = second["view"]
    assert (view["id"], view["hash"], view["callback_id"], view["private_metadata"]) == (
        opened.id,
        opened.hash,
        "why",
        '{"request": 7}',
    )
    # Slack sends an empty input as null, a filled one as its text, under its block and action ids.
    assert first["view"]["state"] == {"values": {"reason": {"typed": {"type": "plain_text_input", "value": None}}}}
    assert view["state"]["values"]["reason"]["typed"]["value"] == "not during the freeze"


def test_any_view_can_be_submitted_by_anyone_and_nothing_remembers_it(
    bolt_app: App, sender: SignedSender, api: SlackWebAPI
) -> None:
    submissions = _deny_flow(bolt_app, [None])
    reply = sender.submit_view("U1ALICE", {"typed": "forged"}, view=modal())
    assert reply.status == 200 and api.store.modals() == []
    (body,) = submissions
    assert body["user"]["id"] == "U1ALICE" and body["view"]["state"]["values"]["reason"]["typed"]["value"] == "forged"


def test_a_submission_with_a_bad_signature_never_reaches_the_listener(
    bolt_app: App, sender: SignedSender, web: WebClient, api: SlackWebAPI
) -> None:
    submissions = _deny_flow(bolt_app, [None])
    _click_deny(sender, web, api)
    assert sender.submit_view("U2BOB", {"typed": "x"}, signing_secret="forged").status == 401
    assert submissions == [] and api.store.modals("U2BOB", open_only=True)


def test_a_click_older_than_three_seconds_cannot_open_a_modal(
    bolt_app: App, sender: SignedSender, web: WebClient, api: SlackWebAPI
) -> None:
    failures: list[str] = []

    @bolt_app.action("deny")
    def deny(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        try:
            client.views_open(trigger_id=body["trigger_id"], view=modal())
        except SlackApiError as error:
            failures.append(error.response["error"])

    plan = web.chat_postMessage(channel=CHANNEL, text="plan")["ts"]
    assert sender.click("deny", "req-7", "U2BOB", CHANNEL, plan, trigger_age=4).status == 200
    deadline = time.monotonic() + 5
    while not failures and time.monotonic() < deadline:  # Bolt's default runner: after the ack
        time.sleep(0.01)
    assert failures == ["expired_trigger_id"] and api.store.modals() == []
    assert api.calls_to("views.open")[0].answer == {"ok": False, "error": "expired_trigger_id"}
