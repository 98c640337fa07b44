"""The warm session (workers.session): its answers stay those of `manage.py` while it is warm —
after migration files are added, edited (same size, same second) or deleted, after another
process migrated the database behind its back, after a failed migration — and a session that
dies, hangs, grows too big or finds its imported code changed is replaced, never trusted."""

from __future__ import annotations

import hashlib
import os
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from migrabot.config import Environment
from migrabot_probe.protocol import BOOTSTRAP, PACKAGE_PARENT
from workers.djangotext import plan_text, showmigrations_text
from workers.session import SESSIONS
from workers.target import MigrationFailed, Target, TargetError

URL_VARIABLE = "MIGRABOT_TEST_SESSION_DATABASE_URL"
NAME = "warm"
NEW_MIGRATION = '''from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_customer_created_index_remove_profile_website")]
    operations = [migrations.AddField("customer", "{field}", models.IntegerField(null=True))]
'''
BROKEN_MIGRATION = '''from django.db import migrations


def explode(apps, schema_editor):
    raise KeyError("plan")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_customer_created_index_remove_profile_website")]
    operations = [migrations.RunPython(explode, migrations.RunPython.noop)]
'''


@pytest.fixture
def target(example_project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    monkeypatch.setenv(URL_VARIABLE, database_url)
    environment = Environment(
        name=NAME, project=example_project, settings="backend.settings", env={"DATABASE_URL": URL_VARIABLE}
    )
    yield Target(environment, timeout_seconds=60)
    SESSIONS.close_all()


@pytest.fixture
def same_as_manage_py(example_project: Path, database_url: str, manage: Callable, target: Target) -> Callable:
    """Asserts the warm session's showmigrations and plans render as manage.py prints them."""

    def check(*plans: tuple[str, ...]) -> None:
        def printed(*args: str) -> str:
            completed = manage(example_project, database_url, *args)
            assert completed.returncode == 0, completed.stderr
            return str(completed.stdout)

        assert showmigrations_text(target.probe("showmigrations")) == printed("showmigrations", "--list")
        for args in plans:
            planned = target.probe("plan", *args)
            assert plan_text(planned) == printed("migrate", "--plan", *args)
            # Its SQL too, kept by the session between calls while nothing changed (sql.steps_sql):
            # each step's as sqlmigrate prints it, or where sqlmigrate cannot (an irreversible step), said so.
            sections = re.split(r"^(-- \S+\.\S+(?: \(backwards\))?)\n", planned["sql"], flags=re.MULTILINE)[1:]
            assert len(sections) == 2 * len(planned["steps"])
            for step, header, body in zip(planned["steps"], sections[::2], sections[1::2], strict=True):
                backwards = ["--backwards"] if step["backwards"] else []
                assert header == f"-- {step['app']}.{step['name']}{' (backwards)' if backwards else ''}"
                sqlmigrate = manage(example_project, database_url, "sqlmigrate", *backwards, step["app"], step["name"])
                if sqlmigrate.returncode == 0:
                    assert body == sqlmigrate.stdout
                else:
                    assert "is not reversible" in sqlmigrate.stderr and body.startswith("-- IRREVERSIBLE")

    return check


def test_a_warm_session_answers_as_manage_py_through_changes_behind_its_back(
    target: Target, example_project: Path, database_url: str, manage: Callable, same_as_manage_py: Callable
) -> None:
    migrations = example_project / "accounts" / "migrations"
    same_as_manage_py((), ("accounts", "0002"))
    session = SESSIONS.started(NAME)
    assert session is not None

    manage(example_project, database_url, "migrate")  # another process migrates the database
    same_as_manage_py((), ("marketplace", "0005"), ("accounts", "zero"))

    (migrations / "0005_added.py").write_text(NEW_MIGRATION.format(field="points"))  # a deploy adds a file
    same_as_manage_py((), ("accounts",))
    assert "Add field points to customer" in plan_text(target.probe("plan", "accounts"))

    manage(example_project, database_url, "migrate", "accounts")
    same_as_manage_py(("accounts", "0004"),)
    (migrations / "0005_added.py").unlink()  # an applied file deleted: Django and we ignore the row
    same_as_manage_py((), ("accounts", "0003"))
    assert SESSIONS.started(NAME) == session  # all of it answered warm


def test_a_same_size_same_second_edit_is_seen_and_its_hash_is_the_code_that_loaded(
    target: Target, example_project: Path, same_as_manage_py: Callable
) -> None:
    new = example_project / "accounts" / "migrations" / "0005_added.py"
    new.write_text(NEW_MIGRATION.format(field="points"))
    before = target.probe("plan", "accounts")
    stat = new.stat()
    new.write_text(NEW_MIGRATION.format(field="scores"))  # same length
    os.utime(new, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime, to the nanosecond
    assert new.stat().st_size == stat.st_size

    after = target.probe("plan", "accounts")
    assert "Add field scores to customer" in plan_text(after)
    assert '"points"' in before["sql"] and '"scores"' in after["sql"] and '"points"' not in after["sql"]
    (step,) = [s for s in after["steps"] if s["name"] == "0005_added"]
    assert step["sha256"] != [s for s in before["steps"] if s["name"] == "0005_added"][0]["sha256"]
    assert step["sha256"] == hashlib.sha256(new.read_bytes()).hexdigest()
    same_as_manage_py(("accounts",))


def test_after_a_failed_migration_the_session_answers_what_the_database_holds(
    target: Target, example_project: Path, same_as_manage_py: Callable
) -> None:
    same_as_manage_py()
    (example_project / "accounts" / "migrations" / "0005_broken.py").write_text(BROKEN_MIGRATION)
    with pytest.raises(MigrationFailed, match="KeyError"):
        list(target.stream("migrate", "--", "accounts"))
    same_as_manage_py((), ("accounts",))


def test_a_changed_module_other_than_a_migration_is_answered_by_a_fresh_session(
    target: Target, example_project: Path, same_as_manage_py: Callable
) -> None:
    same_as_manage_py()
    first = SESSIONS.started(NAME)
    models = example_project / "accounts" / "models.py"
    models.write_text(models.read_text() + "\n# deployed\n")
    same_as_manage_py()
    assert SESSIONS.started(NAME) not in (None, first)


def _session_pid() -> int:
    session = SESSIONS._sessions[NAME]
    return session.process.pid


def test_a_dead_session_is_replaced_before_the_next_call(target: Target, same_as_manage_py: Callable) -> None:
    same_as_manage_py()
    first = SESSIONS.started(NAME)
    os.kill(_session_pid(), signal.SIGKILL)
    SESSIONS._sessions[NAME].process.wait()
    same_as_manage_py()
    assert SESSIONS.started(NAME) not in (None, first)


def test_a_hung_session_is_stopped_with_a_clear_error_and_replaced(target: Target, same_as_manage_py: Callable) -> None:
    target.probe("showmigrations")
    hung = SESSIONS._sessions[NAME].process
    os.kill(hung.pid, signal.SIGSTOP)
    quick = Target(target.environment, timeout_seconds=1)
    with pytest.raises(TargetError, match=r"`showmigrations` in `warm`: took longer than 1 s and was stopped"):
        quick.probe("showmigrations")
    assert hung.poll() is not None  # killed, not left stopped
    same_as_manage_py()


def test_a_session_grown_past_its_memory_limit_answers_then_is_replaced(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    target.probe("showmigrations")
    first = SESSIONS.started(NAME)
    monkeypatch.setenv("MIGRABOT_SESSION_MAX_MIB", "1")
    assert target.probe("showmigrations")["apps"]  # answered
    replacement = SESSIONS.started(NAME)
    assert replacement not in (None, first)  # retired, and its replacement already started
    monkeypatch.delenv("MIGRABOT_SESSION_MAX_MIB")
    target.probe("showmigrations")
    assert SESSIONS.started(NAME) == replacement


def test_the_targets_own_modules_are_never_shadowed_by_the_probes(
    target: Target, example_project: Path, database_url: str, run_in_project: Callable
) -> None:
    """The target's folder is first on sys.path: its `protocol`, `plans` or `main` modules are its
    own, and none of our packages (or the worker's site-packages) is importable from its code."""
    for name in ("protocol", "plans", "main", "loading", "state"):
        (example_project / f"{name}.py").write_text(f"WHOSE = 'target'\nNAME = {name!r}\n")
    settings = example_project / "backend" / "settings.py"
    settings.write_text(
        settings.read_text()
        + "\nimport sys as _sys\nimport protocol as _protocol, plans as _plans\n"
        + "assert _protocol.WHOSE == 'target' and _plans.WHOSE == 'target'\n"
        + f"assert {PACKAGE_PARENT!r} not in _sys.path, _sys.path\n"
    )
    assert target.probe("plan")["steps"]
    one_shot = run_in_project(example_project, database_url, "-c", BOOTSTRAP, "showmigrations")
    assert one_shot.returncode == 0, one_shot.stderr


def test_the_probe_keeps_to_the_oldest_python_it_claims() -> None:
    import ast

    for path in (Path(__file__).resolve().parents[2] / "migrabot_probe").glob("*.py"):
        ast.parse(path.read_text(), str(path), feature_version=(3, 10))


def test_a_session_ends_when_its_worker_closes_the_pipe(target: Target) -> None:
    target.probe("catalog")
    process = SESSIONS._sessions[NAME].process
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(timeout=10) == 0
