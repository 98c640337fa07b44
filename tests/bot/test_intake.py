"""The intake: commands' requests committed a batch at a time, each acked once its row is
committed, a trigger delivered twice recorded once, and one bad row failing only its own command."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dispatch import slash_command
from django.db import DatabaseError, IntegrityError, OperationalError, connection, connections
from slack_sdk import WebClient

from bot import intake
from bot.app import Bot, build_app
from controlplane import services
from controlplane.models import AuditEvent, Post, Request
from migrabot.config import load_config

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example" / "backend"
SECRET = "intake-signing-secret"
ENV = f"in{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    folder = tmp_path_factory.mktemp("intake")
    (folder / "migrabot.toml").write_text(
        f'[environments.{ENV}]\nproject = "{EXAMPLE_PROJECT}"\nsettings = "backend.settings"\n'
        f'[environments.{ENV}.policy]\nreaders = ["*"]\n'
    )
    services.catalog_publish(environment=ENV, apps={"accounts": ["0001_initial", "0002_profile"]})
    client = WebClient(token="xoxb-intake", base_url="http://127.0.0.1:9/")  # never called before the ack
    bot = build_app(config=load_config(folder / "migrabot.toml"), client=client, signing_secret=SECRET,
                    enqueue=lambda request_id, *, queue: None)  # fmt: skip
    yield bot
    bot.close()
    connections.close_all()


def _ack(bot: Bot, trigger: str) -> str:
    try:
        response = slash_command(
            bot.app, f"showmigrations {ENV} accounts", secret=SECRET, channel="C0INTAKE", trigger=trigger
        )
    finally:
        connections.close_all()  # this pool thread's
    assert response.status == 200, response.body
    return response.body


def _asked(trigger: str | None, environment: str | None = ENV) -> services.NewRequest:
    return services.NewRequest(
        verb="showmigrations", environment=environment, args=["accounts"],  # type: ignore[arg-type]
        requester="U0ALICE", channel="C0INTAKE", trigger_id=trigger,
    )  # fmt: skip


def test_commands_at_once_each_get_their_own_committed_request(bot: Bot) -> None:
    triggers = [f"intake.{uuid.uuid4().hex}" for _ in range(40)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        acks = list(pool.map(lambda trigger: _ack(bot, trigger), triggers))
    requests = {request.trigger_id: request for request in Request.objects.filter(trigger_id__in=triggers)}
    assert sorted(requests) == sorted(triggers)
    for trigger, ack in zip(triggers, acks, strict=True):
        assert f"#{requests[trigger].pk}" in ack, ack  # each ack names its own request, committed before it
    assert Post.objects.filter(request__in=requests.values(), key="card").count() == 40
    assert AuditEvent.objects.filter(request__in=requests.values(), action="request.created").count() == 40


def test_a_trigger_delivered_twice_at_once_is_recorded_once(bot: Bot) -> None:
    trigger = f"intake.{uuid.uuid4().hex}"
    with ThreadPoolExecutor(max_workers=6) as pool:
        acks = list(pool.map(lambda _: _ack(bot, trigger), range(6)))
    (request,) = Request.objects.filter(trigger_id=trigger)
    assert Post.objects.filter(request=request).count() == 1
    assert all(f"#{request.pk}" in ack for ack in acks), acks


def test_a_batch_records_a_trigger_once_and_leaves_one_seen_before_to_the_intake() -> None:
    seen, again, new, other = (f"intake.{uuid.uuid4().hex}" for _ in range(4))
    ((first, made),) = services.requests_create([_asked(seen)])
    assert made
    outcomes = services.requests_create([_asked(again), _asked(again), _asked(new)])
    assert [created for _, created in outcomes] == [True, False, True]
    assert outcomes[1][0].pk == outcomes[0][0].pk
    with pytest.raises(IntegrityError):  # the transaction is the batch's: nothing of it is recorded
        services.requests_create([_asked(other), _asked(seen)])
    assert not Request.objects.filter(trigger_id=other).exists()

    written = _written([_asked(other), _asked(seen), _asked(other)])  # the intake writes each alone then
    assert [one.outcome[1] for one in written if one.outcome] == [True, False, False]
    assert written[1].outcome is not None and written[1].outcome[0].pk == first.pk
    assert Post.objects.filter(request__trigger_id__in=[seen, again, new, other]).count() == 4


def _written(asked: list[services.NewRequest]) -> list[intake._Asked]:
    """A batch as a leading command writes it, in a thread of its own (with its own connection)."""
    batch = [intake._Asked(one) for one in asked]
    writer = threading.Thread(target=intake.write, args=(batch,))
    writer.start()
    writer.join(30)
    assert all(one.ready.is_set() for one in batch)
    return batch


def test_a_row_the_database_refuses_fails_its_own_command_only() -> None:
    good, bad, also_good = (f"intake.{uuid.uuid4().hex}" for _ in range(3))
    written = _written([_asked(good), _asked(bad, environment=None), _asked(also_good)])
    assert written[0].outcome is not None and written[0].outcome[1]
    assert written[2].outcome is not None and written[2].outcome[1]
    assert written[1].outcome is None
    assert isinstance(written[1].error, DatabaseError)  # what the listener answers as the control plane unreachable
    recorded = Request.objects.filter(trigger_id__in=[good, bad, also_good]).values_list("trigger_id", flat=True)
    assert set(recorded) == {good, also_good}


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's one write lock, held by another connection")
def test_a_batch_the_database_cannot_take_fails_its_commands_at_once() -> None:
    holder = sqlite3.connect(connection.settings_dict["NAME"])
    holder.execute("BEGIN IMMEDIATE")  # the lock a long write elsewhere holds
    batch = [intake._Asked(_asked(f"intake.{uuid.uuid4().hex}")) for _ in range(3)]
    took: list[float] = []

    def impatient_writer() -> None:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout = 200")
        began = time.monotonic()
        intake.write(batch)
        took.append(time.monotonic() - began)
        connections.close_all()

    try:
        writer = threading.Thread(target=impatient_writer)
        writer.start()
        writer.join(120)
    finally:
        holder.rollback()
        holder.close()
    assert all(isinstance(one.error, OperationalError) for one in batch), [one.error for one in batch]
    # One wait for the lock, not one per command after it (each on a new connection's 20 s timeout).
    assert took and took[0] < 5, took
