"""Decisions on a plan, checked on the server: every refusal, expiry, races, cancel vs approve."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import close_old_connections
from django.utils import timezone
from freezegun import freeze_time

from controlplane.approvals import MAX_REASON, request_decide, request_expire_due, request_may_decide
from controlplane.cancel import request_cancel
from controlplane.errors import Refusal
from controlplane.models import Approval, AuditEvent, Decision, Request, State
from controlplane.services import request_create, request_transition
from migrabot import messages
from migrabot.config import Environment, Policy

GROUPS = {"S0DBAS": frozenset({"U0DBA"})}


def members_of(group: str) -> frozenset[str] | None:
    return GROUPS.get(group)


@pytest.fixture
def environment(tmp_path: Path) -> Environment:
    (tmp_path / "manage.py").write_text("")
    policy = Policy(requesters=["*"], approvers=["U0BOB", "U0CAROL", "U0ALICE", "S0DBAS"], approvals=1)
    return Environment(name="staging", project=tmp_path, settings="backend.settings", policy=policy)


def pending(*, approvals: int = 1, ttl_minutes: int = 30, requester: str = "U0ALICE") -> Request:
    request, _ = request_create(
        verb="rollback",
        environment="staging",
        args=["marketplace", "0002_order"],
        requester=requester,
        channel="C1",
        trigger_id=None,
    )
    request_transition(
        request_id=request.pk,
        from_states=[State.RECEIVED],
        to=State.PLANNING,
        actor="worker",
        action="request.planning",
    )
    moved = request_transition(
        request_id=request.pk,
        from_states=[State.PLANNING],
        to=State.AWAITING_APPROVAL,
        actor="worker",
        action="request.awaiting_approval",
        fields={
            "plan_digest": "d1",
            "approvals_required": approvals,
            "expires_at": timezone.now() + timedelta(minutes=ttl_minutes),
        },
    )
    assert moved is not None
    return moved


def decide(
    request: Request,
    environment: Environment,
    person: str,
    decision: Decision = Decision.APPROVE,
    digest: str = "d1",
    reason: str = "",
):
    return request_decide(
        request_id=request.pk,
        person=person,
        decision=decision,
        plan_digest=digest,
        environment=environment,
        members_of=members_of,
        reason=reason or ("too risky today" if decision == Decision.DENY else ""),
    )


def test_an_approver_approves(environment: Environment) -> None:
    request = pending()
    outcome = decide(request, environment, "U0BOB")
    assert outcome.decided and outcome.request.state == State.APPROVED and outcome.approvers == ["U0BOB"]
    assert AuditEvent.objects.filter(request=request, action="request.approved", actor="U0BOB").count() == 1


def test_a_group_member_approves_and_deny_ends_it(environment: Environment) -> None:
    assert decide(pending(), environment, "U0DBA").request.state == State.APPROVED
    assert decide(pending(), environment, "U0CAROL", Decision.DENY).request.state == State.DENIED


def test_a_denial_records_its_reason_on_the_approval_and_in_the_audit(environment: Environment) -> None:
    request = pending()
    outcome = decide(request, environment, "U0CAROL", Decision.DENY, reason="  not during the freeze ")
    assert outcome.decided and outcome.request.state == State.DENIED
    assert Approval.objects.get(request=request).reason == "not during the freeze"  # trimmed, as typed
    for action in ("request.deny_clicked", "request.denied"):
        assert AuditEvent.objects.get(request=request, action=action).detail["reason"] == "not during the freeze"


@pytest.mark.parametrize("reason", [" ", "x" * (MAX_REASON + 1), "line\nbreak", "right\u202eto left"])
def test_a_denial_without_a_plain_reason_records_nothing(environment: Environment, reason: str) -> None:
    request = pending()
    with pytest.raises(Refusal) as refused:
        request_decide(
            request_id=request.pk, person="U0CAROL", decision=Decision.DENY, plan_digest="d1",
            environment=environment, members_of=members_of, reason=reason,
        )
    assert str(refused.value) == messages.deny_reason_needed(MAX_REASON)
    assert not Approval.objects.filter(request=request).exists()
    assert Request.objects.get(pk=request.pk).state == State.AWAITING_APPROVAL
    assert decide(request, environment, "U0CAROL", Decision.DENY, reason="👩‍💻 " + "x" * 496).decided  # ZWJ emoji


def test_a_request_decided_meanwhile_says_so_before_the_reason(environment: Environment) -> None:
    request = pending()
    decide(request, environment, "U0BOB")
    with pytest.raises(Refusal, match="not waiting for approval any more"):
        decide(request, environment, "U0CAROL", Decision.DENY, reason=" ")


@pytest.mark.parametrize(
    ("person", "digest", "expected"),
    [
        ("U0BOB", "d1", None),
        ("U0ALICE", "d1", lambda request: messages.self_approval()),
        ("U0MALLORY", "d1", lambda request: messages.not_an_approver("U0MALLORY", "staging")),
        ("U0BOB", "other", lambda request: messages.plan_changed(request.pk)),
    ],
)
def test_who_may_decide_is_asked_without_recording_anything(
    environment: Environment, person: str, digest: str, expected: Callable[[Request], str] | None
) -> None:
    request = pending()
    events = AuditEvent.objects.filter(request=request).count()

    def ask() -> Request:
        return request_may_decide(
            request_id=request.pk, person=person, plan_digest=digest, environment=environment, members_of=members_of
        )

    if expected is None:
        assert ask().pk == request.pk
    else:
        with pytest.raises(Refusal) as refused:
            ask()
        assert str(refused.value) == expected(request)
    assert not Approval.objects.filter(request=request).exists()
    assert AuditEvent.objects.filter(request=request).count() == events
    assert Request.objects.get(pk=request.pk).state == State.AWAITING_APPROVAL


@pytest.mark.parametrize(
    ("person", "digest", "expected"),
    [
        ("U0ALICE", "d1", lambda request: messages.self_approval()),
        ("U0MALLORY", "d1", lambda request: messages.not_an_approver("U0MALLORY", "staging")),
        ("U0BOB", "other", lambda request: messages.plan_changed(request.pk)),
    ],
)
def test_refusals_record_nothing(
    environment: Environment, person: str, digest: str, expected: Callable[[Request], str]
) -> None:
    request = pending()
    with pytest.raises(Refusal) as refused:
        decide(request, environment, person, digest=digest)
    assert str(refused.value) == expected(request)
    assert not Approval.objects.filter(request=request).exists()
    assert Request.objects.get(pk=request.pk).state == State.AWAITING_APPROVAL


def test_two_approvals_needed_and_a_double_click_counts_once(environment: Environment) -> None:
    request = pending(approvals=2)
    first = decide(request, environment, "U0BOB")
    assert not first.decided and first.request.state == State.AWAITING_APPROVAL
    with pytest.raises(Refusal, match="already decided"):
        decide(request, environment, "U0BOB")
    second = decide(request, environment, "U0CAROL")
    assert second.decided and second.request.state == State.APPROVED
    with pytest.raises(Refusal, match="not waiting for approval"):
        decide(request, environment, "U0DBA")


def test_expired_requests_refuse_clicks_and_the_sweep_expires_them(environment: Environment) -> None:
    request = pending(ttl_minutes=30)
    with freeze_time(timezone.now() + timedelta(minutes=31)):
        with pytest.raises(Refusal, match="has expired"):
            decide(request, environment, "U0BOB")
        expired = request_expire_due(environments=["staging"])
    assert [r.pk for r in expired if r.pk == request.pk] == [request.pk]
    assert Request.objects.get(pk=request.pk).state == State.EXPIRED
    assert request.pk not in [r.pk for r in request_expire_due(environments=["staging"])]


def test_not_expired_before_its_time(environment: Environment) -> None:
    request = pending(ttl_minutes=30)
    with freeze_time(timezone.now() + timedelta(minutes=29)):
        assert request.pk not in [r.pk for r in request_expire_due(environments=["staging"])]


def race(*actions) -> list[object]:
    """Run the actions at the same moment on their own threads (and database connections).

    A refusal is an outcome and is returned; anything else an action raises is a failure of the
    test, raised here once every thread has finished.
    """
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)
    errors: list[BaseException] = []

    def run(index: int, action) -> None:
        barrier.wait()
        try:
            results[index] = action()
        except Refusal as refusal:
            results[index] = refusal
        except BaseException as error:
            errors.append(error)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_two_approvers_at_once_make_one_decision(environment: Environment) -> None:
    request = pending()
    results = race(lambda: decide(request, environment, "U0BOB"), lambda: decide(request, environment, "U0CAROL"))
    decided = [r for r in results if not isinstance(r, Exception) and r.decided]
    assert len(decided) == 1
    assert AuditEvent.objects.filter(request=request, action="request.approved").count() == 1


def test_cancel_racing_an_approval_has_one_outcome(environment: Environment) -> None:
    request = pending()
    race(lambda: decide(request, environment, "U0BOB"), lambda: request_cancel(request=request, actor="U0ALICE"))
    # Either order ends cancelled (an approved request may still be cancelled before it runs),
    # and the audit shows the order things happened in.
    assert Request.objects.get(pk=request.pk).state == State.CANCELLED
    actions = list(AuditEvent.objects.filter(request=request).values_list("action", flat=True))
    assert actions[-1] == "request.cancelled"
    assert actions.count("request.cancelled") == 1 and actions.count("request.approved") <= 1
