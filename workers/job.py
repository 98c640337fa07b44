"""One request being carried out on a worker, and the one way it ends: ``finish``.

A worker never calls Slack: it records what happened (state changes, the thread's messages, the
run's progress) in the control plane, in the transaction that makes it true, and the bot's
notifier shows it. So Slack being slow, rate-limiting or down never fails, stops or slows a run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from controlplane import services
from controlplane.models import TERMINAL_STATES, Request, State
from migrabot.config import Environment
from workers.heartbeat import Heartbeat
from workers.target import Target

log = logging.getLogger(__name__)

OPEN_STATES = [state for state in State if state not in TERMINAL_STATES]
# A message for the thread: how the bot renders it (slackui.thread.RENDERERS) and what it says.
Said = tuple[str, dict[str, Any]]


def note(text: str) -> Said:
    return "note", {"text": text}


@dataclass
class Job:
    request: Request
    environment: Environment
    target: Target
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
        return True

    def say(self, said: Said, *, key: str | None = None) -> None:
        """A message in the request's thread (``key`` names one that later records replace)."""
        kind, data = said
        if key is None:
            services.post_note(request_id=self.request.pk, kind=kind, **data)
        else:
            services.post_record(request_id=self.request.pk, key=key, kind=kind, data=data)

    def finish(
        self,
        state: State,
        said: Said,
        *,
        result: dict[str, Any] | None = None,
        error: str = "",
        listing: tuple[str, str] | None = None,
    ) -> None:
        """The outcome and what the thread says of it, in one transaction."""
        with transaction.atomic():
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
            self.say(said)
            if listing is not None:
                filename, text = listing
                self.say(("listing", {"filename": filename, "text": text}))
