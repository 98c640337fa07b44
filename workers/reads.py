"""The read-only verbs: ask the target, then say what it answered (and keep the fingerprint ledger)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot import cards
from controlplane.models import State
from workers import djangotext, hygiene
from workers.catalog import read
from workers.job import Job


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    message: cards.Message
    listing: tuple[str, str] | None = None  # (file name, the same text manage.py would print)


def showmigrations(job: Job) -> Outcome:
    request = job.request
    result = hygiene.record(request.environment, read(job.target, "showmigrations", "--fingerprints", *request.args), actor=job.actor)
    return Outcome(
        result,
        cards.showmigrations_result(request.environment, result),
        (f"showmigrations-{request.environment}.txt", djangotext.showmigrations_text(result)),
    )


def plan(job: Job) -> Outcome:
    request = job.request
    result = read(job.target, "plan", *request.args)
    findings = hygiene.review(request.environment, result, actor=job.actor)
    return Outcome(
        hygiene.stripped(result) | {"warnings": findings},
        cards.plan_result(request.environment, result, findings),
        (f"plan-{request.environment}.txt", djangotext.plan_text(result)),
    )


def check(job: Job) -> Outcome:
    """The workflow's rules; conflicts and an inconsistent history are findings, not refusals."""
    findings = hygiene.review(job.request.environment, read(job.target, "check"), actor=job.actor)
    listing = (f"check-{job.request.environment}.txt", "\n\n".join(findings)) if len(findings) > cards.MAX_FINDINGS else None
    return Outcome({"findings": findings}, cards.check_result(job.request.environment, findings), listing)


HANDLERS = {"showmigrations": showmigrations, "plan": plan, "check": check}


def run(job: Job) -> None:
    outcome = HANDLERS[job.request.verb](job)
    job.finish(State.SUCCEEDED, outcome.message, result=outcome.result, listing=outcome.listing)
