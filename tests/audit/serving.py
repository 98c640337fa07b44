"""The audit server as an operator runs it: ``migrabot audit`` (gunicorn) on a free port, against
this test process's control plane unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def audit_server(log: Path, **variables: str) -> Iterator[str]:
    """``migrabot audit --bind 127.0.0.1:<port>``, its output in ``log``; yields its URL."""
    port = free_port()
    environ = os.environ | {"MIGRABOT_CONFIG": str(REPO / "migrabot.toml")} | variables
    argv = [sys.executable, "-m", "migrabot.cli", "audit", "--bind", f"127.0.0.1:{port}"]
    with open(log, "wb") as output:
        process = subprocess.Popen(argv, cwd=REPO, env=environ, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"migrabot audit exited with {process.returncode}:\n{log.read_text()}")
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=2).close()
        except urllib.error.HTTPError:
            return True  # it answers, if only to say the control plane does not
        except OSError:
            return False
        return True

    try:
        wait_until(answers, "migrabot audit")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
