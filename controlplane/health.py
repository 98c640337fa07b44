"""Whether the control plane's database answers: the health checks of the bot and the audit site."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection

from migrabot.redact import redact

log = logging.getLogger(__name__)


def controlplane_reachable() -> bool:
    """A ``SELECT 1``; on failure the error is logged (any password in it masked) and False returned."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        log.warning("healthz.controlplane_unreachable error=%s", redact(f"{type(error).__name__}: {error}"))
        return False
    return True
