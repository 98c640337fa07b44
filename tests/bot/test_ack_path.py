"""The ack path in process: a thread keeps its control-plane connection from one command to the
next, leaves SQLite's checkpoints to the other connections, and reads a catalog once a second at
most — yet resolves what was published since."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dispatch import slash_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from slack_sdk import WebClient

from bot.app import Bot, build_app
from controlplane import services
from controlplane.models import Request
from migrabot.config import load_config

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example" / "backend"
SECRET = "ack-path-signing-secret"
ENV = f"ack{uuid.uuid4().hex[:8]}"
CONFIG = f"""
[environments.{ENV}]
project = "{EXAMPLE_PROJECT}"
settings = "backend.settings"
[environments.{ENV}.policy]
readers = ["*"]
"""


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    folder = tmp_path_factory.mktemp("ack-path")
    (folder / "migrabot.toml").write_text(CONFIG)
    services.catalog_publish(environment=ENV, apps={"accounts": ["0001_initial", "0002_profile"]})
    client = WebClient(token="xoxb-ack-path", base_url="http://127.0.0.1:9/")  # never called on the ack path
    bot = build_app(
        config=load_config(folder / "migrabot.toml"), client=client, signing_secret=SECRET, enqueue=_nowhere
    )
    yield bot
    bot.close()
    connections.close_all()  # this thread's connection was the bot's: the next test starts afresh


def _nowhere(request_id: int, *, queue: str) -> None:
    pass


def command(bot: Bot, text: str) -> Request:
    response = slash_command(bot.app, text, secret=SECRET, channel="C0ACK")
    assert response.status == 200, response.body
    return Request.objects.order_by("-id")[0]


def test_a_thread_keeps_its_connection_from_one_command_to_the_next(bot: Bot) -> None:
    first = command(bot, f"showmigrations {ENV} accounts")
    kept = connection.connection
    second = command(bot, f"showmigrations {ENV} accounts")
    assert second.pk > first.pk  # both recorded, and committed before their ack
    assert kept is not None and connection.connection is kept


@pytest.mark.skipif(connection.vendor != "sqlite", reason="a SQLite WAL setting")
def test_the_thread_that_acks_leaves_checkpoints_to_the_others(bot: Bot) -> None:
    command(bot, f"showmigrations {ENV} accounts")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint")
        assert cursor.fetchone()[0] == 0



def test_commands_in_a_row_read_the_catalog_and_tell_sqlite_once(bot: Bot) -> None:
    first = command(bot, f"showmigrations {ENV} accounts")
    with CaptureQueriesContext(connection) as queries:
        again = command(bot, f"showmigrations {ENV} accounts")
    statements = [query["sql"] for query in queries.captured_queries if "controlplane_request" not in query["sql"]]
    assert again.pk > first.pk  # recorded, through the intake (``bot.intake``)
    assert not [sql for sql in statements if "controlplane_catalog" in sql or "PRAGMA" in sql], statements


def test_a_migration_published_a_moment_ago_is_resolved_despite_the_cached_catalog(bot: Bot) -> None:
    command(bot, f"showmigrations {ENV} accounts")  # the catalog is cached now
    services.catalog_publish(environment=ENV, apps={"accounts": ["0001_initial", "0002_profile", "0003_avatar"]})
    try:
        request = command(bot, f"plan {ENV} accounts 0003")
        assert request.args[-1] == "0003_avatar", request.args  # not refused: the control plane was asked again
    finally:
        services.catalog_publish(environment=ENV, apps={"accounts": ["0001_initial", "0002_profile"]})


def test_a_migration_named_is_resolved_against_the_catalog_now_not_the_cached_one(bot: Bot) -> None:
    apps = {"accounts": ["0001_initial", "0002_profile", "0003_avatar"]}
    services.catalog_publish(environment=ENV, apps=apps)
    try:
        assert command(bot, f"plan {ENV} accounts 0003").args[-1] == "0003_avatar"  # cached now
        services.catalog_publish(environment=ENV, apps={"accounts": [*apps["accounts"], "0003_avatar_size"]})
        refused = slash_command(bot.app, f"plan {ENV} accounts 0003_avatar", secret=SECRET, channel="C0ACK")
        assert "0003_avatar_size" in str(refused.body), refused.body  # ambiguous now, as manage.py says
    finally:
        services.catalog_publish(environment=ENV, apps={"accounts": ["0001_initial", "0002_profile"]})
