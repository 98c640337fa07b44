"""Finding work that fell through the cracks, for the periodic sweep.

- A request whose task never reached the broker (Redis was down) is sent again: it is ``received``
  or ``approved`` with no ``enqueued_at``. So is one sent long ago that no worker has claimed: a
  Redis restarted without persistence forgets its queues. Sending twice is harmless: execution
  claims the row, so a request still runs once.
- A run whose worker vanished is marked ``interrupted``: it is backing up or running, but its
  environment lock has lapsed (no heartbeat). Nothing re-runs it: a person decides what next.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from controlplane.locks import lock_current, lock_release
from controlplane.models import AuditEvent, Request, State
from controlplane.services import request_transition

ENQUEUE_GRACE = timedelta(seconds=10)
RESEND_AFTER = timedelta(minutes=5)
# A run takes its lock right after claiming the row: give it that moment before judging it.
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
    return list(waiting.exclude(thread_ts="").order_by("id"))


def request_interrupt_orphans(*, environments: list[str]) -> list[Request]:
    """Mark runs whose worker is gone; return them with ``result['unapplied'/'applied']`` known so far."""
    interrupted = []
    running = Request.objects.filter(
        state__in=WRITE_RUN_STATES, updated_at__lte=timezone.now() - CLAIM_GRACE, environment__in=environments
    )
    for request in running:
        lock = lock_current(environment=request.environment)
        if lock is not None and lock.holder == f"request:{request.pk}":
            continue
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
        )
        if moved is not None:
            # Its lock has lapsed (that is how we know); clear the row so nobody reads it as held.
            lock_release(environment=request.environment, holder=f"request:{request.pk}", actor="system")
            interrupted.append(moved)
    return interrupted
