"""The App Home tab: what awaits the viewer's approval, and where each environment stands.

A pure function from records to a ``views.publish`` view. Slack allows a home view at most 100
blocks: the environments come first (there are few), then as many pending requests as fit; what
does not fit is counted in a last line, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ButtonElement, DividerBlock, MarkdownTextObject, SectionBlock

from controlplane.models import Request
from migrabot import messages
from slackui import blocks as kit
from slackui.links import thread_url

HOME_BLOCKS = 100  # Slack's limit on a home view
OPEN_THREAD = "home_open_thread"  # the action id of the URL buttons (Slack still sends their clicks)


@dataclass(frozen=True)
class EnvironmentState:
    name: str
    production: bool
    lock: tuple[str, str, datetime] | None  # holder, reason, since
    last_change: Request | None  # the newest write that succeeded
    open_requests: int


def home_view(pending: Sequence[Request], environments: Sequence[EnvironmentState]) -> dict[str, Any]:
    """The ``{"type": "home", "blocks": [...]}`` view for one viewer."""
    env_blocks = [kit.section(_environment(env)) for env in environments]
    fixed = 3  # the two titles and the divider
    env_room = HOME_BLOCKS - fixed - 2  # room left for a line counting each part's left-out
    env_note: list[kit.Block] = []
    if len(env_blocks) > env_room:
        env_note = [kit.context(messages.home_left_out(len(env_blocks) - env_room, "environment"))]
        env_blocks = env_blocks[:env_room]
    room = HOME_BLOCKS - fixed - len(env_blocks) - len(env_note)
    shown = list(pending) if len(pending) <= room else list(pending[: room - 1])
    pending_blocks = [_pending(request) for request in shown] or [kit.context(messages.home_nothing_pending())]
    if len(shown) < len(pending):
        pending_blocks.append(kit.context(messages.home_left_out(len(pending) - len(shown), "request")))
    blocks = [
        kit.section(messages.home_pending_title(len(pending))),
        *pending_blocks,
        DividerBlock().to_dict(),
        kit.section(messages.home_environments_title()),
        *env_blocks,
        *env_note,
    ]
    assert len(blocks) <= HOME_BLOCKS
    return {"type": "home", "blocks": blocks}


def _pending(request: Request) -> kit.Block:
    text = messages.home_pending(
        request.pk, request.command_text, request.environment, request.requester, request.expires_at
    )
    url = thread_url(request)
    if url is None:
        return kit.section(text)
    button = ButtonElement(
        text=messages.home_open_thread(), url=url, action_id=f"{OPEN_THREAD}:{request.pk}", value=str(request.pk)
    )
    return SectionBlock(text=MarkdownTextObject(text=kit.cut(text, kit.TEXT)), accessory=button).to_dict()


def _environment(env: EnvironmentState) -> str:
    last = env.last_change
    change = (last.pk, last.command_text, last.requester, last.updated_at) if last is not None else None
    return messages.home_environment(env.name, env.production, env.lock, change, env.open_requests)
