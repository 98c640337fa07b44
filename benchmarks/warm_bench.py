"""The bot against ``manage.py``, side by side in one run, on generated projects (issue 10).

    .venv/bin/python benchmarks/warm_bench.py [--sizes 30,250,5000] [--runs 5] [--keep DIR]

For each project size (``generate_project.py``: cross-app dependencies, a data migration every
fifth, apps of 50 migrations where the size allows) it prints the medians of ``--runs`` runs,
ours and the reference alternated:

- ``showmigrations`` and a ``plan`` of a 3-step rollback, from the signed slash command over HTTP
  to the result posted in the thread by the local Slack stand-in, against ``manage.py
  showmigrations --list`` / ``migrate --plan`` on the same project and database: warm (nothing
  changed), cold after a deploy (a migration file's content changed before each request), cold
  after start (the worker's session closed before each request);
- on the 250-migration project, a rollback of 3 migrations from the approval click to the result
  posted, against a plain ``manage.py migrate`` of the same rollback plus the backup alone;
- the warm session's resident memory.

Timed to the last *new* message in the thread (the stand-in's last chat.postMessage): updates of
messages already shown — the card's state, a run's progress — come at most every
MIGRABOT_MIN_UPDATE_SECONDS (2 s) per message, a Slack rate-limit courtesy, and may trail it.
Redis is used when ``redis-server`` is on PATH (a throwaway one), else the in-memory broker.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_project import generate  # noqa: E402

SETTINGS = "generated.settings"
SHAPES = {30: (3, 10), 250: (5, 50), 5000: (100, 50)}  # size -> (apps, migrations per app)
CONFIG = """slash_command = "/migrate"

[environments.{name}]
project = "{project}"
settings = "generated.settings"
backup_dir = "{backups}"
env = {{ DATABASE_URL = "{variable}" }}

[environments.{name}.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["*"]
approvals = 1
"""


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


@contextmanager
def broker() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield "memory"
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from services import RedisServer

    server = RedisServer()
    server.start()
    os.environ["MIGRABOT_BROKER_URL"] = server.url
    try:
        yield f"redis ({server.url})"
    finally:
        server.close()


def prepare(size: int, root: Path) -> Path:
    apps, migrations = SHAPES[size]
    project = root / f"project{size}"
    database = project / "db.sqlite3"
    if not database.exists():
        generate(project, apps=apps, migrations=migrations, data_every=5)
        started = time.perf_counter()
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=project, check=True,
                       env=os.environ | {"DATABASE_URL": f"sqlite:///{database}", "DJANGO_SETTINGS_MODULE": SETTINGS})
        print(f"  ({size}: generated and migrated in {time.perf_counter() - started:.0f} s)", flush=True)
    return project


def manage(project: Path, *args: str) -> Callable[[], float]:
    environ = os.environ | {"DATABASE_URL": f"sqlite:///{project / 'db.sqlite3'}", "DJANGO_SETTINGS_MODULE": SETTINGS}

    def run() -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "manage.py", *args], cwd=project, env=environ, check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - started

    return run


def answered(local: Any, text: str, user: str = "U0ALICE") -> float:
    """Seconds from the signed slash command to the request's result posted in its thread."""
    from controlplane.models import TERMINAL_STATES, Request, State

    chat = local.chat
    newest = Request.objects.order_by("-id").values_list("id", flat=True).first() or 0
    started = time.perf_counter()
    reply = chat.sender.slash_command(chat.command, text, user, chat.channel)
    assert reply.status == 200 and Request.objects.filter(id__gt=newest).exists(), reply.body
    request = posted(lambda: Request.objects.filter(id__gt=newest).order_by("id").first(),
                     TERMINAL_STATES | {State.AWAITING_APPROVAL})
    assert request.state != State.FAILED, request.error
    return time.perf_counter() - started


def rolled_back(local: Any, text: str) -> float:
    """Seconds from the approval click to the rollback's result posted."""
    import json

    from controlplane.models import TERMINAL_STATES, Request, State

    answered(local, text)
    request = Request.objects.order_by("-id").first()
    assert request is not None and request.state == State.AWAITING_APPROVAL, request and request.state
    chat = local.chat
    value = json.dumps({"request": request.pk, "digest": request.plan_digest})
    started = time.perf_counter()
    assert chat.sender.click("approve", value, "U0BOB", chat.channel, request.plan_ts).status == 200
    request = posted(lambda: Request.objects.get(pk=request.pk), TERMINAL_STATES)
    assert request.state == State.SUCCEEDED, request.error
    return time.perf_counter() - started


def posted(find: Callable[[], Any], states: Any) -> Any:
    """The request ``find`` returns once it is in one of ``states`` and every message of its
    thread has been posted (updates to messages already shown — the card, a run's progress —
    follow at the notifier's pace), polled every 2 ms."""
    from controlplane.models import Post

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        request = find()
        pending = Post.objects.filter(request=request, ts="")
        if request is not None and request.state in states and not pending.exists():
            return request
        time.sleep(0.002)
    raise TimeoutError(f"not posted: {request and (request.state, request.error)}")


def side_by_side(runs: int, ours: Callable[[], float], reference: Callable[[], float]) -> tuple[float, float]:
    mine, theirs = [], []
    for _ in range(runs):
        theirs.append(reference())
        mine.append(ours())
    return median_ms(mine), median_ms(theirs)


def report(what: str, mine: float, theirs: float, reference: str, goal: str) -> None:
    print(f"  {what:<34} ours {mine:7.0f} ms | {reference} {theirs:7.0f} ms | ratio {mine / theirs:5.2f} ({goal})",
          flush=True)


def bench_size(size: int, root: Path, runs: int) -> None:
    from migrabot.config import load_config
    from migrabot.local import local_stack
    from workers import runtime
    from workers.session import SESSIONS

    project = prepare(size, root)
    apps, migrations = SHAPES[size]
    last_app = f"app{apps - 1:03d}"
    back_to = f"{migrations - 3:04d}"
    # A name (and so a queue) per size: local mode's worker threads live as long as the process.
    name, variable = f"bench{size}", f"BENCH{size}_DATABASE_URL"
    folder = Path(tempfile.mkdtemp(prefix=f"migrabot-bench-{size}-"))
    (folder / "migrabot.toml").write_text(
        CONFIG.format(name=name, project=project, backups=folder / "backups", variable=variable)
    )
    (folder / f"{name}.prepared").touch()  # the database is ready: local mode leaves it as it is
    os.environ[variable] = f"sqlite:///{project / 'db.sqlite3'}"
    os.environ["MIGRABOT_CONFIG"] = str(folder / "migrabot.toml")  # what the worker reads
    runtime.config.cache_clear()
    config = load_config(folder / "migrabot.toml")
    deployed = project / last_app / "migrations" / "0002_column.py"
    original = deployed.read_text()
    print(f"{size} migrations ({apps} apps × {migrations}):", flush=True)
    with local_stack(folder, config) as local:
        for verb, text, reference in (
            ("showmigrations", f"showmigrations {name}", ("showmigrations", "--list")),
            ("plan", f"plan {name} {last_app} {back_to}", ("migrate", "--plan", last_app, back_to)),
        ):
            answered(local, text)  # warm it up
            mine, theirs = side_by_side(runs, lambda text=text: answered(local, text), manage(project, *reference))
            report(f"{verb}, warm", mine, theirs, "manage.py", "goal <= 0.3 at 250 and 5,000")

            def after_deploy(text: str = text) -> float:
                deployed.write_text(deployed.read_text() + "# deployed\n")
                return answered(local, text)

            mine, theirs = side_by_side(runs, after_deploy, manage(project, *reference))
            report(f"{verb}, cold after a deploy", mine, theirs, "manage.py", "goal <= 1.2")

            def after_start(text: str = text) -> float:
                SESSIONS.close_all()
                return answered(local, text)

            mine, theirs = side_by_side(runs, after_start, manage(project, *reference))
            report(f"{verb}, cold after start", mine, theirs, "manage.py", "goal <= 1.2")
        deployed.write_text(original)
        answered(local, f"showmigrations {name}")
        bench_fresh_process(config.environments[name], runs)
        if size == 250:
            bench_rollback(local, project, config.environments[name], runs, last_app, back_to)
        print(f"  warm session's memory: {(SESSIONS.memory_kib(name) or 0) / 1024:.0f} MiB", flush=True)
    SESSIONS.close_all()
    shutil.rmtree(folder, ignore_errors=True)


def bench_fresh_process(environment: Any, runs: int) -> None:
    """What running a migration in a fresh probe process costs over the warm session: the
    measurement behind running migrations in a process of their own (manage.py pays it too)."""
    from migrabot_probe.protocol import command_line
    from workers.target import Target

    target = Target(environment)

    def fresh() -> float:
        started = time.perf_counter()
        subprocess.run(command_line(environment.python, "catalog"), cwd=environment.project, env=target.environ(),
                       check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - started

    def warm() -> float:
        started = time.perf_counter()
        target.probe("catalog")
        return time.perf_counter() - started

    mine, theirs = side_by_side(runs, warm, fresh)
    print(f"  a fresh probe process (django.setup, every migration imported): {theirs:.0f} ms; "
          f"the same call to the warm session: {mine:.0f} ms", flush=True)


def bench_rollback(local: Any, project: Path, environment: Any, runs: int, app: str, back_to: str) -> None:
    from workers.backup import Database, take_backup
    from workers.target import Target

    forward = manage(project, "migrate", app)
    backward = manage(project, "migrate", app, back_to)
    backups = Path(tempfile.mkdtemp(prefix="migrabot-bench-backups-"))

    def reference() -> float:
        started = time.perf_counter()
        take_backup(Database(**Target(environment).probe("connection")), backups, label="bench")
        seconds = time.perf_counter() - started + backward()
        forward()
        return seconds

    def ours() -> float:
        seconds = rolled_back(local, f"rollback {environment.name} {app} {back_to}")
        forward()
        return seconds

    mine, theirs = side_by_side(runs, ours, reference)
    report("rollback of 3, click to done", mine, theirs, "manage.py + backup", "goal <= 1.3")
    shutil.rmtree(backups, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="30,250,5000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="where generated projects are kept between runs")
    options = parser.parse_args()
    root = options.keep or Path(tempfile.mkdtemp(prefix="migrabot-bench-projects-"))
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MIGRABOT_LOG_LEVEL", "ERROR")
    # One control plane for the whole run: each size's stack (and its worker threads, which live
    # as long as the process) uses the same one.
    home = Path(tempfile.mkdtemp(prefix="migrabot-bench-home-"))
    os.environ.setdefault("MIGRABOT_HOME", str(home))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{home / 'controlplane.sqlite3'}")
    with broker() as used:
        print(f"broker: {used}; medians of {options.runs} runs, ours and the reference alternated", flush=True)
        for size in (int(size) for size in options.sizes.split(",")):
            bench_size(size, root, options.runs)


if __name__ == "__main__":
    main()
