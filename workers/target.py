"""Running the probe against a target project: its own interpreter, settings and environment.

Arguments go to the probe as a list (never through a shell) and have already been checked by
the grammar. The probe gets a minimal environment: the worker's own secrets (Slack token, broker
URL) are not the target's business, and the target's are redacted from anything we report.

Reads go to the environment's warm session (``workers.session``); ``migrate`` runs in a process
of its own that prints one JSON event per migration as it happens and ends with an exit code
that says how (``migrabot_probe.protocol``).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

from controlplane.errors import MigrabotError, Refusal
from migrabot import messages
from migrabot.config import Environment
from migrabot.redact import redact
from migrabot_probe import protocol
from workers import children
from workers.session import SESSIONS, SessionError

PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")


class TargetError(MigrabotError):
    """The target's process failed unexpectedly (a crash, not a rule saying no)."""


class MigrationFailed(TargetError):
    """A migration raised while being applied or unapplied; the ones before it stay done."""

    def __init__(self, app: str, name: str, error: str) -> None:
        super().__init__(f"{app}.{name} failed: {error}")
        self.app = app
        self.name = name
        self.error = error


class RunStopped(TargetError):
    """The run was stopped before a migration began (the lock could no longer be vouched for)."""

    def __init__(self, app: str, name: str, done: list[str]) -> None:
        super().__init__(f"stopped before {app}.{name}")
        self.app = app
        self.name = name
        self.done = done


class Target:
    def __init__(
        self, environment: Environment, timeout_seconds: float = 600, overrides: Mapping[str, str] | None = None
    ) -> None:
        self.environment = environment
        self.timeout_seconds = timeout_seconds
        self.overrides = dict(overrides or {})  # variables set on top (a rehearsal's rehearsal_env)

    @property
    def secrets(self) -> list[str]:
        return self.environment.secrets()

    def environ(self) -> dict[str, str]:
        base = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
        return base | {"DJANGO_SETTINGS_MODULE": self.environment.settings, "PYTHONUNBUFFERED": "1"} | (
            self.environment.target_environ()
        ) | self.overrides

    def probe(self, command: str, *args: str) -> dict[str, Any]:
        """A read (``protocol.READS``), answered by the environment's warm session."""
        if command not in protocol.READS:
            raise ValueError(f"`{command}` is not a read: it runs through Target.stream")
        environment = self.environment
        try:
            answer = SESSIONS.call(
                environment.name, environment.python, str(environment.project), self.environ(),
                command, list(args), self.timeout_seconds,
            )
        except SessionError as error:
            detail = f":\n{error.detail}" if error.detail else ""
            raise TargetError(redact(f"`{command}` in `{environment.name}`: {error}{detail}", self.secrets)) from None
        if "refusal" in answer:
            # The target's words, not our markup: shown as text wherever a refusal is echoed.
            raise Refusal(messages.escaped(redact(answer["refusal"], self.secrets)))
        if "result" not in answer:
            failure = f"`{command}` failed in `{environment.name}`: {answer.get('error')}"
            raise TargetError(redact(failure, self.secrets))
        return answer["result"]

    def stream(self, command: str, *args: str, stop: threading.Event | None = None) -> Iterator[dict[str, Any]]:
        """Run the probe's ``command args…`` in a process of its own, yielding each JSON line as it
        arrives (``Run.events`` says what it raises). Read it to the end."""
        with self.start(command, *args, stop=stop) as run:
            run.go()
            yield from run.events()

    @contextmanager
    def start(self, command: str, *args: str, stop: threading.Event | None = None) -> Iterator[Run]:
        """Start the probe's ``command args…`` now; with ``--when-told`` among the args it sets
        Django up and imports the migrations, then waits for ``Run.go``. Leaving the block
        without ``go`` ends it having run nothing; with it, after the process exited."""
        # stderr goes to a file, not a pipe: a chatty target must not block on a full pipe
        # while we are reading its stdout.
        with tempfile.TemporaryFile("w+", encoding="utf-8") as stderr:
            process = children.popen(
                protocol.command_line(self.environment.python, command, *args),
                cwd=self.environment.project,
                env=self.environ(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                encoding="utf-8",
            )
            run = Run(self, command, process, stderr, stop)
            try:
                yield run
            finally:
                run.close()

    def _raise_for(self, command: str, returncode: int, verdict: dict[str, Any], stderr: str, timed_out: bool) -> None:
        """Turn how the probe ended into the matching exception (nothing when it succeeded)."""
        if timed_out and returncode != 0:
            raise TargetError(
                f"`{command}` took longer than {self.timeout_seconds:g} s in `{self.environment.name}` and was stopped"
            )
        if returncode == protocol.REFUSED_EXIT and "refusal" in verdict:
            # The target's words, not our markup: shown as text wherever a refusal is echoed.
            raise Refusal(messages.escaped(redact(verdict["refusal"], self.secrets)))
        if returncode == protocol.FAILED_EXIT and "failed" in verdict:
            failed = verdict["failed"]
            raise MigrationFailed(failed["app"], failed["name"], redact(failed["error"], self.secrets))
        if returncode == protocol.STOPPED_EXIT and "stopped" in verdict:
            stopped = verdict["stopped"]
            raise RunStopped(stopped["app"], stopped["name"], stopped["done"])
        if returncode != 0:
            raise TargetError(self._describe_failure(command, returncode, stderr))

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``manage.py args…`` in the target (for preparing a database; output is captured)."""
        return children.run(
            [self.environment.python, "manage.py", *args],
            cwd=self.environment.project,
            env=self.environ(),
            capture_output=True,
            text=True,
            timeout=self.timeout_seconds,
            check=True,
        )

    def _describe_failure(self, command: str, returncode: int, stderr: str) -> str:
        tail = "\n".join(stderr.strip().splitlines()[-5:]) or "(no output)"
        return redact(f"`{command}` exited with {returncode} in `{self.environment.name}`:\n{tail}", self.secrets)


class Run:
    """One probe process started by ``Target.start``."""

    def __init__(
        self, target: Target, command: str, process: subprocess.Popen[str], stderr: IO[str],
        stop: threading.Event | None,
    ) -> None:
        self.target, self.command, self.process, self.stderr, self.stop = target, command, process, stderr, stop
        self.timer = threading.Timer(target.timeout_seconds, process.kill)
        self.timer.start()
        self.ended = threading.Event()
        if stop is not None:
            threading.Thread(target=_pass_stop, args=(stop, self.ended, process), daemon=True).start()

    def go(self) -> None:
        """Tell a process started ``--when-told`` to run (any other one ignores it)."""
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):  # it may have ended already: events() will say why
            self.process.stdin.write("go\n")
            self.process.stdin.close()

    def events(self) -> Iterator[dict[str, Any]]:
        """Each JSON line as it arrives. Raises ``Refusal`` (exit 3), ``MigrationFailed`` (exit 4,
        after yielding the events before it), ``RunStopped`` (exit 5: ``stop`` was set, and the
        probe began no migration after that) or ``TargetError`` (anything else, or longer than
        ``timeout_seconds``). Lines that are not JSON objects (a target's settings printing) are
        skipped."""
        verdict: dict[str, Any] = {}
        try:
            assert self.process.stdout is not None
            for document in filter(None, map(_json_object, self.process.stdout)):
                if "refusal" in document or "failed" in document or "stopped" in document:
                    verdict = document  # printed last; raised below from the exit code
                else:
                    yield document
            returncode = self.process.wait()
            timed_out = self.timer.finished.is_set()
        finally:
            self.timer.cancel()
            self.ended.set()
        self.stderr.seek(0)
        self.target._raise_for(self.command, returncode, verdict, self.stderr.read(), timed_out)

    def kill(self) -> None:
        """End the process now: only for a rehearsal called off (its copy is thrown away)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    def close(self) -> None:
        """Wait for the process to end: one never told to go ends at once, having run nothing; a
        running migration is never cut short here (the timeout and the worker's death do that)."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self.process.wait()
        self.timer.cancel()
        self.ended.set()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _pass_stop(stop: threading.Event, ended: threading.Event, process: subprocess.Popen[str]) -> None:
    """Tell the probe to stop once ``stop`` is set, for as long as it runs."""
    while not ended.is_set():
        if stop.wait(0.2):
            if process.poll() is None:
                process.send_signal(protocol.STOP_SIGNAL)
            return


def _json_object(line: str) -> dict[str, Any] | None:
    """A probe document, or None for anything else a target printed on stdout."""
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None
