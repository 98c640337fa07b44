"""The fingerprint ledger: each applied migration's file as first seen, per environment.

Recording only ever adds rows (first seen wins), so the reference a later edit is compared
against cannot be moved by the edit itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from django.db import transaction

from controlplane.models import MigrationFingerprint
from controlplane.services import audit_record

Application = tuple[str, str, datetime]  # app, migration, when django_migrations says it was applied


class FirstSeen(NamedTuple):
    """The ledger's row for one application of a migration: its file as first seen."""

    sha256: str
    first_seen_at: datetime


def fingerprints_record(
    *, environment: str, fingerprints: Iterable[dict[str, Any]], actor: str
) -> dict[Application, FirstSeen]:
    """Add the fingerprints not seen before; return the ledger's row for each one reported."""
    reported = {_application(item): item for item in fingerprints}
    known = fingerprints_of(environment=environment, applications=reported)
    new = [
        MigrationFingerprint(
            environment=environment, app=app, name=name, applied_at=applied_at, file=item["file"], sha256=item["sha256"]
        )
        for (app, name, applied_at), item in reported.items()
        if (app, name, applied_at) not in known
    ]
    if new:
        with transaction.atomic():
            # A concurrent reader may record the same rows: the unique constraint keeps its.
            MigrationFingerprint.objects.bulk_create(new, ignore_conflicts=True)
            audit_record(
                actor=actor,
                action="fingerprints.recorded",
                environment=environment,
                migrations=[f"{row.app}.{row.name}" for row in new],
            )
        known = fingerprints_of(environment=environment, applications=reported)
    return known


def fingerprints_of(*, environment: str, applications: Iterable[Application]) -> dict[Application, FirstSeen]:
    # Plain values: every read of a 5,000-migration history asks for all of them.
    wanted = set(applications)
    rows = MigrationFingerprint.objects.filter(environment=environment).values_list(
        "app", "name", "applied_at", "sha256", "first_seen_at"
    )
    return {
        key: FirstSeen(sha256, first_seen_at)
        for app, name, applied_at, sha256, first_seen_at in rows
        if (key := (app, name, applied_at)) in wanted
    }


def _application(item: dict[str, Any]) -> Application:
    return item["app"], item["name"], datetime.fromisoformat(item["applied_at"])
