"""``/healthz``: 200 ``{"controlplane": "ok"}`` while the control plane's database answers, else 503.

Open to anyone (a load balancer or docker's healthcheck asks it): it says nothing but that, and
the database's error goes to the log only, with any password in it masked.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from migrabot.redact import redact

log = logging.getLogger(__name__)


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        said = " ".join(redact(f"{type(error).__name__}: {error}").split())  # one log line
        log.warning("healthz.controlplane_unreachable error=%s", said)
        return JsonResponse({"controlplane": "unreachable"}, status=503)
    return JsonResponse({"controlplane": "ok"})
