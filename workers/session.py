"""Warm probe sessions: one long-lived probe process per environment, answering the reads.

A probe started per read pays ``django.setup()`` and the import of every migration each time
(about 2 s on a real project with a few hundred migrations; more than ``manage.py`` itself on a
5,000-migration one). A session pays it once, then answers calls over a pipe as JSON lines
(``migrabot_probe.protocol``). It re-reads the applied migrations on every call and re-imports
the migration files when their content changes, so a deploy is seen at the next call; a deploy
that changes any other module it imported makes it answer ``stale``, and the call is asked again
of a fresh session. Migrations never run in a session (``Target.stream`` starts a process).

A session that dies, answers an unexpected error, hangs past the call's timeout or has grown past
``MIGRABOT_SESSION_MAX_MIB`` is replaced: the call in flight gets a ``TargetError`` (never an
answer from a state it cannot vouch for), the next call starts a new one. Calls to one
environment's session wait for each other; each environment has its own.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import subprocess
import tempfile
import threading
from typing import IO

from migrabot_probe import protocol

MAX_MIB_DEFAULT = 2048
_STARTS = itertools.count(1)


class SessionError(Exception):
    """The session could not answer (it died, hung, or raised); ``detail`` is its stderr tail."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class Session:
    """One probe process in ``session`` mode, with its environment and working folder."""

    def __init__(self, python: str, project: str, environ: dict[str, str]) -> None:
        self.identity = identity(python, project, environ)
        # stderr goes to a file, not a pipe: a chatty target must not block on a full pipe.
        # No parent-death signal (workers.children): Linux sends it when the *thread* that started
        # the child exits, and a session outlives the call that started it. It needs none: it
        # only reads, and it exits as soon as its stdin closes, which the worker's death does.
        self._stderr: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (lives with it)
        self.process = subprocess.Popen(
            protocol.command_line(python, protocol.SESSION),
            cwd=project,
            env=environ,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
        )
        self.started = next(_STARTS)
        self.memory_kib: int | None = None  # its resident size after the last call
        self._ids = itertools.count(1)
        self._answers: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name=f"probe-session-{self.process.pid}").start()

    def call(self, command: str, args: list[str], timeout: float) -> protocol.Answer:
        """Send one call and wait for its answer; raises ``SessionError`` (and ends the session)
        if it dies or takes longer than ``timeout`` seconds."""
        call: protocol.Call = {"id": next(self._ids), "command": command, "args": args}
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(call) + "\n")
            self.process.stdin.flush()
        except OSError:
            self.close()
            raise SessionError("the probe session ended before it was asked", self.stderr_tail()) from None
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise SessionError(f"took longer than {timeout:g} s and was stopped") from None
        if line is None:
            self.close()
            raise SessionError(f"the probe session ended (exit {self.process.returncode})", self.stderr_tail())
        answer: protocol.Answer = json.loads(line)
        if answer.get("id") != call["id"]:  # never an answer to some other call
            self.close()
            raise SessionError("the probe session answered out of turn")
        self.memory_kib = answer.get("memory_kib")
        return answer

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """End the session: close its stdin (it exits at once between calls), kill it if not."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stderr_tail(self, lines: int = 5) -> str:
        try:
            self._stderr.seek(0)
            return "\n".join(self._stderr.read().strip().splitlines()[-lines:])
        except (OSError, ValueError):
            return ""

    def _read(self) -> None:
        """Every line the session prints on its answers' pipe; None when the pipe closes."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                self._answers.put(line)
        self.process.wait()
        self._answers.put(None)


class Sessions:
    """The worker's sessions, one per environment name."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def call(
        self, name: str, python: str, project: str, environ: dict[str, str], command: str, args: list[str],
        timeout: float,
    ) -> protocol.Answer:
        """Ask environment ``name``'s session (started if need be) one call. A ``stale`` answer
        is asked once more of a fresh session; other failures end the session and raise."""
        with self._lock(name):
            for _ in range(2):
                session = self._session(name, python, project, environ)
                try:
                    answer = session.call(command, args, timeout)
                except SessionError:
                    self._sessions.pop(name, None)
                    raise
                if "stale" in answer:
                    self._retire(name)
                    continue
                if "error" in answer or answer.get("memory_kib", 0) > max_mib() * 1024:
                    # Answered, but not to be trusted (or too big) for the next call: its
                    # replacement starts warming up now, not when that call comes.
                    self._retire(name)
                    self._session(name, python, project, environ)
                return answer
            raise SessionError("the probe session kept finding its code changed on disk")

    def started(self, name: str) -> int | None:
        """Which start the environment's session is (tests and benchmarks tell them apart)."""
        session = self._sessions.get(name)
        return session.started if session is not None and session.alive() else None

    def memory_kib(self, name: str) -> int | None:
        session = self._sessions.get(name)
        return session.memory_kib if session is not None else None

    def close_all(self) -> None:
        with self._guard:
            names = list(self._sessions)
        for name in names:
            with self._lock(name):
                self._retire(name)

    def _session(self, name: str, python: str, project: str, environ: dict[str, str]) -> Session:
        session = self._sessions.get(name)
        if session is None or not session.alive() or session.identity != identity(python, project, environ):
            if session is not None:
                session.close()
            session = self._sessions[name] = Session(python, project, environ)
        return session

    def _retire(self, name: str) -> None:
        session = self._sessions.pop(name, None)
        if session is not None:
            session.close()

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())


def identity(python: str, project: str, environ: dict[str, str]) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """What a session was started with: another interpreter, folder or variable needs another one."""
    return (python, project, tuple(sorted(environ.items())))


def max_mib() -> int:
    return int(os.environ.get("MIGRABOT_SESSION_MAX_MIB") or MAX_MIB_DEFAULT)


#: The worker process's sessions (Celery's pool threads share them).
SESSIONS = Sessions()
