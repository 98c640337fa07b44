"""Carrying out one request on a worker: claim it, run it, record and post the outcome.

The claim is a conditional update from ``received`` to ``running``: a message delivered twice
finds the request already taken and does nothing. Failures are recorded and posted, never retried.
"""

from __future__ import annotations

import logging

from bot import cards
from bot.notify import Notifier
from controlplane import services
from controlplane.errors import Refusal
from controlplane.models import Request, State
from migrabot import messages
from migrabot.config import Config
from workers.reads import HANDLERS, Outcome
from workers.redact import redact
from workers.target import Target

log = logging.getLogger(__name__)


def execute(request_id: int, *, config: Config, notifier: Notifier, actor: str) -> None:
    request = services.request_transition(
        request_id=request_id,
        from_states=[State.RECEIVED],
        to=State.RUNNING,
        actor=actor,
        action="request.running",
    )
    if request is None:
        log.info("request.not_claimed request=%s", request_id)
        return
    notifier.update_card(request)
    target = Target(config.environments[request.environment])
    try:
        outcome = HANDLERS[request.verb](target, request)
    except Refusal as refusal:
        _finish(request, State.REFUSED, notifier, actor, message=cards.note(messages.refused(str(refusal))), error=str(refusal))
    except Exception as error:
        reason = redact(str(error), target.secrets)
        log.error("request.failed request=%s reason=%s", request_id, reason)
        _finish(request, State.FAILED, notifier, actor, message=cards.note(messages.failed(reason)), error=reason)
    else:
        _finish(request, State.SUCCEEDED, notifier, actor, message=outcome.message, outcome=outcome)


def _finish(
    request: Request,
    state: State,
    notifier: Notifier,
    actor: str,
    *,
    message: cards.Message,
    outcome: Outcome | None = None,
    error: str = "",
) -> None:
    """Record the outcome first (the system of record wins), then tell the thread."""
    finished = services.request_transition(
        request_id=request.pk,
        from_states=[State.RUNNING],
        to=state,
        actor=actor,
        action=f"request.{state}",
        result=outcome.result if outcome else None,
        error=error,
    )
    if finished is None:
        return
    notifier.reply(finished, message)
    if outcome is not None:
        filename, text = outcome.listing
        notifier.listing(finished, filename=filename, text=text)
    notifier.update_card(finished)
