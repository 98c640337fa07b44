"""Refusals are audited too: who tried what, and why not. A database outage only logs them."""

from __future__ import annotations

import logging

from django.db import DatabaseError

from controlplane import services

log = logging.getLogger(__name__)


def audit_refusal(*, actor: str, action: str, reason: str, environment: str = "", **detail: str) -> None:
    """``environment`` when one is known, so the refusal is found under it in the audit pages."""
    try:
        services.audit_record(
            actor=actor, action=action, request=None, environment=environment, reason=reason, **detail
        )
    except DatabaseError:
        log.exception("audit.unavailable action=%s actor=%s", action, actor)
