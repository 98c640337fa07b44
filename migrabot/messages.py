"""Every sentence the product says to people, in one place (Slack mrkdwn).

Refusals say what was wrong and what to type instead, naming the valid choices, the way Django's
own errors tell you the next command.

Text that is not ours — what someone typed (words, reasons, a request's command text) and the text
of an error — goes through ``escaped`` (or ``_typed``, which also escapes) wherever it is
interpolated, so it can never be Slack markup: a lock reason ``<!channel>`` shows as that text
instead of pinging everyone, wherever the reason is echoed.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

MAX_CHOICES = 25
MAX_SHOWN = 40


def escaped(text: str) -> str:
    """``text`` shown as itself: Slack reads ``<…>`` as a mention or link (``<!here>``, ``<@U…>``,
    ``<http://evil|Approve here>``) and ``&`` as the start of an entity, in code spans too, so its
    three control characters are escaped (api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _typed(value: str) -> str:
    """A word someone typed, safe to show back: invisible and control characters spelled out
    (a zero-width space shows as ``\\u200b``), backticks that would end the code span made
    quotes, cut short, and escaped."""
    value = "".join(ascii(ch)[1:-1] if unicodedata.category(ch)[0] == "C" else ch for ch in value).replace("`", "'")
    return escaped(value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN] + "…")


def _choices(values: Iterable[str]) -> str:
    values = list(values)
    shown = ", ".join(f"`{value}`" for value in values[:MAX_CHOICES])
    more = len(values) - MAX_CHOICES
    return shown + (f" and {more} more" if more > 0 else "") if values else "(none)"


# --- refusals of bad input ---------------------------------------------------------------------


def too_long(limit: int) -> str:
    return f"That command is longer than {limit} characters; nothing was queued."


def unknown_verb(word: str, verbs: Sequence[str]) -> str:
    close = difflib.get_close_matches(word.lower(), verbs, n=1, cutoff=0.7)
    if close:
        return f"Unknown command `{_typed(word)}`. Did you mean `{close[0]}`? (`help` lists every command.)"
    return f"Unknown command `{_typed(word)}`. Valid commands: {_choices(verbs)}."


def missing_argument(name: str, usage: str) -> str:
    return f"Missing {escaped(f'<{name}>')}. Usage: `{escaped(usage)}`"


def extra_arguments(extra: Sequence[str], usage: str) -> str:
    return f"Unexpected extra arguments {_choices(map(_typed, extra))}. Usage: `{escaped(usage)}`"


def bad_argument(name: str, value: str, usage: str) -> str:
    return (
        f"`{_typed(value)}` is not a valid {name}: use ASCII letters, digits and underscores. "
        f"Usage: `{escaped(usage)}`"
    )


def bad_reason(limit: int) -> str:
    return f"A reason must be plain text of at most {limit} characters."


def unknown_environment(name: str, valid: Sequence[str]) -> str:
    return f"Unknown environment `{escaped(name)}`. Valid environments: {_choices(valid)}."


def no_catalog(environment: str) -> str:
    return (
        f"Environment `{environment}` has not reported its migrations yet: "
        f"is its worker running (`migrabot worker --env {environment}`)? Nothing was queued."
    )


def unknown_app(app: str, environment: str, valid: Sequence[str]) -> str:
    return f"No app `{escaped(app)}` with migrations in `{environment}`. Valid apps: {_choices(valid)}."


def unknown_migration(prefix: str, app: str, valid: Sequence[str]) -> str:
    prefix, app = escaped(prefix), escaped(app)
    return (
        f"Cannot find a migration matching `{prefix}` from app `{app}`. "
        f"Migrations of `{app}`: {_choices(valid)} (or `zero`)."
    )


def ambiguous_migration(prefix: str, app: str, matches: Sequence[str]) -> str:
    prefix, app = escaped(prefix), escaped(app)
    return (
        f"More than one migration matches `{prefix}` in app `{app}`: {_choices(matches)}. "
        "Please be more specific."
    )


def not_allowed(user: str, verb: str, environment: str) -> str:
    return f"<@{user}> is not allowed to run `{verb}` on `{environment}` (policy of `{environment}`)."


def wrong_channel(environment: str, channels: Sequence[str]) -> str:
    listed = ", ".join(f"<#{channel}>" for channel in channels)
    return f"Requests for `{environment}` are only taken in {listed}."


def control_plane_down() -> str:
    return "The bot cannot reach its database right now, so nothing was recorded or queued. Try again shortly."


def no_such_request(request_id: int) -> str:
    return f"There is no request #{request_id} here."


def not_awaiting_approval(request_id: int, state: str) -> str:
    return f"Request #{request_id} is not waiting for approval any more (it is {state}); nothing was recorded."


def request_expired(request_id: int) -> str:
    return f"Request #{request_id} has expired; ask again if it is still needed."


def plan_changed(request_id: int) -> str:
    return (
        f"The plan of request #{request_id} changed since it was shown, so this approval does not "
        "apply to it. Request it again to see the new plan."
    )


def self_approval() -> str:
    return "You requested this; someone else has to approve it."


def not_an_approver(user: str, environment: str) -> str:
    return f"<@{user}> may not approve requests on `{environment}` (policy of `{environment}`)."


def already_decided(request_id: int) -> str:
    return f"You already decided on request #{request_id}."


# --- answers the bot gives itself ----------------------------------------------------------------


def help_text(command: str, usages: Iterable[tuple[str, str]]) -> str:
    lines = [f"*{command}* — Django migrations from Slack. Commands:"]
    lines += [f"• `{command} {escaped(usage)}` — {summary}" for usage, summary in usages]
    return "\n".join(lines)


def environments_text(rows: Iterable[tuple[str, str, bool, str]], details: Sequence[str] = ()) -> str:
    """One line an environment; ``details`` (the same order) adds who approves and its lock."""
    lines = ["*Environments*"]
    for index, (name, description, production, readers) in enumerate(rows):
        badge = " · production" if production else ""
        text = f" — {description}" if description else ""
        more = f" · {details[index]}" if index < len(details) and details[index] else ""
        lines.append(f"• `{name}`{badge}{text} (read: {readers}){more}")
    return "\n".join(lines)


def environment_details(approvers: Sequence[str], approvals: int, lock: tuple[str, str, datetime] | None) -> str:
    """Who approves its writes, how many must, and whether it is locked (by whom, since when, why)."""
    approve = f"approve: {', '.join(approvers) or 'nobody'} ({approvals} needed)"
    if lock is None:
        return approve
    holder, reason, since = lock
    kind, _, name = holder.partition(":")
    who = f"<@{name}>" if kind == "user" else f"request #{name}"
    return f"{approve} · 🔒 locked by {who} since {_when(since)}: {escaped(reason)}"


def received(request_id: int, command_text: str) -> str:
    return f"Request #{request_id} `{escaped(command_text)}` received; following up in a thread."


def duplicate_delivery(request_id: int) -> str:
    return f"Request #{request_id} was already received; not queued again."


# --- the request card and its thread ---------------------------------------------------------------

STATE_LABELS = {
    "received": "⏳ queued",
    "planning": "🧮 planning",
    "awaiting_approval": "✋ awaiting approval",
    "approved": "👍 approved",
    "backing_up": "🗄️ backing up",
    "running": "🏃 running",
    "succeeded": "✅ done",
    "failed": "❌ failed",
    "refused": "🚫 refused",
    "denied": "⛔ denied",
    "expired": "⌛ expired",
    "cancelled": "🚫 cancelled",
    "interrupted": "⚠️ interrupted",
}


def card_title(request_id: int, command: str, command_text: str) -> str:
    return f"*#{request_id}* `{command} {escaped(command_text)}`"


def card_context(requester: str, state: str) -> str:
    return f"{STATE_LABELS.get(state, state)} · requested by <@{requester}>"


def queue_unreachable(request_id: int) -> str:
    return (
        f"Request #{request_id} is recorded but the queue is unreachable right now; "
        "it will be queued as soon as the queue is back."
    )


def failed(reason: str) -> str:
    return f"❌ Failed: {escaped(reason)}"


def refused(reason: str) -> str:
    return f"🚫 {reason}"


def showmigrations_summary(environment: str, applied: int, total: int) -> str:
    head = f"*{environment}*: {applied} of {total} migrations applied"
    return head + (" — up to date." if applied == total else f", {total - applied} not applied.")


def app_line(app: str, applied: int, total: int, next_name: str | None) -> str:
    if total == 0:
        return f"*{app}* — no migrations"
    mark = "✅" if applied == total else "🟡"
    tail = f" · next `{next_name}`" if next_name else ""
    return f"{mark} *{app}* {applied}/{total}{tail}"


def plan_summary(environment: str, forwards: int, backwards: int) -> str:
    if not forwards and not backwards:
        return f"*{environment}*: no planned migration operations — nothing to do."
    parts = []
    if forwards:
        parts.append(f"apply {forwards} migration{'s' if forwards != 1 else ''}")
    if backwards:
        parts.append(f"unapply {backwards} migration{'s' if backwards != 1 else ''}")
    return f"*{environment}*: would " + " and ".join(parts) + "."


def plan_step(app: str, name: str, backwards: bool, operations: int, irreversible: bool) -> str:
    arrow = "↩️ unapply" if backwards else "➡️ apply"
    warning = " ⚠️ *irreversible*" if irreversible else ""
    return f"{arrow} `{app}.{name}` ({operations} operation{'s' if operations != 1 else ''}){warning}"


# --- what a step locks on PostgreSQL (derived: migrabot_probe.locks; measured: workers.rehearsal) ----


def _table_sized(table: str, size: int | None) -> str:
    shown = "`" + escaped(table.replace("`", "'")) + "`"
    return shown + (f" ({human_bytes(size)})" if size is not None else "")


def _tables_sized(locks: Sequence[dict[str, Any]]) -> str:
    return ", ".join(_table_sized(lock["table"], lock.get("size")) for lock in locks)


def locks_derived(locks: Sequence[dict[str, Any]], more: int) -> str:
    """A step's locks as its SQL says (``migrabot_probe.locks``' entries, strongest first), marked so: no
    rehearsal measured them. "🔒 ACCESS EXCLUSIVE on `orders` (12 GB), rewrites it; SHARE ROW EXCLUSIVE on
    `customers` (300 MB) (derived from the SQL)". Mode "unknown": a statement that could not be read
    (its ``statement``), or Python code (no statement)."""
    phrases = []
    for (mode, doing), grouped in groupby(locks, key=lambda lock: (lock["mode"], _doing(lock))):
        same = list(grouped)
        if mode == "unknown":
            phrases += [_unknown_lock(lock) for lock in same]
        else:
            it = "it" if len(same) == 1 else "them"
            phrases.append(f"{mode} on {_tables_sized(same)}" + (f", {doing} {it}" if doing else ""))
    return "🔒 " + "; ".join(phrases) + _more_tables(more) + " (derived from the SQL)"


def _doing(lock: dict[str, Any]) -> str:
    return "rewrites" if lock.get("rewrites") else "scans" if lock.get("scans") else ""


def _unknown_lock(lock: dict[str, Any]) -> str:
    statement = lock.get("statement")
    what = f"`{_typed(statement)}`" if statement is not None else "Python code"
    return f"locks unknown on {_tables_sized([lock])} ({what})" if lock["table"] else f"locks unknown ({what})"


def locks_measured(locks: Sequence[dict[str, Any]], more: int, seconds: float) -> str:
    """A step's locks as its rehearsal measured them on the copy (``table``, ``mode``, ``rewrote``, ``size``):
    "🔒 rewrites `orders` (12 GB) under ACCESS EXCLUSIVE — 41 s on the copy"."""
    phrases = [
        f"rewrites {_tables_sized(same)} under {mode}" if rewrote else f"{mode} on {_tables_sized(same)}"
        for (mode, rewrote), grouped in groupby(locks, key=lambda lock: (lock["mode"], bool(lock["rewrote"])))
        for same in [list(grouped)]
    ]
    took = duration(seconds)
    said = "; ".join(phrases) + _more_tables(more) if phrases else "no table lock"
    return f"🔒 {said} — {took} on the copy"


def _more_tables(more: int) -> str:
    return f" and {_count(more, 'more table')}" if more > 0 else ""


# --- hygiene: the workflow's rules, checked (`check`, and warnings on plans) ------------------------


def check_clean(environment: str) -> str:
    return (
        f"✅ *{environment}*: no edited or missing applied migrations, no conflicts, no missing migrations, "
        "no numbering clashes, no migration applied before its dependency."
    )


def check_summary(environment: str, count: int) -> str:
    return f"⚠️ *{environment}*: `check` found {count} problem{'s' if count != 1 else ''}:"


def plan_warnings(environment: str, count: int) -> str:
    return f"⚠️ `check {environment}` finds {count} problem{'s' if count != 1 else ''}; they do not stop this plan:"


def more_findings(environment: str, more: int) -> str:
    return f"… and {more} more: `check {environment}` attaches the full list."


def edited_migration(environment: str, app: str, name: str, file: str, was: str, now: str, first_seen: datetime) -> str:
    return (
        f"✏️ `{environment}` · `{app}.{name}` (`{file}`) changed after it was applied: sha256 `{was[:12]}…` "
        f"when first seen applied ({_when(first_seen)}), `{now[:12]}…` now. Never edit an applied migration: "
        f"restore the file from version control (`git log -p -- {file}`) and put the change in a new "
        f"migration (`python manage.py makemigrations {app}`)."
    )


def missing_migration_file(environment: str, app: str, name: str, file: str) -> str:
    return (
        f"🗑️ `{environment}` · `{app}.{name}` is applied (in `django_migrations`) but `{file}` is gone — "
        f"deleted or renamed. Migrations are additive: restore the file under its name "
        f"(`git log --diff-filter=DR -- {file}`), and undo a change with a new migration."
    )


def conflicting_leaves(environment: str, app: str, names: Sequence[str], folder: str) -> str:
    return (
        f"🔀 `{environment}` · app `{app}` has conflicting leaves {_choices(names)} in `{folder}`: "
        f"run `python manage.py makemigrations --merge {app}`, commit the merge migration and deploy it."
    )


def model_changes_without_migration(environment: str, app: str, operations: Sequence[str], folder: str) -> str:
    return (
        f"📝 `{environment}` · app `{app}` has model changes with no migration in `{folder}` "
        f"({'; '.join(operations[:5])}{'…' if len(operations) > 5 else ''}): run "
        f"`python manage.py makemigrations {app}`, review and commit the file "
        "(`makemigrations --check --dry-run` shows the same)."
    )


def approve_confirmation(
    environment: str, destroyed: Sequence[str], steps: int, limit: int = 300, columns: Sequence[str] = ()
) -> str:
    """What Approve's confirmation dialog says will be destroyed, and where, within Slack's
    ``limit``: the ``destroyed`` tables, then the ``columns`` ("`catalog_product.summary` (1,204 rows)");
    what does not fit is counted ("… and 3 more tables and 2 more columns")."""
    items = [(item, "table") for item in destroyed] + [(item, "column") for item in columns]
    if not items:
        return f"Runs {steps} step{'s' if steps != 1 else ''} on `{environment}`, after a verified backup."

    def more(left: Sequence[tuple[str, str]]) -> str:
        kinds = [kind for _, kind in left]
        counted = [f"{kinds.count(kind)} more {kind}{'s' if kinds.count(kind) != 1 else ''}"
                   for kind in ("table", "column") if kind in kinds]
        return f" … and {' and '.join(counted)}" if counted else ""

    shown: list[str] = []
    for index, (item, _) in enumerate(items):
        text = f"Drops {', '.join([*shown, item])}{more(items[index + 1:])} on `{environment}`."
        if len(text) > limit:
            break
        shown.append(item)
    return f"Drops {', '.join(shown) or 'its tables'}{more(items[len(shown):])} on `{environment}`."


def lock_wait(app: str, name: str, attempt: int, retries: int, wait: float, blockers: Sequence[dict[str, Any]]) -> str:
    held = "; ".join(
        f"pid {b['pid']}" + (f" (`{escaped(b['application'])}`)" if b.get("application") else "")
        + f", in a transaction for {b['seconds']} s"
        for b in blockers
    )
    return (
        f"⏳ `{app}.{name}` could not take its lock within the environment's `lock_timeout`"
        + (f" — held by {held}" if held else "")
        + f". PostgreSQL rolled it back whole, so nothing of it happened, and queries on its tables went on. "
        f"Trying again in {wait:g} s (attempt {attempt} of {retries})."
    )


def third_party_model_changes(environment: str, app: str, operations: Sequence[str], folder: str) -> str:
    return (
        f"📦 `{environment}` · third-party app `{app}` (`{folder}`) has model changes its migrations do not "
        f"make ({'; '.join(operations[:3])}{'…' if len(operations) > 3 else ''}): usually a setting or the "
        "installed version differs from what its authors migrated. Not this project's to migrate; "
        "check the package's release notes if it matters."
    )


def plan_warnings_folded(environment: str, count: int) -> str:
    return f"⚠️ {count} warning{'s' if count != 1 else ''} from `check {environment}` (none stops this plan)."


def check_clean_with_warnings(environment: str, count: int) -> str:
    return f"{check_clean(environment)} {count} warning{'s' if count != 1 else ''}, which stop nothing:"


def numbering_clash(environment: str, app: str, number: int, names: Sequence[str], folder: str) -> str:
    return (
        f"🔢 `{environment}` · app `{app}`: {_choices(names)} in `{folder}` share the number {number:04d}. "
        "Renumber the one not yet applied anywhere (rename the file and the `dependencies` naming it); "
        f"if all are applied, leave them and make the next migration depend on each (`makemigrations --merge {app}`)."
    )


def inconsistent_history(environment: str, app: str, name: str, dependency: str, file: str) -> str:
    dep_app, _, dep_name = dependency.partition(".")
    return (
        f"⛓️ `{environment}` · `{app}.{name}` is applied before its dependency `{dependency}` "
        f"(`{file}`), so `migrate` refuses to run. If `{dependency}`'s changes are "
        f"in the schema, record it: `python manage.py shell -c \"from django.db import connection; "
        f"from django.db.migrations.recorder import MigrationRecorder; "
        f"MigrationRecorder(connection).record_applied('{dep_app}', '{dep_name}')\"`; "
        f"otherwise restore a backup (`backups {environment}`)."
    )


def refused_until_clean(environment: str, findings: Sequence[str], limit: int = 2900) -> str:
    """Why a write is refused, within a section's ``limit``: whole findings only (cutting one could cut
    a mention or a date token in half), the first three that fit, the rest counted."""
    lines = [
        f"`{environment}` refuses writes while `check {environment}` finds problems "
        "(policy `refuse_writes_on_check_failure`). Nothing was run. Fix these, then ask again:"
    ]
    shown = 0
    for finding in findings[:3]:
        if len("\n".join([*lines, finding])) > limit - 80:  # room for the line that counts the rest
            break
        lines.append(finding)
        shown += 1
    if shown < len(findings):
        lines.append(f"… and {len(findings) - shown} more: see `check {environment}`.")
    return "\n".join(lines)


def not_promoted(environment: str, earlier: str, command_text: str) -> str:
    return (
        f"`{environment}` takes only changes that already succeeded on `{earlier}` (policy `promote_from`), "
        f"and these exact steps have not. Nothing was run. Run the same change on `{earlier}` first "
        f"(e.g. `{escaped(command_text.replace(f' {environment}', f' {earlier}', 1))}`), then ask again."
    )


def promoted(earlier: str, request_id: int, finished_at: datetime) -> str:
    return f"🪜 The same steps succeeded on `{earlier}` in request #{request_id} at {_when(finished_at)}."


# --- writes: plans, approvals, runs -----------------------------------------------------------------


def _when(moment: datetime) -> str:
    """A moment as each viewer reads it in their own time zone: Slack's date formatting
    (api.slack.com/reference/surfaces/formatting#date-formatting), "Dec 2, 2026 11:06 AM" or
    "Today 11:06" in Tokyo's time for a viewer in Tokyo. Where Slack cannot format it (a
    notification, an old client) the fallback shows, and whatever reads the text outside Slack
    (``slackui.text``: the stand-in, local mode, the audit site) shows it too: the time in UTC."""
    moment = moment.astimezone(UTC)
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def nothing_to_do(command_text: str) -> str:
    return f"Nothing to do: `{escaped(command_text)}` has no migrations to run. Nothing was changed."


def rollback_would_apply(environment: str, first: str, args: Sequence[str]) -> str:
    args = [escaped(arg) for arg in args]
    return (
        f"`rollback {environment} {' '.join(args)}` would *apply* `{first}`: a rollback only unapplies. "
        f"Use `migrate {environment} {' '.join(args)}` to go forward."
    )


def migrate_would_unapply(environment: str, first: str, args: Sequence[str]) -> str:
    args = [escaped(arg) for arg in args]
    return (
        f"`migrate {environment} {' '.join(args)}` would *unapply* `{first}`: `migrate` only goes forward. "
        f"Use `rollback {environment} {' '.join(args)}` to roll back (approval and a backup required)."
    )


def irreversible_step(migration: str, operation: str) -> str:
    return (
        f"Refused: `{migration}` cannot be unapplied (`{operation}`). Nothing was run. "
        "Roll back to a migration after it, or restore a backup taken before it."
    )


def no_such_backup(backup_id: int, environment: str) -> str:
    return f"There is no backup #{backup_id} of `{environment}`. See `backups {environment}`."


def backup_unusable(backup_id: int) -> str:
    return f"Backup #{backup_id} is not verified or its file is gone; it cannot be restored."


def approval_needed(required: int, requester: str, expires_at: datetime) -> str:
    who = "1 approval" if required == 1 else f"{required} approvals"
    return f"Needs {who} from an approver other than <@{requester}> · expires {_when(expires_at)}"


def approved_by(approvers: Sequence[str], required: int) -> str:
    names = ", ".join(f"<@{a}>" for a in approvers)
    return f"👍 {names} approved ({len(approvers)} of {required})."


def decision(state: str, person: str, moment: datetime) -> str:
    verbs = {"approved": "✅ Approved", "denied": "⛔ Denied", "expired": "⌛ Expired", "cancelled": "🚫 Cancelled"}
    by = f" by <@{person}>" if person else ""
    return f"{verbs.get(state, state)}{by} at {_when(moment)}"


def locked(environment: str, holder: str, reason: str, since: datetime) -> str:
    kind, _, name = holder.partition(":")
    who = f"<@{name}>" if kind == "user" else f"request #{name}"
    return (
        f"`{environment}` is locked by {who} since {_when(since)}: {escaped(reason)}. "
        "Nothing was run; ask again once it is unlocked."
    )


def backup_failed(reason: str) -> str:
    return f"❌ The backup failed, so nothing was touched: {escaped(reason)}"


def backup_line(backup_id: int, size: int, sha256: str, seconds: float, tool: str, verification: str) -> str:
    return (
        f"🗄️ Backup #{backup_id} recorded: {size / 1048576:.1f} MiB in {seconds:.1f} s, sha256 `{sha256[:16]}…`, "
        f"{tool}. Verified: {verification}"
    )


def progress_line(event: dict[str, Any]) -> str:
    marks = {
        "apply_start": "⏳ applying",
        "apply_success": "✅ applied",
        "unapply_start": "⏳ unapplying",
        "unapply_success": "↩️ unapplied",
    }
    fake = " (fake)" if event.get("fake") else ""
    seconds = f" in {event['seconds']:.2f} s" if "seconds" in event else ""
    return f"{marks[event['event']]}{fake} `{event['app']}.{event['name']}`{seconds}"


def interrupted(request_id: int, unapplied: Sequence[str], applied: Sequence[str]) -> str:
    done = [f"unapplied {_choices(unapplied)}"] if unapplied else []
    done += [f"applied {_choices(applied)}"] if applied else []
    so_far = "; ".join(done) or "no migration had finished"
    return (
        f"⚠️ Request #{request_id} was interrupted: its worker stopped mid-run. Known so far: {so_far}. "
        "The migration in flight may have changed the schema without `django_migrations` recording it "
        "(or the reverse). Nothing will re-run by itself: check with `showmigrations`, then decide."
    )


def migration_failed(app: str, name: str, error: str, command_text: str) -> str:
    return (
        f"❌ `{app}.{name}` failed: {escaped(error)}\nThe migrations before it stay as they are now (see above); "
        f"the lock is released. Fix the cause, then run the same command again: `{escaped(command_text)}`."
    )


def run_done(verb: str, applied: int, unapplied: int) -> str:
    parts = [f"applied {applied}"] if applied else []
    parts += [f"unapplied {unapplied}"] if unapplied else []
    return f"✅ `{verb}` done: " + (" and ".join(parts) or "nothing changed") + " migration(s)."


def restored(backup_id: int, taken_at: datetime) -> str:
    return (
        f"✅ Restored backup #{backup_id} (taken {_when(taken_at)}). "
        "A backup of the state before the restore was recorded above."
    )


# --- control verbs ---------------------------------------------------------------------------------


def request_line(request_id: int, command_text: str, state: str, requester: str, created_at: datetime) -> str:
    label = STATE_LABELS.get(state, state)
    return f"#{request_id} `{escaped(command_text)}` — {label} · <@{requester}> · {_when(created_at)}"


def history(environment: str, lines: Sequence[str]) -> str:
    if not lines:
        return f"No requests on `{environment}` yet."
    return "\n".join([f"*Latest requests on `{environment}`*", *lines])


def open_requests(lines: Sequence[str]) -> str:
    return "\n".join(["*Open requests*", *lines]) if lines else "No open requests."


def backup_summary(backup_id: int, created_at: datetime, size: int, sha256: str, verified: bool) -> str:
    check = "verified" if verified else "NOT verified"
    return f"#{backup_id} · {_when(created_at)} · {size / 1048576:.1f} MiB · sha256 `{sha256[:12]}…` · {check}"


def backups(environment: str, lines: Sequence[str]) -> str:
    if not lines:
        return f"No backups of `{environment}` recorded yet."
    return "\n".join([f"*Backups of `{environment}`* (restore with `restore {environment} <backup-id>`)", *lines])


def cannot_cancel(request_id: int, state: str) -> str:
    return f"Request #{request_id} cannot be cancelled: it is {STATE_LABELS.get(state, state)}."


def cancelled(request_id: int) -> str:
    return f"Request #{request_id} cancelled."


def lock_taken(environment: str) -> str:
    return f"`{environment}` is locked: no write runs there until `unlock {environment}`."


def lock_announced(environment: str, user: str, reason: str) -> str:
    return f"🔒 <@{user}> locked `{environment}`: {escaped(reason)}"


def not_locked(environment: str) -> str:
    return f"`{environment}` is not locked."


def lock_lifted(environment: str) -> str:
    return f"`{environment}` is unlocked."


def unlock_announced(environment: str, user: str) -> str:
    return f"🔓 <@{user}> unlocked `{environment}`."


# --- runs that could not vouch for their lock, work a sweep took over ---------------------------


def run_stopped(app: str, name: str, done: Sequence[str], command_text: str) -> str:
    so_far = f"done before it: {_choices(done)}" if done else "no migration had run"
    return (
        f"⛔ Stopped before `{app}.{name}`: the environment lock could not be renewed (the control plane "
        f"did not answer), so nothing more runs unlocked. {so_far.capitalize()}. Check with "
        f"`showmigrations`, then run the same command again: `{escaped(command_text)}`."
    )


def lock_lost_before_run() -> str:
    return "⛔ The environment lock could not be renewed before the run began: nothing was changed. Ask again."


def abandoned(request_id: int, reason: str) -> str:
    return (
        f"⚠️ Request #{request_id} stopped: {escaped(reason)}. Nothing was changed in the database; "
        "run the same command again."
    )


# --- why a run refused the approved plan ------------------------------------------------------------


def file_changed(file: str) -> str:
    return f"`{file}` changed since the plan was approved"


def steps_changed() -> str:
    return "the migrations to run changed since the plan was approved (new migrations, or the database moved)"


def sql_changed() -> str:
    return "the SQL the plan runs changed since it was approved"


def approved_code_changed(request_id: int, what: str, command_text: str) -> str:
    return (
        f"⛔ Request #{request_id} did not run: {what}. An approval covers exactly the code and SQL "
        f"the approver saw; nothing was changed. Make a new request to approve the new code: `{escaped(command_text)}`."
    )


def group_membership_unknown(groups: Sequence[str], environment: str) -> str:
    return (
        f"Approvals on `{environment}` through the group(s) {_choices(groups)} are paused: the "
        "bot could not confirm the group's members with Slack recently, and stale membership grants "
        "nothing. An approver listed by user id can approve now; otherwise try again in a few minutes."
    )


def not_in_channel(request_id: int, command: str) -> str:
    return (
        f"I can't post in this channel, so request #{request_id} was stopped and nothing ran. "
        f"Invite me with `/invite @migrabot` (or use a channel I'm in), then run `{command}` again."
    )


#: A message lists this many findings at most; a longer list goes to the thread as a file too.
MAX_FINDINGS = 10


# --- long content folded within Slack's limits (slackui.blocks, slackui.cards) ------------------------------


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def cut_short(length: int) -> str:
    return f" … (cut: {length:,} characters in all)"


def blocks_left_out(count: int) -> str:
    return f"… {_count(count, 'more block')} left out of this message."


def folded(more: int, noun: str, flagged: int, flag: str, where: str) -> str:
    """The line under a folded listing: how much is left out, how much of that matters, and where it is."""
    of_them = f", {flagged} of them {flag}" if flagged else ""
    return f"… and {more} more {noun}{'s' if more != 1 else ''}{of_them} — {where}."


def in_the_file(filename: str | None = None) -> str:
    return f"the full list is in `{filename}`" if filename else "the full list is in the file"


def in_showmigrations(environment: str) -> str:
    return f"`showmigrations {environment}` lists them all"


def plan_title(request_id: int, command_text: str) -> str:
    return f"*Plan for #{request_id}* `{escaped(command_text)}`"


def plan_needs_approval(request_id: int, command_text: str) -> str:
    return f"Plan for #{request_id} `{escaped(command_text)}` — approval needed"


def plan_risks(
    steps: int,
    destroys: int,
    irreversible: int,
    noop_reverse: int | None,
    *,
    tables: int = 0,
    rows: tuple[int, int] = (0, 0),
    columns: int = 0,
    values: tuple[int, int] = (0, 0),
    emptied: tuple[int, int] = (0, 0),
    code: int = 0,
    cascades: int = 0,
) -> str:
    """A plan's counts per kind of risk, in one line that leads its message: "4 steps · 🔥 drops 1 table
    (3 rows), 1 column (2 values) · 0 ⛔ irreversible · 0 ⚪ no-op reverse · 🕳️ 1 column back empty ·
    🐍 2 steps run code · ↪️ 1 other app".

    ``tables``/``columns`` destroyed, with ``rows`` (of those tables) and ``values`` (rows holding a
    non-null value in those columns) as (counted, how many of them could not be counted);
    ``destroys``: steps that destroy data, said only when what they destroy is not known.
    ``emptied``: (columns, tables) re-created without their contents; ``code``: steps that run Python
    or SQL; ``cascades``: other apps the plan moves. Irreversible steps are always counted, no-op
    reverses whenever something is unapplied (``noop_reverse`` None: nothing is); other zeros are left out.
    """
    parts = [_count(steps, "step")]
    dropped = [
        f"{_count(count, noun)} ({_amount(count, counted, unit)})"
        for count, counted, noun, unit in ((tables, rows, "table", "row"), (columns, values, "column", "value"))
        if count
    ]
    if dropped:
        parts.append("🔥 drops " + ", ".join(dropped))
    elif destroys:
        parts.append(f"🔥 destroys data in {_count(destroys, 'step')}")
    parts.append(f"{irreversible} ⛔ irreversible")
    parts += [f"{noop_reverse} ⚪ no-op reverse"] if noop_reverse is not None else []
    empty_columns, empty_tables = emptied
    if empty_columns or empty_tables:
        said = [_count(n, noun) for n, noun in ((empty_tables, "table"), (empty_columns, "column")) if n]
        parts.append(f"🕳️ {' and '.join(said)} back empty")
    parts += [f"🐍 {_count(code, 'step')} run{'s' if code == 1 else ''} code"] if code else []
    parts += [f"↪️ {_count(cascades, 'other app')}"] if cascades else []
    return " · ".join(parts)


def fake_risks(steps: int, backwards: bool) -> str:
    """A fake's line in place of the risk counts: faking runs no SQL and no code, it only writes the
    history, so the schema must already be what the history will say (the plan's tables show it)."""
    recorded = "unapplied" if backwards else "applied"
    return (
        f"{_count(steps, 'step')} · 🪪 fake: recorded as {recorded} without running (no SQL, no code, no data"
        " touched), so the schema must already match"
    )


def fake_step(app: str, name: str, backwards: bool) -> str:
    return f"{'↩️ record unapplied' if backwards else '➡️ record applied'} `{app}.{name}` (not run)"


def approve_fake_confirmation(environment: str, steps: int, backwards: bool) -> str:
    recorded = "unapplied" if backwards else "applied"
    return (
        f"Records {_count(steps, 'step')} as {recorded} on `{environment}` without running them, "
        "after a verified backup."
    )


def _amount(items: int, counted: tuple[int, int], unit: str) -> str:
    """``counted`` = (total, how many of the ``items`` could not be counted): "3 rows", "3+ rows", "rows unknown"."""
    total, unknown = counted
    if unknown >= items:
        return f"{unit}s unknown"
    return f"{total:,}{'+' if unknown else ''} {unit}{'s' if total != 1 or unknown else ''}"


def restore_plan(backup_id: int, sha256: str, size: int, taken_at: str) -> str:
    """``taken_at``: the backup's time as the plan document keeps it (ISO 8601, with its offset)."""
    return (
        f"♻️ restore backup #{backup_id} (sha256 `{sha256[:16]}…`, {size / 1048576:.1f} MiB, "
        f"taken {_when(datetime.fromisoformat(taken_at))}); the current state is backed up first"
    )


def tables(shown: Sequence[str], more: int) -> str:
    return "Tables: " + ", ".join(shown) + (f" and {more} more (all in the file)" if more > 0 else "")


def plan_listing_title(request_id: int, command_text: str) -> str:
    # A file is not read as mrkdwn, so typed text is shown as itself there.
    return f"Plan for #{request_id}: {command_text}"


def starting() -> str:
    return "⏳ Starting…"


def progress_folded(earlier: int) -> str:
    return f"… {_count(earlier, 'earlier line')} folded; the newest are below."


# --- the App Home tab ------------------------------------------------------------------------------


def home_pending_title(count: int) -> str:
    return f"*Awaiting your approval* ({count})"


def home_nothing_pending() -> str:
    return "Nothing awaits your approval."


def home_pending(
    request_id: int, command_text: str, environment: str, requester: str, expires_at: datetime | None
) -> str:
    expires = f" · expires {_when(expires_at)}" if expires_at else ""
    return f"*#{request_id}* `{escaped(command_text)}` on `{environment}` by <@{requester}>{expires}"


def home_open_thread() -> str:
    return "Open thread"


def home_environments_title() -> str:
    return "*Environments*"


def home_environment(
    name: str,
    production: bool,
    lock: tuple[str, str, datetime] | None,
    last: tuple[int, str, str, datetime] | None,
    open_requests: int,
) -> str:
    """An environment on the Home tab: its lock (holder, reason, since), its last change
    (request, command, requester, when) and how many requests are open there."""
    badge = " · production" if production else ""
    if lock is None:
        locked = "🔓 not locked"
    else:
        holder, reason, since = lock
        kind, _, who = holder.partition(":")
        by = f"<@{who}>" if kind == "user" else f"request #{who}"
        locked = f"🔒 locked by {by} since {_when(since)}: {escaped(reason)}"
    if last is None:
        change = "last change: none yet"
    else:
        request_id, command_text, requester, when = last
        change = f"last change: #{request_id} `{escaped(command_text)}` by <@{requester}>, {_when(when)}"
    return f"`{name}`{badge}\n{locked}\n{change}\n{_count(open_requests, 'open request')}"


def home_left_out(count: int, what: str) -> str:
    return f"… and {_count(count, what)} more that do not fit here."


# --- rehearsals (workers.rehearsal) ---------------------------------------------------------------


def duration(seconds: float) -> str:
    """Seconds as people read a short duration: "8 ms", "4.1 s", "41 s"."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:,.0f} s"


def human_bytes(size: int) -> str:
    """1,234 bytes as people read sizes: "812 KB", "12 GB" (powers of 1024, one decimal below 10)."""
    value, unit = float(size), "bytes"
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            break
        value /= 1024
    if unit == "bytes":
        return f"{size:,} bytes"
    return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"


def _step_times(steps: Sequence[dict[str, Any]], shown: int = 3) -> str:
    slowest = sorted(steps, key=lambda step: -step["seconds"])[:shown]
    times = ", ".join(f"{step['migration']} {duration(step['seconds'])}" for step in slowest)
    return times + (", …" if len(steps) > shown else "")


def rehearsed(steps: Sequence[dict[str, Any]], seconds: float, partial: bool, kept: int) -> str:
    said = (
        f"🧪 Rehearsed on a copy: {len(steps)} of {len(steps)} steps succeeded in {duration(seconds)}"
        + (f" ({_step_times(steps)})" if steps else "")
        + "."
    )
    if partial:
        said += (
            f" The database is above `rehearse_max_bytes`, so the copy held the whole schema but the rows of only"
            f" {_count(kept, 'table')} (those the plan touches, the tables they reference, and the migration"
            " history): a failure that depends on other tables' rows may not show."
        )
    return said


def rehearsal_outcome(rehearsal: dict[str, Any]) -> str:
    """A plan's ``rehearsal`` (``workers.rehearsal``) in one line: what the copy showed, or that none ran."""
    if rehearsal.get("skipped"):
        return not_rehearsed()
    return rehearsed(rehearsal["steps"], rehearsal["seconds"], rehearsal["partial"], len(rehearsal["kept"]))


def not_rehearsed() -> str:
    return "⚠️ Not rehearsed (`rehearse = false` for this environment): nothing has tried this plan."


def rehearsal_failed(environment: str, failed: str, error: str, done: Sequence[str], partial: bool) -> str:
    after = f" (after {', '.join(done)})" if done else " (its first step)"
    said = (
        f"❌ Rehearsal failed at `{failed}`{after}: {escaped(error)}. Nothing ran on `{environment}`: the plan was"
        " tried on a throwaway copy, which is gone. Fix the cause, then run the same command again."
    )
    if partial:
        said += " (The copy held only the rows of the tables the plan touches.)"
    return said


def rehearsal_server_unset(environment: str, variable: str) -> str:
    return (
        f"Cannot rehearse on `{environment}`: its `rehearsal_server` names the variable {variable}, which is not"
        " set on this worker."
    )


def rehearsal_cannot_connect(host: str, error: str) -> str:
    return f"Cannot rehearse: the database server at {host} did not accept the rehearsal's connection: {escaped(error)}"


def rehearsal_no_space(where: str, needed: int, free: int) -> str:
    return (
        f"Cannot rehearse: the copy needs up to {human_bytes(needed)} on {where}, which has {human_bytes(free)}"
        " free. Nothing was copied. Free some space, lower `rehearse_max_bytes` (a partial copy), or set"
        " `rehearse = false`."
    )


def rehearsed_state_changed(request_id: int, command_text: str) -> str:
    return (
        f"The database's migration history changed since #{request_id} was rehearsed and approved: what was tried"
        f" is not what would run. Nothing was run. Request `{escaped(command_text)}` again to rehearse it anew."
    )


def rehearsal_cannot_create(host: str, user: str) -> str:
    return (
        f"Cannot rehearse: the role {escaped(user or '(default)')} may not create databases on {host}. Grant it"
        " CREATEDB, name a server where a role may (`rehearsal_server`), or set `rehearse = false`."
    )


# --- denying with a reason (bot.listeners.actions, slackui.modals) -------------------------------


def deny_title(request_id: int) -> str:
    """The Deny dialog's title: plain text, at most 24 characters (Slack's limit)."""
    title = f"Deny #{request_id}"
    return title if len(title) <= 24 else "Deny this request"


def deny_prompt(request_id: int, command_text: str, requester: str) -> str:
    return (
        f"Deny request #{request_id} `{escaped(command_text)}` of <@{requester}>? Nothing of it will run. "
        "Your reason is shown in its thread and kept in the audit trail."
    )


def deny_reason_label() -> str:
    return "Why deny it?"


def deny_reason_placeholder() -> str:
    return "e.g. not during the release freeze; ask again on Monday"


def deny_reason_needed(limit: int) -> str:
    return f"Say why you deny it: a reason of 1 to {limit} characters of plain text."


def denied_because(person: str, reason: str, moment: datetime) -> str:
    """The decision in place of the buttons: who denied, why, and when. The reason is shown as
    itself: escaped, in a code span, where Slack applies no formatting (``*bold*``, ``_x_``) and
    links no URL; a backtick, which would end the span, is shown as a quote (as ``_typed`` does)."""
    return f"⛔ Denied by <@{person}>: `{escaped(reason.replace('`', chr(39)))}` · {_when(moment)}"


def deny_dialog_failed(request_id: int) -> str:
    return (
        f"Slack did not open the Deny dialog for request #{request_id} (it is slow or unreachable right now), "
        "so nothing was recorded: the request still awaits approval. Click Deny again."
    )


# --- what a plan's steps risk, named (migrabot_probe.risks; slackui.cards) -----------------------------

SQL_SHOWN = 200  # characters of a step's SQL on a message; the plan's file has it whole


def _code_span(text: str) -> str:
    """Text from the target's code in a code span: a backtick would end it, markup would be read."""
    return "`" + escaped(text.replace("`", "'")) + "`"


def destroys_data_in(tables: Sequence[str], columns: Sequence[dict[str, Any]]) -> str:
    """A step's 🔥 mark: the tables it drops, then each column it drops with the rows that hold a value
    in it now ("`catalog_product.summary` (1,204 rows with a value)")."""
    named = [_code_span(table) for table in tables]
    named += [f"{_code_span(c['table'] + '.' + c['column'])} ({_rows_with_a_value(c)})" for c in columns]
    return "🔥 destroys data" + (f" in {', '.join(named)}" if named else "")


def _rows_with_a_value(column: dict[str, Any]) -> str:
    rows = column.get("rows")
    if column.get("new"):
        return "added earlier in this plan"
    if rows is None:
        return "rows unknown"
    return "no rows with a value" if rows == 0 else f"{rows:,} row{'s' if rows != 1 else ''} with a value"


def dropped_column(column: dict[str, Any]) -> str:
    """A dropped column in Approve's confirmation: "`catalog_product.summary` (1,204 rows)"."""
    rows = column.get("rows")
    said = "new" if column.get("new") else "rows unknown" if rows is None else f"{rows:,} row{'s' if rows != 1 else ''}"
    return f"`{escaped(column['table'])}.{escaped(column['column'])}` ({said})"


def comes_back_empty(table: str, column: str | None, fill: dict[str, Any] | None) -> str:
    """A column (or table) a reversed RemoveField (DeleteModel) re-creates: its old contents are gone,
    and what every row holds instead."""
    if column is None:
        return f"🕳️ {_code_span(table)} comes back empty (its old rows are not restored)"
    kind, value = (fill or {}).get("kind"), (fill or {}).get("value")
    holds = {
        "db_default": f"every row holds its database default {_code_span(str(value))}",
        "default": f"every row holds its default {_code_span(str(value))}",
        "empty": f"every row holds {_code_span(str(value or repr('')))}",
        "now": "every row holds the time it is added back",
        "null": "every row holds NULL",
        "none": "it is NOT NULL with no default, so adding it back fails if the table has rows",
    }.get(str(kind), "what it holds is not known")
    return f"🕳️ {_code_span(table + '.' + column)} comes back empty (its old values are not restored): {holds}"


def runs_python(function: str, doc: str | None) -> str:
    """Python a step runs: the function and the first line of its docstring."""
    doc = doc.replace("`", "'") if doc else None
    said = f" (“{escaped(doc if len(doc) <= 120 else doc[:119] + '…')}”)" if doc else ""
    return f"🐍 runs {_code_span(function)}{said}"


def runs_sql(sql: str, whole: bool = False) -> str:
    """SQL a step runs, on one line: its first 200 characters on a message, all of it in the plan's file."""
    flat = " ".join(sql.split())
    shown = flat if whole or len(flat) <= SQL_SHOWN else flat[: SQL_SHOWN - 1] + "…"
    return f"🧾 runs SQL {_code_span(shown)}"


def cascade(
    app: str, migrations: int, backwards: bool, migration: str | None, depends_on: str | None, through: Sequence[str]
) -> str:
    """Another app a plan moves, and why: "↪️ also unapplies 2 migrations in `billing`, because
    `billing.0019` depends on `catalog.0031`" (``through``: the migrations between the two)."""
    verb = "unapplies" if backwards else "applies"
    said = f"↪️ also {verb} {_count(migrations, 'migration')} in `{escaped(app)}`"
    if migration is None or depends_on is None:
        return said
    if not through:
        return f"{said}, because `{migration}` depends on `{depends_on}`"
    more = f" (through {_count(len(through) - 1, 'more migration')})" if len(through) > 1 else ""
    return f"{said}, because `{migration}` depends on `{through[0]}`, which{more} depends on `{depends_on}`"


def more_cascades(more: int, where: str | None) -> str:
    return f"… and {_count(more, 'more app')}" + (f" — {where}." if where else ".")


# --- people, as the audit site names them (bot.people caches the names) ----------------------------


def person(user_id: str, name: str) -> str:
    """"Alice Example (U0ALICE)"; the bare id where no name is known (plain text, not mrkdwn)."""
    return f"{name} ({user_id})" if name else user_id
