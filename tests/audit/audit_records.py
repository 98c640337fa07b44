"""Records for the audit site's tests, made through the control plane's services as the bot and a
worker make them: a rollback planned, approved by someone else, backed up, run; a denied one; a
read; and what the bot audits with no request (a manual lock with a hostile reason, a refusal)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone

from controlplane import services
from controlplane.approvals import request_decide
from controlplane.locks import lock_acquire, lock_release
from controlplane.models import Decision, Request, State
from migrabot import messages
from migrabot.config import Environment, Policy

CHANNEL = "C0OPS"
WORKER = "worker:audit-test"
HOSTILE_REASON = "<!channel> freeze & <b>hold</b>"
DENY_REASON = "<!here> not *now* & <i>never</i>"  # why the denied rollback was denied, as typed


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def rollback_plan() -> dict[str, Any]:
    """What the probe reports for ``rollback <env> marketplace 0005`` on the example project:
    Django cascades into media, whose banner table (and its rows) the reverse drops."""
    return {
        "steps": [
            {
                "app": "media",
                "name": "0004_banner",
                "backwards": True,
                "operations": [
                    {
                        "type": "CreateModel",
                        "description": "Create model Banner",
                        "irreversible": False,
                        "destroys_data": True,
                        "noop_reverse": False,
                        "tables": ["media_banner"],
                    }
                ],
                "file": "media/migrations/0004_banner.py",
                "sha256": _sha("media 0004"),
            },
            {
                "app": "marketplace",
                "name": "0006_alter_listing_title",
                "backwards": True,
                "operations": [
                    {
                        "type": "AlterField",
                        "description": "Alter field title on listing",
                        "irreversible": False,
                        "destroys_data": False,
                        "noop_reverse": False,
                        "tables": ["marketplace_listing"],
                    }
                ],
                "file": "marketplace/migrations/0006_alter_listing_title.py",
                "sha256": _sha("marketplace 0006"),
            },
        ],
        "tables": [
            {"table": "media_banner", "exists": True, "rows": 3},
            {"table": "marketplace_listing", "exists": True, "rows": 1204},
        ],
        "sql": 'BEGIN;\nDROP TABLE "media_banner" CASCADE;\nCOMMIT;\n',
        "warnings": [],
    }


def migration_state(*, banner: bool) -> dict[str, Any]:
    def app(name: str, migrations: list[str], applied: int) -> dict[str, Any]:
        return {
            "app": name,
            "migrations": [
                {"name": m, "state": "applied" if i < applied else "unapplied"} for i, m in enumerate(migrations)
            ],
        }

    return {
        "apps": [
            app(
                "marketplace",
                ["0001_initial", "0005_backfill_order_totals", "0006_alter_listing_title"],
                3 if banner else 2,
            ),
            app("media", ["0001_initial", "0003_image_position", "0004_banner"], 3 if banner else 2),
        ]
    }


@dataclass(frozen=True)
class BackupFile:
    """A backup as a worker's ``take_backup`` hands it to ``backup_record``."""

    path: Path
    size: int = 48_213
    sha256: str = _sha("backup")
    duration_seconds: float = 0.4
    tool: str = "sqlite3 online backup"
    tool_version: str = "3.40.1"
    server_version: str = ""
    verified: bool = True
    verification: str = "PRAGMA integrity_check: ok; sha256 matches"


def environment(name: str, project: Path, approver: str = "U0BOB") -> Environment:
    (project / "manage.py").write_text("")
    return Environment(
        name=name, project=project, settings="backend.settings", policy=Policy(requesters=["*"], approvers=[approver])
    )


def _move(request: Request, frm: State, to: State, **fields: Any) -> Request:
    moved = services.request_transition(
        request_id=request.pk, from_states=[frm], to=to, actor=WORKER, action=f"request.{to}", **fields
    )
    assert moved is not None, (frm, to)
    return moved


def accounts_plan() -> dict[str, Any]:
    """``rollback <env> accounts 0003``: one step, which drops an index."""
    step = {
        "app": "accounts",
        "name": "0004_customer_created_index_remove_profile_website",
        "backwards": True,
        "operations": [
            {
                "type": "AddIndex",
                "description": "Create index accounts_cu_created_idx on field(s) created_at of model customer",
                "irreversible": False,
                "destroys_data": False,
                "noop_reverse": False,
                "tables": ["accounts_customer"],
            }
        ],
        "file": "accounts/migrations/0004_customer_created_index_remove_profile_website.py",
        "sha256": _sha("accounts 0004"),
    }
    return {"steps": [step], "tables": [{"table": "accounts_customer", "exists": True, "rows": 80}], "sql": ""}


def planned_rollback(
    env: Environment, *, args: list[str], requester: str, thread_ts: str, plan: dict[str, Any]
) -> Request:
    request, _ = services.request_create(
        verb="rollback", environment=env.name, args=args, requester=requester, channel=CHANNEL, trigger_id=None
    )
    services.request_attach_card(request_id=request.pk, thread_ts=thread_ts)  # the notifier posted the card
    request = _move(request, State.RECEIVED, State.PLANNING)
    fields = {
        "plan": plan,
        "plan_digest": _sha(f"plan {request.pk}"),
        "steps_digest": _sha("steps"),
        "approvals_required": 1,
        "expires_at": timezone.now() + timedelta(minutes=30),
    }
    return _move(request, State.PLANNING, State.AWAITING_APPROVAL, fields=fields)


def approved_rollback_that_ran(env: Environment, backup_dir: Path, *, thread_ts: str = "1717000000.000100") -> Request:
    """``rollback <env> marketplace 0005`` by U0ALICE, approved by U0BOB, backed up, run."""
    request = planned_rollback(
        env, args=["marketplace", "0005"], requester="U0ALICE", thread_ts=thread_ts, plan=rollback_plan()
    )
    outcome = request_decide(
        request_id=request.pk,
        person="U0BOB",
        decision=Decision.APPROVE,
        plan_digest=request.plan_digest,
        environment=env,
        members_of=lambda group: None,
    )
    request = _move(outcome.request, State.APPROVED, State.BACKING_UP)
    token, _ = lock_acquire(
        environment=env.name, holder=f"request:{request.pk}", reason=f"#{request.pk}", request=request
    )
    assert token is not None
    services.backup_record(
        request=request,
        backup=BackupFile(path=backup_dir / f"{env.name}-request{request.pk}.sqlite3"),
        migration_state=migration_state(banner=True),
        actor=WORKER,
    )
    request = _move(request, State.BACKING_UP, State.RUNNING)
    result = {"run": {"unapplied": ["media.0004_banner", "marketplace.0006_alter_listing_title"], "applied": []}}
    request = _move(request, State.RUNNING, State.SUCCEEDED, result=result | {"state": migration_state(banner=False)})
    lock_release(environment=env.name, token=token, actor=WORKER)
    return request


def denied_rollback(env: Environment) -> Request:
    request = planned_rollback(
        env, args=["accounts", "0003"], requester="U0CAROL", thread_ts="1717000100.000200", plan=accounts_plan()
    )
    return request_decide(
        request_id=request.pk,
        person="U0BOB",
        decision=Decision.DENY,
        plan_digest=request.plan_digest,
        environment=env,
        members_of=lambda group: None,
        reason=DENY_REASON,
    ).request


def read(env: Environment) -> Request:
    request, _ = services.request_create(
        verb="showmigrations",
        environment=env.name,
        args=["media"],
        requester="U0DAVE",
        channel=CHANNEL,
        trigger_id=None,
    )
    request = _move(request, State.RECEIVED, State.RUNNING)
    return _move(request, State.RUNNING, State.SUCCEEDED, result=migration_state(banner=False))


def unattached(env: str) -> str:
    """What the bot audits with no request: a manual lock with a hostile reason (held; its token
    is returned), and a refused command whose reason is the refusal the person read."""
    token, _ = lock_acquire(environment=env, holder="user:U0ALICE", reason=HOSTILE_REASON, ttl=None)
    assert token is not None
    refusal = messages.unknown_verb("<!channel>", ["plan", "rollback"])
    services.audit_record(actor="U0MALLORY", action="command.refused", environment=env, reason=refusal, channel=CHANNEL)
    return token
