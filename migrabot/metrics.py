"""Prometheus metrics: requests by verb, state and environment; how long plans, backups and runs
take; how often a Slack call had to be retried.

Several processes, no shared store: each process counts what it does itself and is scraped on
its own, and Prometheus adds them up (``sum by (verb, state, environment)``). The bot is one
process by design (``serve_with_gunicorn`` runs one worker: its follow-up pool and notifier live
in it), serving ``/metrics`` next to Slack's request URL; each ``migrabot worker`` is one process
too (Celery's thread pool), serving ``/metrics`` on ``MIGRABOT_METRICS_PORT`` when it is set.
So prometheus_client's multiprocess mode (a directory of shared files) is not needed. A state
change is counted by the process that made it — the bot counts requests received, approved,
denied and cancelled, a worker those it planned, ran and finished — after its transaction commits,
so a rolled-back change is never counted. A counter restarts at zero with its process, which
Prometheus's ``rate``/``increase`` expect.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest, start_http_server

requests = Counter(
    "migrabot_requests",
    "Requests entering a state (received, planning, awaiting_approval, succeeded, failed …).",
    ["verb", "state", "environment"],
)
step_seconds = Histogram(
    "migrabot_step_duration_seconds",
    "How long a worker took to plan a write, back up its database, or carry out an approved run "
    "(which includes its backup), and to answer a read.",
    ["step", "environment"],
    # A plan takes seconds; a backup or a run of a large database, up to hours.
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, float("inf")),
)
slack_retries = Counter(
    "migrabot_slack_retries",
    "Slack calls of the notifier that failed and were scheduled again, by cause.",
    ["cause"],
)


def request_entered(*, verb: str, state: str, environment: str) -> None:
    requests.labels(verb=verb, state=state, environment=environment).inc()


@contextmanager
def timed(step: str, *, environment: str) -> Iterator[None]:
    """Observe how long the block took, whether it ended well or not."""
    started = time.monotonic()
    try:
        yield
    finally:
        step_seconds.labels(step=step, environment=environment).observe(time.monotonic() - started)


def exposition() -> tuple[bytes, str]:
    """This process's metrics in Prometheus's text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


def serve_if_asked() -> int | None:
    """Serve ``/metrics`` on ``MIGRABOT_METRICS_PORT`` (all interfaces) if it is set; the port, or None."""
    port = os.environ.get("MIGRABOT_METRICS_PORT")
    if not port:
        return None
    start_http_server(int(port))
    return int(port)
