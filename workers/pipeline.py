"""Carrying out one request on a worker: whichever step its state calls for, claimed first.

Every step starts with a conditional state change (``received → running`` for reads,
``received → planning`` for planning a write, ``approved → backing_up`` for running one): a
message delivered twice, or after a cancel, finds the request already moved and does nothing.
Failures are recorded (the bot's notifier posts them), never retried. Every line logged meanwhile
names the request, its environment and verb (``migrabot.logs``); each step's duration is observed
(``migrabot.metrics``: ``plan``, ``run``, ``read``).
"""

from __future__ import annotations

import logging

from controlplane import selectors
from controlplane.errors import Refusal
from controlplane.models import State
from migrabot import messages, metrics
from migrabot.config import Config
from migrabot.logs import log_bind, log_context
from migrabot.redact import redact
from workers import reads, writes
from workers.job import Job, note
from workers.target import Target

log = logging.getLogger(__name__)


@log_context()
def execute(request_id: int, *, config: Config, actor: str) -> None:
    log_bind(request_id=request_id)
    request = selectors.request_get(request_id=request_id)
    if request is None:
        log.warning("request.unknown request=%s", request_id)
        return
    log_bind(environment=request.environment, verb=request.verb)
    environment = config.environments[request.environment]
    job = Job(request, environment, Target(environment), actor)
    if request.verb in reads.HANDLERS:
        step, claim, measured = reads.run, (State.RECEIVED, State.RUNNING), "read"
    elif request.state == State.APPROVED:
        step, claim, measured = writes.run, (State.APPROVED, State.BACKING_UP), "run"
    else:
        step, claim, measured = writes.prepare, (State.RECEIVED, State.PLANNING), "plan"
    if not job.move(from_states=[claim[0]], to=claim[1]):
        return
    try:
        with job.beat, metrics.timed(measured, environment=environment.name):
            step(job)
    except Refusal as refusal:
        job.finish(State.REFUSED, note(messages.refused(str(refusal))), error=str(refusal))
    except Exception as error:
        reason = redact(str(error), job.target.secrets)
        log.error("request.failed request=%s reason=%s", request_id, reason)
        job.finish(State.FAILED, note(messages.failed(reason)), error=reason)
