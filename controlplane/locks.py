"""The environment lock: one write at a time per environment, and never held forever.

A run's lock carries an expiry that the worker's heartbeat keeps pushing forward; if the worker
dies the lock lapses and the next run may take it (the sweep marks the dead run ``interrupted``).
A manual lock (the ``lock`` verb) has no expiry and only ``unlock`` lifts it.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from controlplane.models import EnvironmentLock, Request
from controlplane.services import audit_record

RUN_LOCK_TTL = timedelta(seconds=90)


def lock_acquire(
    *, environment: str, holder: str, reason: str, request: Request | None = None, ttl: timedelta | None = RUN_LOCK_TTL
) -> tuple[bool, EnvironmentLock]:
    """Take the lock unless someone else holds a live one; return (acquired, the lock as it is)."""
    now = timezone.now()
    fields = {
        "holder": holder,
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
                current = EnvironmentLock.objects.get(environment=environment)
                return current.holder == holder, current
        audit_record(actor=holder, action="lock.acquired", request=request, environment=environment, reason=reason)
    return True, EnvironmentLock.objects.get(environment=environment)


def lock_heartbeat(*, environment: str, holder: str, ttl: timedelta = RUN_LOCK_TTL) -> bool:
    """Push the expiry forward; False if the lock is no longer ours (it lapsed and was taken)."""
    return bool(
        EnvironmentLock.objects.filter(environment=environment, holder=holder).update(expires_at=timezone.now() + ttl)
    )


def lock_release(*, environment: str, holder: str, actor: str | None = None) -> bool:
    with transaction.atomic():
        released = EnvironmentLock.objects.filter(environment=environment, holder=holder).delete()[0]
        if released:
            audit_record(actor=actor or holder, action="lock.released", environment=environment, holder=holder)
    return bool(released)


def lock_current(*, environment: str) -> EnvironmentLock | None:
    """The live lock on an environment, if any (a lapsed one counts as none)."""
    live = Q(expires_at__isnull=True) | Q(expires_at__gte=timezone.now())
    return EnvironmentLock.objects.filter(live, environment=environment).first()
