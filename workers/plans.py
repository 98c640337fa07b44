"""The plan of a write, as approvers see it and as the run must find it again (its digest).

A rollback only unapplies and a ``migrate`` only applies: a command that would go the other way
is refused with the verb to use instead. A rollback through an irreversible step is refused
before anything runs (Django would raise mid-plan, after earlier steps were already unapplied).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from controlplane.errors import Refusal
from controlplane.models import Backup, Request
from migrabot import messages
from workers.catalog import read
from workers.target import Target


def compute_plan(target: Target, request: Request) -> dict[str, Any]:
    if request.verb == "restore":
        return _restore_plan(request)
    fake = ["--fake"] if request.verb == "fake" else []
    plan = read(target, "plan", *fake, *request.args)
    steps = plan["steps"]
    if request.verb == "rollback":
        ahead = [step for step in steps if not step["backwards"]]
        if ahead:
            raise Refusal(messages.rollback_would_apply(request.environment, _name(ahead[0]), request.args))
        for step in steps:
            for operation in step["operations"]:
                if operation["irreversible"]:
                    raise Refusal(messages.irreversible_step(_name(step), operation["description"]))
    if request.verb == "migrate":
        behind = [step for step in steps if step["backwards"]]
        if behind:
            raise Refusal(messages.migrate_would_unapply(request.environment, _name(behind[0]), request.args))
    return plan


def plan_digest(request: Request, plan: dict[str, Any]) -> str:
    """What the approval binds to: the verb and its arguments, every step with its operations and
    the content of its migration file, the SQL the approver was shown, and for a restore the
    backup's checksum (a fake binds to the same files: the history it writes names them), and the
    rehearsal that succeeded (``workers.rehearsal``; the run carries the approved one forward)."""
    essence = {
        "verb": request.verb,
        "environment": request.environment,
        "args": request.args,
        "steps": _steps(plan),
        "sql": plan.get("sql", ""),
        "restore": plan.get("restore"),
        "rehearsal": plan.get("rehearsal"),
    }
    return _sha256(essence)


def expectation(plan: dict[str, Any]) -> dict[str, Any]:
    """The approved code, for the probe to check in the very process that runs it
    (probe.code_under_approval computes the same shape from what it imported)."""
    return {
        "steps": [[s["app"], s["name"], s["backwards"], s["file"], s["sha256"]] for s in plan["steps"]],
        "sql_sha256": hashlib.sha256(plan.get("sql", "").encode()).hexdigest(),
    }


def what_changed(approved: dict[str, Any], now: dict[str, Any]) -> str:
    """Why a re-computed plan is not the approved one, in words that name the file."""
    before = {(s["app"], s["name"]): s for s in approved.get("steps", [])}
    for step in now["steps"]:
        old = before.get((step["app"], step["name"]))
        if old is not None and old.get("sha256") != step["sha256"]:
            return messages.file_changed(step["file"])
    if [(s["app"], s["name"], s["backwards"]) for s in approved.get("steps", [])] != [
        (s["app"], s["name"], s["backwards"]) for s in now["steps"]
    ]:
        return messages.steps_changed()
    return messages.sql_changed()


def steps_digest(verb: str, plan: dict[str, Any]) -> str:
    """The steps alone, the same on every environment: what promotion order compares.

    No environment and no arguments: ``migrate staging`` and ``migrate prod media`` promote
    each other when they run the same migrations with the same operations.
    """
    return _sha256({"verb": verb, "steps": _steps(plan)})


def _steps(plan: dict[str, Any]) -> list[Any]:
    return [
        [step["app"], step["name"], step["backwards"], step["sha256"], [op["description"] for op in step["operations"]]]
        for step in plan["steps"]
    ]


def _sha256(essence: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(essence, sort_keys=True).encode()).hexdigest()


def is_empty(plan: dict[str, Any]) -> bool:
    return not plan["steps"] and not plan.get("restore")


def _restore_plan(request: Request) -> dict[str, Any]:
    backup_id = int(request.args[0])
    backup = Backup.objects.filter(pk=backup_id, environment=request.environment).first()
    if backup is None:
        raise Refusal(messages.no_such_backup(backup_id, request.environment))
    if not backup.verified or not Path(backup.path).is_file():
        raise Refusal(messages.backup_unusable(backup_id))
    return {
        "steps": [],
        "tables": [],
        "sql": "",
        "restore": {
            "backup": backup.pk,
            "sha256": backup.sha256,
            "size": backup.size,
            "taken_at": backup.created_at.isoformat(),
        },
    }


def _name(step: dict[str, Any]) -> str:
    return f"{step['app']}.{step['name']}"
