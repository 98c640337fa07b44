"""Block Kit for everything the bot posts: pure functions from records to ``(text, blocks)``.

``text`` is the notification and screen-reader fallback; the blocks are what people read, short
first so the thread stays readable on a phone. Long listings go out as files (``bot.notify``).

Every card is built from ``slackui.blocks``, so whatever its input it stays within Slack's limits (a
text object ≤ 3,000 characters, ≤ 50 blocks, message text ≤ 40,000). A long listing (plan steps,
apps) is folded: a summary with counts first, every line that matters (a dangerous step, an app with
migrations to apply), then "… and N more". When a message is folded, ``folded(message)`` is true and
its caller attaches the full text as a file: ``plan_listing(request)`` for a plan to approve; the
read verbs already attach ``manage.py``'s own listing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from controlplane.models import Backup, Request
from migrabot import messages
from migrabot_probe.protocol import UNKNOWN_LOCK, lock_rank
from slackui import blocks as kit
from slackui.blocks import Blocks, Message, folded


def section(text: str) -> dict[str, Any]:
    return kit.section(text)


def context(text: str) -> dict[str, Any]:
    return kit.context(text)


def code(text: str) -> Message:
    # split("\n") and join give the text back exactly, so a listing short enough for one section
    # reads as ```text``` (what the e2e tests compare with manage.py's output).
    return kit.message(text, kit.sections(text.split("\n"), fence="```"))


def request_card(request: Request, command: str) -> Message:
    """The parent message of a request's thread, updated in place as the request moves on."""
    title = messages.card_title(request.pk, command, request.command_text)
    status = messages.card_context(request.requester, request.state)
    return kit.message(f"{title} — {status}", [section(title), context(status)])


def note(text: str) -> Message:
    return kit.message(text, kit.sections(text.split("\n")))


def progress(lines: list[str]) -> Message:
    """A run's progress message, updated as each migration starts and finishes: the newest lines
    in one section, under a line saying how many earlier ones are folded (none is cut silently)."""
    if not lines:
        return note(messages.starting())
    kept: list[str] = []
    used = 0
    for line in reversed(lines[-kit.LINES :]):
        line = kit.cut(line, kit.TEXT)
        if kept and used + 1 + kit.size(line) > kit.TEXT:
            break
        kept.insert(0, line)
        used += 1 + kit.size(line)
    earlier = len(lines) - len(kept)
    head = [context(messages.progress_folded(earlier))] if earlier else []
    return kit.message("\n".join(kept), [*head, *kit.sections(kept)])


def _apps(environment: str, result: dict[str, Any], where: str) -> tuple[str, Blocks]:
    """The summary and the apps of a showmigrations result; when they do not all fit, the apps
    with migrations to apply come first and the rest are folded (``where`` says where they are)."""
    lines: list[str] = []
    pending: list[int] = []
    applied, total = 0, 0
    for app in result["apps"]:
        migrations = app["migrations"]
        done = sum(1 for m in migrations if m["state"] == "applied")
        waiting = (m["name"] for m in migrations if m["state"] != "applied")
        applied, total = applied + done, total + len(migrations)
        if done < len(migrations):
            pending.append(len(lines))
        lines.append(messages.app_line(app["app"], done, len(migrations), next(waiting, None)))
    summary = messages.showmigrations_summary(environment, applied, total)
    fold = kit.fold(lines, pending)
    shown = kit.sections(lines[i] for i in fold.shown)
    if fold.folded:
        said = messages.folded(fold.hidden, "app", fold.hidden_must, "not up to date", where)
        shown.append(kit.context(said, block_id=kit.FOLDED))
    return summary, shown


def showmigrations_result(environment: str, result: dict[str, Any]) -> Message:
    summary, apps = _apps(environment, result, messages.in_the_file())
    return kit.message(summary, [section(summary), *apps])


def check_result(environment: str, problems: list[str], warned: Sequence[str] = ()) -> Message:
    """Problems first; warnings after them (or after the one-line clean answer)."""
    if not problems and not warned:
        return note(messages.check_clean(environment))
    if not problems:
        summary = messages.check_clean_with_warnings(environment, len(warned))
        return kit.message(summary, [section(summary), *_findings_blocks(environment, list(warned))])
    summary = messages.check_summary(environment, len(problems))
    return kit.message(summary, [section(summary), *_findings_blocks(environment, [*problems, *warned])])


def warnings(environment: str, problems: list[str], warned: Sequence[str] = ()) -> Blocks:
    """Hygiene findings at the top of a plan: the problems in full, the warnings in one line."""
    folded = [context(messages.plan_warnings_folded(environment, len(warned)))] if warned else []
    if not problems:
        return folded
    return [section(messages.plan_warnings(environment, len(problems))), *_findings_blocks(environment, problems),
            *folded]


def _findings_blocks(environment: str, findings: list[str]) -> Blocks:
    # One finding per section (each can be long; a section cuts one longer than 3,000 characters
    # visibly), and at most MAX_FINDINGS of them: `check` attaches the full list.
    shown = [section(finding) for finding in findings[:MAX_FINDINGS]]
    more = len(findings) - MAX_FINDINGS
    return shown + ([context(messages.more_findings(environment, more))] if more > 0 else [])


MAX_FINDINGS = messages.MAX_FINDINGS


# --- plans: what each step risks, folded so that every dangerous step shows ----------------------


def _risks(step: dict[str, Any]) -> tuple[bool, bool, bool]:
    """(irreversible, destroys data, no-op reverse): the steps an approver must see."""
    operations = step["operations"]
    return (
        any(op["irreversible"] for op in operations),
        any(op.get("destroys_data") for op in operations),
        bool(step["backwards"]) and any(op.get("noop_reverse") for op in operations),
    )


def _marks(step: dict[str, Any], *, irreversible: bool = True, whole: bool = False) -> list[str]:
    """A step's risks, each named: what it destroys (tables; columns with the rows holding a value),
    what comes back empty, a no-op reverse, the code it runs (``whole``: all of its SQL, for the file)."""
    is_irreversible, destroys, noop = _risks(step)
    marks = ["⛔ irreversible"] if irreversible and is_irreversible else []
    if destroys:
        marks.append(messages.destroys_data_in(*_destroyed([step])))
    marks += [messages.comes_back_empty(r["table"], r.get("column"), r.get("fill")) for r in _recreated(step)]
    marks += ["⚪ no-op reverse"] if noop else []
    return marks + [_runs(run, whole) for run in _code_runs(step)]


def _risk_summary(steps: list[dict[str, Any]], plan: dict[str, Any] | None = None) -> str:
    """The counts line that leads a plan (``plan``: the document, for the rows of its tables and its cascades)."""
    plan = plan or {}
    backwards = any(step["backwards"] for step in steps)
    if plan.get("fake"):
        return messages.fake_risks(len(steps), backwards)
    risks = [_risks(step) for step in steps]
    tables, columns = _destroyed(steps)
    rows = _table_rows(plan)
    counted = [rows.get(table) for table in tables]
    values = [None if column.get("new") else column.get("rows") for column in columns]
    emptied = [recreated.get("column") for step in steps for recreated in _recreated(step)]
    return messages.plan_risks(
        len(steps),
        sum(r[1] for r in risks),
        sum(r[0] for r in risks),
        sum(r[2] for r in risks) if backwards else None,
        tables=len(tables),
        rows=(sum(n for n in counted if n is not None), sum(n is None for n in counted)),
        columns=len(columns),
        values=(sum(n for n in values if n is not None), sum(n is None for n in values)),
        emptied=(sum(c is not None for c in emptied), sum(c is None for c in emptied)),
        code=sum(1 for step in steps if _code_runs(step)),
        cascades=len(plan.get("cascades") or []),
    )


def _steps_blocks(steps: list[dict[str, Any]], lines: list[str], where: str) -> Blocks:
    """Step lines in plan order; when they do not all fit, every dangerous step that fits, the
    first others, a ``⋮`` where steps are left out, and how many more there are and where.
    Dangerous: irreversible, destroying data, a no-op reverse, re-creating a column or table empty.
    Code that runs is marked and counted but takes no dangerous step's room."""
    dangerous = [i for i, step in enumerate(steps) if any(_risks(step)) or _recreated(step)]
    fold = kit.fold(lines, dangerous)
    shown = kit.sections(kit.in_order(lines, fold.shown))
    if fold.folded:
        said = messages.folded(fold.hidden, "step", fold.hidden_must, "dangerous", where)
        shown.append(kit.context(said, block_id=kit.FOLDED))
    return shown


def plan_result(
    environment: str, result: dict[str, Any], findings: list[str] | None = None, warned: list[str] | None = None
) -> Message:
    steps = result["steps"]
    backwards = sum(1 for step in steps if step["backwards"])
    summary = messages.plan_summary(environment, len(steps) - backwards, backwards)
    if not steps:
        return kit.message(summary, [*warnings(environment, findings or [], warned or []), section(summary)])
    lines = [
        # plan_step flags an irreversible step its own way; the other risks follow it.
        messages.plan_step(step["app"], step["name"], step["backwards"], len(step["operations"]), _risks(step)[0])
        + "".join(f" · {mark}" for mark in _marks(step, irreversible=False))
        for step in steps
    ]
    cascading = _cascade_lines(result)
    more = len(cascading) - MAX_CASCADES
    head = [summary, _risk_summary(steps, result), *cascading[:MAX_CASCADES]]
    blocks = [
        *warnings(environment, findings or [], warned or []),
        section("\n".join(head + ([messages.more_cascades(more, None)] if more > 0 else []))),
        *_steps_blocks(steps, lines, messages.in_the_file()),
    ]
    return kit.message(summary, blocks)


# --- writes ------------------------------------------------------------------------------------

APPROVE, DENY = "approve", "deny"
MAX_TABLES = 25


def _step_line(step: dict[str, Any], every_lock: bool = False, fake: bool = False) -> str:
    """A step of a plan to approve: its risks, then what it locks (``every_lock``: all, for the listing file).
    A ``fake`` step runs nothing, so it risks and locks nothing: only its history row changes."""
    if fake:
        return messages.fake_step(step["app"], step["name"], step["backwards"])
    arrow = "↩️ unapply" if step["backwards"] else "➡️ apply"
    said = "; ".join(_marks(step, whole=every_lock))
    locks = _lock_phrase(step, every_lock)
    if locks:
        said = f"{said} · {locks}" if said else locks
    return f"{arrow} `{step['app']}.{step['name']}`" + (f" — {said}" if said else "")


#: The locks worth a phrase on a message: they stop the table's writes or reads (an unknown one may).
BLOCKING_LOCKS = frozenset({"ACCESS EXCLUSIVE", "EXCLUSIVE", "SHARE ROW EXCLUSIVE", "SHARE", UNKNOWN_LOCK})
MAX_LOCKS = 3  # tables named per step on a message; the listing file names them all


def _lock_phrase(step: dict[str, Any], every_lock: bool) -> str | None:
    """What the step locks on PostgreSQL: what its rehearsal measured on the copy where one did, otherwise
    what the probe derived from its SQL, marked so. On a message only the locks that matter (stronger than
    plain DML's, or a rewrite or full scan), the strongest first; None when there is nothing to say."""
    rehearsed = step.get("rehearsed") or {}
    if rehearsed.get("locks") is not None:
        return _measured_locks(rehearsed, step.get("locks") or [], every_lock)
    shown = [
        lock for lock in step.get("locks") or []
        if every_lock or lock["mode"] in BLOCKING_LOCKS or lock.get("rewrites") or lock.get("scans")
    ]
    if not shown:
        return None
    shown.sort(
        key=lambda lock: (-lock_rank(lock["mode"]), not lock.get("rewrites"), not lock.get("scans"),
                          -(lock.get("size") or 0))
    )
    kept = shown if every_lock else shown[:MAX_LOCKS]
    return messages.locks_derived(kept, len(shown) - len(kept))


def _measured_locks(rehearsed: dict[str, Any], derived: list[dict[str, Any]], every_lock: bool) -> str | None:
    """The rehearsal's locks (``workers.rehearsal``): sizes measured on the copy, else the derived ones'."""
    rewrote = set(rehearsed.get("rewrote") or [])
    sizes = {lock["table"]: lock.get("size") for lock in derived} | dict(rehearsed.get("sizes") or {})
    measured = [
        {"table": table, "mode": lock["mode"], "rewrote": table in rewrote, "size": sizes.get(table)}
        for lock in rehearsed["locks"]
        for table in [lock["table"]]
    ]
    shown = [lock for lock in measured if every_lock or lock["mode"] in BLOCKING_LOCKS or lock["rewrote"]]
    if not shown and not every_lock:
        return None
    shown.sort(key=lambda lock: (-lock_rank(lock["mode"]), not lock["rewrote"], -(lock["size"] or 0)))
    kept = shown if every_lock else shown[:MAX_LOCKS]
    return messages.locks_measured(kept, len(shown) - len(kept), float(rehearsed.get("seconds") or 0))


def _table(table: dict[str, Any]) -> str:
    return f"`{table['table']}` ({table['rows']:,} rows)" if table.get("exists") else f"`{table['table']}` (absent)"


def _restore_line(restore: dict[str, Any]) -> str:
    return messages.restore_plan(restore["backup"], restore["sha256"], restore["size"], restore["taken_at"])


def _plan_blocks(request: Request) -> Blocks:
    plan = request.plan or {}
    restore = plan.get("restore")
    steps = plan.get("steps", [])
    title = messages.plan_title(request.pk, request.command_text)
    blocks = [*warnings(request.environment, plan.get("problems", []), plan.get("warnings", []))]
    if restore:
        blocks += [section(title), section(_restore_line(restore))]
    else:
        # The rehearsal's outcome and the risk first (with the apps it cascades into, and why), then the
        # steps: every dangerous one, folded if need be.
        cascading = _cascade_lines(plan)
        head = [title, _rehearsal_line(plan), _risk_summary(steps, plan), *cascading[:MAX_CASCADES]]
        blocks += [section("\n".join(filter(None, head)))]
        where = messages.in_the_file(_listing_name(request))
        listed = _steps_blocks(steps, [_step_line(step, fake=bool(plan.get("fake"))) for step in steps], where)
        if len(cascading) > MAX_CASCADES:
            marked = not any(block.get("block_id") == kit.FOLDED for block in [*blocks, *listed])
            said = messages.more_cascades(len(cascading) - MAX_CASCADES, where)
            blocks.append(kit.context(said, block_id=kit.FOLDED if marked else None))
        blocks += listed
    promoted = plan.get("promoted_from")
    if promoted:
        blocks.append(
            context(
                messages.promoted(
                    promoted["environment"], promoted["request"], datetime.fromisoformat(promoted["finished_at"])
                )
            )
        )
    tables = plan.get("tables") or []
    if tables:
        more = len(tables) - MAX_TABLES
        marked = more > 0 and not any(block.get("block_id") == kit.FOLDED for block in blocks)
        text = messages.tables([_table(t) for t in tables[:MAX_TABLES]], more)
        blocks.append(kit.context(text, block_id=kit.FOLDED if marked else None))
    return blocks


def _rehearsal_line(plan: dict[str, Any]) -> str | None:
    """What trying the plan on a copy showed (``workers.rehearsal``); None where nothing is tried (a restore)."""
    rehearsal = plan.get("rehearsal")
    return None if rehearsal is None else messages.rehearsal_outcome(rehearsal)


def _listing_name(request: Request) -> str:
    return f"request-{request.pk}-plan.txt"


def plan_listing(request: Request) -> tuple[str, str]:
    """The whole plan as a file (name, text): what a folded plan message leaves out, every step
    with its operations and every table. Attach it when ``folded(plan_for_approval(...))``."""
    plan = request.plan or {}
    steps = plan.get("steps", [])
    lines = [messages.plan_listing_title(request.pk, request.command_text)]
    if plan.get("restore"):
        lines.append(_restore_line(plan["restore"]))
    else:
        lines += [*filter(None, [_rehearsal_line(plan), _risk_summary(steps, plan)]), *_cascade_lines(plan), ""]
        for step in steps:
            lines.append(_step_line(step, every_lock=True, fake=bool(plan.get("fake"))))
            lines += [f"    {op['description']}" for op in step["operations"] if op.get("description")]
    tables = plan.get("tables") or []
    if tables:
        lines += ["", messages.tables([_table(t) for t in tables], 0)]
    return _listing_name(request), "\n".join(lines) + "\n"


def plan_for_approval(request: Request, environment: Any) -> Message:
    """The plan in the thread with Approve / Deny; the buttons carry the request and plan digest.
    When ``folded(…)`` of it is true, the caller attaches ``plan_listing(request)`` with it."""
    value = json.dumps({"request": request.pk, "digest": request.plan_digest})
    assert request.expires_at is not None
    plan = request.plan or {}
    rows = _table_rows(plan)
    destroyed, columns = _destroyed(plan.get("steps", []))
    steps = plan.get("steps", [])
    said = (
        messages.approve_fake_confirmation(request.environment, len(steps), any(s["backwards"] for s in steps))
        if plan.get("fake")
        else messages.approve_confirmation(
            request.environment,
            [f"`{t}` ({rows[t]:,} rows)" if rows.get(t) is not None else f"`{t}`" for t in destroyed],
            len(steps),
            columns=[messages.dropped_column(column) for column in columns],
        )
    )
    confirm = kit.confirmation(f"Approve #{request.pk}?", said, "Approve")
    buttons = kit.actions(
        f"decision-{request.pk}",
        [(APPROVE, "Approve", "primary", value), (DENY, "Deny", "danger", value)],
        confirm={APPROVE: confirm},
    )
    blocks = _plan_blocks(request) + [
        context(messages.approval_needed(request.approvals_required, request.requester, request.expires_at)),
        buttons,
    ]
    return kit.message(messages.plan_needs_approval(request.pk, request.command_text), blocks, keep_last=2)


def plan_folded(request: Request) -> bool:
    """Whether the plan message of ``request`` folds its steps (or tables): then the thread gets
    ``plan_listing(request)`` as a file with it. The same answer as ``folded(plan_for_approval(…))``."""
    return folded(("", _plan_blocks(request)))


def plan_decided(request: Request, person: str, moment: datetime, state: str | None = None) -> Message:
    """The plan message once decided: buttons cannot be disabled, so they are replaced. ``state``
    is the decision when the request has moved on since (shown later than it was made)."""
    text = messages.decision(state or request.state, person, moment)
    return kit.message(text, _plan_blocks(request) + [section(text)], keep_last=1)


def backup_recorded(backup: Backup) -> Message:
    return note(
        messages.backup_line(
            backup.pk, backup.size, backup.sha256, backup.duration_seconds, backup.tool, backup.verification
        )
    )


def run_result(request: Request, result: dict[str, Any], state: dict[str, Any]) -> Message:
    summary = messages.run_done(request.verb, len(result.get("applied", [])), len(result.get("unapplied", [])))
    # No listing is attached to a run's result: the folded apps point to the read verb instead.
    _, apps = _apps(request.environment, state, messages.in_showmigrations(request.environment))
    return kit.message(summary, [section(summary), *apps])


def restored(request: Request, backup: Backup, state: dict[str, Any]) -> Message:
    summary = messages.restored(backup.pk, backup.created_at)
    _, apps = _apps(request.environment, state, messages.in_showmigrations(request.environment))
    return kit.message(summary, [section(summary), *apps])


def plan_denied(request: Request, person: str, moment: datetime, reason: str) -> Message:
    """The plan message once denied with a reason (``Approval.reason``): who, why and when replace
    the buttons, as ``plan_decided`` does for the other decisions."""
    text = messages.denied_because(person, reason, moment)
    return kit.message(text, _plan_blocks(request) + [section(text)], keep_last=1)


# --- what a plan's steps destroy, re-create empty and run (migrabot_probe.risks) --------------------

MAX_CASCADES = 3  # other apps named on a message, with their reason; the plan's file names them all


def _destroyed(steps: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The tables the steps drop (sorted) and the columns they drop (in plan order, each once). A plan
    recorded before columns were named (no ``drops_*``) destroys what its destroying operations touch."""
    tables: set[str] = set()
    columns: dict[tuple[str, str], dict[str, Any]] = {}
    for step in steps:
        for op in step["operations"]:
            if "drops_tables" not in op and "drops_columns" not in op:
                tables.update(op.get("tables", []) if op.get("destroys_data") else [])
                continue
            tables.update(op.get("drops_tables") or [])
            for column in op.get("drops_columns") or []:
                columns.setdefault((column["table"], column["column"]), column)
    return sorted(tables), list(columns.values())


def _table_rows(plan: dict[str, Any]) -> dict[str, int | None]:
    return {t["table"]: t.get("rows") for t in plan.get("tables") or [] if t.get("exists")}


def _recreated(step: dict[str, Any]) -> list[dict[str, Any]]:
    return [recreated for op in step["operations"] for recreated in op.get("recreates") or []]


def _code_runs(step: dict[str, Any]) -> list[dict[str, Any]]:
    return [run for op in step["operations"] for run in op.get("runs") or []]


def _runs(run: dict[str, Any], whole: bool) -> str:
    if "python" in run:
        return messages.runs_python(run["python"], run.get("doc"))
    return messages.runs_sql(run.get("sql") or "", whole)


def _cascade_lines(plan: dict[str, Any]) -> list[str]:
    return [
        messages.cascade(c["app"], c["migrations"], c["backwards"], c.get("migration"), c.get("depends_on"),
                         c.get("through") or [])
        for c in plan.get("cascades") or []
    ]
