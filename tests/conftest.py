"""Fixtures shared by the whole suite.

Sections: real services (Redis, PostgreSQL; see services.py for how they are found
or started), then the example target project. The target runs under
`sys.executable`, standing in for a target's own interpreter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from services import control_plane_environment

# The control plane (the bot's own database) must be configured before any test module imports
# its models: one SQLite file per test process, shared with the worker processes it starts.
os.environ.update(control_plane_environment())
from migrabot.boot import setup_django  # noqa: E402

setup_django()

from services import RedisServer, create_database, database_name, drop_database, find_or_start_postgres  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PROJECT = REPO / "example" / "backend"
EXAMPLE_SETTINGS = "backend.settings"

RunInProject = Callable[..., "subprocess.CompletedProcess[str]"]


# --- real services ---------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def postgres_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with find_or_start_postgres(tmp_path_factory.mktemp("postgres")) as url:
        yield url


@pytest.fixture
def pg_database_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    url = create_database(postgres_admin_url)
    yield url
    drop_database(postgres_admin_url, database_name(url))


@pytest.fixture(scope="session", autouse=True)
def control_plane_db() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty target database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.sqlite3'}"
    return request.getfixturevalue("pg_database_url")


# --- the example target project ----------------------------------------------


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A private copy of example/backend, so tests never write into the repo."""
    return Path(
        shutil.copytree(
            EXAMPLE_PROJECT,
            tmp_path / "backend",
            ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"),
        )
    )


def _run_in_project(project: Path, database_url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run `<python> argv…` in a target project folder against database_url, as a worker would."""
    env = os.environ | {
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": EXAMPLE_SETTINGS,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run(
        [sys.executable, *argv], cwd=project, env=env, capture_output=True, text=True, encoding="utf-8"
    )


@pytest.fixture
def run_in_project() -> RunInProject:
    """`run_in_project(project, database_url, *argv)`: any script in the target; asserts nothing."""
    return _run_in_project


@pytest.fixture
def manage() -> RunInProject:
    """`manage(project, database_url, *args)` runs the project's manage.py; asserts nothing."""
    return lambda project, database_url, *args: _run_in_project(project, database_url, "manage.py", *args)


# --- the fast tier (``./scripts/test --fast``, or ``pytest -m fast``): no servers, under a minute ---

#: Folders and files whose tests need no Redis, no PostgreSQL and no worker process.
FAST_TIER = (
    "audit/test_admin.py",
    "bot/",
    "controlplane/",
    "slacklocal/",
    "slackui/",
    "migrabot/test_config.py",
    "migrabot/test_redact.py",
    "test_architecture.py",
    "workers/test_probe_locks.py",
    "workers/test_write_guards.py",
)
SERVER_FIXTURES = {"redis_server", "postgres_admin_url", "pg_database_url", "database_url"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).resolve().parent
    for item in items:
        where = item.path.relative_to(tests).as_posix()
        if not where.startswith(FAST_TIER):
            continue
        item.add_marker(pytest.mark.fast)
        servers = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        if servers:
            raise pytest.UsageError(f"{item.nodeid} is in the fast tier but needs {', '.join(sorted(servers))}")


# --- artifacts: what a test left for a person to look at (screenshots), listed after the run ------


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Every report section named ``artifacts`` (``item.add_report_section``), also from xdist workers."""
    # A phase's report carries the sections of the phases before it: the call's report is enough.
    reports = [report for reports in terminalreporter.stats.values() for report in reports]
    reports = [report for report in reports if getattr(report, "when", None) == "call"]
    lines = [
        line
        for report in reports
        for name, content in getattr(report, "sections", [])
        if name.endswith(" artifacts call")
        for line in content.splitlines()
    ]
    if lines:
        terminalreporter.write_sep("-", "artifacts")
        for line in lines:
            terminalreporter.write_line(line)


# --- figures for scripts/fault-report (written only when MIGRABOT_FAULT_REPORT is set) ----------

from fault_report import fault_report, module_fault_report, pytest_runtest_logreport  # noqa: E402,F401
