"""The workflow's guards on a write's plan, run when it is planned and again before it runs.

First hygiene: the problems go on top of the plan (its warnings folded to one line), or refuse
the write where the environment's policy says so (``refuse_writes_on_check_failure``, on by
default for production; warnings never refuse). Then promotion
order (``promote_from``): the same steps must already have succeeded on the earlier environment.
A restore is exempt from both: it brings back a recorded state, and recovery must not wait on
the rules that a broken state may well break.
"""

from __future__ import annotations

from typing import Any

from controlplane import selectors
from controlplane.errors import Refusal
from migrabot import messages
from workers import hygiene
from workers.job import Job
from workers.plans import steps_digest


def guarded(job: Job, plan: dict[str, Any]) -> dict[str, Any]:
    """The plan as approvers see it (problems, warnings, promotion evidence), or ``Refusal``."""
    if job.request.verb == "restore":
        return plan
    environment = job.environment
    found = hygiene.review(environment.name, plan, actor=job.actor)
    if found.problems and environment.refuses_writes_on_check_failure:
        raise Refusal(messages.refused_until_clean(environment.name, found.problems))
    plan = hygiene.stripped(plan) | {"problems": found.problems, "warnings": found.warnings}
    earlier = environment.policy.promote_from
    if earlier is None:
        return plan
    proof = selectors.request_succeeded_with_steps(
        environment=earlier, steps_digest=steps_digest(job.request.verb, plan)
    )
    if proof is None:
        raise Refusal(messages.not_promoted(environment.name, earlier, job.request.command_text))
    promoted = {"environment": earlier, "request": proof.pk, "finished_at": proof.updated_at.isoformat()}
    return plan | {"promoted_from": promoted}
