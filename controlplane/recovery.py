"""Finding work that fell through the cracks, for the periodic sweep.

Every state that is not final, who moves it on, and when the sweep takes over:

=====================  ==========================================  ==========================================
state                  moved on by                                 the sweep, when that does not happen
=====================  ==========================================  ==========================================
received               the bot sends the task; a worker claims it  sends it again: never sent, after
                       (→ ``running`` for a read, ``planning``)    ``ENQUEUE_GRACE``; sent but unclaimed (a
                                                                   Redis that forgot its queue), after
                                                                   ``RESEND_AFTER``
planning               the worker that claimed it (→ awaiting      ``failed`` once its lease lapsed
                       approval, approved, refused, failed)        (``LEASE_TTL`` without a heartbeat):
                                                                   planning changes nothing, so it says so
awaiting_approval      approvers' clicks (→ approved, denied);     ``expired`` at ``expires_at``
                       the requester's ``cancel``
approved               the bot sends the run; a worker claims it   sends it again, as for ``received``
                       (→ backing_up)
backing_up, running    the worker that holds the environment lock  ``interrupted`` once both its lease and
(a write)              (→ running, succeeded, failed)              its lock lapsed: the migration in flight
                                                                   may have half-happened, a person decides
running (a read)       the worker that claimed it (→ succeeded,    ``failed`` once its lease lapsed; a read
                       failed)                                     changes nothing, so it says so
=====================  ==========================================  ==========================================

A lease is renewed by the worker's heartbeat every few seconds, however long the work takes, so
a slow read or a long plan is never taken for a dead one. Sending twice is harmless: execution
claims the row, so a request still runs once. Nothing the sweep does re-runs anything.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from controlplane.locks import lock_release
from controlplane.models import AuditEvent, EnvironmentLock, Request, State
from controlplane.services import request_transition
from migrabot import messages
from migrabot.config import WRITE_VERBS

ENQUEUE_GRACE = timedelta(seconds=10)
RESEND_AFTER = timedelta(minutes=5)
# A request claimed by a worker from before leases existed has none: judge it by its last change.
CLAIM_GRACE = timedelta(seconds=30)
WRITE_RUN_STATES = [State.BACKING_UP, State.RUNNING]


def requests_to_enqueue(
    *, environments: list[str], grace: timedelta = ENQUEUE_GRACE, resend_after: timedelta = RESEND_AFTER
) -> list[Request]:
    now = timezone.now()
    never_sent = Q(enqueued_at__isnull=True, updated_at__lte=now - grace)
    lost = Q(enqueued_at__lte=now - resend_after)
    waiting = Request.objects.filter(
        never_sent | lost, state__in=[State.RECEIVED, State.APPROVED], environment__in=environments
    )
    return list(waiting.order_by("id"))


def _lease_lapsed() -> Q:
    now = timezone.now()
    return Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, updated_at__lte=now - CLAIM_GRACE)


def request_fail_abandoned(*, environments: list[str]) -> list[Request]:
    """Plans and reads whose worker went away: ``failed``, saying that nothing was changed."""
    abandoned = Request.objects.filter(_lease_lapsed(), environment__in=environments).filter(
        Q(state=State.PLANNING) | (Q(state=State.RUNNING) & ~Q(verb__in=WRITE_VERBS))
    )
    failed = []
    for request in abandoned:
        reason = f"the worker went away while {'planning' if request.state == State.PLANNING else 'reading'}"
        moved = request_transition(
            request_id=request.pk,
            from_states=[State(request.state)],
            to=State.FAILED,
            actor="system",
            action="request.abandoned",
            error=reason,
            note=messages.abandoned(request.pk, reason),
        )
        if moved is not None:
            failed.append(moved)
    return failed


def request_interrupt_orphans(*, environments: list[str]) -> list[Request]:
    """Mark writes whose worker is gone; return them with ``result['unapplied'/'applied']`` known so far."""
    interrupted = []
    running = Request.objects.filter(
        _lease_lapsed(), state__in=WRITE_RUN_STATES, verb__in=WRITE_VERBS, environment__in=environments
    )
    now = timezone.now()
    for request in running:
        lock = EnvironmentLock.objects.filter(environment=request.environment, request=request).first()
        if lock is not None and (lock.expires_at is None or lock.expires_at >= now):
            continue  # its lock is still renewed: some child of the run may be alive
        done = list(
            AuditEvent.objects.filter(request=request, action__startswith="migration.").values_list("action", "detail")
        )
        known = {
            "applied": [d["migration"] for a, d in done if a == "migration.applied"],
            "unapplied": [d["migration"] for a, d in done if a == "migration.unapplied"],
        }
        moved = request_transition(
            request_id=request.pk,
            from_states=WRITE_RUN_STATES,
            to=State.INTERRUPTED,
            actor="system",
            action="request.interrupted",
            result=known,
            note=messages.interrupted(request.pk, known["unapplied"], known["applied"]),
        )
        if moved is not None:
            if lock is not None:  # lapsed, so nothing renews it: clear the row so nobody reads it as held
                lock_release(environment=request.environment, token=lock.token, actor="system")
            interrupted.append(moved)
    return interrupted
