"""``migrate --measure``: what each migration did to PostgreSQL's tables, measured as it ran.

A rehearsal runs the plan on a throwaway copy, so the probe can watch what the real run would do:
which statement first took which lock on which table, which tables were rewritten (a new
``relfilenode``), and how big the locked or rewritten tables were before the migration — the
figures a reviewer needs to judge how long the real run would block the tables it touches.

Locks are read from ``pg_locks`` for the migration's own backend after each statement but plain
data ones (SELECT, INSERT, UPDATE, DELETE, savepoints: a data migration may issue thousands), and
after the one recording the migration. An atomic migration holds every lock until its commit, so
the pairs (table, mode) new since the last look are the last statement's; what data statements
took is seen at the next look (before the next other statement, or at the record) and reported
as ``(data changes)``. A non-atomic migration releases its locks after each statement: it shows
only the locks a look still sees (usually none). Django records an unapplied migration after its
transaction commits, so the locks an unapply's data changes take after its last schema statement
are not seen either.

Only tables (relkind r, p, m) of user schemas are reported, never ``django_migrations``; a table
is named as ``relname``, ``schema.relname`` outside ``public``, and by its name before the
migration when it existed then. A table the migration created has no size before it: it has no
entry in ``sizes``. Measuring never fails a migration: a look that fails measures nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from migrabot_probe.protocol import LOCK_MODES as MODES
from migrabot_probe.protocol import Measured, MeasuredLock, MeasuredStatement

DATA_CHANGES = "(data changes)"
SQL_CHARACTERS = 200
# Data statements take only weak locks, and a data migration may issue thousands: no look after
# them (savepoints take none, and a look after one would give it the data statements' locks).
DATA = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|SAVEPOINT|RELEASE|ROLLBACK\s+TO)\b", re.IGNORECASE)
# Django records (or unrecords) the migration as its last statement: a look then sees the data changes.
RECORDER = re.compile(r"\bdjango_migrations\b", re.IGNORECASE)

_NAME = "CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END"
_USER_TABLES = (
    "c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg_toast%' AND c.relname <> 'django_migrations'"
)
_FROM_USER_TABLES = f"FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_TABLES}"
TABLES = f"SELECT c.oid, {_NAME}, c.relfilenode, pg_total_relation_size(c.oid) {_FROM_USER_TABLES}"
FILENODES = f"SELECT c.oid, c.relfilenode {_FROM_USER_TABLES}"
# A table the migration dropped has no pg_class row any more, and still its lock: no name then.
LOCKS = (
    f"SELECT l.relation, {_NAME}, l.mode FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation "
    "LEFT JOIN pg_namespace n ON n.oid = c.relnamespace "
    f"WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted AND (c.oid IS NULL OR {_USER_TABLES})"
)
# libpq's PQTRANS_INERROR, as psycopg 2 and 3 both report it (connection.info.transaction_status).
IN_FAILED_TRANSACTION = 3


def mode_name(pg_mode: str) -> str:
    """``AccessExclusiveLock`` → ``ACCESS EXCLUSIVE``."""
    return " ".join(re.findall(r"[A-Z][a-z]*", pg_mode.removesuffix("Lock"))).upper()


class Measure:
    """One migration at a time: ``start`` as it starts, ``finish`` as it succeeds, and the
    instance itself as the connection's execute wrapper (``connection.execute_wrapper``) in between."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._running = False
        self._before: dict[int, tuple[str, int, int]] = {}  # oid: (name, relfilenode, size)
        self._names: dict[int, str] = {}
        self._held: set[tuple[int, str]] = set()  # (oid, mode) seen in this migration
        self._statements: list[MeasuredStatement] = []
        self._unseen_data = False  # data statements ran since the last look

    def start(self) -> None:
        """Before the migration's transaction opens: the tables as they are before it."""
        self._running, self._held, self._statements, self._unseen_data = True, set(), [], False
        try:
            self.connection.ensure_connection()
            rows = _rows(self.connection.connection, TABLES)
        except Exception:  # measuring never fails a migration
            rows = []
        self._before = {oid: (name, filenode, size) for oid, name, filenode, size in rows}
        self._names = {oid: name for oid, (name, _, _) in self._before.items()}

    def finish(self) -> Measured:
        """After the migration succeeded (committed): what it locked, rewrote, and their sizes."""
        self._running = False
        try:
            after = dict(_rows(self.connection.connection, FILENODES))
        except Exception:  # measuring never fails a migration
            after = {}
        rewrote = {oid for oid, (_, filenode, _) in self._before.items() if after.get(oid, filenode) != filenode}
        touched = rewrote | {oid for oid, _ in self._held}
        return {
            "statements": self._statements,
            "rewrote": sorted(self._names[oid] for oid in rewrote),
            "sizes": dict(sorted((self._names[oid], self._before[oid][2]) for oid in touched if oid in self._before)),
        }

    def __call__(self, execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
        if not self._running:
            return execute(sql, params, many, context)
        text = str(sql)  # str(): a RunPython may pass psycopg's sql.Composed
        data = DATA.match(text) is not None
        if not data and self._unseen_data:
            self._look(context, DATA_CHANGES)  # what the data statements took, not this statement
        result = execute(sql, params, many, context)  # its own error propagates: no look after it
        if data and not RECORDER.search(text):
            self._unseen_data = True
        else:
            self._look(context, DATA_CHANGES if data else " ".join(text.split())[:SQL_CHARACTERS])
        return result

    def _look(self, context: dict[str, Any], sql: str) -> None:
        """Attribute the locks not held before in this migration to ``sql``: the strongest per table."""
        self._unseen_data = False
        try:
            # A cursor of its own on the raw connection: the statement's cursor may hold a result
            # its caller is about to read, and Django's cursor would come back through this wrapper.
            rows = _rows(context["connection"].connection, LOCKS)
        except Exception:  # measuring never fails a migration: this statement is not measured
            return
        strongest: dict[int, str] = {}
        for oid, name, pg_mode in rows:
            mode = mode_name(pg_mode)
            if mode not in MODES or (oid, mode) in self._held:  # SIReadLock: a predicate lock, not a table lock
                continue
            if name is None and oid not in self._names:
                continue  # dropped, and not a table before the migration (an index, or created by it)
            self._held.add((oid, mode))
            self._names.setdefault(oid, name)
            if oid not in strongest or MODES.index(mode) > MODES.index(strongest[oid]):
                strongest[oid] = mode
        if strongest:
            locks: list[MeasuredLock] = [{"table": self._names[oid], "mode": mode} for oid, mode in strongest.items()]
            self._statements.append({"sql": sql, "locks": sorted(locks, key=lambda lock: lock["table"])})


def _rows(raw: Any, query: str) -> list[tuple[Any, ...]]:
    """``query``'s rows on a DB-API connection; within a transaction in a savepoint, so that a look
    that fails cannot abort the migration's transaction, and none once that transaction failed."""
    if raw.info.transaction_status == IN_FAILED_TRANSACTION:
        return []
    with raw.cursor() as cursor:
        if raw.autocommit:
            cursor.execute(query)
            return list(cursor.fetchall())
        cursor.execute("SAVEPOINT migrabot_measure")
        try:
            cursor.execute(query)
            return list(cursor.fetchall())
        except Exception:
            cursor.execute("ROLLBACK TO SAVEPOINT migrabot_measure")
            raise
        finally:
            cursor.execute("RELEASE SAVEPOINT migrabot_measure")
