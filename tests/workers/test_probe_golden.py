"""Golden tests: the probe's JSON, rendered by workers.djangotext, is byte for byte what
the real `manage.py showmigrations --list` / `migrate --plan` print for the same copy
of the example project and the same database, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from migrabot_probe.protocol import BOOTSTRAP
from workers.djangotext import plan_text, showmigrations_text

PROBE = ("-c", BOOTSTRAP)  # the probe, one-shot, as `python -c …` (protocol.command_line)
REFUSED = 3
SQUASHED = "0001_squashed_0002_image_alt_text"
RENDER = {"showmigrations": showmigrations_text, "plan": plan_text}


def recorder(method: str, name: str) -> tuple[str, ...]:
    """A manage.py command that edits django_migrations only, to fake squash states."""
    code = (
        "from django.db import connection; "
        "from django.db.migrations.recorder import MigrationRecorder; "
        f"MigrationRecorder(connection).{method}('media', '{name}')"
    )
    return ("shell", "-v", "0", "-c", code)


# state -> (manage.py commands that build it from an empty database, probe commands to compare)
STATES: dict[str, tuple[list[tuple[str, ...]], list[tuple[str, ...]]]] = {
    "fresh": (
        [],
        [
            ("showmigrations",),
            ("showmigrations", "media"),
            ("plan",),
            ("plan", "accounts", "0002"),
            ("plan", "media", SQUASHED),
            ("plan", "marketplace", "zero"),
        ],
    ),
    "migrated": (
        [("migrate",)],
        [
            ("showmigrations",),
            ("plan",),
            ("plan", "media"),
            ("plan", "marketplace", "0005"),  # rollback cascading into media
            ("plan", "marketplace", "0002"),  # crosses the irreversible step
            ("plan", "accounts", "0002_customer_display_name"),
            ("plan", "accounts", "zero"),
            ("plan", "media", "0002"),  # a migration the applied squash replaced
        ],
    ),
    "partial": (
        [("migrate", "marketplace", "0002")],
        [
            ("showmigrations",),
            ("showmigrations", "marketplace", "accounts"),
            ("plan",),
            ("plan", "media"),
            ("plan", "accounts", "0001"),
        ],
    ),
    "squash-unrecorded": (
        [("migrate",), recorder("record_unapplied", SQUASHED)],
        [("showmigrations", "media"), ("plan",)],
    ),
    "squash-partially-applied": (
        [("migrate", "marketplace"), recorder("record_applied", "0001_initial")],
        [("showmigrations", "media"), ("plan", "media", SQUASHED), ("plan", "media")],
    ),
}


def cli_argv(argv: tuple[str, ...]) -> list[str]:
    command, *args = argv
    if command == "showmigrations":
        return ["showmigrations", "--list", *args]
    return ["migrate", "--plan", *args]


def ok(completed: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert completed.returncode == 0, completed.stderr
    return completed


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'target.sqlite3'}"


@pytest.mark.parametrize("state", STATES)
def test_probe_renders_exactly_what_manage_py_prints(
    state: str, example_project: Path, database_url: str, manage: Callable, run_in_project: Callable
) -> None:
    setup, queries = STATES[state]
    for command in setup:
        ok(manage(example_project, database_url, *command))
    probed, printed = {}, {}
    for argv in queries:
        document = json.loads(ok(run_in_project(example_project, database_url, *PROBE, *argv)).stdout)
        probed[argv] = RENDER[argv[0]](document)
        printed[argv] = ok(manage(example_project, database_url, *cli_argv(argv))).stdout
    assert probed == printed


def test_plan_data_marks_the_irreversible_step(
    example_project: Path, sqlite_url: str, manage: Callable, run_in_project: Callable
) -> None:
    ok(manage(example_project, sqlite_url, "migrate"))
    plan = json.loads(ok(run_in_project(example_project, sqlite_url, *PROBE, "plan", "marketplace", "0002")).stdout)
    steps = [(s["app"], s["name"], s["backwards"], [op["type"] for op in s["operations"]]) for s in plan["steps"]]
    assert steps == [
        ("media", "0004_banner", True, ["CreateModel"]),
        ("marketplace", "0006_alter_listing_title", True, ["AlterField"]),
        ("marketplace", "0005_backfill_order_totals", True, ["RunPython"]),
        ("marketplace", "0004_order_total_cents", True, ["AddField"]),
        ("marketplace", "0003_order_open_index", True, ["RunSQL"]),
    ]
    irreversible = [
        (s["name"], op["description"]) for s in plan["steps"] for op in s["operations"] if op["irreversible"]
    ]
    assert irreversible == [("0005_backfill_order_totals", "Raw Python operation -> IRREVERSIBLE")]


def remove_media_migrations(project: Path) -> None:
    shutil.rmtree(project / "media" / "migrations")


def add_conflicting_leaf(project: Path) -> None:
    folder = project / "accounts" / "migrations"
    shutil.copy(folder / "0004_customer_created_index_remove_profile_website.py", folder / "0004_other_branch.py")


@pytest.mark.parametrize(
    ("argv", "change", "message"),
    [
        (("plan", "shop"), None, "No installed app with label 'shop'."),
        (("showmigrations", "shop", "accounts"), None, "No installed app with label 'shop'."),
        (("plan", "accounts", "0009"), None, "Cannot find a migration matching '0009' from app 'accounts'."),
        (
            ("plan", "media", "0001"),
            None,
            "More than one migration matches '0001' in app 'media'. Please be more specific.",
        ),
        (("plan", "media"), remove_media_migrations, "App 'media' does not have migrations."),
        (
            ("plan",),
            add_conflicting_leaf,
            "Conflicting migrations detected; multiple leaf nodes in the migration graph: "
            "(0004_customer_created_index_remove_profile_website, 0004_other_branch in accounts).\n"
            "To fix them run 'python manage.py makemigrations --merge'",
        ),
    ],
    ids=["unknown-app", "showmigrations-unknown-app", "no-match", "ambiguous", "no-migrations", "conflict"],
)
def test_refusals_use_djangos_words(
    argv: tuple[str, ...],
    change: Callable[[Path], None] | None,
    message: str,
    example_project: Path,
    sqlite_url: str,
    manage: Callable,
    run_in_project: Callable,
) -> None:
    if change:
        change(example_project)
    probed = run_in_project(example_project, sqlite_url, *PROBE, *argv)
    assert (probed.returncode, json.loads(probed.stdout)) == (REFUSED, {"refusal": message})
    printed = manage(example_project, sqlite_url, *cli_argv(argv))
    assert printed.returncode != 0
    assert printed.stderr.strip().removeprefix("CommandError: ") == message


def test_app_without_migrations_lists_none(
    example_project: Path, sqlite_url: str, manage: Callable, run_in_project: Callable
) -> None:
    remove_media_migrations(example_project)
    document = json.loads(ok(run_in_project(example_project, sqlite_url, *PROBE, "showmigrations", "media")).stdout)
    assert document["apps"] == [{"app": "media", "migrations": []}]
    assert "media" not in document["catalog"] and "accounts" in document["catalog"]  # what reads carry
    assert (
        showmigrations_text(document)
        == ok(manage(example_project, sqlite_url, *cli_argv(("showmigrations", "media")))).stdout
    )


def test_catalog_lists_every_file_on_disk_without_a_database(
    example_project: Path, tmp_path: Path, run_in_project: Callable
) -> None:
    database = tmp_path / "never-created.sqlite3"
    document = json.loads(ok(run_in_project(example_project, f"sqlite:///{database}", *PROBE, "catalog")).stdout)
    assert sorted(document["apps"]) == ["accounts", "auth", "contenttypes", "marketplace", "media"]
    for app in ("accounts", "marketplace", "media"):
        on_disk = sorted(p.stem for p in (example_project / app / "migrations").glob("0*.py"))
        assert document["apps"][app] == on_disk
    assert SQUASHED in document["apps"]["media"] and "0002_image_alt_text" in document["apps"]["media"]
    assert not database.exists()


def test_a_broken_target_is_an_error_not_a_refusal(example_project: Path, run_in_project: Callable) -> None:
    probed = run_in_project(example_project, "postgresql://postgres@127.0.0.1:1/nowhere", *PROBE, "showmigrations")
    assert probed.returncode not in (0, REFUSED)
    assert probed.stdout == "" and "Traceback" in probed.stderr
