"""The workflow's rules from Slack, end to end: `check` in the thread, plans warning about what
it finds, production refusing writes while it finds something, and promotion order (production
takes only steps that already succeeded on staging). A real worker process, real Redis, SQLite
staging and PostgreSQL production, both running a private copy of the example project whose
migration files the tests edit. Each test sets up what it needs: a module's tests may be spread
over several test processes, each with its own stack (with pytest 9, xdist's groups do not hold).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_stack import EXAMPLE_PROJECT, Stack, manage, running_stack
from services import RedisServer, create_database, database_name, drop_database

from controlplane.models import Request

CONFIG = """
[environments.staging]
project = "{project}"
settings = "backend.settings"
backup_dir = "{folder}/backups/staging"
env = {{ DATABASE_URL = "HYGIENE_STAGING_DATABASE_URL" }}
[environments.staging.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["U0BOB"]

[environments.prod]
project = "{project}"
settings = "backend.settings"
production = true
backup_dir = "{folder}/backups/prod"
env = {{ DATABASE_URL = "HYGIENE_PROD_DATABASE_URL" }}
[environments.prod.policy]
readers = ["*"]
requesters = ["U0ALICE"]
approvers = ["U0BOB"]
approval_for = ["migrate"]
promote_from = "staging"
"""


@pytest.fixture(scope="module")
def hygiene_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, postgres_admin_url: str
) -> Iterator[Stack]:
    """Staging (SQLite) and prod (PostgreSQL) on a private copy of the example project, both one
    step behind: marketplace 0006 and media 0004 to go."""
    folder = tmp_path_factory.mktemp("hygiene")
    project = Path(
        shutil.copytree(EXAMPLE_PROJECT, folder / "backend", ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    )
    pg_url = create_database(postgres_admin_url)
    target_env = {
        "HYGIENE_STAGING_DATABASE_URL": f"sqlite:///{folder / 'staging.sqlite3'}",
        "HYGIENE_PROD_DATABASE_URL": pg_url,
    }
    behind = [("marketplace", "0005"), ("media", "0003")]
    try:
        with running_stack(
            folder,
            redis_url=redis_server.url,
            postgres_admin_url=postgres_admin_url,
            project=project,
            config_text=CONFIG,
            target_env=target_env | {"E2E_PG_DATABASE_URL": pg_url},
            starting_points={"staging": behind, "prod": behind},
        ) as stack:
            yield stack
    finally:
        drop_database(postgres_admin_url, database_name(pg_url))


def test_check_on_a_clean_environment_says_so_in_one_line(hygiene_stack: Stack) -> None:
    for env in ("staging", "prod"):
        checked = hygiene_stack.chat.say(f"check {env}", user="U0CAROL")
        assert checked.request is not None and checked.request.state == "succeeded", checked.thread
        assert f"✅ *{env}*: no edited or missing applied migrations, no conflicts" in checked.thread


def test_production_takes_only_what_succeeded_on_staging_first(hygiene_stack: Stack) -> None:
    chat = hygiene_stack.chat
    early = chat.say("migrate prod", user="U0ALICE")
    assert early.request is not None and early.request.state == "refused"
    assert "`prod` takes only changes that already succeeded on `staging` (policy `promote_from`)" in early.thread
    assert "(e.g. `migrate staging`)" in early.thread
    assert "[ ] 0004_banner" in manage(hygiene_stack, "prod", "showmigrations", "media")

    staged = chat.say("migrate staging", user="U0ALICE")
    assert staged.request is not None and staged.request.state == "succeeded", staged.thread

    asked = chat.say("migrate prod", user="U0ALICE")
    assert asked.request is not None and asked.request.state == "awaiting_approval", asked.thread
    assert f"🪜 The same steps succeeded on `staging` in request #{staged.request.pk} at" in asked.thread
    done = chat.click("approve", user="U0BOB", request=asked.request)
    assert done.request is not None and done.request.state == "succeeded", done.thread
    assert "[X] 0004_banner" in manage(hygiene_stack, "prod", "showmigrations", "media")


@pytest.fixture
def broken_rules(hygiene_stack: Stack) -> Iterator[Stack]:
    """Both environments fully migrated and seen by the bot, then an applied migration edited and a
    model changed without a migration; the files are put back afterwards."""
    for env in ("staging", "prod"):
        manage(hygiene_stack, env, "migrate", "--noinput")
        hygiene_stack.chat.say(f"showmigrations {env}", user="U0CAROL")  # the ledger sees them applied
    banner = hygiene_stack.project / "media" / "migrations" / "0004_banner.py"
    models = hygiene_stack.project / "accounts" / "models.py"
    originals = {path: path.read_text() for path in (banner, models)}
    banner.write_text(originals[banner] + "# tidied up after it shipped\n")
    models.write_text(
        originals[models].replace("    bio = ", "    phone = models.CharField(max_length=20, blank=True)\n    bio = ")
    )
    try:
        yield hygiene_stack
    finally:
        for path, text in originals.items():
            path.write_text(text)


def test_check_and_plans_name_what_breaks_the_rules_and_production_refuses_writes(broken_rules: Stack) -> None:
    chat = broken_rules.chat
    checked = chat.say("check staging", user="U0CAROL")
    assert checked.request is not None and checked.request.state == "succeeded", checked.thread
    assert "⚠️ *staging*: `check` found 2 problems:" in checked.thread
    assert (
        "`staging` · `media.0004_banner` (`media/migrations/0004_banner.py`) changed after it was applied"
        in checked.thread
    )
    assert "restore the file from version control (`git log -p -- media/migrations/0004_banner.py`)" in checked.thread
    assert (
        "`staging` · app `accounts` has model changes with no migration in `accounts/migrations` "
        "(Add field phone to profile)"
        in checked.thread
    )
    assert "run `python manage.py makemigrations accounts`" in checked.thread

    read = chat.say("plan staging", user="U0CAROL")
    assert read.request is not None and read.request.state == "succeeded", read.thread
    warning, summary = (
        "⚠️ `check staging` finds 2 problems; they do not stop this plan",
        "*staging*: no planned migration",
    )
    assert warning in read.thread and read.thread.index(warning) < read.thread.index(summary), read.thread

    write = chat.say("rollback staging media 0003", user="U0ALICE")
    assert write.request is not None and write.request.state == "awaiting_approval", write.thread
    thread = write.thread
    assert (
        thread.index("⚠️ `check staging` finds 2 problems")
        < thread.index("↩️ unapply `media.0004_banner`")
        < thread.index("[Approve]")
    )
    assert chat.deny(user="U0BOB", reason="the check finds problems", request=write.request).request.state == "denied"

    before = manage(broken_rules, "prod", "showmigrations", "--list")
    refused = chat.say("rollback prod media 0003", user="U0ALICE")
    assert refused.request is not None and refused.request.state == "refused", refused.thread
    assert (
        "`prod` refuses writes while `check prod` finds problems (policy `refuse_writes_on_check_failure`)"
        in refused.thread
    )
    assert (
        "`prod` · `media.0004_banner` (`media/migrations/0004_banner.py`) changed after it was applied"
        in refused.thread
    )
    assert manage(broken_rules, "prod", "showmigrations", "--list") == before
    assert Request.objects.get(pk=refused.request.pk).plan is None, "nothing was offered for approval"
