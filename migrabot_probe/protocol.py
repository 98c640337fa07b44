"""The probe's protocol, in one place: its commands, exit codes, stop signal and documents.

Imported by the probe (which runs in the *target's* Python: stdlib only here) and by the worker
(``workers.target``), so both sides read the same definitions.

A one-shot call is a process, ``<target python> -c BOOTSTRAP <command> [args…]``; it prints JSON
documents one per line (``migrate`` one ``Event`` per migration as it happens, the others one
result) and exits with one of the codes below. ``session`` starts a warm session: it reads
``Call`` lines on stdin and answers each with one ``Answer`` line on stdout, until stdin closes.

Supported targets: Python 3.10 to 3.13, Django 4.2 to 5.2 — the tests run Python 3.10 with
Django 4.2 and Python 3.13 with Django 5.2 (``tests/workers/test_probe_versions.py``).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, TypedDict

# --- commands ---------------------------------------------------------------------------
READS = ("showmigrations", "plan", "check", "catalog", "connection")  # a session answers these
MIGRATE = "migrate"  # runs in a process of its own (see workers.target)
SESSION = "session"

# --- exit codes of a one-shot call ------------------------------------------------------
DONE_EXIT = 0
REFUSED_EXIT = 3  # a rule said no: {"refusal": text} was printed last
FAILED_EXIT = 4  # a migration raised: {"failed": Failure} was printed last
STOPPED_EXIT = 5  # asked to stop, no migration begun since: {"stopped": Stop} printed last

# The worker sends this when it can no longer vouch for its environment lock: finish the
# migration under way, start no other.
STOP_SIGNAL = signal.SIGUSR1


class Failure(TypedDict):
    app: str
    name: str
    error: str


class Stop(TypedDict):
    app: str
    name: str
    done: list[str]


# PostgreSQL's table lock modes, weakest first (the documentation's order of conflicts).
LOCK_MODES = (
    "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE",
    "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE",
)
#: A lock the probe could not derive from a statement (``migrabot_probe.locks``): it may be anything,
#: so only ACCESS EXCLUSIVE ranks above it.
UNKNOWN_LOCK = "unknown"
_RANKS = (*LOCK_MODES[:-1], UNKNOWN_LOCK, LOCK_MODES[-1])


def lock_rank(mode: str) -> int:
    """How strong a lock mode is, for "the strongest": anything unrecognised counts as unknown."""
    return _RANKS.index(mode) if mode in _RANKS else _RANKS.index(UNKNOWN_LOCK)


class MeasuredLock(TypedDict):
    table: str
    mode: str  # "ACCESS EXCLUSIVE", "SHARE ROW EXCLUSIVE" …


class MeasuredStatement(TypedDict):
    sql: str  # its first 200 characters, whitespace collapsed; "(data changes)" for data statements
    locks: list[MeasuredLock]  # the strongest mode per table that it newly took


class Measured(TypedDict):
    """What ``migrate --measure`` saw one migration do on PostgreSQL (``migrabot_probe.measure``)."""

    statements: list[MeasuredStatement]  # only those that took a lock not held before
    rewrote: list[str]  # tables that existed before and got a new relfilenode
    sizes: dict[str, int]  # bytes before the migration (pg_total_relation_size), of the tables above


class Event(TypedDict, total=False):
    """``migrate``'s progress: apply_start / apply_success / unapply_start / unapply_success."""

    event: str
    app: str
    name: str
    fake: bool
    seconds: float
    measured: Measured  # success events of ``migrate --measure`` on PostgreSQL


# --- the warm session ---------------------------------------------------------------------


class Call(TypedDict):
    id: int
    command: str  # one of READS
    args: list[str]


class Answer(TypedDict, total=False):
    """Exactly one of result / refusal / error / stale, with the call's id.

    ``stale`` means the session's imported code no longer matches the files on disk (a deploy
    changed a module it imported other than a migration): it answers nothing more and exits, and
    the worker asks a fresh session. ``memory_kib`` is its resident size after the call.
    """

    id: int
    result: dict[str, Any]
    refusal: str
    error: str
    stale: str
    memory_kib: int


PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)

# The target's own folder comes first on sys.path (as with manage.py), and nothing of ours may
# shadow its modules: our folder is appended only while the probe's modules are imported, then
# removed, so the target never sees our other packages (or the worker's site-packages).
BOOTSTRAP = f"""import sys
sys.path.append({PACKAGE_PARENT!r})
from migrabot_probe import main
sys.path.remove({PACKAGE_PARENT!r})
sys.exit(main.main(sys.argv[1:]))
"""


def command_line(python: str, *args: str) -> list[str]:
    """The argv that runs the probe with ``args`` in the target's interpreter."""
    return [python, "-c", BOOTSTRAP, *args]

