"""Block Kit for everything the bot posts: pure functions from records to ``(text, blocks)``.

``text`` is the notification and screen-reader fallback; the blocks are what people read, short
first so the thread stays readable on a phone. Long listings go out as files (``bot.notify``).
"""

from __future__ import annotations

from typing import Any

from controlplane.models import Request
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


def plan_result(environment: str, result: dict[str, Any]) -> Message:
    steps = result["steps"]
    backwards = sum(1 for step in steps if step["backwards"])
    summary = messages.plan_summary(environment, len(steps) - backwards, backwards)
    blocks = [section(summary)]
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
