"""Benchmark of backups; prints its figures (run: .venv/bin/python benchmarks/backup_bench.py [--mib N]).

Two PostgreSQL databases of about N MiB of rows each, one compressible (repetitive text) and one
incompressible (random bytes). On each, side by side in one run: (a) a bare `pg_dump -Fc` to a
file, and (b) `workers.backup.take_backup` — the streamed, compressed, hashed dump plus its full
verification read. Goal: (b) no slower than (a), i.e. a ratio (b)/(a) under 1.

Uses the server at MIGRABOT_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/postgres
(needs the pgcrypto extension for gen_random_bytes). Drops its databases and files at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from workers.backup import Database, pg_environ, take_backup  # noqa: E402

ROW_BYTES = 1000  # payload per row: small enough to stay in the heap, not TOAST (no pglz in the way)
KINDS = {
    "compressible": "SELECT g AS id, left(repeat('migrabot backs up before it rolls back; ', 30), {n}) AS body",
    "incompressible": "SELECT g AS id, gen_random_bytes({n}) AS body",
}


def create(admin_url: str, kind: str, mib: int) -> str:
    name = f"migrabot_bench_{kind}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    rows = mib * 1024 * 1024 // ROW_BYTES
    select = KINDS[kind].format(n=ROW_BYTES)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        connection.execute(f"CREATE TABLE rows AS {select} FROM generate_series(1, {rows}) g")
        connection.execute("VACUUM ANALYZE rows")
        connection.execute("SELECT count(*) FROM rows")  # warm the cache for both contenders alike
    return url


def size_mib(url: str) -> float:
    with psycopg.connect(url) as connection:
        size = connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
    return float(size) / 2**20


def bare_pg_dump(url: str, path: Path) -> float:
    started = time.monotonic()
    subprocess.run(["pg_dump", "--format=custom", f"--file={path}"], env=pg_environ(Database.from_url(url)), check=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="size of each database's rows (default 1024)")
    admin_default = os.environ.get("MIGRABOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--admin-url", default=admin_default)
    options = parser.parse_args()

    print(f"{'database':<15} {'size MiB':>8} | {'pg_dump -Fc s':>13} {'MiB/s':>6} {'file MiB':>8} | "
          f"{'ours s':>6} {'(dump':>6} {'+verify)':>8} {'MiB/s':>6} {'file MiB':>8} | {'ratio':>5}")
    urls: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="migrabot-bench-") as scratch:
            for kind in KINDS:
                urls.append(create(options.admin_url, kind, options.mib))
                url, mib = urls[-1], size_mib(urls[-1])
                bare_file = Path(scratch) / f"{kind}.dump"
                bare = bare_pg_dump(url, bare_file)
                ours = take_backup(Database.from_url(url), Path(scratch), label=kind)
                total = ours.duration_seconds + ours.verification_seconds
                print(
                    f"{kind:<15} {mib:8.0f} | {bare:13.1f} {mib / bare:6.0f} {bare_file.stat().st_size / 2**20:8.0f} | "
                    f"{total:6.1f} {ours.duration_seconds:6.1f} {ours.verification_seconds:8.1f} {mib / total:6.0f} "
                    f"{ours.size / 2**20:8.0f} | {total / bare:5.2f}",
                    flush=True,
                )
                bare_file.unlink()
                ours.path.unlink()
    finally:
        with psycopg.connect(options.admin_url, autocommit=True) as connection:
            for url in urls:
                name = urlsplit(url).path.lstrip("/")
                connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
