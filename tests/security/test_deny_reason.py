"""Deny asks why, over real HTTP with real signatures: the click opens a dialog (``views.open``
with the click's trigger, on the stand-in, which checks triggers as Slack does), and only its
submission denies — checked again on the server like a click: still awaiting approval, the same
plan, someone who may approve, once, with a reason of 1 to 500 characters. The reason is
recorded (the approval, the audit), shown in the thread as typed (never as markup), and a
submission refused is answered on the dialog's field with nothing recorded. A dialog Slack
could not open leaves the request awaiting approval, and the clicker is told.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from inprocess import OPS, PEOPLE, InProcessBot
from test_hostile_input import raw_post, signed_headers
from test_markup_escaping import markup_left, texts

from controlplane import services
from controlplane.approvals import MAX_REASON
from controlplane.models import Approval, AuditEvent, Request, State
from migrabot import messages
from migrabot.conversation import Chat
from slacklocal import Modal, render_modal
from slackui.modals import DENY_VIEW, REASON_ACTION, REASON_BLOCK
from slackui.text import mrkdwn_to_text

ENV = "sec-open"
CAROL, BOB, ALICE, DAVE, MALLORY = "U0CAROL", "U0BOB", "U0ALICE", "U0DAVE", "U0MALLORY"
REFUSED_REASON = messages.deny_reason_needed(MAX_REASON)


@pytest.fixture
def chat(inproc: InProcessBot) -> Chat:
    return Chat(sender=inproc.sender, store=inproc.api.store, command="/migrate", channel=OPS, names=PEOPLE)


@pytest.fixture
def asked(inproc: InProcessBot, chat: Chat) -> Iterator[Request]:
    """A rollback awaiting approval, its plan posted by the notifier with Approve / Deny, as the
    planning step leaves it. Ended afterwards, so that no later test sees its buttons."""
    request, _ = services.request_create(
        verb="rollback", environment=ENV, args=["media", "0002_image"], requester=ALICE, channel=OPS, trigger_id=None
    )
    services.request_transition(
        request_id=request.pk, from_states=[State.RECEIVED], to=State.PLANNING, actor="test", action="request.planning"
    )
    fields = {
        "plan": {"steps": [], "tables": []},
        "plan_digest": f"digest-{request.pk}",
        "approvals_required": 1,
        "expires_at": timezone.now() + timedelta(hours=1),
    }
    services.request_transition(
        request_id=request.pk,
        from_states=[State.PLANNING],
        to=State.AWAITING_APPROVAL,
        actor="test",
        action="request.awaiting_approval",
        fields=fields,
    )
    services.post_record(request_id=request.pk, key="plan", kind="plan")
    yield chat.settle(request.pk)
    for dialog in inproc.api.store.modals(open_only=True):  # Cancel, on whatever the test left open
        inproc.api.store.close_modal(dialog.id)
    services.request_transition(
        request_id=request.pk, from_states=[State.AWAITING_APPROVAL], to=State.CANCELLED, actor="test",
        action="request.cancelled",
    )


def opened_for(inproc: InProcessBot, user: str) -> list[Modal]:
    return inproc.api.store.modals(user, open_only=True)


def unchanged(request: Request) -> None:
    """Nothing was decided: still awaiting approval, no approval row, no decision in the audit."""
    assert Request.objects.get(pk=request.pk).state == State.AWAITING_APPROVAL
    assert not Approval.objects.filter(request=request).exists()
    decided = AuditEvent.objects.filter(request=request, action__in=["request.deny_clicked", "request.denied"])
    assert not decided.exists()


def test_deny_opens_a_dialog_and_records_nothing_yet(inproc: InProcessBot, chat: Chat, asked: Request) -> None:
    calls = len(inproc.api.calls_to("views.open"))
    clicked = chat.click("deny", user=CAROL, request=asked)

    assert clicked.request is not None and clicked.request.state == State.AWAITING_APPROVAL
    (call,) = inproc.api.calls_to("views.open")[calls:]
    assert call.answer["ok"], call.answer
    (dialog,) = opened_for(inproc, CAROL)
    assert inproc.api.store.trigger(call.params["trigger_id"]).user == CAROL  # the click's own trigger
    view = dialog.view
    assert view["callback_id"] == DENY_VIEW
    assert json.loads(view["private_metadata"]) == {"request": asked.pk, "digest": asked.plan_digest}
    (reason,) = [block for block in view["blocks"] if block["type"] == "input"]
    assert reason["element"]["max_length"] == MAX_REASON and not reason.get("optional")
    assert render_modal(dialog, PEOPLE).splitlines() == [
        f"[Deny #{asked.pk}]",
        f"│ Deny request #{asked.pk} `rollback {ENV} media 0002_image` of @alice? Nothing of it will run. "
        "Your reason is shown in its thread and kept in the audit trail.",
        f"│ Why deny it?: [✎ {messages.deny_reason_placeholder()}]",
        "│ [Cancel] [Deny]",
    ]
    assert "[Approve] [Deny]" in clicked.thread  # the buttons stay until a reason comes
    unchanged(asked)


def test_a_reason_denies_and_is_recorded_shown_and_audited(inproc: InProcessBot, chat: Chat, asked: Request) -> None:
    enqueued = len(inproc.enqueued)
    denied = chat.deny(user=CAROL, reason="not during the release freeze", request=asked)

    assert denied.ack == "" and denied.request is not None and denied.request.state == State.DENIED
    assert "⛔ Denied by @carol: `not during the release freeze` · " in denied.thread
    assert "[Approve]" not in denied.thread and "⛔ denied · requested by @alice" in denied.thread
    (approval,) = Approval.objects.filter(request=asked)
    assert (approval.approver, approval.decision, approval.reason) == (CAROL, "deny", "not during the release freeze")
    events = {e.action: e for e in AuditEvent.objects.filter(request=asked, actor=CAROL)}
    assert events["request.deny_clicked"].detail["reason"] == "not during the release freeze"
    assert events["request.denied"].detail["reason"] == "not during the release freeze"
    assert opened_for(inproc, CAROL) == []  # the dialog closed
    assert len(inproc.enqueued) == enqueued  # nothing to run


@pytest.mark.parametrize("reason", ["", "   ", "x" * (MAX_REASON + 1), "hidden\u202etext"])
def test_a_missing_or_too_long_reason_is_answered_on_the_field(
    inproc: InProcessBot, chat: Chat, asked: Request, reason: str
) -> None:
    refused = chat.deny(user=CAROL, reason=reason, request=asked)

    assert f"│ ⚠️ {REFUSED_REASON}" in refused.ack.splitlines(), refused.ack  # the dialog stays open, saying why
    unchanged(asked)
    (dialog,) = opened_for(inproc, CAROL)
    assert dialog.errors == {REASON_BLOCK: REFUSED_REASON}
    refusal = AuditEvent.objects.filter(action="decision.refused", actor=CAROL).latest("id")
    assert refusal.detail["reason"] == REFUSED_REASON and refusal.environment == ENV

    # Fixed in the same dialog, it denies.
    assert inproc.sender.submit_view(CAROL, {REASON_ACTION: "too risky"}).body == ""
    assert chat.settle(asked.pk).state == State.DENIED
    assert Approval.objects.get(request=asked).reason == "too risky"


def test_someone_who_may_not_approve_gets_no_dialog_and_a_forged_submission_is_refused(
    inproc: InProcessBot, chat: Chat, asked: Request
) -> None:
    calls = len(inproc.api.calls_to("views.open"))
    clicked = chat.click("deny", user=DAVE, request=asked)
    assert opened_for(inproc, DAVE) == [] and inproc.api.calls_to("views.open")[calls:] == []
    assert messages.not_an_approver(DAVE, ENV) in [e.text for e in inproc.api.store.ephemerals(user=DAVE)]
    assert "@dave may not approve requests" in clicked.thread

    chat.click("deny", user=CAROL, request=asked)
    (dialog,) = opened_for(inproc, CAROL)
    for person, said in [
        (MALLORY, messages.not_an_approver(MALLORY, ENV)),
        (ALICE, messages.self_approval()),
    ]:
        newest = inproc.newest_ids()[1]
        reply = inproc.sender.submit_view(person, {REASON_ACTION: "let me"}, view=dialog.view)
        assert reply.status == 200
        assert reply.body == {"response_action": "errors", "errors": {REASON_BLOCK: mrkdwn_to_text(said)}}
        events = AuditEvent.objects.filter(id__gt=newest)
        assert [(e.action, e.actor) for e in events] == [("decision.refused", person)]
        unchanged(asked)


def test_a_submission_after_someone_else_approved_changes_nothing(
    inproc: InProcessBot, chat: Chat, asked: Request
) -> None:
    chat.click("deny", user=CAROL, request=asked)
    assert opened_for(inproc, CAROL)
    value = json.dumps({"request": asked.pk, "digest": asked.plan_digest})
    assert inproc.sender.click("approve", value, BOB, OPS, asked.plan_ts).status == 200  # no worker here to run it
    assert Request.objects.get(pk=asked.pk).state == State.APPROVED

    late = chat_submit(inproc, CAROL, "too late?")

    said = messages.not_awaiting_approval(asked.pk, State.APPROVED)
    assert late == {"response_action": "errors", "errors": {REASON_BLOCK: said}}
    assert Request.objects.get(pk=asked.pk).state == State.APPROVED
    assert list(Approval.objects.filter(request=asked).values_list("approver", "decision")) == [(BOB, "approve")]
    assert not AuditEvent.objects.filter(request=asked, action__in=["request.deny_clicked", "request.denied"]).exists()
    store = inproc.api.store
    store.wait_for(lambda: "✅ Approved by @bob" in chat.thread(asked), timeout=30)
    (dialog,) = opened_for(inproc, CAROL)
    assert f"│ ⚠️ {said}" in render_modal(dialog).splitlines()


def chat_submit(inproc: InProcessBot, user: str, reason: str) -> object:
    reply = inproc.sender.submit_view(user, {REASON_ACTION: reason})
    assert reply.status == 200
    return reply.body


@pytest.mark.parametrize("form", ["<!channel>", "*bold*", "<https://x|y>", "<@U0BOB> R&D `x`"])
def test_a_hostile_reason_is_shown_as_plain_text(inproc: InProcessBot, chat: Chat, asked: Request, form: str) -> None:
    denied = chat.deny(user=CAROL, reason=f"{form} is why", request=asked)

    assert denied.request is not None and denied.request.state == State.DENIED
    assert Approval.objects.get(request=asked).reason == f"{form} is why"  # recorded as typed
    decided = inproc.api.store.message(OPS, Request.objects.get(pk=asked.pk).plan_ts)
    assert decided is not None
    for text in texts(decided):
        assert markup_left(text) == [], text
    # In a code span: no bold, no link, no mention; a person reads what was typed.
    shown = f"⛔ Denied by @carol: `{form.replace('`', chr(39))} is why` · "
    assert shown in mrkdwn_to_text(decided.blocks[-1]["text"]["text"], PEOPLE)


def test_when_slack_cannot_open_the_dialog_the_clicker_is_told_and_nothing_is_recorded(
    inproc: InProcessBot, chat: Chat, asked: Request
) -> None:
    value = json.dumps({"request": asked.pk, "digest": asked.plan_digest})
    store = inproc.api.store
    told = len(store.ephemerals(user=CAROL))

    # Slack honours a trigger for 3 seconds: one from a click 4 seconds ago is refused (expired_trigger_id).
    assert inproc.sender.click("deny", value, CAROL, OPS, asked.plan_ts, trigger_age=4).status == 200
    store.wait_for(lambda: len(store.ephemerals(user=CAROL)) > told, timeout=10)
    assert inproc.api.calls_to("views.open")[-1].answer == {"ok": False, "error": "expired_trigger_id"}
    # Slack down: views.open answers nothing at all.
    with inproc.api.outage(methods=["views.open"]):
        assert inproc.sender.click("deny", value, CAROL, OPS, asked.plan_ts).status == 200
        store.wait_for(lambda: len(store.ephemerals(user=CAROL)) > told + 1, timeout=30)

    assert [e.text for e in store.ephemerals(user=CAROL)[told:]] == [messages.deny_dialog_failed(asked.pk)] * 2
    assert opened_for(inproc, CAROL) == []
    unchanged(asked)


def submission(metadata: object = "{}", **changes: Any) -> dict[str, Any]:
    """A Deny dialog's submission by an approver, as Slack sends it, then altered."""
    values = {REASON_BLOCK: {REASON_ACTION: {"type": "plain_text_input", "value": "because"}}}
    view = {"id": "V1", "type": "modal", "callback_id": DENY_VIEW, "private_metadata": metadata, "hash": "1.2",
            "state": {"values": values}}
    payload = {"type": "view_submission", "user": {"id": CAROL, "name": "carol"}, "team": {"id": "T0LOCAL"},
               "api_app_id": "A0MIGRABOT", "token": "t", "trigger_id": "1.2.abc", "view": view}
    return {key: value for key, value in (payload | changes).items() if value is not None}


HOSTILE_SUBMISSIONS = {
    "metadata not JSON": submission("approve everything"),
    "metadata 1e309": submission('{"request": 1e309, "digest": "x"}'),
    "metadata nested deep": submission("[" * 50_000 + "]" * 50_000),
    "metadata a number": submission(12),
    "no such request": submission('{"request": 1000000000, "digest": "x"}'),
    "values a list": submission(view={"callback_id": DENY_VIEW, "private_metadata": "{}", "state": {"values": [1]}}),
    "value an object": submission(
        view={"callback_id": DENY_VIEW, "state": {"values": {REASON_BLOCK: {REASON_ACTION: {"value": {"x": 1}}}}}}
    ),
    "view a string": submission(view="modal"),
    "no callback": submission(view={"type": "modal"}),
    "not a modal": submission(view={"callback_id": DENY_VIEW, "type": "workflow_step", "private_metadata": "{}"}),
    "no user": submission(user=None),
    "user a string": submission(user=CAROL),
}


@pytest.mark.parametrize("name", HOSTILE_SUBMISSIONS)
def test_hostile_submissions_are_refused_and_audited(inproc: InProcessBot, asked: Request, name: str) -> None:
    body = urlencode({"payload": json.dumps(HOSTILE_SUBMISSIONS[name])})
    newest_request, newest_event = inproc.newest_ids()
    status, answer = raw_post(inproc.sender.bot_url, body.encode(), signed_headers(body))
    assert status in (200, 400), (status, answer)
    events = list(AuditEvent.objects.filter(id__gt=newest_event).values_list("action", flat=True))
    if status == 200:  # a submission of the dialog: refused on its field
        assert json.loads(answer)["response_action"] == "errors" and events == ["decision.refused"]
    else:  # not a submission this bot takes
        assert events == ["input.refused"]
    assert not Request.objects.filter(id__gt=newest_request).exists()
    unchanged(asked)
