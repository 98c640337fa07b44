"""Block Kit for everything the bot posts: pure functions from records to ``(text, blocks)``.

``text`` is the notification and screen-reader fallback; the blocks are what people read, short
first so the thread stays readable on a phone. Long listings go out as files (``bot.notify``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from controlplane.models import Backup, Request
from migrabot import messages

Blocks = list[dict[str, Any]]
Message = tuple[str, Blocks]


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def code(text: str) -> Message:
    return text, [section(f"```{text}```")]


def request_card(request: Request, command: str) -> Message:
    """The parent message of a request's thread, updated in place as the request moves on."""
    title = messages.card_title(request.pk, command, request.command_text)
    status = messages.card_context(request.requester, request.state)
    return f"{title} — {status}", [section(title), context(status)]


def note(text: str) -> Message:
    return text, [section(text)]


def showmigrations_result(environment: str, result: dict[str, Any]) -> Message:
    lines, applied, total = [], 0, 0
    for app in result["apps"]:
        migrations = app["migrations"]
        done = sum(1 for m in migrations if m["state"] == "applied")
        waiting = (m["name"] for m in migrations if m["state"] != "applied")
        applied, total = applied + done, total + len(migrations)
        lines.append(messages.app_line(app["app"], done, len(migrations), next(waiting, None)))
    summary = messages.showmigrations_summary(environment, applied, total)
    return summary, [section(summary), section("\n".join(lines))]


def check_result(environment: str, findings: list[str]) -> Message:
    if not findings:
        return note(messages.check_clean(environment))
    summary = messages.check_summary(environment, len(findings))
    return summary, [section(summary), *_findings_blocks(environment, findings)]


def warnings(environment: str, findings: list[str]) -> Blocks:
    """Hygiene findings at the top of a plan."""
    if not findings:
        return []
    return [section(messages.plan_warnings(environment, len(findings))), *_findings_blocks(environment, findings)]


def _findings_blocks(environment: str, findings: list[str]) -> Blocks:
    # One finding per section: each can be long, and a section holds at most 3000 characters.
    shown = [section(finding[:2900]) for finding in findings[:MAX_FINDINGS]]
    more = len(findings) - MAX_FINDINGS
    return shown + ([context(messages.more_findings(environment, more))] if more > 0 else [])


MAX_FINDINGS = 10


def plan_result(environment: str, result: dict[str, Any], findings: list[str] | None = None) -> Message:
    steps = result["steps"]
    backwards = sum(1 for step in steps if step["backwards"])
    summary = messages.plan_summary(environment, len(steps) - backwards, backwards)
    blocks = [*warnings(environment, findings or []), section(summary)]
    if steps:
        lines = [
            messages.plan_step(
                step["app"],
                step["name"],
                step["backwards"],
                len(step["operations"]),
                any(op["irreversible"] for op in step["operations"]),
            )
            for step in steps
        ]
        blocks.append(section("\n".join(lines)[:2900]))
    return summary, blocks


# --- writes ------------------------------------------------------------------------------------

APPROVE, DENY = "approve", "deny"


def _step_line(step: dict[str, Any]) -> str:
    operations = step["operations"]
    marks = []
    if any(op["irreversible"] for op in operations):
        marks.append("⛔ irreversible")
    destroyed = sorted({table for op in operations if op.get("destroys_data") for table in op.get("tables", [])})
    if any(op.get("destroys_data") for op in operations):
        marks.append("🔥 destroys data" + (f" in {', '.join(f'`{t}`' for t in destroyed)}" if destroyed else ""))
    if step["backwards"] and any(op.get("noop_reverse") for op in operations):
        marks.append("⚪ no-op reverse")
    arrow = "↩️ unapply" if step["backwards"] else "➡️ apply"
    return f"{arrow} `{step['app']}.{step['name']}`" + (" — " + "; ".join(marks) if marks else "")


def _plan_blocks(request: Request) -> Blocks:
    plan = request.plan or {}
    restore = plan.get("restore")
    if restore:
        lines = [
            f"♻️ restore backup #{restore['backup']} (sha256 `{restore['sha256'][:16]}…`, "
            f"{restore['size'] / 1048576:.1f} MiB, taken {restore['taken_at'][:16].replace('T', ' ')} UTC); "
            "the current state is backed up first"
        ]
    else:
        lines = [_step_line(step) for step in plan.get("steps", [])]
    blocks = [
        *warnings(request.environment, plan.get("warnings", [])),
        section(f"*Plan for #{request.pk}* `{request.command_text}`"),
        section("\n".join(lines)[:2900]),
    ]
    promoted = plan.get("promoted_from")
    if promoted:
        blocks.append(
            context(messages.promoted(promoted["environment"], promoted["request"], datetime.fromisoformat(promoted["finished_at"])))
        )
    tables = plan.get("tables") or []
    if tables:
        shown = ", ".join(
            f"`{t['table']}` ({t['rows']:,} rows)" if t.get("exists") else f"`{t['table']}` (absent)" for t in tables
        )
        blocks.append(context(f"Tables: {shown}"[:2900]))
    return blocks


def plan_for_approval(request: Request, environment: Any) -> Message:
    """The plan in the thread with Approve / Deny; the buttons carry the request and plan digest."""
    value = json.dumps({"request": request.pk, "digest": request.plan_digest})
    assert request.expires_at is not None
    blocks = _plan_blocks(request) + [
        context(messages.approval_needed(request.approvals_required, request.requester, request.expires_at)),
        {
            "type": "actions",
            "block_id": f"decision-{request.pk}",
            "elements": [
                {"type": "button", "action_id": APPROVE, "style": "primary", "value": value, "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "action_id": DENY, "style": "danger", "value": value, "text": {"type": "plain_text", "text": "Deny"}},
            ],
        },
    ]
    return f"Plan for #{request.pk} `{request.command_text}` — approval needed", blocks


def plan_decided(request: Request, person: str, moment: datetime) -> Message:
    """The plan message once decided: buttons cannot be disabled, so they are replaced."""
    text = messages.decision(request.state, person, moment)
    return text, _plan_blocks(request) + [section(text)]


def backup_recorded(backup: Backup) -> Message:
    return note(
        messages.backup_line(backup.pk, backup.size, backup.sha256, backup.duration_seconds, backup.tool, backup.verification)
    )


def run_result(request: Request, result: dict[str, Any], state: dict[str, Any]) -> Message:
    summary = messages.run_done(request.verb, len(result.get("applied", [])), len(result.get("unapplied", [])))
    _, state_blocks = showmigrations_result(request.environment, state)
    return summary, [section(summary), *state_blocks[1:]]


def restored(request: Request, backup: Backup, state: dict[str, Any]) -> Message:
    summary = messages.restored(backup.pk, backup.created_at)
    _, state_blocks = showmigrations_result(request.environment, state)
    return summary, [section(summary), *state_blocks[1:]]
