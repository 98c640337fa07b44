"""``/healthz``: 200 ``{"controlplane": "ok"}`` while the control plane's database answers, else 503.

Open to anyone (a load balancer or docker's healthcheck asks it): it says nothing but that, and
the database's error goes to the log only, with any password in it masked.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_safe

from controlplane.health import controlplane_reachable


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    if not controlplane_reachable():
        return JsonResponse({"controlplane": "unreachable"}, status=503)
    return JsonResponse({"controlplane": "ok"})
