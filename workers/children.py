"""Starting a run's child processes so that none of them outlives its worker.

A worker that is SIGKILLed (out of memory, a deploy) runs no ``finally``: its ``pg_restore | psql``
or ``pg_dump`` would go on, reparented, after the sweep marked the run interrupted and released
the environment lock, and could commit a restore nobody watches. So every child is started with a
parent-death signal, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, set in the child between fork and exec
(it survives the exec). The probe also sets it itself (``migrabot_probe.main.die_with_worker``).

Linux fires that signal when the *thread* that forked the child exits, not the whole process. That
is fine here: the thread that starts a child always waits for it (Celery's pool threads, too, live
as long as the worker). Where there is no prctl (not Linux), children start as usual.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

PR_SET_PDEATHSIG = 1
_SIGKILL = int(signal.SIGKILL)


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Looked up once, in the parent. preexec_fn is unsafe with threads in general (the child could need
# a lock another thread held at the fork); ours only makes two system calls through this function.
_PRCTL = _load_prctl()


def popen(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` for a child that dies with its worker."""
    return subprocess.Popen(args, preexec_fn=_preexec(), **kwargs)  # noqa: PLW1509


def run(args: Sequence[str], *, check: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` for a child that dies with its worker."""
    return subprocess.run(args, check=check, preexec_fn=_preexec(), **kwargs)


def _preexec() -> Callable[[], None] | None:
    return None if _PRCTL is None else functools.partial(_die_with, os.getpid())


def _die_with(parent: int) -> None:
    """In the child, before exec. If the parent died before the signal was armed, nothing would
    send it: the child is already someone else's, so it stops here."""
    _PRCTL(PR_SET_PDEATHSIG, _SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
