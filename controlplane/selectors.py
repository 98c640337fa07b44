"""Reads from the control plane."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from controlplane.models import TERMINAL_STATES, Approval, Catalog, Request, State
from migrabot.config import WRITE_VERBS


def request_get(*, request_id: int) -> Request | None:
    return Request.objects.filter(pk=request_id).first()


def request_state(*, request_id: int) -> str | None:
    state: str | None = Request.objects.filter(pk=request_id).values_list("state", flat=True).first()
    return state


def catalog_get(*, environment: str) -> dict[str, list[str]] | None:
    # By its key, with none of the ORDER BY that ``first()`` adds: every command reads it before its ack.
    try:
        apps: dict[str, list[str]] = Catalog.objects.get(pk=environment).apps
    except Catalog.DoesNotExist:
        return None
    return apps


def request_succeeded_with_steps(*, environment: str, steps_digest: str) -> Request | None:
    """The latest request that ran these exact steps to success on ``environment``."""
    return (
        Request.objects.filter(environment=environment, steps_digest=steps_digest, state=State.SUCCEEDED)
        .order_by("-updated_at")
        .first()
    )


def requests_awaiting_approval(*, environments: list[str]) -> list[Request]:
    """Requests still awaiting approval on these environments (not yet expired), oldest first."""
    live = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    return list(
        Request.objects.filter(live, state=State.AWAITING_APPROVAL, environment__in=environments).order_by("created_at")
    )


def approvers_so_far(*, request_ids: list[int]) -> dict[int, set[str]]:
    """Who has decided on each of these requests (approved or denied)."""
    decided: dict[int, set[str]] = {pk: set() for pk in request_ids}
    for request_id, approver in Approval.objects.filter(request_id__in=request_ids).values_list(
        "request_id", "approver"
    ):
        decided[request_id].add(approver)
    return decided


def last_change(*, environment: str) -> Request | None:
    """The newest write that changed ``environment``: it ran migrations or restored a backup (one
    that found nothing to do succeeded too, and changed nothing)."""
    changed = Q(result__has_key="run") | Q(result__has_key="restored")
    return (
        Request.objects.filter(changed, environment=environment, verb__in=WRITE_VERBS, state=State.SUCCEEDED)
        .order_by("-updated_at")
        .first()
    )


def open_requests_count(*, environment: str) -> int:
    """Requests on ``environment`` not yet in a final state."""
    return Request.objects.filter(environment=environment).exclude(state__in=TERMINAL_STATES).count()
