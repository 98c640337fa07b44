"""Under load, through Redis and real worker processes (issue 10): prints its figures, asserts nothing.

    .venv/bin/python benchmarks/load_bench.py [--requests 100 --environments 20 --workers 4]

What runs, all in a temporary folder removed at the end (``--keep`` keeps it, logs included):

- a throwaway ``redis-server`` (the broker, and the notifier's wake-ups), the control plane on
  SQLite (the default, as the end-to-end tests run it);
- ``--workers`` processes of ``migrabot worker --env … --env …`` sharing ``--environments``
  environments between them (each worker serves its environments' queues with
  ``--worker-concurrency`` threads, as deployed);
- ``migrabot bot`` under gunicorn (HTTP mode), talking to the local Slack stand-in
  (``slacklocal.SlackWebAPI``, in this process; Slack's rate limits off unless
  ``--slack-rate-limits``);
- one small generated project (``generate_project.py``: 6 apps × 10 migrations) shared by every
  environment, each environment with its own SQLite database: a copy of one migrated database in
  which the even apps are rolled back to 0007 and the odd ones fully applied.

Then ``--requests`` slash commands, signed as Slack signs them, sent at once from one thread each
(a barrier releases them together), round-robin over the environments. On each environment they
cycle through ``showmigrations <env>``, ``plan <env> app… 0007``, ``check <env>``, ``migrate <env>
<even app>`` and ``rollback <env> <odd app> 0007`` — the writes on one environment each on an app
of their own, so every plan stays true whatever order they run in (past 6 writes an environment
they repeat an app, and a later one may rightly find nothing to do or its plan changed). Every
write needs an approval (``approval_for = ["migrate"]``; a rollback always does): its thread waits
for the plan to be posted, then clicks Approve, signed, as an approver other than the requester
(bob through a user group, carol by user id, alternately). Before that, each environment answers
one ``showmigrations`` so its warm session is started (``--cold`` skips it): the figures are
about load, not about twenty interpreters starting on a small machine.

It prints:

- the outcome of every request, by verb (lost: no terminal state — nor awaiting approval before
  the click — within ``--timeout`` seconds), and the acks' HTTP times;
- writes at once on one environment, from the control plane's audit events: the ``running``
  intervals (``request.running`` to the request's end) of one environment's writes, and its lock
  holdings (``lock.acquired`` to ``lock.released``: backup included), must not overlap; runs per
  request (``request.running`` events); ``migration.applied`` / ``migration.unapplied`` events per
  request and migration (each must be 1, and a succeeded write's count its plan's steps); and each
  environment's database at the end against what its succeeded writes say;
- command-to-result p50/p99/max, from the signed slash command to the request's last new message
  in its thread as the stand-in received it (``chat.postMessage`` or a file shared there; updates
  of messages already shown trail at the notifier's ``MIGRABOT_MIN_UPDATE_SECONDS`` pace) — for
  reads to the result, for writes to the plan with its buttons; and for writes approval-click to
  done (the result of the run posted); p99 is nearest-rank, so with fewer than 100 values it is
  the largest;
- where that time goes, from the audit events' times: the ack path, waiting for a worker, the
  worker's own work, the notifier (result recorded → posted), and the stand-in's call rate;
- ERROR / Traceback / WARNING lines in the workers' and the bot's logs.

gunicorn (25.1+) opens a control socket in ``$XDG_RUNTIME_DIR`` or else ``~/.gunicorn``; the bot
started here gets an ``XDG_RUNTIME_DIR`` inside the temporary folder, so nothing lands outside it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
# The repository first: tests/ has folders named like its packages (tests/slacklocal…), which would
# otherwise be imported as namespace packages in their place.
sys.path[:0] = [str(HERE.parent), str(HERE)]
sys.path.append(str(HERE.parent / "tests"))  # services.py: the throwaway Redis
from generate_project import generate  # noqa: E402
from services import RedisServer, free_port  # noqa: E402

APPS, MIGRATIONS, BACK_TO = 6, 10, "0007"
SETTINGS = "generated.settings"
BOT_TOKEN = "xoxb-load-bench-token"
SIGNING_SECRET = "load-bench-signing-secret"
CHANNEL = "C0LOAD"
COMMAND = "/migrate"
PEOPLE = {"U0ALICE": "alice", "U0DAVE": "dave", "U0BOB": "bob", "U0CAROL": "carol"}
REQUESTERS = ("U0ALICE", "U0DAVE")
APPROVERS = ("U0BOB", "U0CAROL")  # bob through the group S0APPROVERS, carol by user id
GROUPS = {"S0APPROVERS": ["U0BOB"]}
ENVIRONMENT = """
[environments.{name}]
project = "{project}"
settings = "{settings}"
backup_dir = "{root}/backups/{name}"
env = {{ DATABASE_URL = "{variable}" }}
[environments.{name}.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["S0APPROVERS", "U0CAROL"]
approval_for = ["migrate"]
"""
KINDS = ("showmigrations", "plan", "check", "write", "write")
WRITE_VERBS = {"migrate", "rollback"}
NEVER = datetime.max.replace(tzinfo=UTC)  # a lock never released


# --- the pieces: project, databases, processes ---------------------------------------------------


def label(app: int) -> str:
    return f"app{app % APPS:03d}"


def starts_applied(app: int) -> int:
    """How many of an app's migrations each environment's database starts with."""
    return int(BACK_TO) if app % 2 == 0 else MIGRATIONS


def prepare_project(root: Path) -> tuple[Path, Path]:
    """The generated project and one database in the starting state, to copy per environment."""
    project = root / "project"
    generate(project, apps=APPS, migrations=MIGRATIONS, data_every=5)
    template = root / "template.sqlite3"
    environ = os.environ | {"DATABASE_URL": f"sqlite:///{template}", "DJANGO_SETTINGS_MODULE": SETTINGS}
    steps = [["migrate", "-v0"]] + [["migrate", label(a), BACK_TO, "-v0"] for a in range(0, APPS, 2)]
    for step in steps:
        subprocess.run([sys.executable, "manage.py", *step], cwd=project, env=environ, check=True)
    return project, template


def env_name(index: int) -> str:
    return f"load{index:02d}"


def env_variable(index: int) -> str:
    return f"LOAD{index:02d}_DATABASE_URL"


def database_of(root: Path, index: int) -> Path:
    return root / "targets" / f"{env_name(index)}.sqlite3"


class Processes:
    """Every process this benchmark starts, each in a process group of its own (its children —
    gunicorn's worker, the probe sessions — with it), stopped together however the run ends."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "wb") as log:  # a file, not a pipe nobody drains
            process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.started.append((name, process))
        return process

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for _, process in self.started:
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _, process in self.started:
            with suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        for _, process in self.started:  # whatever is left of a group (a probe, a stuck worker)
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                process.wait(5)


def wait_for(condition: Any, what: str, timeout: float, process: subprocess.Popen[bytes], log: Any) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start (exit {process.poll()}):\n{log()[-3000:]}")
        time.sleep(0.1)


def start_workers(processes: Processes, names: list[str], count: int, env: dict[str, str], threads: int) -> None:
    shares = [names[k::count] for k in range(count) if names[k::count]]
    for k, share in enumerate(shares):
        argv = [sys.executable, "-m", "migrabot.cli", "worker", "--concurrency", str(threads)]
        argv += [arg for name in share for arg in ("--env", name)]
        processes.start(f"worker{k}", argv, env)
    for k, (_, process) in enumerate(processes.started[-len(shares) :]):
        wait_for(
            lambda k=k: " ready." in processes.log(f"worker{k}"),
            f"worker{k}",
            120,
            process,
            lambda k=k: processes.log(f"worker{k}"),
        )


def start_bot(processes: Processes, env: dict[str, str]) -> str:
    from slacklocal import SignedSender

    port = free_port()
    process = processes.start("bot", [sys.executable, "-m", "migrabot.cli", "bot", "--bind", f"127.0.0.1:{port}"], env)
    url = f"http://127.0.0.1:{port}/slack/events"
    probe = SignedSender(url, SIGNING_SECRET)

    def answers() -> bool:
        try:
            return probe.slash_command(COMMAND, "help", "U0ALICE", CHANNEL).status == 200
        except OSError:
            return False

    wait_for(answers, "the bot", 60, process, lambda: processes.log("bot"))
    return url


# --- the load ---------------------------------------------------------------------------------------


@dataclass
class Job:
    index: int
    env: int
    text: str
    verb: str
    requester: str
    approver: str
    trigger: str = field(default_factory=lambda: f"load.{uuid.uuid4().hex}")
    sent: float = 0.0  # time.time(), the clock the stand-in's call log uses
    acked: float = 0.0
    status: int = 0
    ack: str = ""
    pk: int | None = None
    clicked: float | None = None
    click_status: int = 0
    first_state: str = ""  # once settled before any click (awaiting approval for a write)
    state: str = ""  # at the end
    lost: str = ""  # why, when it never settled
    thread_ts: str = ""

    @property
    def write(self) -> bool:
        return self.verb in WRITE_VERBS


def plan_jobs(requests: int, environments: int) -> list[Job]:
    jobs = []
    for i in range(requests):
        env, position = i % environments, i // environments
        name, kind = env_name(env), KINDS[position % len(KINDS)]
        if kind == "write":
            written = 2 * (position // len(KINDS)) + (position % len(KINDS) - KINDS.index("write"))
            app = written % APPS
            verb = "migrate" if app % 2 == 0 else "rollback"
            text = f"migrate {name} {label(app)}" if verb == "migrate" else f"rollback {name} {label(app)} {BACK_TO}"
        else:
            verb = kind
            text = {
                "showmigrations": f"showmigrations {name}",
                "plan": f"plan {name} {label(1)} {BACK_TO}",
                "check": f"check {name}",
            }[kind]
        jobs.append(Job(i, env, text, verb, REQUESTERS[i % 2], APPROVERS[(i // 2) % 2]))
    return jobs


class Watcher(threading.Thread):
    """One thread polling the control plane for every request a driver waits on (two queries every
    ``POLL`` seconds, whatever the number of requests): settled in a wanted state, and every post
    of its thread shown (a ts from the stand-in) — then that driver is woken."""

    POLL = 0.05

    def __init__(self) -> None:
        super().__init__(name="watcher", daemon=True)
        self._waiting: dict[int, tuple[frozenset[str], threading.Event]] = {}
        self._lock = threading.Lock()
        self.stopped = threading.Event()

    def wait(self, pk: int, states: frozenset[str], timeout: float) -> bool:
        event = threading.Event()
        with self._lock:
            self._waiting[pk] = (states, event)
        try:
            return event.wait(timeout)
        finally:
            with self._lock:
                self._waiting.pop(pk, None)

    def run(self) -> None:
        from django.db import close_old_connections

        from controlplane.models import Post, Request, State

        while not self.stopped.wait(self.POLL):
            with self._lock:
                waiting = dict(self._waiting)
            if not waiting:
                continue
            try:
                rows = Request.objects.filter(pk__in=list(waiting)).values_list("pk", "state", "plan_ts")
                unshown = set(
                    Post.objects.filter(request_id__in=list(waiting), ts="").values_list("request_id", flat=True)
                )
                for pk, state, plan_ts in rows:
                    states, event = waiting[pk]
                    if state in states and pk not in unshown and (state != State.AWAITING_APPROVAL or plan_ts):
                        event.set()
            except Exception as error:  # noqa: BLE001 - SQLite busy under load: look again next time
                print(f"  (watcher: {error!r})", flush=True)
            finally:
                close_old_connections()


def send_command(sender: Any, api: Any, job: Job) -> Any:
    """A slash command as Slack posts it (SignedSender's fields and signature), with a trigger_id
    of our own: it is how the request row is found again among a hundred sent at once."""
    form = {
        "token": sender.verification_token,
        "team_id": sender.team_id,
        "team_domain": sender.team_domain,
        "channel_id": CHANNEL,
        "channel_name": "migrations",
        "user_id": job.requester,
        "user_name": PEOPLE[job.requester],
        "command": COMMAND,
        "text": job.text,
        "api_app_id": sender.api_app_id,
        "is_enterprise_install": "false",
        "response_url": api.methods.issue_response_url(job.requester, CHANNEL),
        "trigger_id": job.trigger,
    }
    return sender.post(urlencode(form))


def drive(job: Job, sender: Any, api: Any, watcher: Watcher, start: threading.Barrier | None, timeout: float) -> None:
    """One person's request from the command to its end, clicking Approve on a write's plan."""
    from django.db import connections

    from controlplane.models import TERMINAL_STATES, Request, State

    settled = frozenset(TERMINAL_STATES | {State.AWAITING_APPROVAL})
    try:
        if start is not None:
            start.wait()
        job.sent = time.time()
        reply = send_command(sender, api, job)
        job.acked, job.status = time.time(), reply.status
        job.ack = reply.body.get("text", "") if isinstance(reply.body, dict) else str(reply.body)
        request = Request.objects.filter(trigger_id=job.trigger).first()
        if request is None:
            job.lost = f"no request recorded (HTTP {reply.status}: {job.ack[:120]!r})"
            return
        job.pk = request.pk
        if not watcher.wait(request.pk, frozenset(TERMINAL_STATES) if not job.write else settled, timeout):
            job.lost = "never settled"
        request = Request.objects.get(pk=request.pk)
        job.first_state = job.state = request.state
        job.thread_ts = request.thread_ts
        if job.lost or not job.write or request.state != State.AWAITING_APPROVAL:
            return
        value = json.dumps({"request": request.pk, "digest": request.plan_digest})
        job.clicked = time.time()
        job.click_status = sender.click("approve", value, job.approver, CHANNEL, request.plan_ts).status
        if not watcher.wait(request.pk, frozenset(TERMINAL_STATES), timeout):
            job.lost = "never finished after the approval"
        job.state = Request.objects.get(pk=request.pk).state
    except Exception as error:  # noqa: BLE001 - reported with the figures, never hidden
        job.lost = job.lost or f"driver failed: {error!r}"
    finally:
        connections.close_all()


def run_all(jobs: list[Job], sender: Any, api: Any, watcher: Watcher, timeout: float, together: bool) -> float:
    start = threading.Barrier(len(jobs)) if together else None
    threads = [
        threading.Thread(target=drive, args=(job, sender, api, watcher, start, timeout), daemon=True) for job in jobs
    ]
    began = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)  # in steps: Ctrl-C reaches the main thread
    return time.time() - began


# --- the figures ------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def spread(label_: str, seconds: list[float]) -> None:
    if not seconds:
        print(f"  {label_:<50} (none)")
        return
    ms = [s * 1000 for s in seconds]
    print(
        f"  {label_:<50} n={len(ms):3d}  p50 {percentile(ms, 0.5):7.0f} ms  p99 {percentile(ms, 0.99):7.0f} ms"
        f"  max {max(ms):7.0f} ms  mean {statistics.fmean(ms):7.0f} ms",
        flush=True,
    )


def new_messages(api: Any) -> dict[str, list[float]]:
    """When the stand-in received each new message of each thread (the card, replies, files)."""
    by_thread: dict[str, list[float]] = defaultdict(list)
    for call in api.calls:
        if call.status != 200 or not call.answer.get("ok"):
            continue
        if call.method == "chat.postMessage":
            by_thread[str(call.params.get("thread_ts") or call.answer.get("ts"))].append(call.at)
        elif call.method == "files.completeUploadExternal" and call.params.get("thread_ts"):
            by_thread[str(call.params["thread_ts"])].append(call.at)
    return by_thread


def report_outcomes(jobs: list[Job], elapsed: float) -> None:
    print(f"\noutcomes ({len(jobs)} requests sent at once, all settled or given up after {elapsed:.1f} s):")
    by_verb: dict[str, Counter[str]] = defaultdict(Counter)
    for job in jobs:
        path = job.state if not job.write or job.first_state == job.state else f"{job.first_state} → {job.state}"
        by_verb[job.verb]["LOST: " + job.lost if job.lost else path] += 1
    for verb, outcomes in sorted(by_verb.items()):
        print(f"  {verb:<15} " + ", ".join(f"{state} {n}" for state, n in outcomes.most_common()))
    expected = sum(
        (not job.lost) and (job.state == "succeeded") and (not job.write or job.first_state == "awaiting_approval")
        for job in jobs
    )
    lost = [job for job in jobs if job.lost]
    print(f"  as expected (reads succeeded; writes awaited approval, then succeeded): {expected}/{len(jobs)}")
    print(f"  lost (no terminal state, or no plan awaiting approval before the click): {len(lost)}")
    for job in lost[:10]:
        print(f"    #{job.pk} {job.text!r}: {job.lost}")
    from controlplane.models import Request

    unsucceeded = [job.pk for job in jobs if job.pk is not None and not job.lost and job.state != "succeeded"]
    reasons = Counter(
        f"{verb} {state}: " + re.sub(r"#\d+|load\d+|app\d+|\d{4}-\d\d-\d\d \d\d:\d\d", "…", error)[:150]
        for verb, state, error in Request.objects.filter(pk__in=unsucceeded).values_list("verb", "state", "error")
    )
    for reason, n in reasons.most_common():
        print(f"    {n} × {reason}")
    http = Counter(job.status for job in jobs)
    clicks = Counter(job.click_status for job in jobs if job.clicked is not None)
    print(f"  slash commands answered: {dict(http)}; approval clicks answered: {dict(clicks)}")
    spread("ack (signed command to HTTP answer)", [job.acked - job.sent for job in jobs if job.status])
    print(f"  acks over Slack's 3 s: {sum(job.acked - job.sent > 3 for job in jobs if job.status)}")


def overlaps(intervals: list[tuple[datetime, datetime, int]]) -> list[tuple[int, int]]:
    ordered = sorted(intervals)
    found = []
    for (_, end, pk), (start, _, other) in zip(ordered, ordered[1:], strict=False):
        if start < end:
            found.append((pk, other))
    return found


def report_writes(jobs: list[Job], root: Path) -> None:
    from controlplane.models import TERMINAL_STATES, AuditEvent, Request

    writes = {job.pk: job for job in jobs if job.write and job.pk is not None}
    ends = {f"request.{state}" for state in TERMINAL_STATES}
    events = list(
        AuditEvent.objects.filter(request_id__in=list(writes))
        .order_by("id")
        .values_list("request_id", "action", "created_at", "detail")
    )
    running: dict[int, list[datetime]] = defaultdict(list)
    ended: dict[int, datetime] = {}
    acquired: dict[int, datetime] = {}
    released: dict[int, datetime] = {}
    migrations: Counter[tuple[int, str, str]] = Counter()
    for pk, action, at, detail in events:
        if action == "request.running":
            running[pk].append(at)
        elif action in ends:
            ended.setdefault(pk, at)
        elif action == "lock.acquired":
            acquired.setdefault(pk, at)
        elif action == "lock.released":
            released.setdefault(pk, at)
        elif action in ("migration.applied", "migration.unapplied"):
            migrations[(pk, action, detail.get("migration", "?"))] += 1
    per_env_running: dict[int, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    per_env_locked: dict[int, list[tuple[datetime, datetime, int]]] = defaultdict(list)
    unfinished = 0
    for pk, job in writes.items():
        if running[pk]:
            if pk in ended:
                per_env_running[job.env].append((running[pk][0], ended[pk], pk))
            else:
                unfinished += 1
        if pk in acquired:
            per_env_locked[job.env].append((acquired[pk], released.get(pk, NEVER), pk))
    run_overlaps = [pair for intervals in per_env_running.values() for pair in overlaps(intervals)]
    lock_overlaps = [pair for intervals in per_env_locked.values() for pair in overlaps(intervals)]
    print(f"\nwrites at once on one environment ({len(writes)} writes, from the audit events):")
    print(
        f"  running intervals (request.running → its end) overlapping on one environment: {len(run_overlaps)}"
        + (f" {run_overlaps[:10]}" if run_overlaps else "")
    )
    print(
        f"  lock holdings (lock.acquired → lock.released) overlapping on one environment: {len(lock_overlaps)}"
        + (f" {lock_overlaps[:10]}" if lock_overlaps else "")
    )
    print(
        f"  writes that ran, with no end recorded: {unfinished}; locks never released: "
        f"{sum(pk not in released for pk in acquired)}"
    )
    most_on_one_env = max((len(v) for v in per_env_running.values()), default=0)
    print(
        f"  writes that ran: {sum(len(v) for v in per_env_running.values())} "
        f"(at most {most_on_one_env} on one environment)"
    )
    twice = [key for key, n in migrations.items() if n > 1]
    print(f"  started running more than once: {sum(len(v) > 1 for v in running.values())} requests")
    print(
        f"  migration.applied/unapplied events: {sum(migrations.values())}; "
        f"the same migration twice in one request: {len(twice)}" + (f" {twice[:10]}" if twice else "")
    )
    per_request = Counter(pk for pk, _, _ in migrations.elements())
    mismatched = []
    for request in Request.objects.filter(pk__in=list(writes), state="succeeded"):
        steps = len((request.plan or {}).get("steps", []))
        if per_request.get(request.pk, 0) != steps:
            mismatched.append((request.pk, steps, per_request.get(request.pk, 0)))
    print(
        f"  succeeded writes whose migration events differ from their plan's steps: {len(mismatched)}"
        + (f" (request, steps, events) {mismatched[:10]}" if mismatched else "")
    )
    by_env_migration = Counter((writes[pk].env, action, name) for pk, action, name in migrations)
    print(
        f"  one migration applied (or unapplied) by two requests on one environment: "
        f"{sum(n > 1 for n in by_env_migration.values())}"
    )
    report_databases(jobs, root, running)


def report_databases(jobs: list[Job], root: Path, running: dict[int, list[datetime]]) -> None:
    """Each environment's database against its starting state and the writes that succeeded."""
    environments = sorted({job.env for job in jobs})
    wrong = []
    for env in environments:
        expected = {label(a): starts_applied(a) for a in range(APPS)}
        done = [job for job in jobs if job.env == env and job.write and job.state == "succeeded" and job.pk]
        for job in sorted(done, key=lambda job: running[job.pk][0] if running.get(job.pk) else NEVER):
            app = job.text.split()[2]
            expected[app] = MIGRATIONS if job.verb == "migrate" else int(BACK_TO)
        with sqlite3.connect(database_of(root, env)) as connection:
            rows = connection.execute("SELECT app, count(*) FROM django_migrations WHERE app LIKE 'app%' GROUP BY app")
            actual = {label(a): 0 for a in range(APPS)} | dict(rows.fetchall())
        if actual != expected:
            wrong.append((env_name(env), actual, expected))
    print(
        f"  databases as their succeeded writes say (migrations applied per app): "
        f"{len(environments) - len(wrong)}/{len(environments)}"
    )
    for name, actual, expected in wrong[:5]:
        print(f"    {name}: {actual} expected {expected}")


def report_latency(jobs: list[Job], api: Any) -> None:
    threads = new_messages(api)
    reads: dict[str, list[float]] = defaultdict(list)
    to_plan, click_to_done, to_done, click_to_other = [], [], [], []
    missing = 0
    for job in jobs:
        times = sorted(threads.get(job.thread_ts, [])) if job.thread_ts else []
        if job.lost or not times:
            missing += not job.lost
            continue
        if not job.write:
            if job.state == "succeeded":
                reads[job.verb].append(times[-1] - job.sent)
            continue
        if job.clicked is None:
            continue
        before = [t for t in times if t < job.clicked]
        after = [t for t in times if t >= job.clicked]
        if before:
            to_plan.append(before[-1] - job.sent)
        if after and job.state == "succeeded":
            click_to_done.append(after[-1] - job.clicked)
            to_done.append(after[-1] - job.sent)
        elif after:
            click_to_other.append(after[-1] - job.clicked)
    print("\ncommand to result (signed slash command → the thread's last new message, as the stand-in got it):")
    spread("reads, all", [s for values in reads.values() for s in values])
    for verb, values in sorted(reads.items()):
        spread(f"  {verb}", values)
    spread("writes, command → plan with buttons posted (all)", to_plan)
    spread("writes, approval click → done (succeeded)", click_to_done)
    spread("writes, command → done (the click included)", to_done)
    if click_to_other:
        spread("writes not succeeded, click → their end posted", click_to_other)
    if missing:
        print(f"  ({missing} settled requests with no message in their thread: not timed)")


def report_phases(jobs: list[Job], api: Any) -> None:
    """Where the command-to-result time goes, from the audit events' times (the workers' and the
    bot's clocks: one machine) and the stand-in's: waiting for a worker, the worker, the notifier."""
    from controlplane.models import AuditEvent

    first: dict[tuple[int, str], float] = {}
    pks = [job.pk for job in jobs if job.pk is not None]
    for pk, action, at in (
        AuditEvent.objects.filter(request_id__in=pks).order_by("id").values_list("request_id", "action", "created_at")
    ):
        first.setdefault((pk, action), at.timestamp())
    threads = new_messages(api)
    phases: dict[str, list[float]] = defaultdict(list)

    def phase(name: str, start: float | None, end: float | None) -> None:
        if start is not None and end is not None:
            phases[name].append(end - start)

    for job in jobs:
        if job.pk is None or job.lost or job.state != "succeeded":
            continue
        at = {
            action: first.get((job.pk, action))
            for action in (
                "request.created",
                "request.running",
                "request.planning",
                "request.awaiting_approval",
                "request.approved",
                "request.backing_up",
                "request.succeeded",
            )
        }
        times = sorted(threads.get(job.thread_ts, []))
        if not job.write:
            phase("reads: command → recorded (ack path)", job.sent, at["request.created"])
            phase("reads: recorded → a worker claims it", at["request.created"], at["request.running"])
            phase("reads: claimed → result recorded (worker)", at["request.running"], at["request.succeeded"])
            phase("reads: result recorded → posted (notifier)", at["request.succeeded"], times[-1] if times else None)
            continue
        clicked = job.clicked or 0.0
        before = [t for t in times if t < clicked]
        phase("writes: command → recorded (ack path)", job.sent, at["request.created"])
        phase("writes: recorded → a worker claims it", at["request.created"], at["request.planning"])
        phase("writes: planning (worker)", at["request.planning"], at["request.awaiting_approval"])
        phase(
            "writes: plan recorded → posted (notifier)", at["request.awaiting_approval"], before[-1] if before else None
        )
        phase("writes: click → approved (bot)", job.clicked, at["request.approved"])
        phase("writes: approved → a worker claims it", at["request.approved"], at["request.backing_up"])
        phase("writes: lock, re-plan, backup", at["request.backing_up"], at["request.running"])
        phase("writes: the migrations (running → succeeded)", at["request.running"], at["request.succeeded"])
        phase("writes: result recorded → posted (notifier)", at["request.succeeded"], times[-1] if times else None)
    print("\nwhere the time goes (succeeded requests):")
    for name, values in phases.items():
        spread(name, values)
    calls = [call.at for call in api.calls if call.at >= min(job.sent for job in jobs)]
    if len(calls) > 1:
        print(
            f"  the notifier's Slack calls during the load: {len(calls)} in {calls[-1] - calls[0]:.1f} s "
            f"({len(calls) / (calls[-1] - calls[0]):.1f}/s; MIGRABOT_NOTIFIER_THREADS requests side by side)"
        )


def report_logs(processes: Processes) -> None:
    print("\nlogs:")
    for name, _ in processes.started:
        text = processes.log(name)
        errors = [line for line in text.splitlines() if re.search(r"\b(ERROR|CRITICAL)\b|Traceback", line)]
        warnings = [line for line in text.splitlines() if re.search(r"\bWARNING\b", line)]
        print(f"  {name}: {len(text.splitlines())} lines, {len(errors)} ERROR/Traceback, {len(warnings)} WARNING")
        for line in list(dict.fromkeys(line[:240] for line in errors))[:5]:
            print(f"    {line}")
        for line in list(dict.fromkeys(re.sub(r"^\S+ \S+ ", "", line)[:200] for line in warnings))[:3]:
            print(f"    {line}")


# --- the run ----------------------------------------------------------------------------------------


@contextmanager
def stopped_cleanly() -> Iterator[None]:
    """SIGTERM and SIGHUP end the run as Ctrl-C does: through every ``finally`` below."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--environments", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="worker processes sharing the environments")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="threads per worker (migrabot's default)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a request may take to settle")
    parser.add_argument("--cold", action="store_true", help="no warm-up: the load starts every probe session")
    parser.add_argument("--slack-rate-limits", action="store_true", help="the stand-in enforces Slack's rates")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, databases)")
    options = parser.parse_args()
    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="migrabot-load-"))
    for folder in ("logs", "targets", "backups"):
        (root / folder).mkdir()
    processes = Processes(root / "logs")
    redis: RedisServer | None = None
    try:
        with stopped_cleanly():
            redis = RedisServer()
            bench(options, root, processes, redis.url, began)
    except KeyboardInterrupt as interrupted:
        print(f"\ninterrupted ({interrupted or 'Ctrl-C'}): stopping everything", flush=True)
    finally:
        processes.stop_all()
        if redis is not None:
            redis.close()
        if options.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        print(f"total {time.monotonic() - began:.0f} s", flush=True)


def bench(options: argparse.Namespace, root: Path, processes: Processes, redis_url: str, began: float) -> None:
    names = [env_name(i) for i in range(options.environments)]
    os.environ.update(
        MIGRABOT_HOME=str(root),
        DATABASE_URL=f"sqlite:///{root / 'controlplane.sqlite3'}",
        MIGRABOT_BROKER_URL=redis_url,
        MIGRABOT_LOG_LEVEL=os.environ.get("MIGRABOT_LOG_LEVEL", "WARNING"),
    )
    project, template = prepare_project(root)
    targets = {env_variable(i): f"sqlite:///{database_of(root, i)}" for i in range(options.environments)}
    for i in range(options.environments):
        shutil.copyfile(template, database_of(root, i))
    config = root / "migrabot.toml"
    config.write_text(
        f'slash_command = "{COMMAND}"\n'
        + "".join(
            ENVIRONMENT.format(name=name, project=project, settings=SETTINGS, root=root, variable=env_variable(i))
            for i, name in enumerate(names)
        )
    )
    os.environ["MIGRABOT_CONFIG"] = str(config)

    from migrabot.boot import setup_django

    setup_django()
    from django.core.management import call_command

    from slacklocal import SignedSender, SlackWebAPI

    call_command("migrate", verbosity=0)
    users = {user: {"name": name, "real_name": name.title()} for user, name in PEOPLE.items()}
    with SlackWebAPI(BOT_TOKEN, users=users, usergroups=GROUPS, rate_limits=options.slack_rate_limits) as api:
        base = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")} | {"MIGRABOT_LOG_LEVEL": "INFO"}
        # Workers get no Slack token nor address, the bot no target database: as deployed.
        start_workers(processes, names, options.workers, base | targets, options.worker_concurrency)
        # gunicorn (25.1+) opens a control socket in $XDG_RUNTIME_DIR, else in ~/.gunicorn: keep it here.
        (root / "run").mkdir(mode=0o700)
        url = start_bot(
            processes,
            base
            | {
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": api.base_url,
                "XDG_RUNTIME_DIR": str(root / "run"),
            },
        )
        sender = SignedSender(url, SIGNING_SECRET, store=api.store, user_names=PEOPLE, api=api, timeout=30)
        watcher = Watcher()
        watcher.start()
        shares = min(options.workers, options.environments)
        print(
            f"{options.requests} requests over {options.environments} environments; {shares} worker processes "
            f"× {options.worker_concurrency} threads; bot under gunicorn; redis {redis_url}; control plane SQLite; "
            f"Slack rate limits {'on' if options.slack_rate_limits else 'off'}; "
            f"set up in {time.monotonic() - began:.0f} s",
            flush=True,
        )
        try:
            if not options.cold:
                warm = [
                    Job(-1, i, f"showmigrations {name}", "showmigrations", "U0ALICE", "U0BOB")
                    for i, name in enumerate(names)
                ]
                seconds = run_all(warm, sender, api, watcher, options.timeout, together=False)
                print(
                    f"warm-up: one showmigrations per environment, {seconds:.1f} s, "
                    f"{sum(job.state == 'succeeded' for job in warm)}/{len(warm)} succeeded",
                    flush=True,
                )
            jobs = plan_jobs(options.requests, options.environments)
            elapsed = run_all(jobs, sender, api, watcher, options.timeout, together=True)
        finally:
            watcher.stopped.set()
        report_outcomes(jobs, elapsed)
        report_writes(jobs, root)
        report_latency(jobs, api)
        report_phases(jobs, api)
        print(
            f"\nthroughput: {len(jobs) / elapsed:.2f} requests/s to their end (the clicks included); "
            f"stand-in calls: {dict(Counter(call.method for call in api.calls).most_common(8))}"
        )
        report_logs(processes)


if __name__ == "__main__":
    main()
