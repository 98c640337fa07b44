"""Every sentence the product says to people, in one place (Slack mrkdwn).

Refusals say what was wrong and what to type instead, naming the valid choices, the way Django's
own errors tell you the next command.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

MAX_CHOICES = 25


def _choices(values: Iterable[str]) -> str:
    values = list(values)
    shown = ", ".join(f"`{value}`" for value in values[:MAX_CHOICES])
    more = len(values) - MAX_CHOICES
    return shown + (f" and {more} more" if more > 0 else "") if values else "(none)"


# --- refusals of bad input ---------------------------------------------------------------------


def too_long(limit: int) -> str:
    return f"That command is longer than {limit} characters; nothing was queued."


def unknown_verb(word: str, verbs: Sequence[str]) -> str:
    return f"Unknown command `{word}`. Valid commands: {_choices(verbs)}."


def missing_argument(name: str, usage: str) -> str:
    return f"Missing <{name}>. Usage: `{usage}`"


def extra_arguments(extra: Sequence[str], usage: str) -> str:
    return f"Unexpected extra arguments {_choices(extra)}. Usage: `{usage}`"


def bad_argument(name: str, value: str, usage: str) -> str:
    shown = value if len(value) <= 40 else value[:40] + "…"
    return (
        f"`{shown}` is not a valid {name}: use ASCII letters, digits and underscores. "
        f"Usage: `{usage}`"
    )


def unknown_environment(name: str, valid: Sequence[str]) -> str:
    return f"Unknown environment `{name}`. Valid environments: {_choices(valid)}."


def no_catalog(environment: str) -> str:
    return (
        f"Environment `{environment}` has not reported its migrations yet: "
        f"is its worker running (`migrabot worker --env {environment}`)? Nothing was queued."
    )


def unknown_app(app: str, environment: str, valid: Sequence[str]) -> str:
    return f"No app `{app}` with migrations in `{environment}`. Valid apps: {_choices(valid)}."


def unknown_migration(prefix: str, app: str, valid: Sequence[str]) -> str:
    return (
        f"Cannot find a migration matching `{prefix}` from app `{app}`. "
        f"Migrations of `{app}`: {_choices(valid)} (or `zero`)."
    )


def ambiguous_migration(prefix: str, app: str, matches: Sequence[str]) -> str:
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


# --- answers the bot gives itself ----------------------------------------------------------------


def help_text(command: str, usages: Iterable[tuple[str, str]]) -> str:
    lines = [f"*{command}* — Django migrations from Slack. Commands:"]
    lines += [f"• `{command} {usage}` — {summary}" for usage, summary in usages]
    return "\n".join(lines)


def environments_text(rows: Iterable[tuple[str, str, bool, str]]) -> str:
    lines = ["*Environments*"]
    for name, description, production, readers in rows:
        badge = " · production" if production else ""
        text = f" — {description}" if description else ""
        lines.append(f"• `{name}`{badge}{text} (read: {readers})")
    return "\n".join(lines)


def received(request_id: int, command_text: str) -> str:
    return f"Request #{request_id} `{command_text}` received; following up in a thread."


def duplicate_delivery(request_id: int) -> str:
    return f"Request #{request_id} was already received; not queued again."


# --- the request card and its thread ---------------------------------------------------------------

STATE_LABELS = {
    "received": "⏳ queued",
    "running": "🏃 running",
    "succeeded": "✅ done",
    "failed": "❌ failed",
    "refused": "🚫 refused",
}


def card_title(request_id: int, command: str, command_text: str) -> str:
    return f"*#{request_id}* `{command} {command_text}`"


def card_context(requester: str, state: str) -> str:
    return f"{STATE_LABELS.get(state, state)} · requested by <@{requester}>"


def queue_unreachable(request_id: int) -> str:
    return (
        f"Request #{request_id} is recorded but the queue is unreachable right now; "
        "it will be queued as soon as the queue is back."
    )


def failed(reason: str) -> str:
    return f"❌ Failed: {reason}"


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


def full_output(title: str) -> str:
    return f"Full output of `{title}` attached."
