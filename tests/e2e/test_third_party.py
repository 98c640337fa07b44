"""A real project's third-party apps, end to end: `vendorcms` installed outside the project (as
from site-packages), with a numbering clash its own dependencies order. `check` answers clean,
production takes writes, plans carry no renumbering advice and name the vendor's columns.
SQLite staging and PostgreSQL production, a real worker over a real Redis, the stand-in.

Before findings had a severity, this clash made `check` report a problem on a healthy project,
so production (which refuses writes while `check` finds one) refused every write.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import vendor_app
from e2e_stack import EXAMPLE_PROJECT, Stack, manage, running_stack
from services import RedisServer, create_database, database_name, drop_database

CONFIG = """
[environments.staging]
project = "{project}"
settings = "backend.settings"
backup_dir = "{folder}/backups/staging"
env = {{ DATABASE_URL = "VENDOR_STAGING_DATABASE_URL" }}
[environments.staging.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["U0BOB"]

[environments.prod]
project = "{project}"
settings = "backend.settings"
production = true
backup_dir = "{folder}/backups/prod"
env = {{ DATABASE_URL = "VENDOR_PROD_DATABASE_URL" }}
[environments.prod.policy]
readers = ["*"]
requesters = ["U0ALICE"]
approvers = ["U0BOB"]
approval_for = ["migrate"]
"""


@pytest.fixture(scope="module")
def vendor_stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, postgres_admin_url: str
) -> Iterator[Stack]:
    """Both environments migrated but for the vendor's last migration (`0002_page_body`)."""
    folder = tmp_path_factory.mktemp("vendor")
    project = Path(
        shutil.copytree(EXAMPLE_PROJECT, folder / "backend", ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    )
    vendor_app.install(project, folder / "site-packages")
    pg_url = create_database(postgres_admin_url)
    target_env = {
        "VENDOR_STAGING_DATABASE_URL": f"sqlite:///{folder / 'staging.sqlite3'}",
        "VENDOR_PROD_DATABASE_URL": pg_url,
    }
    behind = [(), ("vendorcms", "0002_page_slug")]
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


def test_check_on_a_project_whose_only_clash_is_third_party_is_clean(vendor_stack: Stack) -> None:
    for env in ("staging", "prod"):
        checked = vendor_stack.chat.say(f"check {env}", user="U0CAROL")
        assert checked.request is not None and checked.request.state == "succeeded", checked.thread
        assert (
            f"✅ *{env}*: no edited or missing applied migrations, no conflicts, no missing migrations, "
            "no numbering clashes, no migration applied before its dependency." in checked.thread
        )
        assert "vendorcms" not in checked.thread and "site-packages" not in checked.thread


def test_production_takes_a_write_and_its_plan_gives_no_renumbering_advice(vendor_stack: Stack) -> None:
    chat = vendor_stack.chat
    asked = chat.say("migrate prod", user="U0ALICE")
    assert asked.request is not None and asked.request.state == "awaiting_approval", asked.thread
    assert "vendorcms.0002_page_body" in asked.thread
    assert "Renumber" not in asked.thread and "share the number" not in asked.thread and "../" not in asked.thread
    done = chat.click("approve", user="U0BOB", request=asked.request)
    assert done.request is not None and done.request.state == "succeeded", done.thread
    assert "[X] 0002_page_body" in manage(vendor_stack, "prod", "showmigrations", "vendorcms")

    staged = chat.say("migrate staging", user="U0CAROL")  # no approval there: it runs after its rehearsal
    assert staged.request is not None and staged.request.state == "succeeded", staged.thread
    assert "[X] 0002_page_body" in manage(vendor_stack, "staging", "showmigrations", "vendorcms")


def test_a_vendor_rollback_names_each_column_it_drops(vendor_stack: Stack) -> None:
    manage(vendor_stack, "staging", "migrate", "--noinput")
    manage(
        vendor_stack,
        "staging",
        "shell",
        "-v",
        "0",
        "-c",
        "from vendorcms.models import Page; Page.objects.create(title='Home', body='Welcome'); "
        "Page.objects.create(title='About')",
    )
    asked = vendor_stack.chat.say("rollback staging vendorcms 0001", user="U0CAROL")
    assert asked.request is not None and asked.request.state == "awaiting_approval", asked.thread
    assert "`vendorcms_page.body` (2 rows with a value)" in asked.thread
    assert "`vendorcms_page.slug` (2 rows with a value)" in asked.thread
    assert "Renumber" not in asked.thread


@pytest.mark.parametrize(("env", "user"), [("staging", "U0CAROL"), ("prod", "U0ALICE")])
def test_a_rollback_says_what_comes_back_empty_what_code_runs_and_why_another_app_moves(
    vendor_stack: Stack, env: str, user: str
) -> None:
    """The example project's own reversed RemoveField and RunPython, and its cross-app dependency
    (media.0004_banner on marketplace.0006), through the stand-in on SQLite and PostgreSQL."""
    manage(vendor_stack, env, "migrate", "--noinput")
    asked = vendor_stack.chat.say(f"rollback {env} accounts 0002", user=user)
    assert asked.request is not None and asked.request.state == "awaiting_approval", asked.thread
    assert "🕳️ `accounts_profile.website` comes back empty (its old values are not restored)" in asked.thread
    assert "🐍 runs `accounts.migrations.0003_fill_display_names.clear_display_names`" in asked.thread
    cascading = vendor_stack.chat.say(f"rollback {env} marketplace 0005", user=user)
    assert cascading.request is not None and cascading.request.state == "awaiting_approval", cascading.thread
    assert "↪️ also unapplies 1 migration in `media`, because `media.0004_banner` depends on" in cascading.thread
