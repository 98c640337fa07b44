"""Secrets never reach Slack, the logs or the audit trail — checked over everything of a real run.

The pg target connects as a PostgreSQL role with a password (created here, with characters that
URL-encoding changes), and gets one more secret through the configuration's ``env`` mapping. A
migration in a private copy of the example project prints both on the way up and down and, when
unapplied, raises an exception that names them, also as code passes them on: re-quoted for another
URL, base64 inside HTTP basic auth, URL-safe base64 in a header. Then: read verbs, a rollback (with
its pg_dump backup) that fails in that migration, a fake and a forward migrate — and every Slack
Web API call (messages, updates, ephemerals, files), the worker's output, the bot's log records,
the audit events and the request rows are searched for each secret, in each form it could take.
The pg tools the backups run record the environment they were given: none of the worker's own
secrets (its Slack token, the other environment's database URL) may be in it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from e2e_stack import (
    BOT_TOKEN,
    CONFIG,
    EXAMPLE_PROJECT,
    Stack,
    running_stack,
    tally_runs,
)
from fault_report import FaultReport
from psycopg import sql
from services import RedisServer

from controlplane.models import AuditEvent, Backup, Request, State

TOKEN = f"billing-tok-{uuid.uuid4().hex}"
PASSWORD = f"Pw-{uuid.uuid4().hex[:12]}+/=@:"
CHATTY = '''import base64
import os
import sys
from urllib.parse import quote

from django.db import migrations


def chatter(apps, schema_editor):
    """A migration that talks too much: the secrets it can see, on stdout and stderr."""
    password = schema_editor.connection.settings_dict["PASSWORD"]
    print(f"billing token {os.environ.get('BILLING_API_TOKEN')} db password {password}")
    print(f"database {os.environ.get('DATABASE_URL')}", file=sys.stderr)


def chatter_and_fail(apps, schema_editor):
    chatter(apps, schema_editor)
    password = schema_editor.connection.settings_dict["PASSWORD"]
    token = os.environ["BILLING_API_TOKEN"]
    # The secrets as code passes them on: re-quoted, in HTTP basic auth, in a URL-safe header.
    basic = base64.b64encode(f"billing:{password}".encode()).decode()
    header = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    raise RuntimeError(
        f"billing refused token {token} with password {password}"
        f" (GET https://billing/{quote(password)} Authorization: Basic {basic} X-Token: {header})"
    )


class Migration(migrations.Migration):
    dependencies = [("media", "0004_banner")]
    operations = [migrations.RunPython(chatter, chatter_and_fail)]
'''
# Stands in for pg_dump, pg_restore and psql: records the environment it was given, runs the real tool.
RECORDING_TOOL = """#!/bin/sh
cat /proc/$$/environ > "{log}/$(basename "$0").$$"
exec {real} "$@"
"""
SECRET_CONFIG = CONFIG.replace(
    'env = {{ DATABASE_URL = "E2E_PG_DATABASE_URL" }}',
    'env = {{ DATABASE_URL = "E2E_PG_DATABASE_URL", BILLING_API_TOKEN = "E2E_BILLING_API_TOKEN" }}',
)


@pytest.fixture(scope="module")
def secret_database(postgres_admin_url: str) -> Iterator[str]:
    """A database owned by a role that logs in with ``PASSWORD`` (and may create the rehearsals'
    copies); its URL carries the password."""
    role, name = f"migrabot_secret_{uuid.uuid4().hex[:8]}", f"migrabot_secret_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        create_role = sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}")
        admin.execute(create_role.format(sql.Identifier(role), sql.Literal(PASSWORD)))
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role)))
    parts = urlsplit(postgres_admin_url)
    yield urlunsplit(
        parts._replace(
            netloc=f"{role}:{quote(PASSWORD, safe='')}@{parts.hostname}:{parts.port or 5432}", path=f"/{name}"
        )
    )
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture(scope="module")
def tool_environs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Recording pg tools first on PATH (the worker's, so the tools' too); yields where they record."""
    shims, log = tmp_path_factory.mktemp("pg-tools"), tmp_path_factory.mktemp("pg-tool-environs")
    for tool in ("pg_dump", "pg_restore", "psql"):
        real = shutil.which(tool)
        assert real, f"{tool} not on PATH"
        (shims / tool).write_text(RECORDING_TOOL.format(log=log, real=real))
        (shims / tool).chmod(0o755)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
        yield log


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    postgres_admin_url: str,
    secret_database: str,
    module_fault_report: FaultReport,
    tool_environs: Path,
) -> Iterator[Stack]:
    before = Request.objects.order_by("-id").values_list("id", flat=True).first() or 0
    folder = tmp_path_factory.mktemp("secrets")
    project = Path(shutil.copytree(EXAMPLE_PROJECT, folder / "backend", ignore=shutil.ignore_patterns("__pycache__")))
    (project / "media/migrations/0005_chatty.py").write_text(CHATTY)
    secrets = {"E2E_PG_DATABASE_URL": secret_database, "E2E_BILLING_API_TOKEN": TOKEN}
    with running_stack(
        folder,
        redis_url=redis_server.url,
        postgres_admin_url=postgres_admin_url,
        project=project,
        config_text=SECRET_CONFIG,
        target_env=secrets,
    ) as stack:
        yield stack
        tally_runs(before, module_fault_report)


def everything_said(stack: Stack, log_records: list[logging.LogRecord]) -> dict[str, str]:
    """Every place a secret must never be, as text, by where it was found."""
    store, channel = stack.api.store, stack.chat.channel
    messages = [m for parent in store.messages(channel) for m in [parent, *store.replies(channel, parent.ts)]]
    places = {
        f"slack call {n} {call.method}": json.dumps([call.params, call.answer], ensure_ascii=False)
        for n, call in enumerate(stack.api.calls)
    }
    places |= {f"slack file {f.name}": f.content for m in messages for f in m.files}
    places |= {
        f"ephemeral {e.ts}": json.dumps([e.text, list(e.blocks)], ensure_ascii=False) for e in store.ephemerals()
    }
    places |= {f"worker log line {n}": line for n, line in enumerate(stack.worker_log)}
    places |= {
        f"bot log {n} {r.name}": r.getMessage()
        + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for n, r in enumerate(log_records)
    }
    places |= {
        f"audit event {e.pk} {e.action}": json.dumps(e.detail, ensure_ascii=False) for e in AuditEvent.objects.all()
    }
    places |= {
        f"request {r.pk}": json.dumps([r.error, r.result, r.plan, r.args], ensure_ascii=False)
        for r in Request.objects.all()
    }
    places |= {f"backup {b.pk}": f"{b.path} {b.verification}" for b in Backup.objects.all()}
    return places


def test_no_secret_reaches_slack_logs_or_the_audit(
    stack: Stack, caplog: pytest.LogCaptureFixture, fault_report: FaultReport, tool_environs: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    say, click = stack.chat.say, stack.chat.click
    for text in ("showmigrations pg", "plan pg", "check pg", "plan pg media 0004"):
        assert say(text, user="U0ALICE").request.state == State.SUCCEEDED

    # The rehearsal runs the failing reverse on a copy (restored with the password): refused before approval.
    failed = say("rollback pg media 0004", user="U0ALICE")
    assert failed.request.state == State.REFUSED, failed.thread
    assert (
        "Rehearsal failed at `media.0005_chatty` (its first step): RuntimeError: billing refused token" in failed.thread
    )  # the error is told, masked
    fake = say("fake pg media 0004", user="U0ALICE")
    assert click("approve", user="U0BOB", request=fake.request).request.state == State.SUCCEEDED
    assert Backup.objects.filter(request=fake.request, verified=True).exists(), "pg_dump ran with the password"
    forward = say("migrate pg media", user="U0ALICE")
    assert forward.request.state == State.SUCCEEDED and "applied `media.0005_chatty`" in forward.thread

    forms = {
        "token": TOKEN,
        "password": PASSWORD,
        "password, URL-encoded": quote(PASSWORD, safe=""),
        "database URL": stack.target_env["E2E_PG_DATABASE_URL"],
        "password, re-quoted": quote(PASSWORD),
        "password in basic auth": base64.b64encode(f"billing:{PASSWORD}".encode()).decode(),
        "token, URL-safe base64": base64.urlsafe_b64encode(TOKEN.encode()).decode().rstrip("="),
    }
    places = everything_said(stack, caplog.records)
    leaks = [f"{what} in {where}" for where, text in places.items() for what, secret in forms.items() if secret in text]
    # The pg tools get the target's connection (PGPASSWORD) and nothing else that is secret.
    worker_only = {
        "Slack token": BOT_TOKEN,
        "the lite environment's database URL": stack.target_env["E2E_LITE_DATABASE_URL"],
        "token": TOKEN,
    }
    environs = {path.name: path.read_text() for path in tool_environs.iterdir()}
    leaks += [
        f"{what} in the environment of {tool}"
        for tool, environ in environs.items()
        for what, secret in worker_only.items()
        if secret in environ
    ]
    fault_report.tally(leaks=len(leaks))
    assert len(places) > 100 and any("chatty" in text for text in places.values())  # the search saw the run
    assert {name.split(".")[0] for name in environs} == {"pg_dump", "pg_restore", "psql"}  # the backups ran them
    assert leaks == []
