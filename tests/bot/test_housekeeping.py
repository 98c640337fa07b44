"""The sweep's own chores: on SQLite it folds the WAL into the database, which the threads that
serve Slack leave to others."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from django.db import connection

from bot.housekeeping import checkpoint
from controlplane import services


def in_database_file(environment: str) -> bool:
    """Whether the row is in the database file itself: an immutable reader ignores the WAL."""
    reader = sqlite3.connect(f"file:{connection.settings_dict['NAME']}?immutable=1", uri=True)
    try:
        row = reader.execute("SELECT 1 FROM controlplane_catalog WHERE environment = ?", [environment]).fetchone()
        return row is not None
    finally:
        reader.close()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="a SQLite WAL chore")
def test_the_sweep_checkpoints_what_the_ack_path_left_in_the_wal() -> None:
    environment = f"wal{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint = 0")  # as a thread that serves Slack has it
    try:
        services.catalog_publish(environment=environment, apps={})
        checkpoint()
        assert in_database_file(environment)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint = 1000")
