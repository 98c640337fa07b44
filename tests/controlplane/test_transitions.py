"""The state table (controlplane.models.TRANSITIONS) is enforced where every state change goes."""

from __future__ import annotations

import pytest

from controlplane.errors import IllegalTransition
from controlplane.models import TERMINAL_STATES, TRANSITIONS, Request, State
from controlplane.services import request_create, request_transition


def test_request_transition_enforces_the_state_table() -> None:
    """An illegal move raises (a bug must not pass silently); a stale expectation returns None."""
    request, _ = request_create(
        verb="plan", environment="transitions", args=[], requester="U0ALICE", channel="C1", trigger_id=None
    )
    with pytest.raises(IllegalTransition):
        request_transition(
            request_id=request.pk,
            from_states=[State.RECEIVED],
            to=State.SUCCEEDED,
            actor="w",
            action="request.succeeded",
        )
    assert Request.objects.get(pk=request.pk).state == State.RECEIVED
    assert (
        request_transition(request_id=request.pk, from_states=[State.PLANNING], to=State.FAILED, actor="w", action="x")
        is None
    )
    assert request_transition(
        request_id=request.pk, from_states=[State.RECEIVED], to=State.RUNNING, actor="w", action="x"
    )


def test_every_open_state_has_its_moves_and_final_states_have_none() -> None:
    assert set(TRANSITIONS) == {state for state in State if state not in TERMINAL_STATES}
    assert all(moves for moves in TRANSITIONS.values())
