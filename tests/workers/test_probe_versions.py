"""The oldest and the newest Python and Django the probe claims (``migrabot_probe.protocol``): its
answers, from a warm session, are what that Django's own `manage.py` prints, and a run works.

Each pair gets a virtualenv of its own, made once under ``.venv/targets`` with pip (PyPI must be
reachable the first time): Python 3.10 with Django 4.2, Python 3.13 with Django 5.2, and the
suite's own Python with Django 4.2. The interpreters are looked for on PATH and in pyenv; where
one is missing the test says which and skips — except under CI, where it fails."""

from __future__ import annotations

import os
import shutil
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
URL_VARIABLE = "MIGRABOT_TEST_VERSIONS_DATABASE_URL"
#: (Python, Django): the oldest and the newest of each that the probe claims, as pairs Django supports.
CLAIMED = [("3.10", "4.2"), ("3.13", "5.2"), ("suite", "4.2")]


def interpreter(version: str) -> str:
    if version == "suite":
        return sys.executable
    candidates = [
        *sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob(f"{version}.*/bin/python{version}")),
        shutil.which(f"python{version}"),
    ]
    # A pyenv shim is on PATH whether or not that version is installed: only one that runs counts.
    found = next((c for c in candidates if c and subprocess.run([str(c), "-c", ""]).returncode == 0), None)
    if found is None:
        message = f"no python{version} on PATH or in pyenv: the probe's claim for Python {version} is untested here"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(found)


def django_python(python_version: str, version: str) -> str:
    """A Python with Django ``version`` and what the example project imports."""
    base = interpreter(python_version)
    folder = REPO / ".venv" / "targets" / f"python-{python_version}-django-{version}"
    python = folder / "bin" / "python"
    if not (folder / "ready").exists():
        subprocess.run([base, "-m", "venv", "--clear", str(folder)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             f"Django=={version}.*", "dj-database-url", "psycopg[binary]"],
            check=True,
        )
        (folder / "ready").touch()
    return str(python)


@pytest.fixture(params=CLAIMED, ids=lambda pair: f"python{pair[0]}-django{pair[1]}")
def versioned(request: pytest.FixtureRequest, example_project: Path, database_url: str,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Target, Callable[..., str]]]:
    python_version, django_version = request.param
    python = django_python(python_version, django_version)
    version = subprocess.run([python, "-c", "import sys, django; print(sys.version[:5], django.get_version())"],
                             capture_output=True, text=True, check=True).stdout
    assert version.split()[1].startswith(django_version), version
    assert python_version == "suite" or version.startswith(python_version), version
    monkeypatch.setenv(URL_VARIABLE, database_url)
    name = f"py{python_version.replace('.', '')}-dj{django_version.replace('.', '')}"
    environment = Environment(name=name, project=example_project, python=python,
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
