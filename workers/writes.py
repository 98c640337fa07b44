"""The write verbs (migrate, rollback, fake, restore): plan, wait for approval, then run.

``prepare`` computes the plan, rehearses it on a throwaway copy (``workers.rehearsal``), then
asks for approval or, where policy needs none, runs at once. ``run`` is the guarded sequence
from the design, in this order: the environment lock, the plan again (its digest must be the
approved one, and the database's history the rehearsed one), the verified backup, then the
migrations with live progress. The lock is released whatever happens; nothing is retried by itself.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from controlplane import services
from controlplane.errors import Refusal
from controlplane.locks import lock_acquire, lock_release
from controlplane.models import Backup, State
from migrabot import messages
from workers import hygiene
from workers.backup import BackupError, restore_backup
from workers.backups import back_up, target_database
from workers.catalog import read
from workers.guards import guarded
from workers.job import Job, note
from workers.plans import compute_plan, expectation, is_empty, plan_digest, steps_digest, what_changed
from workers.rehearsal import CalledOff, RehearsalFailed, check_history, rehearse
from workers.target import MigrationFailed, Run, RunStopped, Target

MIGRATION_TIMEOUT_SECONDS = 6 * 60 * 60
PROGRESS_SHOWN = 30  # about what a progress message shows (slackui.cards.progress) before folding


def prepare(job: Job) -> None:
    plan = compute_plan(job.target, job.request)
    if is_empty(plan):
        result = hygiene.record(job.environment.name, plan, actor=job.actor)
        job.finish(State.SUCCEEDED, note(messages.nothing_to_do(job.request.command_text)), result=result)
        return
    plan = guarded(job, plan)
    try:
        plan = rehearse(job, plan, MIGRATION_TIMEOUT_SECONDS)
    except RehearsalFailed as failed:  # refused before anyone is asked, in the rehearsal's own words
        job.finish(State.REFUSED, note(str(failed)), error=str(failed))
        return
    except CalledOff:
        return  # cancelled meanwhile: the cancel said so
    policy = job.environment.policy
    fields: dict[str, Any] = {
        "plan": plan,
        "plan_digest": plan_digest(job.request, plan),
        "steps_digest": steps_digest(job.request.verb, plan),
    }
    if not policy.needs_approval(job.request.verb):
        # Each claim's result is honoured: a second delivery of this task may win either move.
        if job.move(from_states=[State.PLANNING], to=State.APPROVED, **fields) and job.move(
            from_states=[State.APPROVED], to=State.BACKING_UP
        ):
            if "rehearsal" in plan:  # no plan message to carry it: the thread says what the copy showed
                job.say(note(messages.rehearsal_outcome(plan["rehearsal"])))
            run(job)
        return
    fields |= {
        "approvals_required": policy.approvals,
        "expires_at": timezone.now() + timedelta(minutes=policy.request_ttl_minutes),
    }
    with transaction.atomic():
        if not job.move(from_states=[State.PLANNING], to=State.AWAITING_APPROVAL, **fields):
            return  # cancelled while planning
        # The plan with its buttons; the SQL after it, where a phone reader scrolls to it.
        job.say(("plan", {}), key="plan")
        job.say(("plan_listing", {}))  # the whole plan as a file, where its message folds it
        if plan.get("sql"):
            sql = {"filename": f"request-{job.request.pk}.sql", "title": "SQL this plan runs", "content": plan["sql"]}
            job.say(("file", sql))


def run(job: Job) -> None:
    environment = job.environment.name
    token, lock = lock_acquire(
        environment=environment,
        holder=f"request:{job.request.pk}",
        reason=f"#{job.request.pk} {job.request.command_text}",
        request=job.request,
    )
    if token is None:
        raise Refusal(messages.locked(environment, lock.holder, lock.reason, lock.acquired_at))
    try:
        with job.beat.holding(environment=environment, token=token), _started_run(job) as started:
            _run_locked(job, started)
    finally:
        # Every child of the run has exited by now (Target.start waits for the probe).
        lock_release(environment=environment, token=token, actor=job.actor)


@contextmanager
def _started_run(job: Job) -> Iterator[Run | None]:
    """The run's probe process, started before the re-plan and the backup so that its Django set-up
    and imports happen meanwhile; it runs only when told (``Run.go``), and nothing if not."""
    if job.request.verb == "restore":
        yield None
        return
    fake = ["--fake"] if job.request.verb == "fake" else []
    # A migration may rightly take hours; only the probe's reads are held to the usual limit.
    runner = Target(job.environment, timeout_seconds=MIGRATION_TIMEOUT_SECONDS)
    with _approved_code(job) as expected, runner.start(
        "migrate", *fake, *job.environment.lock_budget(), "--when-told", "--expect", expected, "--",
        *job.request.args, stop=job.beat.lost,
    ) as started:
        yield started


def _run_locked(job: Job, started: Run | None) -> None:
    plan = compute_plan(job.target, job.request)
    approved = job.request.plan or {}
    if plan_digest(job.request, plan | {"rehearsal": approved.get("rehearsal")}) != job.request.plan_digest:
        _refuse_changed(job, plan)
    check_history(job)  # what was rehearsed is what the database holds
    guarded(job, plan)  # a file may have been edited since the approval
    if job.request.verb != "migrate" or job.environment.policy.backup_before_migrate:
        try:
            backup = back_up(job)
        except BackupError as error:
            job.finish(State.FAILED, note(messages.backup_failed(str(error))), error=str(error))
            return
        job.say(("backup_recorded", {"backup": backup.pk}))
    if job.beat.lost.is_set():
        raise Refusal(messages.lock_lost_before_run())
    if not job.move(from_states=[State.BACKING_UP], to=State.RUNNING):
        return
    if started is None:
        _restore(job, Backup.objects.get(pk=plan["restore"]["backup"]))
    else:
        started.go()
        _follow(job, started.events())


def _refuse_changed(job: Job, plan: dict[str, Any]) -> None:
    what = what_changed(job.request.plan or {}, plan)
    raise Refusal(messages.approved_code_changed(job.request.pk, what, job.request.command_text))


@contextmanager
def _approved_code(job: Job) -> Iterator[str]:
    """The approved plan's files and SQL in a private file, for the probe to check before it runs."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".json") as file:  # 0600
        json.dump(expectation(job.request.plan or {"steps": []}), file)
        file.flush()
        yield file.name


def _follow(job: Job, events: Iterator[dict[str, Any]]) -> None:
    result: dict[str, Any] = {}
    progress: list[dict[str, Any]] = []
    try:
        for event in events:
            if event.get("event") == "lock_timeout":
                if progress and progress[-1]["name"] == event["name"]:
                    progress.pop()  # its start: rolled back whole, it starts again
                job.say(note(messages.lock_wait(event["app"], event["name"], event["attempt"], event["retries"],
                                                event["wait"], event["blockers"])))
                continue
            if "event" in event:
                finishes_last = (
                    event["event"].endswith("_success") and progress and progress[-1]["name"] == event["name"]
                )
                progress[-1:] = [event] if finishes_last else [*progress[-1:], event]  # one entry a migration
                _record(job, event, progress)
            result = event.get("result", result)
    except RunStopped as stopped:
        text = messages.run_stopped(stopped.app, stopped.name, stopped.done, job.request.command_text)
        job.finish(State.FAILED, note(text), error=f"stopped before {stopped.app}.{stopped.name}: lock not renewed")
        return
    except MigrationFailed as failure:
        job.say(("progress", {"events": progress, "failed": f"{failure.app}.{failure.name}"}), key="progress")
        text = messages.migration_failed(failure.app, failure.name, failure.error, job.request.command_text)
        error = f"{failure.app}.{failure.name}: {failure.error}"
        job.finish(State.FAILED, note(text), error=error, listing=_whole(job, progress))
        return
    state = hygiene.record(job.environment.name, read(job.target, "showmigrations", "--fingerprints"), actor=job.actor)
    job.finish(
        State.SUCCEEDED, ("run_result", {"result": result, "state": state}), result={"run": result, "state": state},
        listing=_whole(job, progress),
    )


def _whole(job: Job, progress: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The whole progress as a listing, where its message shows only the newest steps."""
    if len(progress) <= PROGRESS_SHOWN:
        return None
    return f"run-{job.request.pk}.txt", "\n".join(messages.progress_line(event) for event in progress)


def _record(job: Job, event: dict[str, Any], progress: list[dict[str, Any]]) -> None:
    """Each step goes to the audit trail (an interrupted run can say what it did) and to the
    progress message, together; the notifier shows the progress at its own pace."""
    with transaction.atomic():
        if event["event"].endswith("_success"):
            action = "migration.applied" if event["event"] == "apply_success" else "migration.unapplied"
            services.audit_record(
                actor=job.actor,
                action=action,
                request=job.request,
                migration=f"{event['app']}.{event['name']}",
                fake=event.get("fake", False),
            )
        job.say(("progress", {"events": progress}), key="progress")


def _restore(job: Job, backup: Backup) -> None:
    restore_backup(target_database(job), Path(backup.path), backup.sha256)
    state = hygiene.record(job.environment.name, read(job.target, "showmigrations", "--fingerprints"), actor=job.actor)
    said = ("restored", {"backup": backup.pk, "state": state})
    job.finish(State.SUCCEEDED, said, result={"restored": backup.pk, "state": state})
