"""Benchmark of the bot's ack path; prints its figures (run: .venv/bin/python benchmarks/ack_bench.py).

1. In process: signed slash commands dispatched straight into the Bolt app (signature, parse,
   resolve, authorize, the request row committed, the follow-up queued, ack), after a warm-up.
   The follow-up's enqueue goes nowhere, as in read_path.py. Goal: p99 <= 5 ms.
2. Over HTTP: the bot as ``migrabot bot`` runs it (gunicorn as ``bot.server.serve_with_gunicorn``
   sets it up, its notifier and chores running, Slack's rate limits on the stand-in it posts to)
   against a bare Bolt app that only acks ``/migrate``, served by the same function with the same
   settings. Each is loaded by concurrent keep-alive clients sending commands signed as Slack signs
   them; rounds alternate the two, and each figure is a median over the rounds. Goal: the bot
   serves >= 0.8 times the bare app's requests per second. Its requests are really enqueued: to
   Redis at MIGRABOT_BROKER_URL when that is set (on a queue of their own, deleted at the end),
   else to the local mode's in-memory broker.

The control plane is SQLite in a temporary MIGRABOT_HOME; when DATABASE_URL is set, the same
again on that PostgreSQL database (an empty one: the benchmark creates its tables there).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from read_path import ack_path, percentile

from migrabot.config import config_path, load_config
from migrabot.local import BOT_TOKEN, SIGNING_SECRET

REPO = Path(__file__).resolve().parents[1]
CHANNEL = "C0BENCH"
TEXT = "showmigrations dev accounts"  # a read: resolved against the catalog, recorded, enqueued
# The example project's dev environment, on a queue of the benchmark's own: no worker takes its
# tasks (a worker's request ids name its own control plane's requests), and it is deleted after.
CONFIG = """
[environments.dev]
project = "{project}"
settings = "backend.settings"
queue = "{queue}"
env = {{ DATABASE_URL = "DEV_DATABASE_URL" }}
[environments.dev.policy]
readers = ["*"]
requesters = ["*"]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--acks", type=int, default=1000, help="commands dispatched in process")
    parser.add_argument("--rounds", type=int, default=5, help="HTTP rounds, each app once a round (0: none)")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured length of one app's round")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--serve-bare", metavar="BIND", help=argparse.SUPPRESS)
    parser.add_argument("--stage", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_bare:
        return _serve_bare(options.serve_bare)
    if options.stage:
        return _stage(options)
    # One control plane per process (Django holds one settings module): a stage for each.
    postgres = os.environ.get("DATABASE_URL", "")
    stages = [("SQLite", None)] + ([("PostgreSQL", postgres)] if postgres else [])
    for name, url in stages:
        env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
        env |= {"DATABASE_URL": url} if url else {}
        print(f"--- control plane on {name}", flush=True)
        subprocess.run([sys.executable, __file__, "--stage", *sys.argv[1:]], env=env, check=True)


def _stage(options: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        os.environ["MIGRABOT_HOME"] = folder
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{Path(folder) / 'controlplane.sqlite3'}")
        os.environ.setdefault("DEV_DATABASE_URL", f"sqlite:///{Path(folder) / 'dev.sqlite3'}")
        os.environ.setdefault("MIGRABOT_BROKER_URL", "memory://localhost/")
        os.environ.setdefault("MIGRABOT_LOG_LEVEL", "WARNING")
        os.environ["MIGRABOT_CONFIG"] = str(Path(folder) / "migrabot.toml")
        queue = f"migrabot.bench-{os.getpid()}"
        config_path().write_text(CONFIG.format(project=REPO / "example" / "backend", queue=queue))
        config = load_config(config_path())
        from migrabot.boot import setup_django

        setup_django()
        from django.core.management import call_command
        from slack_sdk import WebClient

        from bot.app import build_app
        from slacklocal import SlackWebAPI
        from workers.catalog import publish_catalog

        call_command("migrate", verbosity=0)
        publish_catalog(config.environments["dev"])  # what the worker would have reported
        api = stack.enter_context(SlackWebAPI(BOT_TOKEN, rate_limits=True))

        client = WebClient(token=BOT_TOKEN, base_url=api.base_url)
        bot = build_app(config=config, client=client, signing_secret=SIGNING_SECRET, enqueue=lambda *a, **k: None)
        ack_path(bot.app.dispatch, 50)  # warm-up: first imports, first connection, query caches
        timings = ack_path(bot.app.dispatch, options.acks)
        bot.close()
        print(
            f"ack path, in process, {options.acks} commands: p50 {percentile(timings, 0.5):.2f} ms, "
            f"p99 {percentile(timings, 0.99):.2f} ms, max {max(timings):.2f} ms (goal: p99 <= 5 ms)",
            flush=True,
        )

        if options.rounds < 1:
            return
        broker = os.environ["MIGRABOT_BROKER_URL"]
        env = os.environ | {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
        env |= {"SLACK_API_URL": api.base_url}
        env.pop("SLACK_APP_TOKEN", None)
        if broker.startswith(("redis://", "rediss://")):
            stack.callback(_delete_queue, queue)
        ours = stack.enter_context(_server([sys.executable, "-m", "migrabot.cli", "bot", "--bind"], env, folder))
        bare = stack.enter_context(_server([sys.executable, __file__, "--serve-bare"], env, folder))
        figures: dict[str, list[Load]] = {"ours": [], "bare": []}
        for round_ in range(options.rounds):
            for name, port in [("ours", ours), ("bare", bare)][:: 1 if round_ % 2 == 0 else -1]:
                figures[name].append(asyncio.run(load(port, clients=options.clients, seconds=options.seconds)))
        ours_rate, bare_rate = (statistics.median(load.rate for load in figures[name]) for name in ("ours", "bare"))
        where = "Redis" if broker.startswith(("redis://", "rediss://")) else "the in-memory broker"
        print(f"HTTP, gunicorn {_gunicorn_settings()}, {options.clients} clients, median of {options.rounds} "
              f"rounds of {options.seconds:g} s each; ours enqueues to {where}")  # fmt: skip
        for name, label in (("ours", "ours     "), ("bare", "bare Bolt")):
            print(f"  {label}: {_summary(figures[name])}")
        print(f"  ratio ours / bare: {ours_rate / bare_rate:.2f} (goal: >= 0.8)", flush=True)


def _delete_queue(name: str) -> None:
    """The benchmark's queue and its tasks, out of the Redis it was given (declared first, as Celery
    declares it, so that kombu knows its bindings)."""
    from kombu import Exchange, Queue

    from migrabot.broker import app

    with app.connection_for_write() as connection:
        queue = Queue(name, Exchange(name), routing_key=name)(connection.default_channel)
        queue.declare()
        queue.delete()


def _gunicorn_settings() -> str:
    import inspect

    from bot.server import serve_with_gunicorn

    defaults = inspect.signature(serve_with_gunicorn).parameters
    return f"workers={defaults['workers'].default} threads={defaults['threads'].default}"


def _serve_bare(bind: str) -> None:
    """A Bolt app that only acks, served as the bot is served (``serve_with_gunicorn``)."""
    from migrabot.boot import setup_django

    setup_django()  # bot.server, which serves it, imports the control plane's models
    from slack_bolt import Ack, App
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from slack_sdk import WebClient

    from bot.server import serve_with_gunicorn

    client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    app = App(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"], process_before_response=True)

    @app.command("/migrate")
    def only_ack(ack: Ack) -> None:
        ack()

    serve_with_gunicorn(SlackRequestHandler(app), bind=bind)


@contextmanager
def _server(argv: list[str], env: dict[str, str], folder: str) -> Iterator[int]:
    """A server process on a free port, once it answers a signed command."""
    port = _free_port()
    log = Path(folder) / f"server-{port}.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([*argv, f"127.0.0.1:{port}"], env=env, cwd=REPO, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 60
        while asyncio.run(load(port, clients=1, seconds=0, warmup=0)).ok == 0:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{' '.join(argv)} did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Load:
    rate: float  # answers with 200 a second
    ok: int
    failed: int  # any other answer, or a broken connection
    latencies: list[float]  # ms


def _summary(loads: list[Load]) -> str:
    latencies = [ms for load in loads for ms in load.latencies]
    rates = ", ".join(f"{load.rate:.0f}" for load in loads)
    failed = sum(load.failed for load in loads)
    return (
        f"{statistics.median(load.rate for load in loads):.0f} req/s (rounds: {rates}); latency "
        f"p50 {percentile(latencies, 0.5):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms; {failed} failed"
    )


async def load(port: int, *, clients: int, seconds: float, warmup: float = 0.5) -> Load:
    """``clients`` connections posting signed commands for ``warmup`` then ``seconds`` more; the
    answers during ``seconds`` are counted (a single request when ``seconds`` is 0)."""
    started = time.monotonic()
    counted_from, until = started + warmup, started + warmup + seconds
    results = await asyncio.gather(*(_client(port, n, counted_from, until) for n in range(clients)))
    ok = sum(len(latencies) for latencies, _ in results)
    return Load(
        rate=ok / seconds if seconds else 0.0,
        ok=ok if seconds else sum(1 for latencies, failed in results if not failed),
        failed=sum(failed for _, failed in results),
        latencies=[ms for latencies, _ in results for ms in latencies],
    )


async def _client(port: int, n: int, counted_from: float, until: float) -> tuple[list[float], int]:
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(SIGNING_SECRET)
    latencies: list[float] = []
    failed, sent = 0, 0
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return latencies, 1
    try:
        while sent == 0 or time.monotonic() < until:
            sent += 1
            body = _command_body(f"{n}.{sent}.{time.time_ns()}")
            stamp = str(int(time.time()))
            signature = verifier.generate_signature(timestamp=stamp, body=body.decode())
            head = (
                f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "User-Agent: Slackbot 1.0 (+https://api.slack.com/robots)\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nX-Slack-Request-Timestamp: {stamp}\r\n"
                f"X-Slack-Signature: {signature}\r\n\r\n"
            )
            began = time.monotonic()
            writer.write(head.encode() + body)
            status, close = await _answer(reader)
            done = time.monotonic()
            if status != 200:
                failed += 1
            elif counted_from <= done < until:
                latencies.append((done - began) * 1000)
            if close:
                break
    except (OSError, asyncio.IncompleteReadError):
        failed += 1
    finally:
        writer.close()
    return latencies, failed


def _command_body(unique: str) -> bytes:
    """A slash command's form, with the fields Slack sends."""
    fields = {
        "token": "bench-verification-token",
        "team_id": "T0LOCAL",
        "team_domain": "local",
        "channel_id": CHANNEL,
        "channel_name": "bench",
        "user_id": "U0ALICE",
        "user_name": "alice",
        "command": "/migrate",
        "text": TEXT,
        "api_app_id": "A0MIGRABOT",
        "is_enterprise_install": "false",
        "response_url": f"https://hooks.slack.com/commands/T0LOCAL/{unique}",
        "trigger_id": f"bench.{unique}",
    }
    return urlencode(fields).encode()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; its status and whether the server closes the connection."""
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    if headers.get("transfer-encoding") == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection") == "close"


if __name__ == "__main__":
    main()
