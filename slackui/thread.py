"""What each recorded post says in Slack: a post's ``kind`` and ``data`` rendered as ``(text, blocks)``.

Workers record facts (a result, a backup's id, the events of a run); only here do they become
Block Kit, so workers need nothing of Slack's. A listing is inline when short, else a file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from controlplane.models import Approval, Backup, Decision, Post, Request, State
from migrabot import messages
from migrabot.config import Config
from slackui import cards
from slackui.blocks import Message

INLINE_LIMIT = 2500
INLINE_LINES = 25

Render = Callable[[Request, dict[str, Any], Config], Message]


def _plan(request: Request, data: dict[str, Any], config: Config) -> Message:
    if "decided_by" in data:  # buttons cannot be disabled: the decided plan replaces them
        moment = datetime.fromisoformat(data["at"])
        # A denial's reason is read from its record, whoever recorded the outcome (the click's
        # follow-up, or a sweep catching up after a crash).
        denial = (
            Approval.objects.filter(request=request, decision=Decision.DENY).exclude(reason="").first()
            if data["state"] == State.DENIED
            else None
        )
        if denial is not None:
            return cards.plan_denied(request, denial.approver, moment, denial.reason)
        return cards.plan_decided(request, data["decided_by"], moment, data["state"])
    return cards.plan_for_approval(request, config.environments[request.environment])


def _progress(request: Request, data: dict[str, Any], config: Config) -> Message:
    lines = [messages.progress_line(event) for event in data.get("events", [])]  # each migration's latest event
    if data.get("failed"):
        lines.append(f"❌ `{data['failed']}` failed")
    return cards.progress(lines)


RENDERERS: dict[str, Render] = {
    "card": lambda request, data, config: cards.request_card(request, config.slash_command),
    "note": lambda request, data, config: cards.note(data["text"]),
    "code": lambda request, data, config: cards.code(data["text"]),
    "plan": _plan,
    "progress": _progress,
    "showmigrations_result": lambda request, data, config: cards.showmigrations_result(
        request.environment, data["result"]
    ),
    "plan_result": lambda request, data, config: cards.plan_result(
        request.environment, data["result"], data["findings"], data.get("warnings", [])
    ),
    "check_result": lambda request, data, config: cards.check_result(
        request.environment, data["findings"], data.get("warnings", [])
    ),
    "backup_recorded": lambda request, data, config: cards.backup_recorded(Backup.objects.get(pk=data["backup"])),
    "run_result": lambda request, data, config: cards.run_result(request, data["result"], data["state"]),
    "restored": lambda request, data, config: cards.restored(
        request, Backup.objects.get(pk=data["backup"]), data["state"]
    ),
}


SKIP = ("", "", "")  # a post that needs no message after all (a plan that was not folded)


def as_file(post: Post, request: Request) -> tuple[str, str, str] | None:
    """(filename, title, content) when the post goes to Slack as a file (``SKIP``: nothing to
    post), else None."""
    data = post.data
    if post.kind == "plan_listing":  # the whole plan, where its message had to fold it
        if not cards.plan_folded(request):
            return SKIP
        filename, text = cards.plan_listing(request)
        return filename, "The whole plan", text
    if post.kind == "file":
        return data["filename"], data.get("title", data["filename"]), data["content"]
    if post.kind == "listing" and not _inline(data["text"]):
        return data["filename"], data["filename"], data["text"]
    return None


def render(post: Post, request: Request, config: Config) -> Message:
    if post.kind == "listing":
        return cards.code(post.data["text"])
    return RENDERERS[post.kind](request, post.data, config)


def _inline(text: str) -> bool:
    return len(text) <= INLINE_LIMIT and text.count("\n") < INLINE_LINES
