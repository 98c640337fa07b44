"""``migrabot worker-ping``: exit 0 while this host's worker for the environments answers, 1 when none does."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from migrabot.broker import app as celery_app
from migrabot.cli import main
from workers.service import worker_nodename

ENV = f"ping{uuid.uuid4().hex[:8]}"


@pytest.fixture
def memory_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(celery_app.conf, "broker_url", "memory://localhost/")
    monkeypatch.setitem(celery_app.conf, "broker_transport_options", {"polling_interval": 0.05})


@pytest.fixture
def worker(memory_broker: None) -> Iterator[None]:
    """A worker named as ``migrabot worker --env ENV`` names it, in this process (the memory broker is per process)."""
    controller = celery_app.WorkController(
        hostname=worker_nodename([ENV]), pool="threads", concurrency=1, queues=[f"q-{ENV}"],
        without_heartbeat=True, without_mingle=True, without_gossip=True, loglevel="WARNING",
    )  # fmt: skip
    thread = threading.Thread(target=controller.start, name="celery-ping-worker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        controller.stop()
        thread.join(timeout=10)


def test_a_running_worker_answers(worker: None) -> None:
    # The worker's thread needs a moment to consume its control queue: ask until it is running.
    deadline = time.monotonic() + 60
    while main(["worker-ping", "--env", ENV, "--timeout", "1"]) != 0:
        assert time.monotonic() < deadline, "the running worker never answered"


def test_no_worker_no_answer(memory_broker: None) -> None:
    assert main(["worker-ping", "--env", f"{ENV}-gone", "--timeout", "0.3"]) == 1


def test_an_unreachable_broker_is_no_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:9/0")
    assert main(["worker-ping", "--env", ENV, "--timeout", "0.3"]) == 1


def test_its_help_says_what_the_exit_status_means(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["worker-ping", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "Exit status 0 when it answers within --timeout seconds, 1 when it does not" in said
