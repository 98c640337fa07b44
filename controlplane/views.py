"""The audit trail as a read-only web page for operators: who asked, who approved, which backup,
what ran, what happened — and the events that belong to no request (manual locks, refused commands
and clicks, lock releases). Optional bearer/basic token (``MIGRABOT_AUDIT_TOKEN``); bind it to a
private address either way. Hostile input is answered 4xx, never 500: tokens are compared as bytes,
ids beyond what a database holds are 404, filters that are not plain text 400."""

from __future__ import annotations

import base64
import hmac
import json
import os
import unicodedata
from collections.abc import Callable
from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render

from controlplane.models import AuditEvent, Backup, Request

PAGE = 100
MAX_ID = 2**63 - 1  # larger ids make the database driver raise instead of finding nothing
MAX_FILTER = 64
View = Callable[..., HttpResponse]


def token_required(view: View) -> View:
    def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        token = os.environ.get("MIGRABOT_AUDIT_TOKEN")
        # As bytes: compare_digest refuses str with non-ASCII characters (TypeError, a 500).
        if token and not hmac.compare_digest(_bytes(_presented(request)), _bytes(token)):
            response = HttpResponse("A token is required.", status=401)
            response["WWW-Authenticate"] = 'Basic realm="migrabot audit"'
            return response
        return view(request, *args, **kwargs)

    return guarded


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


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


def _filter(request: HttpRequest, name: str) -> str:
    """A filter from the query string; ``ValueError`` unless plain text (a NUL makes PostgreSQL raise)."""
    value = request.GET.get(name, "")
    if len(value) > MAX_FILTER or any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise ValueError(name)
    return value


def _readable(detail: Any) -> list[tuple[str, str]]:
    """An event's detail as ``key: value`` lines; values that are not text as JSON."""
    items = detail.items() if isinstance(detail, dict) else [("", detail)]
    return [
        (str(key), value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)) for key, value in items
    ]


@token_required
def request_list(request: HttpRequest) -> HttpResponse:
    try:
        environment = _filter(request, "environment")
    except ValueError:
        return HttpResponseBadRequest("environment must be plain text")
    requests = Request.objects.order_by("-id")
    if environment:
        requests = requests.filter(environment=environment)
    return render(request, "controlplane/requests.html", {"requests": requests[:PAGE], "environment": environment})


@token_required
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    if request_id > MAX_ID:
        raise Http404
    record = get_object_or_404(Request, pk=request_id)
    events = [(event, _readable(event.detail)) for event in AuditEvent.objects.filter(request=record)]
    context = {"record": record, "events": events, "backups": Backup.objects.filter(request=record)}
    return render(request, "controlplane/request.html", context)


@token_required
def event_list(request: HttpRequest) -> HttpResponse:
    """Events that belong to no request, newest first, by environment and action."""
    try:
        environment, action = _filter(request, "environment"), _filter(request, "action")
    except ValueError:
        return HttpResponseBadRequest("environment and action must be plain text")
    unattached = AuditEvent.objects.filter(request__isnull=True)
    events = unattached.order_by("-id")
    if environment:
        events = events.filter(environment=environment)
    if action:
        events = events.filter(action=action)
    page = Paginator(events, PAGE).get_page(request.GET.get("page"))  # a bad page number gives the first or last
    context = {
        "page": page,
        "events": [(event, _readable(event.detail)) for event in page],
        "environment": environment,
        "action": action,
        "environments": unattached.order_by("environment").values_list("environment", flat=True).distinct(),
        "actions": unattached.order_by("action").values_list("action", flat=True).distinct(),
    }
    return render(request, "controlplane/events.html", context)
