"""Reads of the control plane that the App Home shows."""

from __future__ import annotations

import uuid
from typing import Any

from controlplane import selectors
from controlplane.models import Request, State


def finished(environment: str, verb: str, result: dict[str, Any]) -> Request:
    return Request.objects.create(
        verb=verb, environment=environment, args=[], requester="U0ALICE", channel="C0OPS", state=State.SUCCEEDED,
        result=result,
    )


def test_the_last_change_is_the_newest_write_that_changed_something() -> None:
    environment = f"env{uuid.uuid4().hex[:8]}"
    ran = finished(environment, "rollback", {"run": {"unapplied": ["media.0004_banner"]}, "state": {}})
    restored = finished(environment, "restore", {"restored": 3, "state": {}})
    assert selectors.last_change(environment=environment) == restored
    # A write that found nothing to do succeeded, and changed nothing: not the last change.
    finished(environment, "migrate", {"apps": {}})
    assert selectors.last_change(environment=environment) == restored
    finished(environment, "showmigrations", {"apps": {}})
    restored.delete()
    assert selectors.last_change(environment=environment) == ran
