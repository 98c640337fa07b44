"""The audit trail as a read-only web page for operators: who asked, who approved, which backup,
what ran, what happened. Optional bearer/basic token (``MIGRABOT_AUDIT_TOKEN``); bind it to a
private address either way."""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from controlplane.models import AuditEvent, Backup, Request

PAGE = 100
View = Callable[..., HttpResponse]


def token_required(view: View) -> View:
    def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        token = os.environ.get("MIGRABOT_AUDIT_TOKEN")
        if token and not hmac.compare_digest(_presented(request), token):
            response = HttpResponse("A token is required.", status=401)
            response["WWW-Authenticate"] = 'Basic realm="migrabot audit"'
            return response
        return view(request, *args, **kwargs)

    return guarded


def _presented(request: HttpRequest) -> str:
    """The token from ``Authorization: Bearer …`` or from the password of basic auth."""
    kind, _, value = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() == "bearer":
        return value
    if kind.lower() == "basic":
        try:
            return base64.b64decode(value).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


@token_required
def request_list(request: HttpRequest) -> HttpResponse:
    environment = request.GET.get("environment", "")
    requests = Request.objects.order_by("-id")
    if environment:
        requests = requests.filter(environment=environment)
    return render(request, "controlplane/requests.html", {"requests": requests[:PAGE], "environment": environment})


@token_required
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    record = get_object_or_404(Request, pk=request_id)
    context = {
        "record": record,
        "events": AuditEvent.objects.filter(request=record),
        "backups": Backup.objects.filter(request=record),
    }
    return render(request, "controlplane/request.html", context)
