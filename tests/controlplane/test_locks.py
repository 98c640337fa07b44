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
    first, _ = lock_acquire(environment=name, holder="request:1", reason="#1 rollback")
    assert first is not None
    token, lock = lock_acquire(environment=name, holder="request:2", reason="#2 migrate")
    assert token is None and (lock.holder, lock.reason) == ("request:1", "#1 rollback")
    assert lock_release(environment=name, token=first, actor="worker")
    assert lock_acquire(environment=name, holder="request:2", reason="#2 migrate")[0]


def test_a_lock_is_not_reentrant_and_only_its_token_renews_or_releases_it() -> None:
    """Two copies of one run share a holder name: the second must neither get the lock nor be
    able to release or renew the first copy's."""
    name = env()
    first, _ = lock_acquire(environment=name, holder="request:7", reason="#7 migrate")
    twin, lock = lock_acquire(environment=name, holder="request:7", reason="#7 migrate")
    assert first is not None and twin is None and lock.token == first
    assert not lock_release(environment=name, token="not-the-token", actor="worker")
    assert not lock_heartbeat(environment=name, token="not-the-token")
    assert lock_current(environment=name) is not None
    assert lock_heartbeat(environment=name, token=first)
    assert lock_release(environment=name, token=first, actor="worker")


def test_a_lock_without_heartbeat_lapses_and_can_be_taken() -> None:
    name = env()
    dead, _ = lock_acquire(environment=name, holder="request:1", reason="crashed run")
    assert dead is not None
    with freeze_time(timezone.now() + RUN_LOCK_TTL + timedelta(seconds=1)):
        assert lock_current(environment=name) is None
        assert lock_acquire(environment=name, holder="request:2", reason="next run")[0]
    assert not lock_heartbeat(environment=name, token=dead)  # the dead holder lost it
    assert not lock_release(environment=name, token=dead, actor="worker")
    assert lock_current(environment=name).holder == "request:2"


def test_heartbeat_keeps_a_long_run_locked() -> None:
    name = env()
    token, _ = lock_acquire(environment=name, holder="request:1", reason="long run")
    assert token is not None
    later = timezone.now() + RUN_LOCK_TTL - timedelta(seconds=5)
    with freeze_time(later):
        assert lock_heartbeat(environment=name, token=token)
    with freeze_time(later + RUN_LOCK_TTL - timedelta(seconds=5)):
        assert not lock_acquire(environment=name, holder="request:2", reason="too early")[0]


def test_manual_lock_never_lapses_and_is_audited() -> None:
    name = env()
    token, _ = lock_acquire(environment=name, holder="user:U0ALICE", reason="release freeze", ttl=None)
    assert token is not None
    with freeze_time(timezone.now() + timedelta(days=30)):
        assert not lock_acquire(environment=name, holder="request:9", reason="rollback")[0]
    lock_release(environment=name, token=token, actor="U0BOB")
    actions = list(AuditEvent.objects.filter(environment=name).values_list("action", "actor"))
    assert actions == [("lock.acquired", "user:U0ALICE"), ("lock.released", "U0BOB")]

