"""One request being carried out on a worker, and the one way it ends: ``finish``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bot import cards
from bot.notify import Notifier
from controlplane import services
from controlplane.models import TERMINAL_STATES, Request, State
from migrabot.config import Environment
from workers.heartbeat import Heartbeat
from workers.target import Target

log = logging.getLogger(__name__)

OPEN_STATES = [state for state in State if state not in TERMINAL_STATES]


@dataclass
class Job:
    request: Request
    environment: Environment
    target: Target
    notifier: Notifier
    actor: str
    beat: Heartbeat = field(init=False)

    def __post_init__(self) -> None:
        self.beat = Heartbeat(self.request.pk)

    def move(self, *, from_states: list[State], to: State, **fields: Any) -> bool:
        """A conditional state change (with a fresh lease: this worker holds the request); False if
        someone else moved the request first — then this copy must do nothing more."""
        moved = services.request_transition(
            request_id=self.request.pk,
            from_states=from_states,
            to=to,
            actor=self.actor,
            action=f"request.{to}",
            fields={**fields, "lease_expires_at": services.lease_until()},
        )
        if moved is None:
            log.info("request.not_claimed request=%s wanted=%s", self.request.pk, to)
            return False
        self.request = moved
        self.notifier.update_card(moved)
        return True

    def finish(
        self,
        state: State,
        message: cards.Message,
        *,
        result: dict[str, Any] | None = None,
        error: str = "",
        listing: tuple[str, str] | None = None,
    ) -> None:
        """Record the outcome first (the system of record wins), then tell the thread."""
        finished = services.request_transition(
            request_id=self.request.pk,
            from_states=OPEN_STATES,
            to=state,
            actor=self.actor,
            action=f"request.{state}",
            result=result,
            error=error,
        )
        if finished is None:
            return
        self.request = finished
        self.notifier.reply(finished, message)
        if listing is not None:
            filename, text = listing
            self.notifier.listing(finished, filename=filename, text=text)
        self.notifier.update_card(finished)
