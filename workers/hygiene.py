"""The workflow's rules, checked: what the probe found, plus the ledger's verdict on edited files.

The probe reports facts about the target (applied migrations and their files' fingerprints,
missing files, conflicts, model changes, numbering clashes, an inconsistent history); only the
control plane knows what each file looked like when first seen applied. ``review`` records the
fingerprints (first seen wins) and turns everything into sentences that name the environment,
app, migration and file, and say what to do next.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controlplane.fingerprints import fingerprints_record
from migrabot import messages


def review(environment: str, document: dict[str, Any], *, actor: str) -> list[str]:
    """Record the document's fingerprints; return its findings (empty when clean)."""
    fingerprints = document.get("fingerprints", [])
    ledger = fingerprints_record(environment=environment, fingerprints=fingerprints, actor=actor)
    findings = []
    for item in fingerprints:
        first = ledger.get((item["app"], item["name"], datetime.fromisoformat(item["applied_at"])))
        if first is not None and first.sha256 != item["sha256"]:
            findings.append(
                messages.edited_migration(
                    environment,
                    item["app"],
                    item["name"],
                    item["file"],
                    first.sha256,
                    item["sha256"],
                    first.first_seen_at,
                )
            )
    return findings + _from_probe(environment, document.get("hygiene", {}))


def _from_probe(environment: str, hygiene: dict[str, Any]) -> list[str]:
    return [
        *(
            messages.missing_migration_file(environment, m["app"], m["name"], m["file"])
            for m in hygiene.get("missing_files", [])
        ),
        *(
            messages.conflicting_leaves(environment, c["app"], c["names"], c["folder"])
            for c in hygiene.get("conflicts", [])
        ),
        *(
            messages.model_changes_without_migration(environment, c["app"], c["operations"], c["folder"])
            for c in hygiene.get("missing_migrations", [])
        ),
        *(
            messages.numbering_clash(environment, c["app"], c["number"], c["names"], c["folder"])
            for c in hygiene.get("prefix_clashes", [])
        ),
        *(
            messages.inconsistent_history(
                environment,
                i["app"],
                i["name"],
                f"{i['dependency']['app']}.{i['dependency']['name']}",
                i["dependency"]["file"],
            )
            for i in hygiene.get("inconsistent", [])
        ),
    ]


def record(environment: str, document: dict[str, Any], *, actor: str) -> dict[str, Any]:
    """Keep the ledger up to date from a document that is not reviewed; return it ``stripped``."""
    fingerprints_record(environment=environment, fingerprints=document.get("fingerprints", []), actor=actor)
    return stripped(document)


def stripped(document: dict[str, Any]) -> dict[str, Any]:
    """The document without the raw facts: the ledger holds the fingerprints, findings are sentences."""
    return {key: value for key, value in document.items() if key not in FACTS}


FACTS = ("fingerprints", "hygiene")
