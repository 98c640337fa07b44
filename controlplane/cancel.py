"""Cancelling a request that has not started to run (racing an approval: one of them wins)."""

from __future__ import annotations

from controlplane.errors import Refusal
from controlplane.models import Request, State
from controlplane.services import request_transition
from migrabot import messages

CANCELLABLE = [State.RECEIVED, State.PLANNING, State.AWAITING_APPROVAL, State.APPROVED]


def request_cancel(*, request: Request, actor: str) -> Request:
    cancelled = request_transition(
        request_id=request.pk, from_states=CANCELLABLE, to=State.CANCELLED, actor=actor, action="request.cancelled"
    )
    if cancelled is None:
        current = Request.objects.get(pk=request.pk)
        raise Refusal(messages.cannot_cancel(current.pk, current.state))
    return cancelled
