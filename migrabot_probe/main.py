"""The probe's entry point: a one-shot command, or a warm session answering calls on stdin.

Usage (cwd = the target project's folder with manage.py, DJANGO_SETTINGS_MODULE set; the worker
starts it with ``protocol.command_line``):

    showmigrations [--fingerprints] [app ...]
    plan [--fake] [app [migration]]
    migrate [--fake] [--expect FILE] [--database FILE] [--measure] [--when-told] [app [migration]]
    connection | catalog | check
    session

It runs under the target project's own interpreter, which has the target's Django and settings
but not migrabot, so it is standalone: stdlib + Django only.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import IO, Any

from migrabot_probe import copies, hygiene, loading, plans, protocol, reads, running, state  # noqa: F401 (all loaded now)
from migrabot_probe.errors import MigrationFailed, Refusal, Stopped
from migrabot_probe.files import relative
from migrabot_probe.graphs import GRAPHS
from migrabot_probe.sql import steps_sql

PR_SET_PDEATHSIG = 1  # prctl(2)
Emit = Callable[[dict[str, Any]], None]


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.command == protocol.SESSION:
        # A session only reads, and ends when its stdin closes (the worker's death closes it).
        setup_django()
        return serve(sys.stdin, private_stdout())
    die_with_worker()
    try:
        copy = copies.point_at_copy(args.database) if getattr(args, "database", None) else None
    except Refusal as refusal:  # before set-up, so that nothing can have opened the real database
        write(sys.stdout, {"refusal": str(refusal)})
        return protocol.REFUSED_EXIT
    setup_django()
    signal.signal(protocol.STOP_SIGNAL, lambda *_: running.STOP_REQUESTED.append(True))
    if getattr(args, "when_told", False) and not told_to_go(args, connect=copy is None):
        return protocol.DONE_EXIT  # the worker decided not to run: nothing ran
    emit = line_writer(sys.stdout)  # bound now: migrate redirects sys.stdout while it runs
    try:
        if copy is not None:
            copies.check_pointed(copy)
        document, status = one_shot(args, emit), protocol.DONE_EXIT
    except Refusal as refusal:
        document, status = {"refusal": str(refusal)}, protocol.REFUSED_EXIT
    except MigrationFailed as failure:
        document, status = {"failed": failure.document}, protocol.FAILED_EXIT
    except Stopped as stop:
        document, status = {"stopped": stop.document}, protocol.STOPPED_EXIT
    emit(document)
    exit_now(status)
    return status  # not reached


def exit_now(status: int) -> None:
    """End a one-shot process once its answer is written: connections closed, the exit handlers
    run (the project's own too: an error reporter flushing what a migration raised, logging), output
    flushed, and none of Python's teardown of every module and object of a Django process, which
    takes longer than many calls (the worker waits for the exit before it goes on: ~70 ms after a
    migrate)."""
    import atexit

    from django.db import connections

    connections.close_all()
    atexit._run_exitfuncs()  # what a normal exit runs first (logging.shutdown among them)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def told_to_go(args: argparse.Namespace, connect: bool = True) -> bool:
    """Load the graph (Django is set up) and the plan's SQL, then wait for the worker's word on
    stdin: ``go``, or its end (the run was called off). The SQL, which the run checks against the
    approved one before it starts, is kept for it (``sql.steps_sql``) while the files and the
    applied migrations stay the same. A rehearsal's copy is made meanwhile: its graph is read from
    disk only (connecting to a SQLite copy that is not there yet would create it)."""
    load_graph(connect)  # no connection is held while the worker backs up
    if connect:
        prepare_plan(args.app_label, args.migration_name)
    return sys.stdin.readline().strip() == "go"


def prepare_plan(app_label: str | None, migration_name: str | None) -> None:
    """The plan's SQL computed ahead, and no connection left open; a failure is the run's to report."""
    from django.db import connections

    try:
        executor, migration_plan = plans.load_plan(app_label, migration_name)
        steps_sql(executor.loader, migration_plan)
    except Exception:  # noqa: BLE001 - the run does it again, and says what is wrong
        pass
    finally:
        connections.close_all()


def one_shot(args: argparse.Namespace, emit: Emit) -> dict[str, Any]:
    if args.command == protocol.MIGRATE:
        expected = None
        if args.expect:
            with open(args.expect, encoding="utf-8") as approved:
                expected = json.load(approved)
        budget = running.Budget(
            args.lock_timeout, args.statement_timeout, args.slow_lock_timeout, args.slow_statement_timeout,
            args.lock_retries,
        )
        return running.migrate(args.app_label, args.migration_name, args.fake, emit, expected, budget,
                               measure=args.measure)
    return reads.answer(args)


# --- the warm session ----------------------------------------------------------------------


def serve(calls: IO[str], answers: IO[str]) -> int:
    """Answer each ``Call`` line with one ``Answer`` line until stdin closes (or the code the
    session imported changed on disk: then it says ``stale`` and exits)."""
    from django.db import connections

    warm_up()
    seen = loading.module_stats(exclude=GRAPHS.packages())
    for line in calls:
        call: protocol.Call = json.loads(line)
        answer: protocol.Answer = {"id": call["id"]}
        changed = loading.changed_module(seen)
        if changed is not None:
            answer["stale"] = f"{relative(changed)} changed since this session imported it"
            write(answers, answer)
            return 0
        try:
            answer["result"] = reads.answer(parse_args([call["command"], *call["args"]]))
        except Refusal as refusal:
            answer["refusal"] = str(refusal)
        except Exception as error:
            traceback.print_exc()
            answer["error"] = f"{type(error).__name__}: {error}"
        finally:
            connections.close_all()  # no connection held between calls
        for path, stat in loading.module_stats(exclude=GRAPHS.packages()).items():
            seen.setdefault(path, stat)  # modules the call imported, as they were when it did
        answer["memory_kib"] = resident_kib()
        write(answers, answer)
        if "result" in answer and not _waiting(calls):
            with contextlib.suppress(Exception):  # a plan or check will meet it, and say so
                hygiene.model_changes()  # while idle: the next plan or check finds it ready
    return 0


def warm_up() -> None:
    """Load the graph and run the model-change check now, not during the first call."""
    load_graph()
    with contextlib.suppress(Exception):  # a plan or check will meet it, and say so
        hygiene.model_changes()


def load_graph(connect: bool = True) -> None:
    """Import every migration and build the graph, with the database's applied migrations where it
    answers and ``connect`` allows (the loader calls use); no connection is left open."""
    from django.db import connections

    GRAPHS.refresh()
    if not connect:
        GRAPHS.disk()
        return
    try:
        GRAPHS.applied(connections["default"])
    except Exception:  # the database is down: the call that needs it will say so
        GRAPHS.disk()
    finally:
        connections.close_all()


def _waiting(calls: IO[str]) -> bool:
    """Whether another call is already waiting on stdin."""
    import select

    try:
        return bool(select.select([calls], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def write(stream: IO[str], document: Any) -> None:
    stream.write(json.dumps(document) + "\n")
    stream.flush()


def private_stdout() -> IO[str]:
    """The answers' own copy of stdout; fd 1 itself then goes to stderr, so nothing the target
    prints (a settings module, a signal receiver, even C code) can corrupt an answer."""
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return answers


def resident_kib() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# --- common ------------------------------------------------------------------------------------


class UsageError(Exception):
    """Arguments the probe does not take (the worker's grammar should never send them)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would exit the process, session included
        raise UsageError(f"{self.prog}: {message}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="migrabot_probe")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("showmigrations")
    show.add_argument("--fingerprints", action="store_true")
    show.add_argument("app_labels", nargs="*")
    for name in ("plan", protocol.MIGRATE):
        planned = commands.add_parser(name)
        planned.add_argument("--fake", action="store_true")
        planned.add_argument("app_label", nargs="?")
        planned.add_argument("migration_name", nargs="?")
    migrate = commands.choices[protocol.MIGRATE]
    # A JSON file of the approved code (code_under_approval's shape): run nothing else.
    migrate.add_argument("--expect", metavar="FILE")
    # PostgreSQL budgets for the migration's connection (running.Budget); "0" is none.
    for budget in ("lock-timeout", "statement-timeout", "slow-lock-timeout", "slow-statement-timeout"):
        migrate.add_argument(f"--{budget}", default="0")
    migrate.add_argument("--lock-retries", type=int, default=0)
    # Start now, run when told: the worker starts the run's process before its re-plan and backup.
    migrate.add_argument("--when-told", action="store_true")
    # A rehearsal: a JSON file of the copy's database settings (NAME, …) to run on instead (copies).
    migrate.add_argument("--database", metavar="FILE")
    # Add what each migration locked and rewrote on PostgreSQL to its success event (measure).
    migrate.add_argument("--measure", action="store_true")
    for name in ("connection", "catalog", "check", protocol.SESSION):
        commands.add_parser(name)
    return parser.parse_args(argv)


def setup_django() -> None:
    # Same as manage.py: the project folder must be importable, first.
    sys.path.insert(0, os.getcwd())
    import django

    django.setup()


def line_writer(stream: IO[str]) -> Emit:
    """One JSON document per line, flushed at once so the worker sees it live."""
    return lambda document: write(stream, document)


def die_with_worker() -> None:
    """If the worker that started us dies (SIGKILL, OOM), die too, as a killed container would,
    rather than go on migrating with nobody watching. Linux only; elsewhere a no-op."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the worker died before the request took effect
            os._exit(1)
