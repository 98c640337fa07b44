"""What a rehearsal costs (``workers.rehearsal``), side by side in one run: prints figures, asserts nothing.

    .venv/bin/python benchmarks/rehearsal_bench.py [--runs 5] [--big [--mib 1024] [--skip-example]]

Every figure is the median of ``--runs`` runs, the contenders alternated (and which one goes first
rotated from run to run), all in one process against the same server.

The example project (``example/backend``, migrated and seeded with ``seed_demo``), on SQLite and on
PostgreSQL: the plan of ``rollback <env> accounts 0003`` (one step: 0004 unapplied) as a worker
makes it — ``compute_plan`` then ``guarded``, against a warm session — without a rehearsal, and the
same plan followed by ``rehearse()`` (a copy made, the step run on it by a fresh probe process,
the copy dropped). Each run is a Request of its own, created and moved to ``planning`` as the bot
and the worker do. Goal: the rehearsal adds at most 1 s.

``--big``: a database of about ``--mib`` MiB of incompressible rows (``backup_bench.create``, in a
database of its own) on the same server. The rehearsal's added time — ``copies.sweep`` and
``copies.made`` (checks, CREATE DATABASE, the verified backup, its restore, DROP DATABASE) around
the migrations run on the copy — against the bare way of trying them on a copy by hand:
``pg_dump -Fc`` to a file, ``createdb``, ``pg_restore -d`` of that file, and the same migrations.
Also against ``pg_dump -Fc -Z0`` (no compression), since pg_dump's default zlib is what makes the
bare dump slow on incompressible rows. The migrations (raw SQL, each in its own transaction, the
same in every arm): a nullable column, a column with a constant default, and an index on the big
table. Goal: the rehearsal at most 1.5 × the bare way. Where the rehearsal's time goes is measured
around ``workers.backup``'s calls (patched only for the timing; nothing else changes).

PostgreSQL: MIGRABOT_TEST_POSTGRES_URL, else the local server on 5432, else a throwaway cluster
(``tests/services.py``; the data set needs the pgcrypto extension). Every database and file it
makes is dropped or deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from unittest import mock

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# The repository first: tests/ has folders named like its packages (tests/workers…).
sys.path[:0] = [str(REPO), str(HERE)]
sys.path.append(str(REPO / "tests"))  # services.py: how the tests find (or start) PostgreSQL
import psycopg  # noqa: E402
from backup_bench import create, size_mib  # noqa: E402
from services import (  # type: ignore[import-not-found]  # noqa: E402
    create_database,
    database_name,
    drop_database,
    find_or_start_postgres,
)

from migrabot.config import Environment, Policy  # noqa: E402
from workers import backup, backup_streams, copies  # noqa: E402
from workers.backup import Database, pg_environ  # noqa: E402

EXAMPLE_PROJECT = REPO / "example" / "backend"
ROLLBACK = ("accounts", "0003")
BENCH_USER = "U0BENCH"
MIGRATIONS = (
    "ALTER TABLE rows ADD COLUMN note text",
    "ALTER TABLE rows ADD COLUMN checked boolean NOT NULL DEFAULT false",
    "CREATE INDEX rows_id_idx ON rows (id)",
)

Timed = dict[str, float]  # "total" and the parts of it that were measured


def alternated(runs: int, arms: Mapping[str, Callable[[], Timed]]) -> dict[str, list[Timed]]:
    """Each arm ``runs`` times, interleaved; the arm that goes first rotates from run to run."""
    names = list(arms)
    results: dict[str, list[Timed]] = {name: [] for name in names}
    for run in range(runs):
        for name in names[run % len(names):] + names[: run % len(names)]:
            results[name].append(arms[name]())
    return results


def median(results: list[Timed], key: str = "total") -> float:
    return statistics.median(result.get(key, 0.0) for result in results)


# --- the example project ---------------------------------------------------------------------------


def bench_example(admin_url: str, root: Path, runs: int) -> None:
    from django.core.management import call_command

    from workers.session import SESSIONS
    from workers.target import Target

    call_command("migrate", verbosity=0)  # the control plane: a SQLite file in the scratch folder
    project = Path(shutil.copytree(EXAMPLE_PROJECT, root / "backend",
                                   ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3")))
    pg_url: str = create_database(admin_url)
    targets = {"sqlite": f"sqlite:///{root / 'target.sqlite3'}", "postgresql": pg_url}
    print(f"example project: `rollback <env> {' '.join(ROLLBACK)}` planned; medians of {runs} runs, alternated "
          f"(PostgreSQL: {database_name(pg_url)})", flush=True)
    print("  rehearse(): the copy made (PostgreSQL: its dump, verify, restore, and the rest: sweep, checks, "
          "CREATE DATABASE), then the probe told to go (`run`: until it exited, with what of its start the copy "
          "did not hide; `step`: the migration itself)", flush=True)
    print(f"  {'database':<10} | {'plan alone':>10} | {'plan + rehearsal':>16} | {'added':>7} | "
          f"{'rehearse()':>10} {'(copy':>6} {'[dump':>6} {'verify':>6} {'restore':>7} {'rest]':>6} {'run':>5} "
          f"{'step)':>6} | goal",
          flush=True)
    try:
        for vendor, url in targets.items():
            variable = f"REHEARSAL_BENCH_{vendor.upper()}_DATABASE_URL"
            os.environ[variable] = url
            environment = Environment(
                name=f"bench-{vendor}",
                project=project,
                settings="backend.settings",
                backup_dir=root / "backups" / vendor,
                env={"DATABASE_URL": variable},
                rehearsal_env={"EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"},
                policy=Policy(readers=["*"], requesters=["*"], approvers=["*"]),
            )
            target = Target(environment)
            target.manage("migrate", "--noinput")
            target.manage("seed_demo")
            arms = {"plan": partial(planned, environment, rehearsed=False),
                    "rehearsed": partial(planned, environment, rehearsed=True)}
            alternated(1, arms)  # warm up: the environment's warm session started, its catalog read
            results = alternated(runs, arms)
            alone, rehearsed = median(results["plan"]), median(results["rehearsed"])
            print(
                f"  {vendor:<10} | {alone * 1000:7.0f} ms | {rehearsed * 1000:13.0f} ms | "
                f"{rehearsed - alone:5.2f} s | {median(results['rehearsed'], 'rehearse'):8.2f} s "
                f"{median(results['rehearsed'], 'copy'):6.2f} {parts(results['rehearsed'])} "
                f"{median(results['rehearsed'], 'run'):5.2f} "
                f"{median(results['rehearsed'], 'step'):6.2f} | "
                "added <= 1 s",
                flush=True,
            )
    finally:
        SESSIONS.close_all()
        drop_database(admin_url, database_name(pg_url))


def parts(results: list[Timed]) -> str:
    """The medians of a PostgreSQL copy's dump, verify and restore; dashes for a SQLite copy."""
    if "dump" not in results[0]:
        return f"{'-':>6} {'-':>6} {'-':>7} {'-':>6}"
    rest = statistics.median(r["copy"] - r["dump"] - r["verify"] - r["restore"] for r in results)
    return (f"{median(results, 'dump'):6.2f} {median(results, 'verify'):6.2f} {median(results, 'restore'):7.2f} "
            f"{rest:6.2f}")


def planned(environment: Environment, *, rehearsed: bool) -> Timed:
    """A rollback's plan as the worker makes it, for a Request of its own; with its rehearsal or not."""
    from controlplane import services
    from controlplane.models import State
    from workers.guards import guarded
    from workers.job import Job
    from workers.plans import compute_plan
    from workers.rehearsal import rehearse
    from workers.target import Target
    from workers.writes import MIGRATION_TIMEOUT_SECONDS

    request, _ = services.request_create(
        verb="rollback", environment=environment.name, args=list(ROLLBACK), requester=BENCH_USER,
        channel="C0BENCH", trigger_id=None,
    )
    job = Job(request, environment, Target(environment), actor="worker:bench")
    assert job.move(from_states=[State.RECEIVED], to=State.PLANNING)
    started = time.perf_counter()
    plan = guarded(job, compute_plan(job.target, job.request))
    planned_at = time.perf_counter()
    timed: Timed = {}
    if rehearsed:
        with timing_backup_calls() as timed:  # a PostgreSQL copy's backup and restore (a SQLite one has none)
            plan = rehearse(job, plan, MIGRATION_TIMEOUT_SECONDS)
        rehearsal = plan["rehearsal"]
        assert not rehearsal.get("skipped") and len(rehearsal["steps"]) == 1, rehearsal
        timed |= {"rehearse": time.perf_counter() - planned_at, "copy": rehearsal["copy_seconds"],
                  "run": rehearsal["seconds"], "step": sum(step["seconds"] for step in rehearsal["steps"])}
    timed["total"] = time.perf_counter() - started
    job.move(from_states=[State.PLANNING], to=State.CANCELLED)  # (untimed) nothing left open
    return timed


# --- 1 GiB on PostgreSQL -------------------------------------------------------------------------


def bench_big(admin_url: str, root: Path, runs: int, mib: int) -> None:
    started = time.perf_counter()
    url = create(admin_url, "incompressible", mib)
    try:
        real = Database.from_url(url)
        print(f"{size_mib(url):.0f} MiB PostgreSQL database of incompressible rows (built in "
              f"{time.perf_counter() - started:.0f} s); medians of {runs} runs, alternated", flush=True)
        environment = Environment(name="bench-big", project=root, settings="unused", backup_dir=root / "backups")
        arms = {
            "bare": lambda: bare(real, root, ("--format=custom",)),
            "bare -Z0": lambda: bare(real, root, ("--format=custom", "--compress=0")),
            "rehearsal": lambda: rehearsal(real, environment),
        }
        results = alternated(runs, arms)
    finally:
        drop_database(admin_url, database_name(url))
    for name, label in (("bare", "bare, pg_dump -Fc:"), ("bare -Z0", "bare, pg_dump -Fc -Z0:")):
        timed = results[name]
        print(f"  {label:<23} {median(timed):6.1f} s  (dump {median(timed, 'dump'):.1f} + createdb "
              f"{median(timed, 'createdb'):.1f} + pg_restore -d {median(timed, 'restore'):.1f} + migrations "
              f"{median(timed, 'migrations'):.1f}; dump file {median(timed, 'file MiB'):.0f} MiB)", flush=True)
    ours = results["rehearsal"]
    print(f"  {'rehearsal:':<23} {median(ours):6.1f} s  (dump {median(ours, 'dump'):.1f} + verify "
          f"{median(ours, 'verify'):.1f} + restore {median(ours, 'restore'):.1f}, of which its checksum read "
          f"{median(ours, 'checksum'):.1f} + migrations {median(ours, 'migrations'):.1f} + the rest "
          f"{median(ours, 'rest'):.1f}: sweeps, checks, CREATE/DROP DATABASE, deleting the dump; dump file "
          f"{median(ours, 'file MiB'):.0f} MiB)", flush=True)
    print(f"  ratio rehearsal / bare: {median(ours) / median(results['bare']):.2f} against pg_dump -Fc, "
          f"{median(ours) / median(results['bare -Z0']):.2f} against pg_dump -Fc -Z0 (goal <= 1.5)", flush=True)
    print("  (each part is its own median: the parts need not add up to the total's)", flush=True)


def bare(real: Database, root: Path, dump_options: Sequence[str]) -> Timed:
    """The bare way: pg_dump to a file, createdb, pg_restore -d, the migrations (untimed: dropping it all)."""
    environ = pg_environ(real)
    dump = root / "bare.dump"
    name = f"migrabot_bench_bare_{uuid.uuid4().hex[:8]}"
    timed: Timed = {}
    started = time.perf_counter()
    try:
        subprocess.run(["pg_dump", *dump_options, f"--file={dump}"], env=environ, check=True)
        timed["dump"] = time.perf_counter() - started
        subprocess.run(["createdb", name], env=environ, check=True)
        timed["createdb"] = time.perf_counter() - started - timed["dump"]
        subprocess.run(["pg_restore", f"--dbname={name}", str(dump)], env=environ, check=True)
        timed["restore"] = time.perf_counter() - started - timed["dump"] - timed["createdb"]
        timed["migrations"] = migrate(Database("postgresql", name, real.host, real.port, real.user, real.password))
        timed["total"] = time.perf_counter() - started
        timed["file MiB"] = dump.stat().st_size / 2**20
    finally:
        dump.unlink(missing_ok=True)
        subprocess.run(["dropdb", "--if-exists", "--force", name], env=environ, check=True)
    return timed


def rehearsal(real: Database, environment: Environment) -> Timed:
    """What rehearse() does to make a copy and drop it, with the same migrations run on the copy."""
    with timing_backup_calls() as timed:
        started = time.perf_counter()
        copies.sweep(real, environment, environment.backup_dir)
        copy = copies.copy_for(environment, real, 1)
        with copies.made(copy, touched=["rows"], max_bytes=environment.policy.rehearse_max_bytes,
                         dump_folder=environment.backup_dir) as made:
            assert not made.partial
            timed["migrations"] = migrate(made.database)
        timed["total"] = time.perf_counter() - started
    timed["rest"] = timed["total"] - sum(timed[key] for key in ("dump", "verify", "restore", "migrations"))
    return timed


@contextmanager
def timing_backup_calls() -> Iterator[Timed]:
    """The rehearsal's dump, verify and restore times, measured around workers.backup's calls."""
    timed: Timed = {"checksum": 0.0}
    take_backup, restore_backup, sha256_of = backup.take_backup, backup.restore_backup, backup_streams.sha256_of

    def timed_take(*args: Any, **kwargs: Any) -> backup.Backup:
        taken = take_backup(*args, **kwargs)
        timed.update(dump=taken.duration_seconds, verify=taken.verification_seconds)
        timed["file MiB"] = taken.size / 2**20
        return taken

    def timed_restore(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        restore_backup(*args, **kwargs)
        timed["restore"] = time.perf_counter() - started

    def timed_sha256(path: Path) -> str:  # restore_backup's checksum read, before it touches anything
        started = time.perf_counter()
        digest = sha256_of(path)
        timed["checksum"] += time.perf_counter() - started
        return digest

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(copies, "take_backup", timed_take))
        stack.enter_context(mock.patch.object(copies, "restore_backup", timed_restore))
        stack.enter_context(mock.patch.object(backup, "sha256_of", timed_sha256))
        yield timed


def migrate(database: Database) -> float:
    """The migrations, each in a transaction of its own; their seconds."""
    started = time.perf_counter()
    with psycopg.connect(dbname=database.name, host=database.host, port=database.port, user=database.user,
                         password=database.password, autocommit=True) as connection:
        for statement in MIGRATIONS:
            with connection.transaction():
                connection.execute(statement)
    return time.perf_counter() - started


# --- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--big", action="store_true", help="also the 1 GiB PostgreSQL part (minutes)")
    parser.add_argument("--mib", type=int, default=1024, help="the big database's rows, in MiB (default 1024)")
    parser.add_argument("--skip-example", action="store_true", help="not the example project's part")
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="migrabot-rehearsal-bench-"))
    os.environ.setdefault("MIGRABOT_LOG_LEVEL", "ERROR")
    os.environ["MIGRABOT_HOME"] = str(root / "home")
    os.environ["DATABASE_URL"] = f"sqlite:///{root / 'home' / 'controlplane.sqlite3'}"  # the control plane's
    (root / "home").mkdir()
    from migrabot.boot import setup_django

    setup_django()
    try:
        with find_or_start_postgres(root) as admin_url:
            if not options.skip_example:
                bench_example(admin_url, root, options.runs)
            if options.big:
                bench_big(admin_url, root, options.runs, options.mib)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
