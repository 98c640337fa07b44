"""The oldest and the newest Django the probe claims (``migrabot_probe.protocol``): its answers, one-shot
and from a warm session, are what that Django's own `manage.py` prints, and a run works.

The newest (5.2) is the suite's own interpreter; the oldest (4.2) gets a virtualenv of its own,
made once under ``.venv/targets`` with pip (PyPI must be reachable the first time)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from migrabot.config import Environment
from workers.djangotext import plan_text, showmigrations_text
from workers.session import SESSIONS
from workers.target import Target

REPO = Path(__file__).resolve().parents[2]
OLDEST = "4.2"
URL_VARIABLE = "MIGRABOT_TEST_VERSIONS_DATABASE_URL"


def django_python(version: str) -> str:
    """A Python with Django ``version`` and what the example project imports."""
    folder = REPO / ".venv" / "targets" / f"django-{version}"
    python = folder / "bin" / "python"
    if not (folder / "ready").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             f"Django=={version}.*", "dj-database-url", "psycopg[binary]"],
            check=True,
        )
        (folder / "ready").touch()
    return str(python)


@pytest.fixture(params=[OLDEST, "newest"])
def versioned(request: pytest.FixtureRequest, example_project: Path, database_url: str,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Target, Callable[..., str]]]:
    python = sys.executable if request.param == "newest" else django_python(request.param)
    version = subprocess.run([python, "-c", "import django; print(django.get_version())"],
                             capture_output=True, text=True, check=True).stdout
    assert version.startswith("5.2" if request.param == "newest" else request.param)
    monkeypatch.setenv(URL_VARIABLE, database_url)
    environment = Environment(name=f"django{request.param.replace('.', '')}", project=example_project, python=python,
                              settings="backend.settings", env={"DATABASE_URL": URL_VARIABLE})
    target = Target(environment, timeout_seconds=120)

    def manage(*args: str) -> str:
        completed = subprocess.run([python, "manage.py", *args], cwd=example_project, env=target.environ(),
                                   capture_output=True, text=True)
        assert completed.returncode == 0, completed.stderr
        return completed.stdout

    yield target, manage
    SESSIONS.close_all()


def test_each_claimed_django_answers_as_its_own_manage_py(versioned: tuple[Target, Callable[..., str]]) -> None:
    target, manage = versioned
    assert showmigrations_text(target.probe("showmigrations")) == manage("showmigrations", "--list")
    assert plan_text(target.probe("plan")) == manage("migrate", "--plan")
    events = list(target.stream("migrate", "--", "marketplace", "0004"))
    assert events[-1]["result"]["applied"][-1] == "marketplace.0004_order_total_cents"
    assert showmigrations_text(target.probe("showmigrations")) == manage("showmigrations", "--list")
    assert plan_text(target.probe("plan", "accounts", "0002")) == manage("migrate", "--plan", "accounts", "0002")
    assert target.probe("check")["hygiene"]["conflicts"] == []
