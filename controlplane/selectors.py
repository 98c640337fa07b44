"""Reads from the control plane."""

from __future__ import annotations

from controlplane.models import Catalog, Request, State


def request_get(*, request_id: int) -> Request | None:
    return Request.objects.filter(pk=request_id).first()


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
