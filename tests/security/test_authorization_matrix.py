"""Who may do what, every verb against every kind of person, over real HTTP with real signatures.

The tables below are the specification: each cell names the outcome the bot must give, written
out, not computed. People (see conftest): alice requests on ``sec-guarded``; dave only reads it;
bob approves; carol approves through the group S0DBAS; mallory is nobody. ``sec-guarded`` takes
requests only in C0OPS ("elsewhere" is alice typing in another channel).

Outcomes: ``answer`` (the bot answers, records nothing), ``queued`` (a request is recorded and sent
to the worker), ``denied`` (not allowed by policy), ``channel`` (wrong channel), ``unknown``
(the request is not visible to this person: the same answer as a request that does not exist),
``cancelled`` / ``locked`` / ``unlocked`` (the control verb did it). ``status`` and ``cancel``
name a request rather than an environment, so the channel rule does not apply to them: the
requester may cancel their own request from anywhere.
"""

from __future__ import annotations

import pytest
from inprocess import ELSEWHERE, OPS, InProcessBot

from controlplane import services
from controlplane.locks import lock_acquire, lock_current, lock_release
from controlplane.models import AuditEvent, Request, State
from migrabot import messages

ENV = "sec-guarded"

COMMANDS = """
verb            alice      dave     bob      mallory  elsewhere
help            answer     answer   answer   answer   answer
envs            answer     answer   answer   answer   answer
showmigrations  queued     queued   queued   denied   channel
plan            queued     queued   queued   denied   channel
check           queued     queued   queued   denied   channel
migrate         queued     denied   denied   denied   channel
rollback        queued     denied   denied   denied   channel
fake            queued     denied   denied   denied   channel
restore         queued     denied   denied   denied   channel
backups         answer     answer   answer   denied   channel
history         answer     answer   answer   denied   channel
status          answer     answer   answer   unknown  answer
cancel          cancelled  denied   denied   unknown  cancelled
lock            locked     denied   denied   denied   channel
unlock          unlocked   denied   denied   denied   channel
"""
TEXTS = {
    "help": "help",
    "envs": "envs",
    "showmigrations": f"showmigrations {ENV}",
    "plan": f"plan {ENV} media 0002",
    "check": f"check {ENV}",
    "migrate": f"migrate {ENV} media",
    "rollback": f"rollback {ENV} media 0002",
    "fake": f"fake {ENV} media 0001",
    "restore": f"restore {ENV} 1",
    "backups": f"backups {ENV}",
    "history": f"history {ENV}",
    "status": "status {request}",
    "cancel": "cancel {request}",
    "lock": f"lock {ENV} matrix test",
    "unlock": f"unlock {ENV}",
}
PERSON = {
    "alice": ("U0ALICE", OPS),
    "dave": ("U0DAVE", OPS),
    "bob": ("U0BOB", OPS),
    "mallory": ("U0MALLORY", OPS),
    "elsewhere": ("U0ALICE", ELSEWHERE),
}

# A click on Approve of a request alice made, waiting for approval, by …
CLICKS = """
verb      bob       carol     dave          alice  mallory       bob-expired  bob-elsewhere
migrate   approved  approved  not-approver  self   not-approver  expired      unknown
rollback  approved  approved  not-approver  self   not-approver  expired      unknown
fake      approved  approved  not-approver  self   not-approver  expired      unknown
restore   approved  approved  not-approver  self   not-approver  expired      unknown
"""
CLICKER = {
    "bob": ("U0BOB", OPS, False),
    "carol": ("U0CAROL", OPS, False),
    "dave": ("U0DAVE", OPS, False),
    "alice": ("U0ALICE", OPS, False),
    "mallory": ("U0MALLORY", OPS, False),
    "bob-expired": ("U0BOB", OPS, True),
    "bob-elsewhere": ("U0BOB", ELSEWHERE, False),
}


def cells(table: str) -> list[tuple[str, str, str]]:
    header, *rows = [line.split() for line in table.strip().splitlines()]
    return [(row[0], column, outcome) for row in rows for column, outcome in zip(header[1:], row[1:], strict=True)]


@pytest.fixture
def clean_lock() -> None:
    yield
    current = lock_current(environment=ENV)
    if current is not None:
        lock_release(environment=ENV, token=current.token, actor="test")


@pytest.mark.parametrize(("verb", "who", "outcome"), cells(COMMANDS))
def test_command(inproc: InProcessBot, clean_lock: None, verb: str, who: str, outcome: str) -> None:
    user, channel = PERSON[who]
    target, _ = services.request_create(
        verb="plan", environment=ENV, args=[], requester="U0ALICE", channel=OPS, trigger_id=None
    )
    if verb == "unlock":
        lock_acquire(environment=ENV, holder="user:U0ALICE", reason="matrix test", ttl=None)
    newest_request, newest_event = inproc.newest_ids()
    reply = inproc.sender.slash_command("/migrate", TEXTS[verb].format(request=target.pk), user, channel)
    assert reply.status == 200
    ack = reply.body
    created = list(Request.objects.filter(id__gt=newest_request))
    refusals = list(
        AuditEvent.objects.filter(id__gt=newest_event, action="command.refused").values_list(
            "detail__reason", flat=True
        )
    )
    expected_refusal = {
        "denied": messages.not_allowed(user, verb, ENV),
        "channel": messages.wrong_channel(ENV, [OPS]),
        "unknown": messages.no_such_request(target.pk),
    }.get(outcome)

    if expected_refusal is not None:
        assert (ack, refusals, created) == (expected_refusal, [expected_refusal], [])
        assert Request.objects.get(pk=target.pk).state == State.RECEIVED
        assert (lock_current(environment=ENV) is None) == (verb != "unlock")  # a refused lock/unlock changed nothing
        return
    assert refusals == []
    if outcome == "queued":
        (request,) = created
        assert ack == messages.received(request.pk, request.command_text)
        assert (request.verb, request.requester, request.channel) == (verb, user, channel)
        assert inproc.wait_enqueued(request.pk), "sent to the worker"
    else:
        assert created == []
    if outcome == "answer":
        assert ack and lock_current(environment=ENV) is None
    elif outcome == "cancelled":
        assert (ack, Request.objects.get(pk=target.pk).state) == (messages.cancelled(target.pk), State.CANCELLED)
    elif outcome == "locked":
        assert (ack, lock_current(environment=ENV).holder) == (messages.lock_taken(ENV), f"user:{user}")
    elif outcome == "unlocked":
        assert (ack, lock_current(environment=ENV)) == (messages.lock_lifted(ENV), None)
    else:
        assert outcome == "queued", outcome


@pytest.mark.parametrize(("verb", "who", "outcome"), cells(CLICKS))
def test_approve_click(inproc: InProcessBot, verb: str, who: str, outcome: str) -> None:
    user, channel, expired = CLICKER[who]
    request = inproc.pending(ENV, verb=verb, expired=expired)
    value = f'{{"request": {request.pk}, "digest": "{request.plan_digest}"}}'
    newest_request, newest_event = inproc.newest_ids()
    reply = inproc.sender.click("approve", value, user, channel, request.plan_ts)
    assert reply.status == 200
    after = Request.objects.get(pk=request.pk)
    refusals = list(
        AuditEvent.objects.filter(id__gt=newest_event, action="decision.refused").values_list(
            "detail__reason", flat=True
        )
    )
    expected_refusal = {
        "not-approver": messages.not_an_approver(user, ENV),
        "self": messages.self_approval(),
        "expired": messages.request_expired(request.pk),
        "unknown": messages.no_such_request(request.pk),
    }.get(outcome)

    if outcome == "approved":
        assert (after.state, refusals) == (State.APPROVED, [])
        assert list(after.approvals.values_list("approver", "decision")) == [(user, "approve")]
        assert inproc.wait_enqueued(request.pk), "the run is sent to the worker"
        return
    assert expected_refusal is not None, outcome
    assert (after.state, after.approvals.count(), refusals) == (State.AWAITING_APPROVAL, 0, [expected_refusal])
    inproc.api.store.wait_for(
        lambda: any(e.text == expected_refusal for e in inproc.api.store.ephemerals(user=user, channel=channel))
    )
    assert not Request.objects.filter(id__gt=newest_request).exists()
    assert all(pk != request.pk for pk, _ in inproc.enqueued)
