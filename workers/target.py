"""Running the probe against a target project: its own interpreter, settings and environment.

Arguments go to the subprocess as a list (never through a shell) and have already been checked by
the grammar. The child gets a minimal environment: the worker's own secrets (Slack token, broker
URL) are not the target's business, and the target's are redacted from anything we report.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from controlplane.errors import MigrabotError, Refusal
from migrabot.config import Environment
from workers.redact import redact

PROBE = Path(__file__).with_name("probe.py")
PROBE_REFUSED = 3
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")


class TargetError(MigrabotError):
    """The target's process failed unexpectedly (a crash, not a rule saying no)."""


class Target:
    def __init__(self, environment: Environment, timeout_seconds: float = 600) -> None:
        self.environment = environment
        self.timeout_seconds = timeout_seconds

    @property
    def secrets(self) -> list[str]:
        return list(self.environment.target_environ().values())

    def environ(self) -> dict[str, str]:
        base = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
        return base | {"DJANGO_SETTINGS_MODULE": self.environment.settings, "PYTHONUNBUFFERED": "1"} | (
            self.environment.target_environ()
        )

    def probe(self, command: str, *args: str) -> dict[str, Any]:
        """Run ``probe.py command args…`` in the target; raise ``Refusal`` or ``TargetError``."""
        completed = subprocess.run(
            [self.environment.python, str(PROBE), command, *args],
            cwd=self.environment.project,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=self.timeout_seconds,
        )
        if completed.returncode == PROBE_REFUSED:
            raise Refusal(redact(_last_json(completed.stdout)["refusal"], self.secrets))
        if completed.returncode != 0:
            raise TargetError(self._describe_failure(command, completed))
        return _last_json(completed.stdout)

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``manage.py args…`` in the target (for preparing a database; output is captured)."""
        return subprocess.run(
            [self.environment.python, "manage.py", *args],
            cwd=self.environment.project,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=self.timeout_seconds,
            check=True,
        )

    def _describe_failure(self, command: str, completed: subprocess.CompletedProcess[str]) -> str:
        tail = "\n".join(completed.stderr.strip().splitlines()[-5:]) or "(no output)"
        return redact(f"`{command}` exited with {completed.returncode} in `{self.environment.name}`:\n{tail}", self.secrets)


def _last_json(stdout: str) -> dict[str, Any]:
    """The probe prints one JSON line last; anything a target's settings print comes before it."""
    lines = stdout.strip().splitlines()
    try:
        return dict(json.loads(lines[-1]))
    except (IndexError, ValueError):
        raise TargetError("the probe printed no result") from None
