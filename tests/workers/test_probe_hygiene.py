"""The probe's `check` and the fingerprint ledger: the workflow's rules, on fixture migration sets in
private copies of the example project, on SQLite and PostgreSQL. Where Django itself has an
opinion (`makemigrations --check`, `migrate`'s refusals) the probe must agree with it.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import vendor_app

from controlplane.models import AuditEvent, MigrationFingerprint
from migrabot_probe.protocol import BOOTSTRAP
from workers import hygiene

PROBE = ("-c", BOOTSTRAP)  # the probe, one-shot, as `python -c …` (protocol.command_line)
REFUSED = 3

LEAF = '''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0006_alter_listing_title")]
    operations = []
'''


def ok(completed: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert completed.returncode == 0, completed.stderr
    return completed


@pytest.fixture
def migrated(example_project: Path, database_url: str, manage: Callable) -> tuple[Path, str]:
    ok(manage(example_project, database_url, "migrate"))
    return example_project, database_url


def check(project: Path, url: str, run_in_project: Callable) -> dict[str, Any]:
    return json.loads(ok(run_in_project(project, url, *PROBE, "check")).stdout)


def findings(document: dict[str, Any]) -> dict[str, list[Any]]:
    return {key: value for key, value in document["hygiene"].items() if value}


def env() -> str:
    return f"env{uuid.uuid4().hex[:8]}"


def test_the_example_project_is_clean_squash_and_all(migrated: tuple[Path, str], run_in_project: Callable) -> None:
    document = check(*migrated, run_in_project)
    assert findings(document) == {}
    names = {(f["app"], f["name"]) for f in document["fingerprints"]}
    # media's 0001_initial and the squash replacing it share a number, and that is fine.
    assert {
        ("media", "0001_initial"),
        ("media", "0001_squashed_0002_image_alt_text"),
        ("contenttypes", "0001_initial"),
    } <= names
    banner = next(f for f in document["fingerprints"] if f["name"] == "0004_banner")
    assert banner["file"] == "media/migrations/0004_banner.py" and len(banner["sha256"]) == 64


def test_a_deleted_applied_migration_and_the_model_change_it_leaves(
    migrated: tuple[Path, str], run_in_project: Callable, manage: Callable
) -> None:
    project, url = migrated
    (project / "media" / "migrations" / "0004_banner.py").unlink()
    found = findings(check(project, url, run_in_project))
    assert [(m["app"], m["name"], m["file"]) for m in found.pop("missing_files")] == [
        ("media", "0004_banner", "media/migrations/0004_banner.py")
    ]
    assert found == {
        "missing_migrations": [
            {"app": "media", "folder": "media/migrations", "third_party": False, "operations": ["Create model Banner"]}
        ]
    }
    # Django agrees: makemigrations --check fails, for media alone.
    detected = manage(project, url, "makemigrations", "--check", "--dry-run")
    assert (
        detected.returncode == 1 and "Migrations for 'media':" in detected.stdout and "accounts" not in detected.stdout
    )


def test_model_changes_without_a_migration_name_the_app(migrated: tuple[Path, str], run_in_project: Callable) -> None:
    project, url = migrated
    models = project / "accounts" / "models.py"
    models.write_text(
        models.read_text().replace("    bio = ", "    phone = models.CharField(max_length=20)\n    bio = ")
    )
    # A NOT NULL field without a default: Django's non-interactive questioner would exit(3) here.
    assert findings(check(project, url, run_in_project)) == {
        "missing_migrations": [
            {"app": "accounts", "folder": "accounts/migrations", "third_party": False,
             "operations": ["Add field phone to profile"]}
        ]
    }


def test_conflicting_leaves_are_reported_where_migrate_refuses(
    migrated: tuple[Path, str], run_in_project: Callable
) -> None:
    project, url = migrated
    for name in ("0007_listing_sku", "0007_listing_weight"):
        (project / "marketplace" / "migrations" / f"{name}.py").write_text(LEAF)
    found = findings(check(project, url, run_in_project))
    names = ["0007_listing_sku", "0007_listing_weight"]
    assert found == {
        "conflicts": [{"app": "marketplace", "names": names, "folder": "marketplace/migrations"}],
        "prefix_clashes": [
            {"app": "marketplace", "number": 7, "names": names, "folder": "marketplace/migrations",
             "third_party": False}
        ],
    }
    planned = run_in_project(project, url, *PROBE, "plan")
    assert planned.returncode == REFUSED and "makemigrations --merge" in planned.stdout


def test_a_numbering_clash_without_a_conflict(migrated: tuple[Path, str], run_in_project: Callable) -> None:
    project, url = migrated
    folder = project / "marketplace" / "migrations"
    # A second 0006 after 0005, and a merge after both: one leaf, so no conflict, but two 0006s.
    (folder / "0006_listing_notes.py").write_text(
        LEAF.replace("0006_alter_listing_title", "0005_backfill_order_totals")
    )
    (folder / "0007_merge.py").write_text(
        LEAF.replace(
            '("marketplace", "0006_alter_listing_title")',
            '("marketplace", "0006_alter_listing_title"), ("marketplace", "0006_listing_notes")',
        )
    )
    found = findings(check(project, url, run_in_project))
    assert found == {
        "prefix_clashes": [
            {
                "app": "marketplace",
                "number": 6,
                "names": ["0006_alter_listing_title", "0006_listing_notes"],
                "folder": "marketplace/migrations",
                "third_party": False,
            }
        ]
    }
    review = hygiene.review(env(), check(project, url, run_in_project), actor="test")
    assert review.problems == [] and len(review.warnings) == 1, "ordered by its dependencies: a warning"
    assert "share the number 0006. Renumber the one not yet applied" in review.warnings[0]


@pytest.fixture
def with_vendor_app(example_project: Path, database_url: str, manage: Callable, tmp_path: Path) -> tuple[Path, str]:
    """The example project with `vendorcms` installed from a folder outside it, migrated."""
    vendor_app.install(example_project, tmp_path / "site-packages")
    ok(manage(example_project, database_url, "migrate"))
    return example_project, database_url


def test_a_healthy_project_with_a_third_party_numbering_clash_checks_clean(
    with_vendor_app: tuple[Path, str], run_in_project: Callable
) -> None:
    from slackui import cards

    document = check(*with_vendor_app, run_in_project)
    assert findings(document) == {
        "prefix_clashes": [
            {"app": "vendorcms", "number": 2, "names": ["0002_page_body", "0002_page_slug"],
             "folder": "vendorcms/migrations", "third_party": True}
        ]
    }
    vendor = [f["file"] for f in document["fingerprints"] if f["app"] == "vendorcms"]
    assert vendor == [f"vendorcms/migrations/{name}" for name in sorted(vendor_app.MIGRATIONS)], "never ../../…"
    review = hygiene.review(env(), document, actor="test")
    assert review == hygiene.Review()
    text, blocks = cards.check_result("prod", review.problems, review.warnings)
    assert len(blocks) == 1 and text == (  # the one-line clean answer
        "✅ *prod*: no edited or missing applied migrations, no conflicts, no missing migrations, "
        "no numbering clashes, no migration applied before its dependency."
    )


def test_third_party_model_changes_warn_and_an_edited_vendor_migration_is_a_problem(
    with_vendor_app: tuple[Path, str], run_in_project: Callable, tmp_path: Path
) -> None:
    project, url = with_vendor_app
    name = env()
    hygiene.record(name, check(project, url, run_in_project), actor="test")  # first seen
    package = tmp_path / "site-packages" / "vendorcms"
    models = package / "models.py"
    models.write_text(models.read_text() + "    views = models.IntegerField(default=0)\n")
    review = hygiene.review(name, check(project, url, run_in_project), actor="test")
    assert review.problems == []
    (warning,) = review.warnings
    assert "third-party app `vendorcms` (`vendorcms/migrations`) has model changes" in warning
    assert "makemigrations" not in warning

    upgraded = package / "migrations" / "0002_page_slug.py"  # a package upgrade rewrote an applied one
    upgraded.write_text(upgraded.read_text().replace('default=""', 'default="page"'))
    review = hygiene.review(name, check(project, url, run_in_project), actor="test")
    (problem,) = review.problems
    assert "`vendorcms.0002_page_slug` (`vendorcms/migrations/0002_page_slug.py`) changed after it was applied" in (
        problem
    )


def test_an_inconsistent_history_is_listed_not_refused(
    migrated: tuple[Path, str], run_in_project: Callable, manage: Callable
) -> None:
    project, url = migrated
    code = (
        "from django.db import connection; from django.db.migrations.recorder import MigrationRecorder; "
        "MigrationRecorder(connection).record_unapplied('accounts', '0003_fill_display_names')"
    )
    ok(manage(project, url, "shell", "-v", "0", "-c", code))
    found = findings(check(project, url, run_in_project))
    assert found == {
        "inconsistent": [
            {
                "app": "accounts",
                "name": "0004_customer_created_index_remove_profile_website",
                "dependency": {
                    "app": "accounts",
                    "name": "0003_fill_display_names",
                    "file": "accounts/migrations/0003_fill_display_names.py",
                },
            }
        ]
    }
    refused = manage(project, url, "migrate", "--plan")
    assert (
        "accounts.0004_customer_created_index_remove_profile_website is applied before its dependency" in refused.stderr
    )


def test_an_edited_applied_migration_is_caught_against_the_first_fingerprint(
    migrated: tuple[Path, str], run_in_project: Callable, manage: Callable
) -> None:
    project, url = migrated
    name = env()
    shown = json.loads(ok(run_in_project(project, url, *PROBE, "showmigrations", "--fingerprints")).stdout)
    hygiene.record(name, shown, actor="test")  # what every read does: first seen
    recorded = MigrationFingerprint.objects.filter(environment=name)
    assert recorded.count() == len(shown["fingerprints"])
    assert AuditEvent.objects.filter(environment=name, action="fingerprints.recorded").count() == 1

    banner = project / "media" / "migrations" / "0004_banner.py"
    banner.write_text(banner.read_text() + "# tidied up\n")
    listing = project / "accounts" / "migrations" / "0001_initial.py"
    listing.write_bytes(listing.read_bytes().replace(b"\n", b"\r\n"))  # a checkout's line endings: not an edit
    document = check(project, url, run_in_project)
    found = hygiene.review(name, document, actor="test").problems
    was = recorded.get(app="media", name="0004_banner").sha256
    now = next(f["sha256"] for f in document["fingerprints"] if f["name"] == "0004_banner")
    assert len(found) == 1 and was != now
    assert (
        f"`{name}` · `media.0004_banner` (`media/migrations/0004_banner.py`) changed after it was applied" in found[0]
    )
    assert f"`{was[:12]}…`" in found[0] and f"`{now[:12]}…` now" in found[0]
    assert hygiene.review(name, document, actor="test").problems == found, (
        "first seen wins: the edit is never taken as the reference"
    )
    assert AuditEvent.objects.filter(environment=name, action="fingerprints.recorded").count() == 1

    # Rolled back, then applied again with the edited file: a new application, nothing edited under it.
    ok(manage(project, url, "migrate", "media", "0003"))
    ok(manage(project, url, "migrate"))
    assert hygiene.review(name, check(project, url, run_in_project), actor="test") == hygiene.Review()
