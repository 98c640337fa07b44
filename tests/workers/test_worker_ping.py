"""``migrabot worker-ping``: exit 0 while this host's worker for the environments answers, 1 when none does."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from migrabot.broker import app as celery_app
from migrabot.cli import main

ENV = f"ping{uuid.uuid4().hex[:8]}"


@pytest.fixture
def memory_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(celery_app.conf, "broker_url", "memory://localhost/")
    monkeypatch.setitem(celery_app.conf, "broker_transport_options", {"polling_interval": 0.05})


# In a process of its own: the memory broker lives in one process, and this test's process may hold
# Celery connections from earlier tests.
RUNNING_WORKER = f"""
import sys, threading, time
from migrabot.boot import setup_django
setup_django()
from migrabot.broker import app
from migrabot.cli import main
from workers.service import worker_nodename
app.conf.broker_url = "memory://localhost/"
app.conf.broker_transport_options = {{"polling_interval": 0.05}}
controller = app.WorkController(
    hostname=worker_nodename([{ENV!r}]), pool="threads", concurrency=1, queues=["q-{ENV}"],
    without_heartbeat=True, without_mingle=True, without_gossip=True, loglevel="WARNING",
)
threading.Thread(target=controller.start, daemon=True).start()
deadline = time.monotonic() + 60  # its thread needs a moment to consume its control queue
while main(["worker-ping", "--env", {ENV!r}, "--timeout", "1"]) != 0:
    if time.monotonic() > deadline:
        sys.exit(1)
sys.exit(0)
"""


def test_a_running_worker_answers(tmp_path: Path) -> None:
    environ = os.environ | {"MIGRABOT_HOME": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'cp.sqlite3'}"}
    ran = subprocess.run([sys.executable, "-c", RUNNING_WORKER], env=environ, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]


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
