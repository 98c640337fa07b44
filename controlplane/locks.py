"""The environment lock: one write at a time per environment, and never held forever.

Every acquisition gets a token of its own, and only that token renews or releases the lock: two
copies of one run (a task delivered twice) share a holder name but never a token, so the copy
that lost cannot release the lock under the one that is migrating. Taking a lock someone holds
is refused whoever asks, the holder included (a lock is not re-entrant).

A run's lock carries an expiry that the worker's heartbeat keeps pushing forward; if the worker
dies the lock lapses and the next run may take it (the sweep marks the dead run ``interrupted``).
A manual lock (the ``lock`` verb) has no expiry and only ``unlock`` lifts it.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from controlplane.models import EnvironmentLock, Request
from controlplane.services import audit_record

RUN_LOCK_TTL = timedelta(seconds=90)


def lock_acquire(
    *, environment: str, holder: str, reason: str, request: Request | None = None, ttl: timedelta | None = RUN_LOCK_TTL
) -> tuple[str | None, EnvironmentLock]:
    """Take the lock unless a live one is held; return (this acquisition's token or None, the lock as it is)."""
    now = timezone.now()
    token = secrets.token_hex(16)
    fields = {
        "holder": holder,
        "token": token,
        "reason": reason,
        "request": request,
        "acquired_at": now,
        "expires_at": now + ttl if ttl else None,
    }
    with transaction.atomic():
        taken_over = EnvironmentLock.objects.filter(environment=environment, expires_at__lt=now).update(**fields)
        if not taken_over:
            try:
                with transaction.atomic():
                    EnvironmentLock.objects.create(environment=environment, **fields)
            except IntegrityError:
                return None, EnvironmentLock.objects.get(environment=environment)
        audit_record(actor=holder, action="lock.acquired", request=request, environment=environment, reason=reason)
    return token, EnvironmentLock.objects.get(environment=environment)


def lock_heartbeat(*, environment: str, token: str, ttl: timedelta = RUN_LOCK_TTL) -> bool:
    """Push the expiry forward; False if the lock is no longer this acquisition's (it lapsed and was taken)."""
    return bool(
        EnvironmentLock.objects.filter(environment=environment, token=token).update(expires_at=timezone.now() + ttl)
    )


def lock_release(*, environment: str, token: str, actor: str) -> bool:
    """Release this acquisition's lock; the audit event names the request it was held for."""
    with transaction.atomic():
        lock = EnvironmentLock.objects.filter(environment=environment, token=token).first()
        if lock is None:
            return False
        lock.delete()
        audit_record(
            actor=actor, action="lock.released", request=lock.request, environment=environment, holder=lock.holder
        )
    return True


def lock_current(*, environment: str) -> EnvironmentLock | None:
    """The live lock on an environment, if any (a lapsed one counts as none)."""
    live = Q(expires_at__isnull=True) | Q(expires_at__gte=timezone.now())
    return EnvironmentLock.objects.filter(live, environment=environment).first()
