"""New requests, committed in batches by the commands' own threads (group commit).

Each slash command's thread used to write its request, audit event and card itself: three inserts
and a commit, most of a command's time before its ack, with every serving thread taking its turn
at SQLite's one writer. Now one thread at a time writes, and what came in meanwhile goes in its
next transaction (``services.requests_create``): the first command to find nobody writing leads,
writes every command waiting then (its own included), hands the lead to the first one that came
in during that write, and acks. Alone, a command writes its own row as before, with no hand-off;
under a burst, a batch a transaction. The ack still follows the commit, so an acked request is a
recorded one. A batch with a row the database refuses is written again one command at a time, so
that only that command fails; a batch the database cannot take at all (locked past its timeout,
gone) fails every command in it at once, as each one's own write would have, rather than once per
command in turn. A failed command is told that the control plane is unreachable, and nothing of
it is recorded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from django.db import DatabaseError, DataError, IntegrityError, close_old_connections

from controlplane import services
from controlplane.models import Request

log = logging.getLogger(__name__)

Outcome = tuple[Request, bool]


class _Asked:
    def __init__(self, asked: services.NewRequest) -> None:
        self.asked = asked
        self.outcome: Outcome | None = None
        self.error: Exception | None = None
        self.lead = False
        self.ready = threading.Event()  # written (``outcome`` or ``error``), or made the leader


class Intake:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Asked] = []
        self._leading = False  # a thread is writing, or has been handed the lead

    def record(self, asked: services.NewRequest) -> Outcome:
        """The request, once committed, and whether this call made it (False: a trigger seen before)."""
        mine = _Asked(asked)
        with self._lock:
            self._waiting.append(mine)
            if not self._leading:
                self._leading = mine.lead = True
        if not mine.lead:
            mine.ready.wait()
        if mine.outcome is None and mine.error is None:  # leading: write all that waits, then pass it on
            with self._lock:
                batch, self._waiting = self._waiting, []
            try:
                write(batch)
            finally:  # whatever happened, nobody waits for a lead that never comes
                with self._lock:
                    if self._waiting:
                        self._waiting[0].lead = True
                        self._waiting[0].ready.set()
                    else:
                        self._leading = False
        if mine.error is not None:
            raise mine.error
        assert mine.outcome is not None
        return mine.outcome


def write(batch: Sequence[_Asked]) -> None:
    """One transaction for the batch; if it fails, one each, so that a command fails only for its
    own sake (a row the database refuses, a trigger another bot recorded meanwhile)."""
    try:
        outcomes = services.requests_create([one.asked for one in batch])
    except (IntegrityError, DataError) as error:  # a row refused: the others are written alone
        if len(batch) > 1:
            for one in batch:
                write([one])
            return
        log.warning("intake.refused error=%r", error)
        batch[0].error = error
    except Exception as error:  # the database itself (locked, gone): every command is told at once
        log.warning("intake.failed requests=%s error=%r", len(batch), error)
        close_old_connections()  # one that broke is replaced before the next command
        for one in batch:
            one.error = error
    else:
        for one, outcome in zip(batch, outcomes, strict=True):
            one.outcome = outcome
    finally:
        for one in batch:
            if one.outcome is None and one.error is None:  # interrupted: its command is told, not left waiting
                one.error = DatabaseError("the control plane did not confirm the request")
            one.ready.set()
