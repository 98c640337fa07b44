"""The write pipeline's guards, fast: the lock, the re-plan against the approved digest, the
probe's last check of the approved code, and the backup gate.

A write runs here as its Celery task runs it (``pipeline.execute``), only in this process: no
broker, no worker process, no PostgreSQL. The target is a copy of the example project on an
SQLite file in a temporary folder, its probe run by this Python as a worker runs it.
"""

from __future__ import annotations

import sqlite3
import sys
import uuid
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controlplane import services
from controlplane.approvals import request_decide
from controlplane.locks import lock_acquire, lock_current
from controlplane.models import Backup, Decision, Post, Request, State
from migrabot import messages
from migrabot.config import Config, Environment, load_config
from migrabot_probe import errors, plans
from workers import pipeline
from workers.plans import expectation, plan_digest, what_changed
from workers.target import Target

ACTOR = "worker:fast-tier"
ROLLBACK = ["marketplace", "0005"]  # unapplies marketplace.0006_alter_listing_title
CHANGED_FILE = "marketplace/migrations/0006_alter_listing_title.py"

CONFIG = """
[environments.{name}]
project = "{project}"
python = "{python}"
settings = "backend.settings"
backup_dir = "{backups}"
env = {{ DATABASE_URL = "{variable}" }}
[environments.{name}.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["U0BOB"]
"""


@dataclass
class Lite:
    """One environment of our own on the example project, fully migrated, on an SQLite file."""

    config: Config
    environment: Environment
    database: Path
    project: Path

    @property
    def name(self) -> str:
        return self.environment.name

    def applied(self, app: str) -> list[str]:
        with closing(sqlite3.connect(self.database)) as db:
            rows = db.execute("SELECT name FROM django_migrations WHERE app = ? ORDER BY name", (app,))
            return [name for (name,) in rows]

    def execute(self, request: Request) -> Request:
        """What the worker's task does with the request, then the request as it is now."""
        pipeline.execute(request.pk, config=self.config, actor=ACTOR)
        request.refresh_from_db()
        return request

    def approved_rollback(self) -> Request:
        """A rollback planned by the worker and approved by someone other than its requester."""
        request, _ = services.request_create(
            verb="rollback",
            environment=self.name,
            args=ROLLBACK,
            requester="U0ALICE",
            channel="C0FAST",
            trigger_id=None,
        )
        planned = self.execute(request)
        assert planned.state == State.AWAITING_APPROVAL, planned.error
        outcome = request_decide(
            request_id=planned.pk,
            person="U0BOB",
            decision=Decision.APPROVE,
            plan_digest=planned.plan_digest,
            environment=self.environment,
            members_of=lambda group: None,
        )
        assert outcome.request.state == State.APPROVED
        return outcome.request

    def notes(self, request: Request) -> list[str]:
        posts = Post.objects.filter(request=request, kind="note").order_by("id")
        return [str(post.data.get("text", "")) for post in posts]


@pytest.fixture
def lite(tmp_path: Path, example_project: Path, monkeypatch: pytest.MonkeyPatch) -> Lite:
    name = f"lite{uuid.uuid4().hex[:8]}"  # locks and requests of other tests live in the same control plane
    variable = f"FAST_{name.upper()}_DATABASE_URL"
    database = tmp_path / "lite.sqlite3"
    monkeypatch.setenv(variable, f"sqlite:///{database}")
    config_file = tmp_path / "migrabot.toml"
    config_file.write_text(
        CONFIG.format(
            name=name, project=example_project, python=sys.executable, backups=tmp_path / "backups", variable=variable
        )
    )
    config = load_config(config_file)
    environment = config.environments[name]
    Target(environment).manage("migrate", "--noinput")
    return Lite(config, environment, database, example_project)


def _edit(file: Path, change: Callable[[str], str]) -> None:
    file.write_text(change(file.read_text()))


# --- the happy path: what every guard below stops ----------------------------------------------


def test_an_approved_rollback_backs_up_then_runs(lite: Lite) -> None:
    request = lite.execute(lite.approved_rollback())

    assert request.state == State.SUCCEEDED, request.error
    assert "0006_alter_listing_title" not in lite.applied("marketplace")
    backup = Backup.objects.get(request=request)
    assert backup.verified and Path(backup.path).is_file()
    assert lock_current(environment=lite.name) is None


# --- the lock ------------------------------------------------------------------------------------


def test_a_write_refuses_while_someone_holds_the_lock_and_leaves_it_held(lite: Lite) -> None:
    request = lite.approved_rollback()
    token, _ = lock_acquire(environment=lite.name, holder="user:U0CAROL", reason="release freeze", ttl=None)
    assert token is not None

    request = lite.execute(request)

    assert request.state == State.REFUSED
    assert "release freeze" in request.error and "Nothing was run" in request.error
    assert "0006_alter_listing_title" in lite.applied("marketplace")
    assert not Backup.objects.filter(request=request).exists()
    held = lock_current(environment=lite.name)
    assert held is not None and held.token == token  # the refused run did not release someone else's lock


# --- the re-plan against the approved digest ------------------------------------------------------


def test_a_migration_file_edited_after_the_approval_is_refused_naming_it(lite: Lite) -> None:
    request = lite.approved_rollback()
    _edit(lite.project / CHANGED_FILE, lambda text: text.replace("max_length=200", "max_length=201"))

    request = lite.execute(request)

    assert request.state == State.REFUSED
    assert CHANGED_FILE in request.error
    assert "0006_alter_listing_title" in lite.applied("marketplace")
    assert not Backup.objects.filter(request=request).exists()  # refused before the backup
    assert lock_current(environment=lite.name) is None


def test_line_endings_alone_do_not_change_the_approved_code(lite: Lite) -> None:
    request = lite.approved_rollback()
    file = lite.project / CHANGED_FILE
    file.write_bytes(file.read_bytes().replace(b"\n", b"\r\n"))

    assert lite.execute(request).state == State.SUCCEEDED


# --- the backup gate -----------------------------------------------------------------------------


def test_no_backup_no_run(lite: Lite) -> None:
    request = lite.approved_rollback()
    lite.environment.backup_dir.write_text("a file where the backups should go\n")

    request = lite.execute(request)

    assert request.state == State.FAILED
    assert "0006_alter_listing_title" in lite.applied("marketplace")  # nothing was unapplied
    assert not Backup.objects.filter(request=request).exists()
    assert lite.environment.backup_dir.read_text() == "a file where the backups should go\n"
    assert lock_current(environment=lite.name) is None
    assert any(str(lite.environment.backup_dir) in text for text in lite.notes(request))


# --- the digest and the probe's last check, on plain data ----------------------------------------


def _plan(**changes: Any) -> dict[str, Any]:
    step = {
        "app": "marketplace",
        "name": "0006_alter_listing_title",
        "backwards": True,
        "file": CHANGED_FILE,
        "sha256": "a" * 64,
        "operations": [{"description": "Alter field title on listing"}],
    }
    return {"steps": [step | changes.pop("step", {})], "sql": "ALTER TABLE …;"} | changes


def _request() -> Request:
    return Request(verb="rollback", environment="staging", args=ROLLBACK)


def test_the_digest_binds_the_files_the_steps_the_sql_and_the_arguments() -> None:
    digest = plan_digest(_request(), _plan())

    assert plan_digest(_request(), _plan()) == digest
    assert plan_digest(_request(), _plan(step={"sha256": "b" * 64})) != digest
    assert plan_digest(_request(), _plan(step={"backwards": False})) != digest
    assert plan_digest(_request(), _plan(sql="ALTER TABLE other;")) != digest
    assert plan_digest(Request(verb="rollback", environment="staging", args=["marketplace", "0004"]), _plan()) != digest
    assert plan_digest(Request(verb="fake", environment="staging", args=ROLLBACK), _plan()) != digest


def test_what_changed_names_the_file_else_the_steps_else_the_sql() -> None:
    approved = _plan()

    assert what_changed(approved, _plan(step={"sha256": "b" * 64})) == messages.file_changed(CHANGED_FILE)
    assert what_changed(approved, _plan(step={"name": "0007_other"})) == messages.steps_changed()
    assert what_changed(approved, _plan(sql="ALTER TABLE other;")) == messages.sql_changed()


def test_the_probe_runs_only_the_approved_code() -> None:
    approved = expectation(_plan())

    plans.refuse_unapproved_code(approved, expectation(_plan()))
    with pytest.raises(errors.Refusal, match=rf"`{CHANGED_FILE}` changed since the plan was approved"):
        plans.refuse_unapproved_code(approved, expectation(_plan(step={"sha256": "b" * 64})))
    with pytest.raises(errors.Refusal, match="migrations to run changed"):
        plans.refuse_unapproved_code(approved, expectation(_plan(step={"backwards": False})))
    with pytest.raises(errors.Refusal, match="SQL of the plan changed"):
        plans.refuse_unapproved_code(approved, expectation(_plan(sql="ALTER TABLE other;")))
