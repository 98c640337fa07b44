"""The read-only verbs: ask the target, then say what it answered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot import cards
from controlplane.models import Request, State
from workers import djangotext
from workers.job import Job
from workers.target import Target


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    message: cards.Message
    listing: tuple[str, str]  # (file name, the same text manage.py would print)


def showmigrations(target: Target, request: Request) -> Outcome:
    result = target.probe("showmigrations", *request.args)
    return Outcome(
        result,
        cards.showmigrations_result(request.environment, result),
        (f"showmigrations-{request.environment}.txt", djangotext.showmigrations_text(result)),
    )


def plan(target: Target, request: Request) -> Outcome:
    result = target.probe("plan", *request.args)
    return Outcome(
        result,
        cards.plan_result(request.environment, result),
        (f"plan-{request.environment}.txt", djangotext.plan_text(result)),
    )


HANDLERS = {"showmigrations": showmigrations, "plan": plan}


def run(job: Job) -> None:
    outcome = HANDLERS[job.request.verb](job.target, job.request)
    job.finish(State.SUCCEEDED, outcome.message, result=outcome.result, listing=outcome.listing)
