"""The probe's derivation of PostgreSQL locks from a step's SQL (``migrabot_probe.locks``), without a server.

The catalog is a stand-in holding the example project's tables. Each expectation was checked once against
a real PostgreSQL 15 (pg_locks in the statement's transaction, relfilenode for rewrites, the table's scan
counter for scans) — tests/workers/test_probe_plan_details.py does that for the example's real steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from migrabot_probe.locks import (
    ForeignKey,
    TableFacts,
    derive,
    normalise,
    rewrites_on_type_change,
    split_statements,
)

MB = 1024 * 1024
CUSTOMER_FK = ForeignKey("order_buyer_fk", "marketplace_order", ("buyer_id",), "accounts_customer", ("id",))
LISTING_FK = ForeignKey("order_listing_fk", "marketplace_order", ("listing_id",), "marketplace_listing", ("id",))
SELLER_FK = ForeignKey("listing_seller_fk", "marketplace_listing", ("seller_id",), "accounts_customer", ("id",))


@dataclass
class Catalog:
    """What the example's database holds, sized like a production one."""

    server_version: int = 150004
    tables: dict[str, TableFacts] = field(
        default_factory=lambda: {
            "accounts_customer": TableFacts(
                300 * MB, {"id": "bigint", "email": "character varying(254)", "name": "character varying(150)"}
            ),
            "marketplace_listing": TableFacts(
                40 * MB, {"id": "bigint", "title": "character varying(120)", "price_cents": "integer",
                          "seller_id": "bigint"}
            ),
            "marketplace_order": TableFacts(
                12 * 1024 * MB, {"id": "bigint", "quantity": "integer", "status": "character varying(20)",
                                 "buyer_id": "bigint", "listing_id": "bigint",
                                 "placed_at": "timestamp with time zone"}
            ),
        }
    )
    keys: list[ForeignKey] = field(default_factory=lambda: [CUSTOMER_FK, LISTING_FK, SELLER_FK])
    indexes: dict[str, str] = field(default_factory=lambda: {"marketplace_order_open_idx": "marketplace_order"})
    volatile_functions: dict[str, bool] = field(
        default_factory=lambda: {"gen_random_uuid": True, "random": True, "clock_timestamp": True, "now": False,
                                 "statement_timestamp": False, "lower": False}
    )
    asked: list[str] = field(default_factory=list)

    def table(self, name: str) -> TableFacts | None:
        self.asked.append(name)
        return self.tables.get(name)

    def foreign_keys(self, table: str) -> list[ForeignKey]:
        return [key for key in self.keys if table in (key.table, key.references)]

    def index_table(self, index: str) -> str | None:
        return self.indexes.get(index)

    def volatile(self, function: str) -> bool | None:
        return self.volatile_functions.get(function)


def locks(*steps: str, catalog: Catalog | None = None) -> list[dict[str, tuple[Any, ...]]]:
    """Each step's locks as {table: (mode, rewrites, scans)}."""
    derived = derive(steps, catalog or Catalog())
    return [{lock["table"]: (lock["mode"], lock["rewrites"], lock["scans"]) for lock in step} for step in derived]


def one(statement: str, catalog: Catalog | None = None) -> dict[str, tuple[Any, ...]]:
    (found,) = locks(f"BEGIN;\n{statement};\nCOMMIT;", catalog=catalog)
    return found


AE, SRE, SHARE, SUE, RE = "ACCESS EXCLUSIVE", "SHARE ROW EXCLUSIVE", "SHARE", "SHARE UPDATE EXCLUSIVE", "ROW EXCLUSIVE"
ORDER = '"marketplace_order"'

# (statement, {table: (mode, rewrites, scans)}), as PostgreSQL 15 took them.
CASES = {
    # ALTER TABLE takes ACCESS EXCLUSIVE unless the documentation says less.
    "drop column": (f'ALTER TABLE {ORDER} DROP COLUMN "status" CASCADE', {"marketplace_order": (AE, False, False)}),
    "rename column": (f'ALTER TABLE {ORDER} RENAME COLUMN "status" TO "state"',
                      {"marketplace_order": (AE, False, False)}),
    "rename table": (f'ALTER TABLE {ORDER} RENAME TO "shop_order"', {"marketplace_order": (AE, False, False)}),
    "set default": (f"ALTER TABLE {ORDER} ALTER COLUMN \"status\" SET DEFAULT 'new'",
                    {"marketplace_order": (AE, False, False)}),
    "drop not null": (f'ALTER TABLE {ORDER} ALTER COLUMN "status" DROP NOT NULL',
                      {"marketplace_order": (AE, False, False)}),
    "set not null scans": (f'ALTER TABLE {ORDER} ALTER COLUMN "status" SET NOT NULL',
                           {"marketplace_order": (AE, False, True)}),
    "set statistics": (f'ALTER TABLE {ORDER} ALTER COLUMN "status" SET STATISTICS 500',
                       {"marketplace_order": (SUE, False, False)}),
    "fillfactor": (f"ALTER TABLE {ORDER} SET (fillfactor = 70)", {"marketplace_order": (SUE, False, False)}),
    "enable trigger": (f"ALTER TABLE {ORDER} ENABLE TRIGGER ALL", {"marketplace_order": (SRE, False, False)}),
    "check constraint scans": (f'ALTER TABLE {ORDER} ADD CONSTRAINT "q" CHECK ("quantity" < 1000)',
                               {"marketplace_order": (AE, False, True)}),
    "check not valid": (f'ALTER TABLE {ORDER} ADD CONSTRAINT "q" CHECK ("quantity" < 1000) NOT VALID',
                        {"marketplace_order": (AE, False, False)}),
    "unique builds an index": (f'ALTER TABLE {ORDER} ADD CONSTRAINT "u" UNIQUE ("listing_id", "buyer_id")',
                               {"marketplace_order": (AE, False, True)}),
    "foreign key: both tables": (
        f'ALTER TABLE {ORDER} ADD CONSTRAINT "fk" FOREIGN KEY ("buyer_id") REFERENCES "accounts_customer" ("id") '
        "DEFERRABLE INITIALLY DEFERRED",
        {"marketplace_order": (SRE, False, True), "accounts_customer": (SRE, False, False)},
    ),
    "foreign key not valid": (
        f'ALTER TABLE {ORDER} ADD CONSTRAINT "fk" FOREIGN KEY ("buyer_id") REFERENCES "accounts_customer" ("id") '
        "NOT VALID",
        {"marketplace_order": (SRE, False, False), "accounts_customer": (SRE, False, False)},
    ),
    "validate foreign key": (
        f'ALTER TABLE {ORDER} VALIDATE CONSTRAINT "order_buyer_fk"',
        {"marketplace_order": (SUE, False, True), "accounts_customer": ("ROW SHARE", False, False)},
    ),
    "drop foreign key: the referenced table too": (
        f'ALTER TABLE {ORDER} DROP CONSTRAINT "order_buyer_fk"',
        {"marketplace_order": (AE, False, False), "accounts_customer": (AE, False, False)},
    ),
    # Type changes: binary-coercible ones do not rewrite; the old type comes from the catalog.
    "integer to bigint rewrites": (
        f'ALTER TABLE {ORDER} ALTER COLUMN "quantity" TYPE bigint USING "quantity"::bigint',
        {"marketplace_order": (AE, True, True)},
    ),
    "longer varchar does not": (f'ALTER TABLE {ORDER} ALTER COLUMN "status" TYPE varchar(200)',
                                {"marketplace_order": (AE, False, False)}),
    "varchar to text does not": (f'ALTER TABLE {ORDER} ALTER COLUMN "status" TYPE text USING "status"::text',
                                 {"marketplace_order": (AE, False, False)}),
    "shorter varchar rewrites": (f'ALTER TABLE {ORDER} ALTER COLUMN "status" TYPE varchar(10)',
                                 {"marketplace_order": (AE, True, True)}),
    "a USING expression rewrites": (
        f'ALTER TABLE {ORDER} ALTER COLUMN "status" TYPE varchar(200) USING lower("status")',
        {"marketplace_order": (AE, True, True)},
    ),
    "a foreign key column's type: the constraint is rebuilt": (
        f'ALTER TABLE {ORDER} ALTER COLUMN "buyer_id" TYPE integer USING "buyer_id"::integer',
        {"marketplace_order": (AE, True, True), "accounts_customer": (AE, False, False)},
    ),
    # ADD COLUMN: a constant default is stored once (PostgreSQL 11+), a volatile one per row.
    "constant default": (f"ALTER TABLE {ORDER} ADD COLUMN \"note\" varchar(20) DEFAULT '' NOT NULL",
                         {"marketplace_order": (AE, False, False)}),
    "constant default with a check scans": (
        f'ALTER TABLE {ORDER} ADD COLUMN "total" integer DEFAULT 0 NOT NULL CHECK ("total" >= 0)',
        {"marketplace_order": (AE, False, True)},
    ),
    "volatile default rewrites": (f'ALTER TABLE {ORDER} ADD COLUMN "token" uuid DEFAULT (GEN_RANDOM_UUID()) NOT NULL',
                                  {"marketplace_order": (AE, True, True)}),
    "stable default does not": (
        f'ALTER TABLE {ORDER} ADD COLUMN "at" timestamp with time zone DEFAULT (STATEMENT_TIMESTAMP()) NOT NULL',
        {"marketplace_order": (AE, False, False)},
    ),
    "a cast is not a call": (f"ALTER TABLE {ORDER} ADD COLUMN \"d\" date DEFAULT '2024-01-01'::date NOT NULL",
                             {"marketplace_order": (AE, False, False)}),
    "default null": (f'ALTER TABLE {ORDER} ADD COLUMN "n" integer DEFAULT NULL',
                     {"marketplace_order": (AE, False, False)}),
    "an identity column rewrites": (
        f'ALTER TABLE {ORDER} ADD COLUMN "seq" bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY',
        {"marketplace_order": (AE, True, True)},
    ),
    "unique column builds an index": (f'ALTER TABLE {ORDER} ADD COLUMN "code" varchar(10) NULL UNIQUE',
                                      {"marketplace_order": (AE, False, True)}),
    "inline foreign key": (
        f'ALTER TABLE {ORDER} ADD COLUMN "reviewer_id" bigint NULL CONSTRAINT "r_fk" REFERENCES '
        '"accounts_customer"("id") ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED; SET CONSTRAINTS "r_fk" IMMEDIATE',
        {"marketplace_order": (AE, False, False), "accounts_customer": (SRE, False, False)},
    ),
    # Indexes.
    "create index": (f'CREATE INDEX "i" ON {ORDER} ("placed_at")', {"marketplace_order": (SHARE, False, True)}),
    "create unique index concurrently": (f'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "i" ON {ORDER} ("id")',
                                         {"marketplace_order": (SUE, False, True)}),
    "drop index: its table, from the catalog": ('DROP INDEX IF EXISTS "marketplace_order_open_idx"',
                                                {"marketplace_order": (AE, False, False)}),
    "drop index concurrently": ('DROP INDEX CONCURRENTLY "marketplace_order_open_idx"',
                                {"marketplace_order": (SUE, False, False)}),
    "drop a missing index if it exists: nothing": ('DROP INDEX IF EXISTS "no_such_idx"', {}),
    "rename an index: not the table": ('ALTER INDEX "marketplace_order_open_idx" RENAME TO "open_idx"', {}),
    # Whole tables.
    "drop table: its foreign keys' tables too": (
        'DROP TABLE "marketplace_listing" CASCADE',
        {"marketplace_listing": (AE, False, False), "marketplace_order": (AE, False, False),
         "accounts_customer": (AE, False, False)},
    ),
    "truncate": (f"TRUNCATE {ORDER}", {"marketplace_order": (AE, False, False)}),
    "lock table": (f"LOCK TABLE {ORDER} IN SHARE ROW EXCLUSIVE MODE", {"marketplace_order": (SRE, False, False)}),
    "comment": (f"COMMENT ON COLUMN {ORDER}.\"status\" IS 'free; text'", {"marketplace_order": (SUE, False, False)}),
    # Data.
    "insert": (f"INSERT INTO {ORDER} (\"quantity\") VALUES (1)", {"marketplace_order": (RE, False, False)}),
    "update some rows": (f"UPDATE {ORDER} SET \"status\" = 'open' WHERE \"status\" IS NULL",
                         {"marketplace_order": (RE, False, False)}),
    "update every row": (f"UPDATE {ORDER} SET \"status\" = 'open'", {"marketplace_order": (RE, False, True)}),
    "delete": (f'DELETE FROM {ORDER} WHERE "id" = 1', {"marketplace_order": (RE, False, False)}),
    "sequence reset": (
        "SELECT setval(pg_get_serial_sequence('\"marketplace_order\"','id'), coalesce(max(\"id\"), 1), "
        'max("id") IS NOT null) FROM "marketplace_order"',
        {"marketplace_order": ("ACCESS SHARE", False, False)},
    ),
    "a new extension locks no table": ("CREATE EXTENSION IF NOT EXISTS pg_trgm", {}),
}


@pytest.mark.parametrize("case", CASES)
def test_each_statement_takes_the_documented_lock(case: str) -> None:
    statement, expected = CASES[case]
    assert one(statement) == expected


def test_statements_are_split_where_postgresql_splits_them() -> None:
    sql = """
    -- a comment; not a statement
    CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN RAISE NOTICE 'a;b'; RETURN NEW; END $body$ LANGUAGE plpgsql;
    /* a /* nested */ comment; */ UPDATE "t;x" SET "a""b" = 'it''s; here', c = E'\\'; still' WHERE d = $$;$$;
    SELECT 1
    """
    statements = split_statements(sql)
    assert [s.tokens[0].word for s in statements] == ["create", "update", "select"]
    assert statements[1].text.startswith('UPDATE "t;x" SET "a""b"') and statements[1].text.endswith("$$;$$")
    assert [t.text for t in statements[1].tokens if t.kind == "name"] == ["t;x", 'a"b']
    assert [t.text for t in statements[1].tokens if t.kind == "string"] == ["it''s; here", "\\'; still", ";"]


def test_the_strongest_lock_per_table_wins_and_flags_add_up() -> None:
    (step,) = locks(
        f'BEGIN;\nCREATE INDEX "i" ON {ORDER} ("placed_at");\n'
        f'ALTER TABLE {ORDER} ALTER COLUMN "quantity" TYPE bigint USING "quantity"::bigint;\n'
        f'CREATE INDEX "j" ON "marketplace_listing" ("title");\nCOMMIT;'
    )
    assert step == {"marketplace_order": (AE, True, True), "marketplace_listing": (SHARE, False, True)}


def test_sizes_come_from_the_catalog_and_a_new_table_has_none() -> None:
    (step,) = derive(
        [
            'BEGIN;\nCREATE TABLE "media_banner" ("id" bigint NOT NULL PRIMARY KEY, "listing_id" bigint NOT NULL);\n'
            'ALTER TABLE "media_banner" ADD CONSTRAINT "b_fk" FOREIGN KEY ("listing_id") REFERENCES '
            '"marketplace_listing" ("id") DEFERRABLE INITIALLY DEFERRED;\n'
            'CREATE INDEX "b_idx" ON "media_banner" ("listing_id");\nCOMMIT;'
        ],
        Catalog(),
    )
    # Nobody else can see media_banner before the commit: only the referenced table is held.
    assert step == [
        {"table": "marketplace_listing", "mode": SRE, "rewrites": False, "scans": False, "size": 40 * MB}
    ]


def test_a_table_created_by_an_earlier_step_has_no_size_yet() -> None:
    _, second = derive(
        ['BEGIN;\nCREATE TABLE "media_banner" ("id" bigint NOT NULL PRIMARY KEY, "headline" varchar(20) NOT NULL);\n'
         "COMMIT;",
         'BEGIN;\nALTER TABLE "media_banner" ALTER COLUMN "headline" TYPE varchar(200);\nCOMMIT;'],
        Catalog(),
    )
    # The column's type comes from the first step's CREATE TABLE: a longer varchar does not rewrite.
    assert second == [{"table": "media_banner", "mode": AE, "rewrites": False, "scans": False, "size": None}]


def test_a_table_renamed_within_a_step_is_one_table() -> None:
    first, second = locks(
        f'BEGIN;\nALTER TABLE {ORDER} RENAME TO "shop_order";\nCREATE INDEX "i" ON "shop_order" ("placed_at");\n'
        "COMMIT;",
        'BEGIN;\nALTER TABLE "shop_order" ALTER COLUMN "quantity" TYPE bigint;\nCOMMIT;',
    )
    assert first == {"marketplace_order": (AE, False, True)}
    assert second == {"shop_order": (AE, True, True)}  # its columns and size followed it
    (_, renamed) = derive(
        [f'ALTER TABLE {ORDER} RENAME TO "shop_order"', 'ALTER TABLE "shop_order" DROP COLUMN "status"'], Catalog()
    )
    assert renamed[0]["size"] == 12 * 1024 * MB


def test_an_index_created_earlier_in_the_plan_is_found_when_dropped() -> None:
    _, dropped = locks(f'CREATE INDEX CONCURRENTLY "i" ON {ORDER} ("placed_at")', 'DROP INDEX CONCURRENTLY "i"')
    assert dropped == {"marketplace_order": (SUE, False, False)}


def test_before_postgresql_11_any_default_rewrites() -> None:
    statement = f'ALTER TABLE {ORDER} ADD COLUMN "total" integer DEFAULT 0 NOT NULL'
    assert one(statement, Catalog(server_version=100023)) == {"marketplace_order": (AE, True, True)}
    assert one(statement) == {"marketplace_order": (AE, False, False)}


def test_an_unknown_function_in_a_default_counts_as_volatile() -> None:
    assert one(f'ALTER TABLE {ORDER} ADD COLUMN "x" bigint DEFAULT my_next_id() NOT NULL') == {
        "marketplace_order": (AE, True, True)
    }


def test_what_cannot_be_read_is_said_to_be_unknown() -> None:
    python, sql, stronger = derive(
        ["BEGIN;\n--\n-- Raw Python operation\n--\n-- THIS OPERATION CANNOT BE WRITTEN AS SQL\nCOMMIT;",
         f'BEGIN;\nCREATE INDEX "i" ON {ORDER} ("id");\nDO $$ BEGIN PERFORM 1; END $$;\n'
         f"WITH gone AS (DELETE FROM {ORDER} RETURNING 1) SELECT count(*) FROM gone;\nCOMMIT;",
         f"BEGIN;\nSELECT my_backfill();\nALTER TABLE {ORDER} DROP COLUMN \"status\";\nCOMMIT;"],
        Catalog(),
    )
    assert python == [{"table": "", "mode": "unknown", "rewrites": False, "scans": False, "size": None,
                       "statement": None}]
    # An unknown lock outranks SHARE (it may be anything) …
    assert [(lock["table"], lock["mode"], lock.get("statement")[:30]) for lock in sql] == [
        ("marketplace_order", "unknown", 'WITH gone AS (DELETE FROM "mar'),
        ("", "unknown", "DO $$ BEGIN PERFORM 1; END $$"),
    ]
    assert len(sql[0]["statement"]) == 80 and sql[0]["statement"].endswith("…")
    # … but not ACCESS EXCLUSIVE, the strongest there is.
    assert [(lock["table"], lock["mode"]) for lock in stronger] == [("", "unknown"), ("marketplace_order", AE)]


def test_an_irreversible_step_runs_nothing_and_locks_nothing() -> None:
    assert derive(["-- IRREVERSIBLE: marketplace.0005_backfill_order_totals (RunPython: Raw Python operation)"],
                  Catalog()) == [[]]


def test_a_table_dropped_earlier_in_the_plan_keeps_no_foreign_keys() -> None:
    _, recreated = locks(
        'BEGIN;\nDROP TABLE "marketplace_listing" CASCADE;\nCOMMIT;',
        'BEGIN;\nCREATE TABLE "marketplace_listing" ("id" bigint NOT NULL PRIMARY KEY);\nCOMMIT;\n'
        'DROP TABLE "marketplace_listing"',
    )
    assert recreated == {"marketplace_listing": (AE, False, False)}


@pytest.mark.parametrize(
    ("old", "new", "rewrites"),
    [
        ("character varying(120)", "varchar(200)", False),
        ("character varying(200)", "varchar(120)", True),
        ("character varying(20)", "varchar", False),
        ("character varying", "varchar(20)", True),
        ("text", "varchar", False),
        ("text", "varchar(10)", True),
        ("integer", "bigint", True),
        ("bigint", "bigint", False),
        ("numeric(10,2)", "numeric(12, 2)", False),
        ("numeric(10,2)", "numeric(12, 3)", True),
        ("numeric(10,2)", "numeric", False),
        ("timestamp(3) with time zone", "timestamp with time zone", False),
        ("timestamp with time zone", "timestamp(3) with time zone", True),
        ("timestamp without time zone", "timestamp with time zone", True),
        ("cidr", "inet", False),
        ("character varying(10)[]", "varchar(20)[]", True),
        (None, "varchar(20)", True),
    ],
)
def test_which_type_changes_rewrite(old: str | None, new: str, rewrites: bool) -> None:
    assert rewrites_on_type_change(old, new) is rewrites


def test_type_names_are_read_as_format_type_and_django_spell_them() -> None:
    assert normalise("character varying(254)") == normalise("varchar(254)") == ("varchar", (254,), 0)
    assert normalise("timestamp(3) with time zone") == ("timestamp with time zone", (3,), 0)
    assert normalise("numeric(10, 2)") == ("numeric", (10, 2), 0)
    assert normalise("int4[]") == ("integer", (), 1)
