"""The read-only verbs: ask the target, then say what it answered (and keep the fingerprint ledger)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.models import State
from migrabot import messages
from workers import djangotext, hygiene
from workers.catalog import read
from workers.job import Job, Said


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    said: Said
    listing: tuple[str, str] | None = None  # (file name, the same text manage.py would print)


def showmigrations(job: Job) -> Outcome:
    request = job.request
    document = read(job.target, "showmigrations", "--fingerprints", *request.args)
    result = hygiene.record(request.environment, document, actor=job.actor)
    return Outcome(
        result,
        ("showmigrations_result", {"result": result}),
        (f"showmigrations-{request.environment}.txt", djangotext.showmigrations_text(result)),
    )


def plan(job: Job) -> Outcome:
    request = job.request
    result = read(job.target, "plan", *request.args)
    found = hygiene.review(request.environment, result, actor=job.actor)
    return Outcome(
        hygiene.stripped(result) | {"problems": found.problems, "warnings": found.warnings},
        (
            "plan_result",
            {"result": hygiene.stripped(result), "findings": found.problems, "warnings": found.warnings},
        ),
        (f"plan-{request.environment}.txt", djangotext.plan_text(result)),
    )


def check(job: Job) -> Outcome:
    """The workflow's rules; conflicts and an inconsistent history are findings, not refusals."""
    found = hygiene.review(job.request.environment, read(job.target, "check"), actor=job.actor)
    everything = found.problems + found.warnings
    long = len(everything) > messages.MAX_FINDINGS
    listing = (f"check-{job.request.environment}.txt", "\n\n".join(everything)) if long else None
    said = {"findings": found.problems, "warnings": found.warnings}
    return Outcome(said, ("check_result", said), listing)


HANDLERS = {"showmigrations": showmigrations, "plan": plan, "check": check}


def run(job: Job) -> None:
    outcome = HANDLERS[job.request.verb](job)
    job.finish(State.SUCCEEDED, outcome.said, result=outcome.result, listing=outcome.listing)
