"""The Deny dialog: a modal asking why, opened with ``views.open`` after a Deny click was acked.

Built with slack_sdk's view models (``View``, ``InputBlock``, ``PlainTextInputElement``), whose
``to_dict`` checks Slack's limits on a modal (title and buttons ≤ 24 characters, ≤ 100 blocks,
``callback_id`` ≤ 255, ``private_metadata`` ≤ 3,000). The dialog carries the request and the plan
digest the click named (``private_metadata``, the buttons' own JSON); the submission is checked
again on the server like a click (``bot.listeners.actions``), whatever the metadata says.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, PlainTextObject
from slack_sdk.models.views import View

from controlplane.approvals import MAX_REASON
from controlplane.models import Request
from migrabot import messages
from slackui import blocks as kit

DENY_VIEW = "deny-reason"  # the modal's callback_id: its submissions come to this listener
REASON_BLOCK = "reason"  # the input's block_id: where ``response_action: errors`` shows a problem
REASON_ACTION = "reason"


def deny_modal(request: Request) -> dict[str, Any]:
    """The dialog for denying ``request``: one required line of plain text, at most ``MAX_REASON``
    characters (Slack's client enforces both before it sends; the server checks them again)."""
    reason = InputBlock(
        block_id=REASON_BLOCK,
        label=messages.deny_reason_label(),
        element=PlainTextInputElement(
            action_id=REASON_ACTION,
            max_length=MAX_REASON,
            placeholder=messages.deny_reason_placeholder(),
        ),
        optional=False,
    )
    view = View(
        type="modal",
        callback_id=DENY_VIEW,
        private_metadata=json.dumps({"request": request.pk, "digest": request.plan_digest}),
        title=PlainTextObject(text=messages.deny_title(request.pk)),
        submit=PlainTextObject(text="Deny"),
        close=PlainTextObject(text="Cancel"),
        blocks=[kit.section(messages.deny_prompt(request.pk, request.command_text, request.requester)), reason],
    )
    return view.to_dict()


def submitted_reason(view: dict[str, Any]) -> str:
    """What was typed into the dialog's reason (a submission's ``view.state``), "" if nothing."""
    values = view.get("state", {}).get("values", {})
    typed = values.get(REASON_BLOCK, {}).get(REASON_ACTION, {}).get("value")
    return typed if isinstance(typed, str) else ""
