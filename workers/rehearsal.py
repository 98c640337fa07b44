"""Rehearsing a write before anyone approves it: the exact plan, run on a throwaway copy.

After planning, ``rehearse`` makes a copy of the environment's database (``workers.copies``) and
runs the plan's ``migrate`` on it with the same probe, settings, variables, expected code and lock
budget as the run would — except the database, which points at the copy, and the environment's
``rehearsal_env`` on top. The probe's process is started first and sets Django up while the copy is
made. A failure refuses the request before any approver sees it, naming the migration, the error
and the steps that succeeded before it. A success goes into the plan (``plan["rehearsal"]``, and
each step's ``rehearsed``: its time, and on PostgreSQL the locks it took, the tables it rewrote and
their sizes), so the approval's digest covers it; the run refuses later if the database's migration
history is no longer the one the rehearsal started from (``check_history``).

Migration code with effects outside the database (e-mail, storage, search indexes, webhooks) runs
in a rehearsal too: ``rehearsal_env`` is where a project switches them off (README, "Rehearsals").
A ``restore`` is not rehearsed: its checksum and verified read are its proof.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.db import connection

from controlplane import selectors
from controlplane.errors import Refusal
from controlplane.models import Request, State
from migrabot import messages
from migrabot.config import Environment
from migrabot_probe.protocol import lock_rank
from workers import copies
from workers.backup import Database
from workers.backups import target_database
from workers.job import Job
from workers.plans import expectation
from workers.target import MigrationFailed, Run, Target, TargetError

CANCEL_POLL_SECONDS = 0.5


class RehearsalFailed(Refusal):
    """A migration raised on the copy: the request is refused with what the rehearsal showed."""


class CalledOff(Exception):
    """The request was cancelled while it was being rehearsed: the rehearsal stopped, its copy is gone."""


def rehearse(job: Job, plan: dict[str, Any], timeout_seconds: float) -> dict[str, Any]:
    """The plan with its rehearsal in it; ``RehearsalFailed`` if a migration raised on the copy,
    ``Refusal`` if no copy could be made, ``CalledOff`` if the request was cancelled meanwhile."""
    if job.request.verb == "restore":
        return plan
    environment = job.environment
    if not environment.policy.rehearse:
        return plan | {"rehearsal": {"skipped": True}}
    real = target_database(job)
    copies.sweep(real, environment, environment.backup_dir)
    copy = copies.copy_for(environment, real, job.request.pk)
    runner = Target(environment, timeout_seconds=timeout_seconds, overrides=environment.rehearsal_env)
    fake = ["--fake"] if job.request.verb == "fake" else []
    touched = [table["table"] for table in plan.get("tables", [])]
    with (
        _private_json(expectation(plan)) as expected,
        _private_json(copy.settings()) as database,
        runner.start(
            "migrate", *fake, *environment.lock_budget(), "--measure", "--when-told", "--expect", expected,
            "--database", database, "--", *job.request.args,
        ) as run,
        copies.made(
            copy, touched=touched, max_bytes=environment.policy.rehearse_max_bytes, dump_folder=environment.backup_dir
        ) as made,
        _watching(job.request, run) as cancelled,
    ):
        history = copies.history_digest(made.database)
        started = time.monotonic()
        run.go()
        steps: list[dict[str, Any]] = []
        try:
            for event in run.events():
                if event.get("event", "").endswith("_success"):
                    steps.append(_step(event))
        except MigrationFailed as failure:
            done = [f"`{s['migration']}` was {'unapplied' if s['backwards'] else 'applied'}" for s in steps]
            said = messages.rehearsal_failed(
                environment.name, f"{failure.app}.{failure.name}", failure.error, done, made.partial
            )
            raise RehearsalFailed(said) from None
        except TargetError:
            if cancelled.is_set():
                raise CalledOff from None
            raise
    rehearsal = {
        "steps": [{key: step[key] for key in ("migration", "backwards", "seconds")} for step in steps],
        "seconds": round(time.monotonic() - started, 3),
        "copy_seconds": made.seconds,
        "vendor": real.vendor,
        "partial": made.partial,
        "kept": list(made.kept),
        "history": history,
        "at": datetime.now(UTC).isoformat(),
    }
    measured = {step["migration"]: step for step in steps}
    return plan | {
        "rehearsal": rehearsal,
        "steps": [_with_measurement(step, measured.get(f"{step['app']}.{step['name']}")) for step in plan["steps"]],
    }


def sweep_leftovers(environment: Environment) -> list[str]:
    """Drop the copies and dumps of rehearsals whose worker is gone (a worker calls it as it starts)."""
    real = Database(**Target(environment).probe("connection"))
    return copies.sweep(real, environment, environment.backup_dir)


def check_history(job: Job) -> None:
    """Before a run: the database's migration history must be the one its rehearsal started from."""
    rehearsal = (job.request.plan or {}).get("rehearsal") or {}
    if "history" in rehearsal and copies.history_digest(target_database(job)) != rehearsal["history"]:
        raise Refusal(messages.rehearsed_state_changed(job.request.pk, job.request.command_text))


def _step(event: dict[str, Any]) -> dict[str, Any]:
    measured = event.get("measured") or {}
    locks: dict[str, str] = {}
    for statement in measured.get("statements", []):
        for lock in statement["locks"]:
            held = locks.get(lock["table"])
            if held is None or lock_rank(lock["mode"]) > lock_rank(held):
                locks[lock["table"]] = lock["mode"]
    return {
        "migration": f"{event['app']}.{event['name']}",
        "backwards": event["event"].startswith("unapply"),
        "seconds": event.get("seconds", 0.0),
        "locks": [{"table": table, "mode": mode} for table, mode in locks.items()],
        "rewrote": measured.get("rewrote", []),
        "sizes": measured.get("sizes", {}),
        "measured": bool(measured),
    }


def _with_measurement(step: dict[str, Any], rehearsed: dict[str, Any] | None) -> dict[str, Any]:
    if rehearsed is None:
        return step
    facts = ("seconds", "rewrote", "sizes") + (("locks",) if rehearsed["measured"] else ())
    return step | {"rehearsed": {key: rehearsed[key] for key in facts}}


@contextmanager
def _private_json(document: Any) -> Iterator[str]:
    """A document in a file only this user can read, for the probe; gone afterwards."""
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".json") as file:  # 0600
        json.dump(document, file)
        file.flush()
        yield file.name


@contextmanager
def _watching(request: Request, run: Run) -> Iterator[threading.Event]:
    """Kill the rehearsal the moment its request is no longer being planned (a cancel)."""
    cancelled, done = threading.Event(), threading.Event()

    def watch() -> None:
        try:
            while not done.wait(CANCEL_POLL_SECONDS):
                if selectors.request_state(request_id=request.pk) != State.PLANNING:
                    cancelled.set()
                    run.kill()
                    return
        except Exception:  # noqa: BLE001 - the control plane unreachable: the rehearsal goes on
            pass
        finally:
            connection.close()  # this thread's own

    watcher = threading.Thread(target=watch, name=f"rehearsal-{request.pk}", daemon=True)
    watcher.start()
    try:
        yield cancelled
    finally:
        done.set()
        watcher.join()
