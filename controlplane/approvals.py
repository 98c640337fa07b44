"""Decisions on a plan: every click is checked again here, whatever the button said.

The guards run in a fixed order (Atlantis's habit), each refusal saying exactly why:
the request is still waiting, not expired, the plan clicked is the plan recorded, the person is
not the requester, is an approver, and has not decided already. Everything happens in one
transaction with the request row locked, so two approvers clicking at once, or one person
clicking twice, make exactly one decision and at most one run.

A denial says why: ``reason`` is what the person typed (plain text, ``MAX_REASON`` characters at
most), kept on their ``Approval`` row and in the audit events of the denial. ``request_may_decide``
runs the same guards without recording anything: the bot asks for a reason only from someone
whose Deny would count, and checks everything again when the reason comes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from controlplane.errors import Refusal
from controlplane.models import Approval, Decision, Request, State
from controlplane.policy import GroupMembers, is_included
from controlplane.selectors import approvers_so_far, requests_awaiting_approval
from controlplane.services import audit_record, request_transition
from migrabot import messages
from migrabot.config import Environment

#: The longest reason a denial takes: a sentence or two, shown whole in the thread even when every
#: character is one Slack escapes (``&amp;`` is five), inside a section's 3,000.
MAX_REASON = 500


@dataclass(frozen=True)
class Outcome:
    request: Request
    decided: bool  # this click moved the request to approved or denied
    approvers: list[str]  # everyone who has approved so far


def request_decide(
    *,
    request_id: int,
    person: str,
    decision: Decision,
    plan_digest: str,
    environment: Environment,
    members_of: GroupMembers,
    reason: str = "",
) -> Outcome:
    """Record one person's decision; a denial needs its ``reason`` (see ``checked_reason``)."""
    with transaction.atomic():
        request = Request.objects.select_for_update().filter(pk=request_id, environment=environment.name).first()
        if request is None:
            raise Refusal(messages.no_such_request(request_id))
        _check(request, person, plan_digest, environment, members_of)
        why = {"reason": checked_reason(reason)} if decision == Decision.DENY else {}
        Approval.objects.create(request=request, approver=person, decision=decision, plan_digest=plan_digest, **why)
        audit_record(
            actor=person, action=f"request.{decision}_clicked", request=request, plan_digest=plan_digest, **why
        )
        approvers = list(
            Approval.objects.filter(request=request, decision=Decision.APPROVE).values_list("approver", flat=True)
        )
        target = State.DENIED if decision == Decision.DENY else State.APPROVED
        if target == State.APPROVED and len(approvers) < request.approvals_required:
            return Outcome(request, decided=False, approvers=approvers)
        decided = request_transition(
            request_id=request.pk,
            from_states=[State.AWAITING_APPROVAL],
            to=target,
            actor=person,
            action=f"request.{target}",
            fields={"enqueued_at": None},  # the run is a new task to send
            approvers=approvers,
            **why,
        )
        assert decided is not None  # the row is locked and was awaiting approval
    return Outcome(decided, decided=True, approvers=approvers)


def request_may_decide(
    *, request_id: int, person: str, plan_digest: str, environment: Environment, members_of: GroupMembers
) -> Request:
    """The request, if ``person`` may decide on it now (the guards of ``request_decide``, nothing
    recorded); otherwise the ``Refusal`` that deciding would raise."""
    request = Request.objects.filter(pk=request_id, environment=environment.name).first()
    if request is None:
        raise Refusal(messages.no_such_request(request_id))
    _check(request, person, plan_digest, environment, members_of)
    return request


def checked_reason(reason: str) -> str:
    """A denial's reason as recorded: trimmed, 1 to ``MAX_REASON`` characters, no control or format
    characters (which could hide or reorder what the thread shows) but the joiner inside emoji."""
    reason = reason.strip()
    hidden = any(unicodedata.category(ch)[0] == "C" and ch != "\u200d" for ch in reason)
    if not reason or len(reason) > MAX_REASON or hidden:
        raise Refusal(messages.deny_reason_needed(MAX_REASON))
    return reason


def _check(request: Request, person: str, plan_digest: str, environment: Environment, members_of: GroupMembers) -> None:
    if request.state != State.AWAITING_APPROVAL:
        raise Refusal(messages.not_awaiting_approval(request.pk, request.state))
    if request.expires_at is not None and request.expires_at <= timezone.now():
        raise Refusal(messages.request_expired(request.pk))
    if plan_digest != request.plan_digest:
        raise Refusal(messages.plan_changed(request.pk))
    if person == request.requester:
        raise Refusal(messages.self_approval())
    if not is_included(person, environment.policy.approvers, members_of):
        unknown = [
            group for group in environment.policy.approvers if group.startswith("S") and members_of(group) is None
        ]
        if unknown:  # they may be a member: say why nobody can tell, rather than "not an approver"
            raise Refusal(messages.group_membership_unknown(unknown, environment.name))
        raise Refusal(messages.not_an_approver(person, environment.name))
    if Approval.objects.filter(request=request, approver=person).exists():
        raise Refusal(messages.already_decided(request.pk))


def request_expire_due(*, environments: list[str]) -> list[Request]:
    """Expire every request whose approval window has closed; return the ones this call expired."""
    expired = []
    due = Request.objects.filter(
        state=State.AWAITING_APPROVAL, expires_at__lte=timezone.now(), environment__in=environments
    )
    for request_id in due.values_list("pk", flat=True):
        request = request_transition(
            request_id=request_id,
            from_states=[State.AWAITING_APPROVAL],
            to=State.EXPIRED,
            actor="system",
            action="request.expired",
            note=messages.request_expired(request_id),
        )
        if request is not None:
            expired.append(request)
    return expired


def approvals_pending_for(
    *, person: str, environments: Sequence[Environment], members_of: GroupMembers
) -> list[Request]:
    """The requests awaiting approval that ``person`` may decide now: by the same rules as
    ``request_decide`` (not expired, not their own, an approver there, not decided already)."""
    mine = {env.name: env for env in environments if is_included(person, env.policy.approvers, members_of)}
    waiting = [r for r in requests_awaiting_approval(environments=list(mine)) if r.requester != person]
    decided = approvers_so_far(request_ids=[r.pk for r in waiting])
    return [r for r in waiting if person not in decided[r.pk]]
