"""The environment lock: one holder, lapses without a heartbeat, manual locks wait for unlock."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone
from freezegun import freeze_time

from controlplane.locks import RUN_LOCK_TTL, lock_acquire, lock_current, lock_heartbeat, lock_release
from controlplane.models import AuditEvent


def env() -> str:
    return f"env{uuid.uuid4().hex[:8]}"


def test_one_holder_at_a_time_and_the_refusal_names_it() -> None:
    name = env()
    assert lock_acquire(environment=name, holder="request:1", reason="#1 rollback")[0]
    acquired, lock = lock_acquire(environment=name, holder="request:2", reason="#2 migrate")
    assert not acquired and (lock.holder, lock.reason) == ("request:1", "#1 rollback")
    assert lock_release(environment=name, holder="request:1")
    assert lock_acquire(environment=name, holder="request:2", reason="#2 migrate")[0]


def test_a_lock_without_heartbeat_lapses_and_can_be_taken() -> None:
    name = env()
    lock_acquire(environment=name, holder="request:1", reason="crashed run")
    with freeze_time(timezone.now() + RUN_LOCK_TTL + timedelta(seconds=1)):
        assert lock_current(environment=name) is None
        assert lock_acquire(environment=name, holder="request:2", reason="next run")[0]
    assert not lock_heartbeat(environment=name, holder="request:1")  # the dead holder lost it
    assert not lock_release(environment=name, holder="request:1")
    assert lock_current(environment=name).holder == "request:2"


def test_heartbeat_keeps_a_long_run_locked() -> None:
    name = env()
    lock_acquire(environment=name, holder="request:1", reason="long run")
    later = timezone.now() + RUN_LOCK_TTL - timedelta(seconds=5)
    with freeze_time(later):
        assert lock_heartbeat(environment=name, holder="request:1")
    with freeze_time(later + RUN_LOCK_TTL - timedelta(seconds=5)):
        assert not lock_acquire(environment=name, holder="request:2", reason="too early")[0]


def test_manual_lock_never_lapses_and_is_audited() -> None:
    name = env()
    assert lock_acquire(environment=name, holder="user:U0ALICE", reason="release freeze", ttl=None)[0]
    with freeze_time(timezone.now() + timedelta(days=30)):
        assert not lock_acquire(environment=name, holder="request:9", reason="rollback")[0]
    lock_release(environment=name, holder="user:U0ALICE", actor="U0BOB")
    actions = list(AuditEvent.objects.filter(environment=name).values_list("action", "actor"))
    assert actions == [("lock.acquired", "user:U0ALICE"), ("lock.released", "U0BOB")]
