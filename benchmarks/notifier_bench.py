"""Benchmark of the notifier; prints its figures (run: .venv/bin/python benchmarks/notifier_bench.py).

1. Delay from a recorded post to Slack receiving it, with Slack healthy: a note is recorded (one
   committed transaction, as a worker records one) and timed until the stand-in's call log has
   it. Goal: p50 ≤ 0.1 s, p99 ≤ 0.5 s — the notifier is woken by the record, not by a slow poll.
2. Slack calls of a long run: a run of N migrations records 2·N progress events over its
   duration; the progress message is updated at most once every 2 s, so the calls are bounded by
   the run's duration, not by N. Printed: events, chat.update calls, duration, calls per second.

The control plane is a temporary SQLite file; the wake-up is the in-process one (local mode), or
Redis with ``--redis URL`` (the production path: a worker beside the bot).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=200)
    parser.add_argument("--migrations", type=int, default=300)
    parser.add_argument("--run-seconds", type=float, default=20.0, help="how long the simulated run takes")
    parser.add_argument("--redis", help="wake through this Redis (e.g. redis://127.0.0.1:6379/0)")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="migrabot-notifier-bench-"))
    os.environ.update(DATABASE_URL=f"sqlite:///{folder / 'controlplane.sqlite3'}", MIGRABOT_HOME=str(folder))
    if options.redis:
        os.environ["MIGRABOT_BROKER_URL"] = options.redis
    os.environ.pop("MIGRABOT_MIN_UPDATE_SECONDS", None)  # the production throttle

    from migrabot.boot import setup_django

    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from slack_sdk import WebClient

    from bot.notify import Notifier, with_retries
    from controlplane import services
    from controlplane.models import Request
    from migrabot.config import config_path, load_config
    from slacklocal import SlackWebAPI

    config = load_config(config_path())
    env = next(iter(config.environments))
    with SlackWebAPI("xoxb-bench") as api:
        notifier = Notifier(with_retries(WebClient(token="xoxb-bench", base_url=api.base_url)), config)
        notifier.start()
        try:
            request, _ = services.request_create(
                verb="showmigrations", environment=env, args=[], requester="U0A", channel="C0B", trigger_id=None
            )
            while not api.calls_to("chat.postMessage"):
                time.sleep(0.01)
            delays = []
            for number in range(options.notes):
                seen = len(api.calls_to("chat.postMessage"))
                recorded = time.time()
                services.post_note(request_id=request.pk, text=f"note {number}")
                while len(api.calls_to("chat.postMessage")) == seen:
                    time.sleep(0.001)
                delays.append(api.calls_to("chat.postMessage")[-1].at - recorded)
            print(
                f"record → Slack, {options.notes} notes: p50 {percentile(delays, 0.5) * 1000:.1f} ms, "
                f"p99 {percentile(delays, 0.99) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms "
                "(goal: p50 ≤ 100 ms, p99 ≤ 500 ms)"
            )

            run, _ = services.request_create(
                verb="rollback", environment=env, args=[], requester="U0A", channel="C0B", trigger_id=None
            )
            while Request.objects.get(pk=run.pk).thread_ts == "":
                time.sleep(0.01)
            before = len(api.calls_to("chat.update"))
            events: list[dict[str, object]] = []
            pause = options.run_seconds / (2 * options.migrations)
            started = time.monotonic()
            for number in range(options.migrations):
                for kind in ("unapply_start", "unapply_success"):
                    event = {"event": kind, "app": "bench", "name": f"{number:04d}", "fake": False}
                    events[-1:] = [event] if kind.endswith("_success") else [*events[-1:], event]
                    services.post_record(request_id=run.pk, key="progress", kind="progress", data={"events": events})
                    time.sleep(pause)
            duration = time.monotonic() - started
            time.sleep(2.5)  # the last update
            updates = len(api.calls_to("chat.update")) - before
            print(
                f"a run of {options.migrations} migrations ({2 * options.migrations} progress events) "
                f"over {duration:.1f} s: "
                f"{updates} chat.update calls, {updates / duration:.2f} a second (goal: ≤ 0.5 a second a message, "
                f"i.e. ≤ {duration / 2 + 2:.0f} here, whatever the number of migrations)"
            )
            print(f"median delay {statistics.median(delays) * 1000:.1f} ms")
        finally:
            notifier.stop()


if __name__ == "__main__":
    main()
