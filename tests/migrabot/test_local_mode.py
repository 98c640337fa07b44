"""The README's first command: `migrabot local --script` runs the whole flow with no servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """\
as alice: /migrate showmigrations staging media
as alice: /migrate rollback dev marketplace 0005
as bob: click approve
as carol: /migrate history dev
"""


@pytest.fixture(params=["sqlite", "postgres"])
def control_plane_url(request: pytest.FixtureRequest) -> str | None:
    """The control plane on its embedded SQLite default, or on PostgreSQL via DATABASE_URL."""
    return request.getfixturevalue("pg_database_url") if request.param == "postgres" else None


def test_local_script_shows_the_conversation(tmp_path: Path, control_plane_url: str | None) -> None:
    script = tmp_path / "demo.script"
    script.write_text(SCRIPT)
    local_only = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MIGRABOT_HOME", "MIGRABOT_BROKER_URL")
    }
    if control_plane_url:
        local_only["DATABASE_URL"] = control_plane_url
    result = subprocess.run(
        [sys.executable, "-m", "migrabot.cli", "local", "--script", str(script), "--workdir", str(tmp_path / "work")],
        cwd=ROOT,
        env=local_only,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "━━ alice: /migrate showmigrations staging media" in out and "*staging*: 0 of 3 migrations applied" in out
    assert "[Approve] [Deny]" in out and "✅ Approved by @bob" in out
    assert "🗄️ Backup #1 recorded" in out and "↩️ unapplied `media.0004_banner`" in out
    assert "#2 `rollback dev marketplace 0005_backfill_order_totals` — ✅ done · @alice" in out
    if control_plane_url:  # the requests really live in PostgreSQL
        with psycopg.connect(control_plane_url) as connection:
            assert (
                connection.execute("SELECT count(*) FROM controlplane_request").fetchone()[0] == 2
            )  # showmigrations, rollback


def test_a_relative_workdir_works_and_the_demo_is_quiet(tmp_path: Path) -> None:
    """`--workdir work` is the caller's folder, not each target's; nothing but the conversation
    reaches stderr (no kombu or Bolt warnings)."""
    (tmp_path / "demo.script").write_text("as alice: /migrate showmigrations dev accounts\n")
    local_only = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MIGRABOT_HOME", "MIGRABOT_BROKER_URL")
    }
    result = subprocess.run(
        [sys.executable, "-m", "migrabot.cli", "local", "--script", "demo.script", "--workdir", "work"],
        cwd=tmp_path,
        env=local_only | {"MIGRABOT_CONFIG": str(ROOT / "migrabot.toml"), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "*dev*:" in result.stdout and (tmp_path / "work" / "dev.sqlite3").exists()
    assert "WARNING" not in result.stderr and "Traceback" not in result.stderr, result.stderr
