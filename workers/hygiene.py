"""The workflow's rules, checked: what the probe found, plus the ledger's verdict on edited files.

The probe reports facts about the target (applied migrations and their files' fingerprints,
missing files, conflicts, model changes, numbering clashes, an inconsistent history); only the
control plane knows what each file looked like when first seen applied. ``review`` records the
fingerprints (first seen wins) and turns everything into sentences that name the environment,
app, migration and file, and say what to do next.

Findings have a severity. *Problems* — an applied migration edited or deleted (in any app: a
package upgrade that rewrote an applied vendor migration is one too), an inconsistent history,
conflicting leaves, model changes with no migration in the project's own apps — are what
``refuse_writes_on_check_failure`` refuses on. *Warnings* — a numbering clash in the project's own
apps (Django's dependencies already order it), model changes in a third-party app — refuse
nothing and are folded to one line on plans. A numbering clash in a third-party app is not
reported at all: that app's dependencies order it and nobody on the team can renumber it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controlplane.fingerprints import fingerprints_record
from migrabot import messages


@dataclass(frozen=True)
class Review:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def review(environment: str, document: dict[str, Any], *, actor: str) -> Review:
    """Record the document's fingerprints; return its findings (none when clean)."""
    fingerprints = document.get("fingerprints", [])
    ledger = fingerprints_record(environment=environment, fingerprints=fingerprints, actor=actor)
    edited = []
    for item in fingerprints:
        first = ledger.get((item["app"], item["name"], datetime.fromisoformat(item["applied_at"])))
        if first is not None and first.sha256 != item["sha256"]:
            edited.append(
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
    hygiene = document.get("hygiene", {})
    changes = hygiene.get("missing_migrations", [])
    return Review(
        problems=edited + _problems(environment, hygiene, [c for c in changes if not c.get("third_party")]),
        warnings=[
            *(
                messages.numbering_clash(environment, c["app"], c["number"], c["names"], c["folder"])
                for c in hygiene.get("prefix_clashes", [])
                if not c.get("third_party")
            ),
            *(
                messages.third_party_model_changes(environment, c["app"], c["operations"], c["folder"])
                for c in changes
                if c.get("third_party")
            ),
        ],
    )


def _problems(environment: str, hygiene: dict[str, Any], own_changes: list[dict[str, Any]]) -> list[str]:
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
            for c in own_changes
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
