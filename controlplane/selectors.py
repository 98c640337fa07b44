"""Reads from the control plane."""

from __future__ import annotations

from controlplane.models import AuditEvent, Catalog, Request


def request_get(*, request_id: int) -> Request | None:
    return Request.objects.filter(pk=request_id).first()


def catalog_get(*, environment: str) -> dict[str, list[str]] | None:
    catalog = Catalog.objects.filter(environment=environment).first()
    return catalog.apps if catalog else None


def audit_for_request(*, request_id: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(request_id=request_id))
