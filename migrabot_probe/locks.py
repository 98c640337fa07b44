"""The table locks each step takes on PostgreSQL, derived from the SQL it runs and the catalog.

Not guessed from operation names: each step's SQL (``sql.step_sql``, what ``sqlmigrate`` prints) is
split into statements by a small lexer (comments, '…', E'…', "…" and $tag$…$tag$ quoting: stdlib only,
sqlparse may not be installed in the target), and each statement is read the way PostgreSQL's
documentation of that command gives its lock (ALTER TABLE's subcommands each have a level and the
statement takes the strongest; CREATE INDEX SHARE; CONCURRENTLY SHARE UPDATE EXCLUSIVE; DML ROW
EXCLUSIVE; …). What a statement does to other tables comes from the catalog and from what earlier
statements of the plan did: adding a foreign key takes SHARE ROW EXCLUSIVE on the referenced table too,
dropping one (or a table holding one, or referenced by one) ACCESS EXCLUSIVE on the other side,
DROP INDEX locks the index's table. Whether a table is rewritten (every row copied under the lock)
or scanned (read in full under it) is decided the way ALTER TABLE decides it: a type change rewrites
unless the old type converts without one (varchar(n) to a longer varchar or to text, numeric to a
wider precision, …; the old type comes from the catalog), ADD COLUMN with a volatile default (or any
default before PostgreSQL 11) rewrites, SET NOT NULL and new CHECK / UNIQUE / foreign keys scan.

A statement that cannot be read is said to be so (mode ``unknown``, ranked just below ACCESS
EXCLUSIVE: it may take anything) rather than guessed low, and so is Python code (RunPython), whose
SQL nobody knows before it runs — a rehearsal measures it. Locks on a table that the same transaction
created are left out: nobody else can see that table yet, so nobody can wait for it.

Each step gets ``locks``: per table, the strongest mode it takes, whether it rewrites or scans it, and
the table's total size now (``pg_total_relation_size``; null for a table the plan creates).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from migrabot_probe.protocol import LOCK_MODES, UNKNOWN_LOCK
from migrabot_probe.protocol import lock_rank as rank

(ACCESS_SHARE, ROW_SHARE, ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE,
 ACCESS_EXCLUSIVE) = LOCK_MODES
UNKNOWN = UNKNOWN_LOCK
#: Django's line for an operation that has no SQL (RunPython, custom operations).
NO_SQL = "THIS OPERATION CANNOT BE WRITTEN AS SQL"
EXCERPT = 80


# --- the catalog: what the database holds now -------------------------------------------------------


@dataclass(frozen=True)
class TableFacts:
    size: int | None
    columns: dict[str, str]  # name -> type, as format_type spells it


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str
    columns: tuple[str, ...]
    references: str
    referenced_columns: tuple[str, ...]


class Catalog(Protocol):
    server_version: int  # server_version_num: 150004 for 15.4

    def table(self, name: str) -> TableFacts | None: ...

    def foreign_keys(self, table: str) -> list[ForeignKey]: ...  # those on the table and those referencing it

    def index_table(self, index: str) -> str | None: ...

    def volatile(self, function: str) -> bool | None: ...  # None: no such function


def quoted(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


_REL_NAME = "CASE WHEN pg_table_is_visible({0}.oid) THEN {0}.relname ELSE {1}.nspname || '.' || {0}.relname END"


class PostgresCatalog:
    """The catalog of the target's database, read as the derivation asks (each answer once)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.server_version = int(connection.pg_version)
        self._cache: dict[tuple[str, str], Any] = {}

    def _once(self, kind: str, key: str, read: Any) -> Any:
        if (kind, key) not in self._cache:
            with self.connection.cursor() as cursor:
                self._cache[(kind, key)] = read(cursor)
        return self._cache[(kind, key)]

    def table(self, name: str) -> TableFacts | None:
        def read(cursor: Any) -> TableFacts | None:
            cursor.execute(
                "SELECT c.oid, pg_total_relation_size(c.oid) FROM pg_class c "
                "WHERE c.oid = to_regclass(%s) AND c.relkind IN ('r', 'p', 'm')",
                [quoted(name)],
            )
            row = cursor.fetchone()
            if row is None:
                return None
            cursor.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped",
                [row[0]],
            )
            return TableFacts(int(row[1]), dict(cursor.fetchall()))

        facts: TableFacts | None = self._once("table", name, read)
        return facts

    def foreign_keys(self, table: str) -> list[ForeignKey]:
        def read(cursor: Any) -> list[ForeignKey]:
            cursor.execute(
                "SELECT con.conname, " + _REL_NAME.format("t", "tn") + ", " + _REL_NAME.format("r", "rn") + ", "
                "ARRAY(SELECT attname FROM pg_attribute a WHERE a.attrelid = con.conrelid "
                "AND a.attnum = ANY(con.conkey)), "
                "ARRAY(SELECT attname FROM pg_attribute a WHERE a.attrelid = con.confrelid "
                "AND a.attnum = ANY(con.confkey)) "
                "FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid "
                "JOIN pg_namespace tn ON tn.oid = t.relnamespace JOIN pg_class r ON r.oid = con.confrelid "
                "JOIN pg_namespace rn ON rn.oid = r.relnamespace "
                "WHERE con.contype = 'f' AND to_regclass(%s) IN (con.conrelid, con.confrelid) ORDER BY 1",
                [quoted(table)],
            )
            return [ForeignKey(n, t, tuple(c), r, tuple(rc)) for n, t, r, c, rc in cursor.fetchall()]

        keys: list[ForeignKey] = self._once("foreign_keys", table, read)
        return keys

    def index_table(self, index: str) -> str | None:
        def read(cursor: Any) -> str | None:
            cursor.execute(
                "SELECT " + _REL_NAME.format("t", "n") + " FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid "
                "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE x.indexrelid = to_regclass(%s)",
                [quoted(index)],
            )
            row = cursor.fetchone()
            return None if row is None else str(row[0])

        found: str | None = self._once("index", index, read)
        return found

    def volatile(self, function: str) -> bool | None:
        def read(cursor: Any) -> bool | None:
            cursor.execute("SELECT bool_or(provolatile = 'v') FROM pg_proc WHERE proname = %s", [function])
            row = cursor.fetchone()
            return None if row is None or row[0] is None else bool(row[0])

        found: bool | None = self._once("volatile", function, read)
        return found


def plan_locks(connection: Any, sqls: Sequence[str]) -> list[list[dict[str, Any]]]:
    """Each step's locks (``sqls``: the steps' SQL in plan order, as ``sql.steps_sql`` gives them)."""
    return derive(sqls, PostgresCatalog(connection))


# --- splitting SQL into statements ------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # word, name ("quoted"), string, number, param, op
    text: str  # a name's text is what it names ("" quotes undone); a word's is as written

    @property
    def word(self) -> str:
        """The keyword this token is, if it is an unquoted word ("" otherwise): case-insensitive."""
        return self.text.lower() if self.kind == "word" else ""

    @property
    def identifier(self) -> str | None:
        """The identifier this token names: unquoted words fold to lower case, as PostgreSQL folds them."""
        if self.kind == "name":
            return self.text
        return self.text.lower() if self.kind == "word" else None


@dataclass(frozen=True)
class Statement:
    text: str
    tokens: tuple[Token, ...]

    def excerpt(self) -> str:
        text = " ".join(self.text.split())
        return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


_WORD = re.compile(r"[^\W\d][\w$]*")
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DOLLAR = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_PARAM = re.compile(r"\$\d+")


def split_statements(sql: str) -> list[Statement]:
    return _lex(sql)[0]


def _lex(sql: str) -> tuple[list[Statement], list[str]]:
    """The statements of ``sql`` (split at top-level semicolons) and the text of its comments."""
    statements: list[Statement] = []
    comments: list[str] = []
    tokens: list[Token] = []
    start = end = i = 0
    length = len(sql)

    def add(kind: str, text: str, begin: int, stop: int) -> None:
        nonlocal start, end
        if not tokens:
            start = begin
        tokens.append(Token(kind, text))
        end = stop

    while i < length:
        char = sql[i]
        if char.isspace():
            i += 1
        elif sql.startswith("--", i):
            stop = sql.find("\n", i)
            stop = length if stop < 0 else stop
            comments.append(sql[i + 2 : stop].strip())
            i = stop
        elif sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < length and depth:  # PostgreSQL's block comments nest
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            comments.append(sql[i + 2 : j - 2].strip())
            i = j
        elif char == ";":
            if tokens:
                statements.append(Statement(sql[start:end], tuple(tokens)))
                tokens = []
            i += 1
        elif char == "'":
            stop = _quote_end(sql, i, "'", backslashes=bool(tokens) and end == i and tokens[-1].word == "e")
            if tokens and end == i and tokens[-1].word == "e":  # E'…': the E was read as a word
                tokens.pop()
            add("string", sql[i + 1 : stop - 1], i, stop)
            i = stop
        elif char == '"':
            stop = _quote_end(sql, i, '"', backslashes=False)
            add("name", sql[i + 1 : stop - 1].replace('""', '"'), i, stop)
            i = stop
        elif char == "$" and (dollar := _DOLLAR.match(sql, i)):
            stop = sql.find(dollar.group(), dollar.end())
            stop = length if stop < 0 else stop + len(dollar.group())
            add("string", sql[dollar.end() : stop - len(dollar.group())], i, stop)
            i = stop
        elif char == "$" and (param := _PARAM.match(sql, i)):
            add("param", param.group(), i, param.end())
            i = param.end()
        elif word := _WORD.match(sql, i):
            add("word", word.group(), i, word.end())
            i = word.end()
        elif number := _NUMBER.match(sql, i):
            add("number", number.group(), i, number.end())
            i = number.end()
        else:
            width = 2 if sql.startswith("::", i) else 1
            add("op", sql[i : i + width], i, i + width)
            i += width
    if tokens:
        statements.append(Statement(sql[start:end], tuple(tokens)))
    return statements, comments


def _quote_end(sql: str, i: int, quote: str, backslashes: bool) -> int:
    """The index just past the quoted text starting at ``sql[i]`` (a doubled quote stays inside)."""
    j = i + 1
    while j < len(sql):
        if backslashes and sql[j] == "\\":
            j += 2
        elif sql[j] == quote:
            if sql.startswith(quote, j + 1):
                j += 2
            else:
                return j + 1
        else:
            j += 1
    return len(sql)


class Cursor:
    """Reads one statement's tokens (or part of them) front to back."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, ahead: int = 0) -> str:
        token = self.peek(ahead)
        return token.word if token else ""

    def at(self, *words: str) -> bool:
        return all(self.word(k) == word for k, word in enumerate(words))

    def take(self, *words: str) -> bool:
        if self.at(*words):
            self.i += len(words)
            return True
        return False

    def at_op(self, op: str, ahead: int = 0) -> bool:
        token = self.peek(ahead)
        return token is not None and token.kind == "op" and token.text == op

    def next(self) -> Token | None:
        token = self.peek()
        self.i += token is not None
        return token

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def name(self) -> str | None:
        """A (schema-qualified) object name, as its parts joined by dots."""
        token = self.peek()
        if token is None or token.identifier is None:
            return None
        parts = [token.identifier]
        self.i += 1
        while self.at_op(".") and (following := self.peek(1)) is not None and following.identifier is not None:
            parts.append(following.identifier)
            self.i += 2
        return ".".join(parts)

    def names(self) -> list[str]:
        """A comma-separated list of names, each maybe preceded by ONLY and followed by ``*``."""
        found = []
        while True:
            self.take("only")
            name = self.name()
            if name is None:
                break
            found.append(name)
            if self.at_op("*"):
                self.i += 1
            if not self.at_op(","):
                break
            self.i += 1
        return found

    def group(self) -> list[Token]:
        """The tokens inside the parenthesised group at the cursor (the cursor moves past it)."""
        if not self.at_op("("):
            return []
        depth, start = 0, self.i
        while not self.done():
            token = self.tokens[self.i]
            self.i += 1
            if token.kind == "op" and token.text in "()":
                depth += 1 if token.text == "(" else -1
                if depth == 0:
                    break
        return list(self.tokens[start + 1 : self.i - 1])

    def until(self, words: Iterable[str] = (), ops: Iterable[str] = (",",)) -> list[Token]:
        """The tokens up to (not including) a top-level stop word or operator, or the end."""
        stop_words, stop_ops = set(words), set(ops)
        taken: list[Token] = []
        depth = 0
        while not self.done():
            token = self.tokens[self.i]
            if depth == 0 and (token.word in stop_words or (token.kind == "op" and token.text in stop_ops)):
                break
            if token.kind == "op" and token.text in "()[]":
                depth += 1 if token.text in "([" else -1
            taken.append(token)
            self.i += 1
        return taken

    def rest(self) -> list[Token]:
        taken = list(self.tokens[self.i :])
        self.i = len(self.tokens)
        return taken


def split_top_level(tokens: Sequence[Token]) -> list[list[Token]]:
    """``tokens`` cut at top-level commas (ALTER TABLE's subcommands, a table's elements)."""
    parts: list[list[Token]] = []
    cursor = Cursor(tokens)
    while not cursor.done():
        parts.append(cursor.until())
        if cursor.at_op(","):
            cursor.i += 1
    return [part for part in parts if part]


def type_text(tokens: Sequence[Token]) -> str:
    """A type as written (``varchar(200)``, ``timestamp with time zone``), spaced the way normalise reads it."""
    text = ""
    for token in tokens:
        piece = f'"{token.text}"' if token.kind == "name" and token.text != token.text.lower() else token.text
        if text and token.kind not in ("op",) and not text.endswith(("(", ",", "[", ".")):
            text += " "
        text += piece
    return text


# --- types: which changes PostgreSQL makes without rewriting the table ------------------------------

_ALIASES = {
    "character varying": "varchar", "char varying": "varchar", "character": "bpchar", "char": "bpchar",
    "int": "integer", "int4": "integer", "int8": "bigint", "int2": "smallint", "float8": "double precision",
    "float4": "real", "float": "double precision", "bool": "boolean", "decimal": "numeric",
    "timestamptz": "timestamp with time zone", "timestamp without time zone": "timestamp",
    "timetz": "time with time zone", "time without time zone": "time", "bit varying": "varbit",
}
_TYPE = re.compile(r"(?P<base>[a-z_][a-z0-9_ .\"]*?)\s*(?:\((?P<args>[^)]*)\))?(?P<zone>\s+with(?:out)? time zone)?")


def normalise(type_name: str) -> tuple[str, tuple[int, ...], int]:
    """(base type, its modifiers, array dimensions) of a type as Django writes it or format_type shows it."""
    text = " ".join(type_name.lower().replace("(", " (").split())
    dimensions = 0
    while text.endswith("[]"):
        text, dimensions = text[:-2].rstrip(), dimensions + 1
    match = _TYPE.fullmatch(text)
    if match is None:
        return text, (), dimensions
    base = (match.group("base").strip() + (match.group("zone") or "")).replace('"', "")
    base = _ALIASES.get(base, base)
    if base.startswith("pg_catalog."):
        base = _ALIASES.get(base[len("pg_catalog.") :], base[len("pg_catalog.") :])
    args = tuple(int(arg) for arg in re.findall(r"-?\d+", match.group("args") or ""))
    return base, args, dimensions


_LENGTHS = {"varchar", "varbit"}
_PRECISIONS = {"timestamp", "timestamp with time zone", "time", "time with time zone", "interval"}


def rewrites_on_type_change(old: str | None, new: str) -> bool:
    """Whether ALTER COLUMN … TYPE ``new`` rewrites a column of type ``old`` (None: not known, so yes)."""
    if old is None:
        return True
    (old_base, old_args, old_dims), (new_base, new_args, new_dims) = normalise(old), normalise(new)
    if (old_base, old_args, old_dims) == (new_base, new_args, new_dims):
        return False
    if old_dims or new_dims:
        return True
    if old_base == new_base and old_base in _LENGTHS | _PRECISIONS:
        return bool(new_args) and (not old_args or new_args[0] < old_args[0])
    if old_base == new_base == "numeric":
        if not new_args:
            return False
        old_scale, new_scale = (old_args + (0, 0))[1], (new_args + (0, 0))[1]
        return not old_args or new_scale != old_scale or new_args[0] < old_args[0]
    if old_base == "varchar" and new_base == "text":
        return False
    if old_base == "text" and new_base == "varchar":
        return bool(new_args)
    return (old_base, new_base) != ("cidr", "inet")


# --- the derivation ---------------------------------------------------------------------------------


@dataclass
class Lock:
    table: str
    mode: str
    rewrites: bool = False
    scans: bool = False
    statement: str | None = None  # for an unknown lock: what could not be read (None: Python code)


@dataclass
class _Table:
    columns: dict[str, str]  # name -> type
    new: bool = False  # created by the plan (so it has no size, and no keys in the catalog)


_AS_IN_CATALOG = _Table({})


@dataclass
class _Schema:
    """The database as the plan's statements leave it: the catalog, then each statement's changes."""

    catalog: Catalog
    tables: dict[str, _Table | None] = field(default_factory=dict)
    keys: list[ForeignKey] = field(default_factory=list)
    keys_read: set[str] = field(default_factory=set)
    indexes: dict[str, str | None] = field(default_factory=dict)
    sizes_from: dict[str, str] = field(default_factory=dict)  # a renamed table: its name now -> in the catalog
    step_names: dict[str, str] = field(default_factory=dict)  # renamed in this step: its name now -> before it

    def table(self, name: str) -> _Table | None:
        if name not in self.tables:
            facts = self.catalog.table(name)
            self.tables[name] = None if facts is None else _Table(dict(facts.columns))
        return self.tables[name]

    def foreign_keys(self, table: str) -> list[ForeignKey]:
        if table not in self.keys_read:
            self.keys_read.add(table)
            known = self.tables.get(table, _AS_IN_CATALOG)
            if known is not None and not known.new:  # not dropped or created by the plan: the catalog's keys
                seen = {(key.table, key.name) for key in self.keys}
                for key in self.catalog.foreign_keys(self.sizes_from.get(table, table)):
                    gone = [t for t in (key.table, key.references) if t in self.tables and self.tables[t] is None]
                    if (key.table, key.name) not in seen and not gone:
                        self.keys.append(key)
        return [key for key in self.keys if table in (key.table, key.references)]

    def index_table(self, index: str) -> str | None:
        if index not in self.indexes:
            self.indexes[index] = self.catalog.index_table(index)
        return self.indexes[index]

    def create(self, name: str, columns: dict[str, str]) -> None:
        self.tables[name] = _Table(columns, new=True)
        self.keys_read.add(name)  # its keys are the ones the plan adds

    def drop(self, name: str) -> None:
        self.foreign_keys(name)
        self.tables[name] = None
        self.keys = [key for key in self.keys if name not in (key.table, key.references)]
        self.indexes = {index: table for index, table in self.indexes.items() if table != name}

    def rename(self, old: str, new: str) -> None:
        self.foreign_keys(old)
        self.tables[new] = self.table(old)
        self.tables[old] = None
        self.keys_read.add(new)
        self.sizes_from[new] = self.sizes_from.pop(old, old)
        self.step_names[new] = self.step_names.pop(old, old)
        self.keys = [
            ForeignKey(
                key.name, new if key.table == old else key.table, key.columns,
                new if key.references == old else key.references, key.referenced_columns,
            )
            for key in self.keys
        ]
        self.indexes = {index: new if table == old else table for index, table in self.indexes.items()}

    def columns(self, table: str) -> dict[str, str] | None:
        found = self.table(table)
        return None if found is None else found.columns


class _Derivation:
    def __init__(self, catalog: Catalog) -> None:
        self.schema = _Schema(catalog)
        self.version = catalog.server_version
        self.catalog = catalog
        self.in_transaction = False
        self.private: set[str] = set()  # created in the open transaction: nobody else sees them

    def step(self, sql: str) -> list[dict[str, Any]]:
        statements, comments = _lex(sql)
        self.schema.step_names.clear()
        found: list[Lock] = []
        if any(comment == NO_SQL for comment in comments):
            found.append(Lock("", UNKNOWN))
        for statement in statements:
            try:
                locks = self.statement(statement)
            except (IndexError, ValueError, AttributeError):  # a shape this reader did not expect
                locks = [Lock(self._named(statement), UNKNOWN)]
            for lock in locks:
                if lock.mode == UNKNOWN and lock.statement is None:
                    lock.statement = statement.excerpt()
            found += [lock for lock in locks if lock.table not in self.private]
        if not self.in_transaction:
            self.private.clear()
        return self._strongest(found)

    def _strongest(self, locks: list[Lock]) -> list[dict[str, Any]]:
        """Per table (by the name it had when the step began: a rename is the same table), its strongest lock."""
        by_table: dict[str, Lock] = {}
        for lock in locks:
            table = self.schema.step_names.get(lock.table, lock.table)
            held = by_table.get(table)
            if held is None:
                by_table[table] = Lock(table, lock.mode, lock.rewrites, lock.scans, lock.statement)
                continue
            if rank(lock.mode) > rank(held.mode):
                held.mode, held.statement = lock.mode, lock.statement
            held.rewrites, held.scans = held.rewrites or lock.rewrites, held.scans or lock.scans
        return [self._entry(lock) for lock in by_table.values()]

    def _entry(self, lock: Lock) -> dict[str, Any]:
        now = next((new for new, old in self.schema.step_names.items() if old == lock.table), lock.table)
        known = self.schema.tables.get(now)
        size = None
        if lock.table and (known is None or not known.new):
            facts = self.catalog.table(self.schema.sizes_from.get(now, now))
            size = None if facts is None else facts.size
        entry: dict[str, Any] = {
            # A rewrite reads every row too.
            "table": lock.table, "mode": lock.mode, "rewrites": lock.rewrites, "scans": lock.scans or lock.rewrites,
            "size": size,
        }
        if lock.mode == UNKNOWN:
            entry["statement"] = lock.statement
        return entry

    # --- one statement ---

    def statement(self, statement: Statement) -> list[Lock]:
        cursor = Cursor(statement.tokens)
        first = cursor.word()
        if first in ("begin", "start"):
            self.in_transaction = True
            return []
        if first in ("commit", "end", "rollback", "abort"):
            if not cursor.at("rollback", "to"):
                self.in_transaction = False
                self.private.clear()
            return []
        if first in ("savepoint", "release", "set", "reset", "show"):
            return []  # SET CONSTRAINTS … IMMEDIATE, SET lock_timeout: no table lock
        reader = {
            "alter": self.alter, "create": self.create, "drop": self.drop, "truncate": self.truncate,
            "insert": self.dml, "update": self.dml, "delete": self.dml, "merge": self.dml,
            "select": self.select, "comment": self.comment, "lock": self.lock, "analyze": self.maintenance,
            "analyse": self.maintenance, "vacuum": self.maintenance, "cluster": self.maintenance,
            "reindex": self.reindex, "refresh": self.refresh,
        }.get(first)
        if reader is None:
            return [Lock(self._named(statement), UNKNOWN)]
        cursor.i = 1
        return reader(cursor, statement)

    def _named(self, statement: Statement) -> str:
        """The first existing table a statement names, for a lock that cannot be read ("" if none)."""
        for token in statement.tokens:
            name = token.identifier
            if name and token.kind == "name" and self.schema.table(name) is not None:
                return name
        return ""

    def unknown(self, statement: Statement, table: str | None = None) -> list[Lock]:
        return [Lock(table if table is not None else self._named(statement), UNKNOWN)]

    # ALTER …

    def alter(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        if cursor.take("table") or cursor.take("foreign", "table"):
            return self.alter_table(cursor, statement)
        if cursor.take("index"):
            return self.alter_index(cursor, statement)
        if cursor.at("materialized", "view"):
            cursor.i += 2
            return self.alter_table(cursor, statement)
        if cursor.word() in ("sequence", "view", "type", "function", "extension", "schema", "domain", "collation",
                             "procedure", "role", "user", "database", "default", "text", "operator", "aggregate"):
            if cursor.take("type") or cursor.take("domain"):
                return self.unknown(statement)  # may change columns of that type in any table
            return []
        return self.unknown(statement)

    def alter_index(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        exists = cursor.take("if", "exists")
        index = cursor.name()
        if index is None:
            return self.unknown(statement)
        table = self.schema.index_table(index)
        if cursor.take("rename", "to"):
            renamed = cursor.name()
            if renamed:
                self.schema.indexes[renamed], self.schema.indexes[index] = table, None
            return []  # SHARE UPDATE EXCLUSIVE on the index only: the table's queries go on
        if table is None:
            return [] if exists else self.unknown(statement)
        if cursor.take("set", "tablespace"):
            return [Lock(table, ACCESS_EXCLUSIVE)]
        if cursor.word() in ("set", "reset") and cursor.at_op("(", ahead=1):
            return [Lock(table, SHARE_UPDATE_EXCLUSIVE)]
        if cursor.take("alter"):  # ALTER COLUMN n SET STATISTICS
            return [Lock(table, SHARE_UPDATE_EXCLUSIVE)]
        return self.unknown(statement, table)

    def alter_table(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        if cursor.at("all"):
            return self.unknown(statement)
        exists = cursor.take("if", "exists")
        cursor.take("only")
        table = cursor.name()
        if table is None:
            return self.unknown(statement)
        if cursor.at_op("*"):
            cursor.i += 1
        if exists and self.schema.table(table) is None:
            return []
        if cursor.take("rename"):
            if cursor.take("to"):
                renamed = cursor.name()
                if renamed:
                    private = table in self.private
                    self.schema.rename(table, renamed)
                    if private:
                        self.private.add(renamed)
                    return [] if private else [Lock(table, ACCESS_EXCLUSIVE)]
                return self.unknown(statement, table)
            if cursor.take("constraint"):
                old = cursor.name()
                cursor.take("to")
                new = cursor.name()
                if old and new and self.schema.indexes.get(old, "") == table:
                    self.schema.indexes[new] = table
                for key in self.schema.foreign_keys(table):
                    if key.name == old and key.table == table and new:
                        self.schema.keys[self.schema.keys.index(key)] = ForeignKey(
                            new, key.table, key.columns, key.references, key.referenced_columns
                        )
                return [Lock(table, ACCESS_EXCLUSIVE)]
            cursor.take("column")
            old = cursor.name()
            cursor.take("to")
            new = cursor.name()
            columns = self.schema.columns(table)
            if old and new and columns is not None and old in columns:
                columns[new] = columns.pop(old)
            return [Lock(table, ACCESS_EXCLUSIVE)]
        if cursor.take("set", "schema"):
            return [Lock(table, ACCESS_EXCLUSIVE)]
        locks: list[Lock] = []
        for action in split_top_level(cursor.rest()):
            locks += self.alter_action(table, Cursor(action), statement)
        return locks or self.unknown(statement, table)

    def alter_action(self, table: str, cursor: Cursor, statement: Statement) -> list[Lock]:
        if cursor.take("add"):
            if cursor.word() in ("constraint", "check", "unique", "primary", "foreign", "exclude"):
                return self.table_constraint(table, cursor, statement, existing=True)
            cursor.take("column")
            cursor.take("if", "not", "exists")
            return self.add_column(table, cursor)
        if cursor.take("drop"):
            if cursor.take("constraint"):
                return self.drop_constraint(table, cursor)
            cursor.take("column")
            cursor.take("if", "exists")
            return self.drop_column(table, cursor)
        if cursor.take("alter"):
            if cursor.take("constraint"):
                return [Lock(table, ACCESS_EXCLUSIVE)]
            cursor.take("column")
            column = cursor.name()
            if column is None:
                return self.unknown(statement, table)
            return self.alter_column(table, column, cursor, statement)
        if cursor.take("validate", "constraint"):
            name = cursor.name()
            locks = [Lock(table, SHARE_UPDATE_EXCLUSIVE, scans=True)]
            for key in self.schema.foreign_keys(table):
                if key.name == name and key.table == table:
                    locks.append(Lock(key.references, ROW_SHARE))
            return locks
        if cursor.take("set"):
            if cursor.word() in ("tablespace", "logged", "unlogged") or cursor.at("access", "method"):
                return [Lock(table, ACCESS_EXCLUSIVE, rewrites=True)]
            if cursor.take("without", "cluster"):
                return [Lock(table, SHARE_UPDATE_EXCLUSIVE)]
            if cursor.at_op("("):
                return [Lock(table, self._options_mode(cursor.group()))]
            return [Lock(table, ACCESS_EXCLUSIVE)]
        if cursor.take("reset"):
            return [Lock(table, self._options_mode(cursor.group()))]
        if cursor.take("cluster", "on"):
            return [Lock(table, SHARE_UPDATE_EXCLUSIVE)]
        if cursor.word() in ("enable", "disable"):
            cursor.i += 1
            if not cursor.take("replica"):
                cursor.take("always")
            return [Lock(table, SHARE_ROW_EXCLUSIVE if cursor.word() == "trigger" else ACCESS_EXCLUSIVE)]
        if cursor.word() in ("force", "no", "inherit", "of", "not", "owner", "replica"):
            return [Lock(table, ACCESS_EXCLUSIVE)]
        if cursor.take("attach", "partition"):
            partition = cursor.name()
            return [Lock(table, SHARE_UPDATE_EXCLUSIVE)] + ([Lock(partition, ACCESS_EXCLUSIVE, scans=True)]
                                                            if partition else [])
        if cursor.take("detach", "partition"):
            partition = cursor.name()
            mode = SHARE_UPDATE_EXCLUSIVE if cursor.take("concurrently") else ACCESS_EXCLUSIVE
            return [Lock(table, mode)] + ([Lock(partition, mode)] if partition else [])
        return self.unknown(statement, table)

    @staticmethod
    def _options_mode(options: Sequence[Token]) -> str:
        """SET (…) / RESET (…) on a table: the vacuum and planner options take SHARE UPDATE EXCLUSIVE."""
        names = [Cursor(part).name() or "" for part in split_top_level(options)]
        light = ("fillfactor", "autovacuum_", "toast.autovacuum_", "parallel_workers", "toast_tuple_target",
                 "vacuum_", "log_autovacuum_min_duration", "toast.vacuum_", "toast.log_autovacuum")
        return SHARE_UPDATE_EXCLUSIVE if names and all(n.startswith(light) for n in names) else ACCESS_EXCLUSIVE

    def add_column(self, table: str, cursor: Cursor) -> list[Lock]:
        column = cursor.name()
        type_tokens = cursor.until(_COLUMN_CONSTRAINTS)
        type_name = type_text(type_tokens)
        lock = Lock(table, ACCESS_EXCLUSIVE)
        locks = [lock]
        has_default = False
        base = normalise(type_name)[0]
        if base in ("serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"):
            lock.rewrites = True  # a nextval() default: each row gets its own value
        not_null = False
        while not cursor.done():
            word = cursor.word()
            if cursor.take("default"):
                first = cursor.next()
                expression = ([first] if first else []) + cursor.until(_COLUMN_CONSTRAINTS)
                has_default = not (len(expression) == 1 and expression[0].word == "null")
                if has_default and (self.version < 110000 or self._volatile(expression)):
                    lock.rewrites = True
            elif cursor.take("not", "null"):
                not_null = True
            elif cursor.take("check"):
                cursor.group()
                lock.scans = True
            elif word in ("unique", "primary"):
                cursor.until(_COLUMN_CONSTRAINTS - {"unique", "primary", "key"})
                lock.scans = True  # builds an index
            elif cursor.take("references"):
                referenced = cursor.name()
                if referenced:
                    locks.append(Lock(referenced, SHARE_ROW_EXCLUSIVE))
                    if column:
                        self.schema.foreign_keys(table)
                        self.schema.keys.append(ForeignKey("", table, (column,), referenced, ()))
                _skip_references_tail(cursor)
            elif cursor.take("generated"):
                lock.rewrites = True  # an identity column or a stored generated one: every row gets a value
                cursor.until(_COLUMN_CONSTRAINTS - {"generated"})
            else:
                cursor.next()
                cursor.until(_COLUMN_CONSTRAINTS)
        if not_null and not has_default and not lock.rewrites:
            lock.scans = True  # every existing row is checked for NULL
        columns = self.schema.columns(table)
        if column and columns is not None:
            columns[column] = type_name
        return locks

    def _volatile(self, expression: Sequence[Token]) -> bool:
        """Whether a default calls a volatile function (per the catalog; one it does not know counts)."""
        return any(self.catalog.volatile(function) is not False for function in _calls(expression))

    def drop_column(self, table: str, cursor: Cursor) -> list[Lock]:
        column = cursor.name()
        locks = [Lock(table, ACCESS_EXCLUSIVE)]
        cascade = cursor.take("cascade")
        for key in list(self.schema.foreign_keys(table)):
            if key.table == table and column in key.columns:
                locks.append(Lock(key.references, ACCESS_EXCLUSIVE))
                self.schema.keys.remove(key)
            elif key.references == table and column in key.referenced_columns and cascade:
                locks.append(Lock(key.table, ACCESS_EXCLUSIVE))
                self.schema.keys.remove(key)
        columns = self.schema.columns(table)
        if columns is not None and column:
            columns.pop(column, None)
        return locks

    def drop_constraint(self, table: str, cursor: Cursor) -> list[Lock]:
        cursor.take("if", "exists")
        name = cursor.name()
        locks = [Lock(table, ACCESS_EXCLUSIVE)]
        for key in list(self.schema.foreign_keys(table)):
            if key.name == name and key.table == table:
                if key.references != table:
                    locks.append(Lock(key.references, ACCESS_EXCLUSIVE))
                self.schema.keys.remove(key)
        if name and self.schema.indexes.get(name) == table:
            self.schema.indexes[name] = None
        return locks

    def alter_column(self, table: str, column: str, cursor: Cursor, statement: Statement) -> list[Lock]:
        if cursor.take("type") or cursor.take("set", "data", "type"):
            new = type_text(cursor.until({"collate", "using"}))
            collated = using = False
            if cursor.take("collate"):
                cursor.name()
                collated = True
            if cursor.take("using"):
                using = not self._plain_cast(cursor.rest(), column)
            columns = self.schema.columns(table)
            old = columns.get(column) if columns is not None else None
            rewrites = using or rewrites_on_type_change(old, new)
            locks = [Lock(table, ACCESS_EXCLUSIVE, rewrites=rewrites, scans=rewrites or collated)]
            for key in self.schema.foreign_keys(table):  # the constraint is rebuilt and checked again
                if key.table == table and column in key.columns and key.references != table:
                    locks.append(Lock(key.references, ACCESS_EXCLUSIVE))
                elif key.references == table and column in key.referenced_columns and key.table != table:
                    locks.append(Lock(key.table, ACCESS_EXCLUSIVE, scans=True))
            if columns is not None:
                columns[column] = new
            return locks
        if cursor.take("set", "not", "null"):
            return [Lock(table, ACCESS_EXCLUSIVE, scans=True)]
        if cursor.take("set", "statistics"):
            return [Lock(table, SHARE_UPDATE_EXCLUSIVE)]
        if cursor.word() in ("set", "reset") and cursor.at_op("(", ahead=1):
            return [Lock(table, SHARE_UPDATE_EXCLUSIVE)]  # attribute options (n_distinct, …)
        if cursor.word() in ("set", "drop", "add", "restart"):
            return [Lock(table, ACCESS_EXCLUSIVE)]  # defaults, NOT NULL off, identity, storage, expression
        return self.unknown(statement, table)

    @staticmethod
    def _plain_cast(tokens: Sequence[Token], column: str) -> bool:
        """USING "column" or USING "column"::type: the conversion the type change makes anyway."""
        return bool(tokens) and tokens[0].identifier == column and (
            len(tokens) == 1 or (tokens[1].kind == "op" and tokens[1].text == "::")
        )

    def table_constraint(self, table: str, cursor: Cursor, statement: Statement, existing: bool) -> list[Lock]:
        """ADD [CONSTRAINT name] CHECK | UNIQUE | PRIMARY KEY | EXCLUDE | FOREIGN KEY … (also in CREATE TABLE)."""
        name = cursor.name() if cursor.take("constraint") else None
        rest = Cursor(cursor.rest())
        valid = not any(rest.tokens[k].word == "not" and rest.tokens[k + 1].word == "valid"
                        for k in range(len(rest.tokens) - 1))
        if rest.take("check") or rest.take("exclude"):
            return [Lock(table, ACCESS_EXCLUSIVE, scans=valid)] if existing else []
        if rest.take("unique") or rest.take("primary", "key"):
            using_index = any(rest.tokens[k].word == "using" and rest.tokens[k + 1].word == "index"
                              for k in range(len(rest.tokens) - 1))
            if name:
                self.schema.indexes[name] = table
            return [Lock(table, ACCESS_EXCLUSIVE, scans=not using_index)] if existing else []
        if rest.take("foreign", "key"):
            columns = tuple(t.identifier or "" for t in rest.group() if t.identifier)
            if not rest.take("references"):
                return self.unknown(statement, table)
            referenced = rest.name()
            if referenced is None:
                return self.unknown(statement, table)
            referenced_columns = tuple(t.identifier or "" for t in rest.group() if t.identifier)
            self.schema.foreign_keys(table)
            self.schema.keys.append(ForeignKey(name or "", table, columns, referenced, referenced_columns))
            locks = [Lock(referenced, SHARE_ROW_EXCLUSIVE)]
            return ([Lock(table, SHARE_ROW_EXCLUSIVE, scans=valid)] if existing else []) + locks
        return self.unknown(statement, table)

    # CREATE …

    def create(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        cursor.take("or", "replace")
        unique = cursor.take("unique")
        if cursor.take("index"):
            return self.create_index(cursor, statement)
        if unique:
            return self.unknown(statement)
        for word in ("global", "local", "temporary", "temp", "unlogged"):
            cursor.take(word)
        if cursor.take("table"):
            return self.create_table(cursor, statement)
        cursor.take("constraint")
        # CREATE TRIGGER … ON table, CREATE POLICY … ON table, CREATE RULE … TO table, CREATE STATISTICS … FROM table
        targets = {"trigger": "on", "policy": "on", "rule": "to", "statistics": "from"}
        kind = cursor.word()
        if kind in targets:
            after = next((k for k in range(cursor.i + 1, len(statement.tokens))
                          if statement.tokens[k].word == targets[kind]), None)
            if after is None:
                return self.unknown(statement)
            target = Cursor(statement.tokens[after + 1 :])
            target.take("only")
            table = target.name()
            if table is None:
                return self.unknown(statement)
            mode = {"trigger": SHARE_ROW_EXCLUSIVE, "statistics": SHARE_UPDATE_EXCLUSIVE}.get(kind, ACCESS_EXCLUSIVE)
            return [Lock(table, mode)]
        if cursor.word() in _NO_TABLE_LOCK:
            return []  # a new object of its own: no existing table is locked
        return self.unknown(statement)

    def create_index(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        concurrently = cursor.take("concurrently")
        cursor.take("if", "not", "exists")
        index = None if cursor.at("on") else cursor.name()
        if not cursor.take("on"):
            return self.unknown(statement)
        cursor.take("only")
        table = cursor.name()
        if table is None:
            return self.unknown(statement)
        if index:
            self.schema.indexes[index] = table
        return [Lock(table, SHARE_UPDATE_EXCLUSIVE if concurrently else SHARE, scans=True)]

    def create_table(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        exists = cursor.take("if", "not", "exists")
        table = cursor.name()
        if table is None:
            return self.unknown(statement)
        if exists and self.schema.table(table) is not None:
            return []
        locks: list[Lock] = []
        columns: dict[str, str] = {}
        if cursor.take("partition", "of"):
            parent = cursor.name()
            locks += [Lock(parent, ACCESS_EXCLUSIVE)] if parent else self.unknown(statement)
        elif cursor.take("of") or cursor.at("as") or not cursor.at_op("("):
            return self.unknown(statement)
        self.schema.create(table, columns)
        if self.in_transaction:
            self.private.add(table)
        for element in split_top_level(cursor.group()):
            part = Cursor(element)
            if part.word() in ("constraint", "check", "unique", "primary", "foreign", "exclude"):
                locks += self.table_constraint(table, part, statement, existing=False)
                continue
            if part.take("like"):
                return self.unknown(statement)
            column = part.name()
            type_name = type_text(part.until(_COLUMN_CONSTRAINTS))
            if column:
                columns[column] = type_name
            while not part.done():
                if part.take("references"):
                    referenced = part.name()
                    if referenced:
                        locks.append(Lock(referenced, SHARE_ROW_EXCLUSIVE))
                        self.schema.keys.append(ForeignKey("", table, (column or "",), referenced, ()))
                else:
                    part.next()
        if cursor.take("inherits"):
            locks += [Lock(parent, UNKNOWN) for parent in Cursor(cursor.group()).names()]
        return locks

    # DROP …, TRUNCATE

    def drop(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        cascade = any(token.word == "cascade" for token in statement.tokens)
        if cursor.take("table") or cursor.take("foreign", "table"):
            exists = cursor.take("if", "exists")
            locks: list[Lock] = []
            for table in cursor.names():
                if exists and self.schema.table(table) is None:
                    continue
                locks.append(Lock(table, ACCESS_EXCLUSIVE))
                for key in self.schema.foreign_keys(table):
                    other = key.references if key.table == table else key.table
                    if other != table:
                        locks.append(Lock(other, ACCESS_EXCLUSIVE))  # its foreign keys go with it
                self.schema.drop(table)
            return locks
        if cursor.take("index"):
            concurrently = cursor.take("concurrently")
            exists = cursor.take("if", "exists")
            locks = []
            for index in cursor.names():
                indexed = self.schema.index_table(index)
                if indexed is None:
                    locks += [] if exists else self.unknown(statement)
                    continue
                self.schema.indexes[index] = None
                locks.append(Lock(indexed, SHARE_UPDATE_EXCLUSIVE if concurrently else ACCESS_EXCLUSIVE))
            return locks
        if cursor.word() in ("trigger", "rule", "policy"):
            cursor.i += 1
            cursor.take("if", "exists")
            cursor.name()
            if not cursor.take("on"):
                return self.unknown(statement)
            target = cursor.name()
            return [Lock(target, ACCESS_EXCLUSIVE)] if target else self.unknown(statement)
        if cursor.word() in _NO_TABLE_LOCK and not cascade:
            return []  # not a table; with CASCADE it may take columns or defaults of tables with it
        return self.unknown(statement)

    def truncate(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        cursor.take("table")
        tables = cursor.names()
        cascade = any(token.word == "cascade" for token in statement.tokens)
        locks = [Lock(table, ACCESS_EXCLUSIVE) for table in tables]
        if cascade:
            for table in tables:
                locks += [Lock(key.table, ACCESS_EXCLUSIVE) for key in self.schema.foreign_keys(table)
                          if key.references == table]
        return locks or self.unknown(statement)

    # DML, reads, the rest

    def dml(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        verb = statement.tokens[0].word
        cursor.take("into") or cursor.take("from")
        cursor.take("only")
        table = cursor.name()
        if table is None:
            return self.unknown(statement)
        whole = verb in ("update", "delete") and not any(token.word == "where" for token in statement.tokens)
        return [Lock(table, ROW_EXCLUSIVE, scans=whole)]

    def select(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        tokens = statement.tokens
        if any(function not in _SAFE_CALLS for function in _calls(tokens)):
            return self.unknown(statement)  # a function may do anything
        mode = ROW_SHARE if any(token.word == "for" for token in tokens) else ACCESS_SHARE
        locks = []
        for index, token in enumerate(tokens):
            if token.word in ("from", "join"):
                table = Cursor(tokens[index + 1 :]).name()
                if table:
                    locks.append(Lock(table, mode))
        return locks

    def comment(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        if not cursor.take("on"):
            return self.unknown(statement)
        if cursor.take("table"):
            table = cursor.name()
        elif cursor.take("column"):
            column = cursor.name()
            table = column.rpartition(".")[0] if column else None
        else:
            return []  # on another kind of object: no table lock
        return [Lock(table, SHARE_UPDATE_EXCLUSIVE)] if table else self.unknown(statement)

    def lock(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        cursor.take("table")
        tables = cursor.names()
        mode = ACCESS_EXCLUSIVE
        if cursor.take("in"):
            words = [token.text.upper() for token in cursor.until({"mode"})]
            mode = " ".join(words)
        return [Lock(table, mode if mode in LOCK_MODES else UNKNOWN) for table in tables] or self.unknown(statement)

    def maintenance(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        verb = statement.tokens[0].word
        options = [token.word for token in cursor.group()] if cursor.at_op("(") else []
        while cursor.word() in ("full", "freeze", "verbose", "analyze", "analyse"):
            options.append(cursor.word())
            cursor.i += 1
        tables = [name for name in cursor.names() if name]
        if not tables:
            return self.unknown(statement)
        if verb == "cluster" or "full" in options:
            return [Lock(table, ACCESS_EXCLUSIVE, rewrites=True) for table in tables]
        return [Lock(table, SHARE_UPDATE_EXCLUSIVE, scans=verb == "vacuum") for table in tables]

    def reindex(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        if cursor.at_op("("):
            cursor.group()
        kind = cursor.word()
        cursor.i += 1
        concurrently = cursor.take("concurrently")
        name = cursor.name()
        table = name if kind == "table" else self.schema.index_table(name) if kind == "index" and name else None
        if table is None:
            return self.unknown(statement)
        # REINDEX blocks writes to the table (and reads that would use the index being rebuilt).
        return [Lock(table, SHARE_UPDATE_EXCLUSIVE if concurrently else SHARE, scans=True)]

    def refresh(self, cursor: Cursor, statement: Statement) -> list[Lock]:
        if not cursor.take("materialized", "view"):
            return self.unknown(statement)
        concurrently = cursor.take("concurrently")
        view = cursor.name()
        if view is None:
            return self.unknown(statement)
        return [Lock(view, EXCLUSIVE if concurrently else ACCESS_EXCLUSIVE, rewrites=not concurrently,
                     scans=concurrently)]


#: Words that end a column's type (or a default's expression) in a column definition.
_COLUMN_CONSTRAINTS = frozenset(
    {"default", "not", "null", "check", "unique", "primary", "references", "constraint", "generated", "collate",
     "compression", "storage", "deferrable", "initially"}
)
#: Words followed by "(" that are SQL's own syntax, not calls of a function in pg_proc.
_SYNTAX = frozenset(
    {"in", "exists", "any", "all", "some", "values", "and", "or", "not", "on", "using", "as", "from", "join",
     "where", "over", "filter", "select", "lateral", "when", "then", "else", "case", "cast", "array", "row", "by",
     "with", "union", "intersect", "except", "between", "is", "into", "like", "ilike", "similar", "set",
     "returning", "coalesce", "nullif", "greatest", "least", "trim", "position", "overlay", "extract", "table"}
)
#: Calls Django's own SELECTs make (sequence resets): they change no table.
_SAFE_CALLS = frozenset(
    {"setval", "nextval", "currval", "pg_get_serial_sequence", "max", "min", "count", "set_config",
     "current_setting"}
)


def _calls(tokens: Sequence[Token]) -> list[str]:
    """The functions ``tokens`` call: a name followed by "(", less SQL's syntax and a cast's type (::varchar(9))."""
    found = []
    for index, token in enumerate(tokens[:-1]):
        following, previous = tokens[index + 1], tokens[index - 1] if index else None
        if token.identifier is None or following.kind != "op" or following.text != "(" or token.word in _SYNTAX:
            continue
        if previous is not None and ((previous.kind == "op" and previous.text == "::") or previous.word == "as"):
            continue
        found.append(token.identifier)
    return found


def _skip_references_tail(cursor: Cursor) -> None:
    """Past REFERENCES table's [(columns)] [MATCH …] [ON DELETE | UPDATE action [(columns)]]…"""
    cursor.group()
    while True:
        if cursor.take("match"):
            cursor.next()
        elif cursor.take("on"):
            cursor.next()  # DELETE | UPDATE
            if cursor.take("set"):
                cursor.next()  # NULL | DEFAULT
                cursor.group()
            elif not cursor.take("no", "action"):
                cursor.next()  # CASCADE | RESTRICT
        else:
            return
#: Objects whose CREATE / ALTER / DROP lock no table.
_NO_TABLE_LOCK = frozenset(
    {"sequence", "view", "materialized", "function", "procedure", "extension", "type", "domain", "schema",
     "collation", "aggregate", "operator", "text", "cast", "role", "user", "database", "publication",
     "subscription", "language", "conversion", "server", "event", "access", "statistics"}
)


def derive(sqls: Sequence[str], catalog: Catalog) -> list[list[dict[str, Any]]]:
    """The locks of each step, the steps' SQL in plan order (each step sees what the earlier ones did)."""
    derivation = _Derivation(catalog)
    return [derivation.step(sql) for sql in sqls]
