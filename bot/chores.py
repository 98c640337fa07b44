"""A chore of the bot's process on a daemon thread of its own: it looks when poked (after each of
the notifier's passes) or when its ``pause`` is over, whichever is first. A failed look (the
control plane unreachable, say) is logged and tried again at the next; it never stops the thread."""

from __future__ import annotations

import logging
import threading
from typing import ClassVar

from django.db import close_old_connections

log = logging.getLogger(__name__)


class PokedChore:
    name: ClassVar[str]  # the thread's, and the failure's log line (``<name>.failed``)
    min_gap: ClassVar[float] = 0.0  # seconds between looks, however often it is poked

    def __init__(self) -> None:
        self._poked = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._poked.set()

    def poke(self) -> None:
        """Something may have changed: look soon, off the caller's thread."""
        self._poked.set()

    def refresh(self) -> int:
        """One look; how many things it did."""
        raise NotImplementedError

    def pause(self) -> float:
        """Seconds until the next look if nothing pokes it."""
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._poked.wait(self.pause())
            self._poked.clear()
            try:
                self.refresh()
            except Exception:  # the control plane: the next look tries again
                log.exception("%s.failed", self.name)
            finally:
                close_old_connections()
            if self.min_gap:
                self._stopped.wait(self.min_gap)
