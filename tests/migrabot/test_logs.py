"""The log formats ``MIGRABOT_LOG_FORMAT`` chooses in the settings: JSON lines by default, text for people."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrabot import local
from migrabot.config import load_config

# A process configured by the real settings, logging one multi-line message inside a request's context.
SCRIPT = """
import logging
from migrabot.boot import setup_django
from migrabot.logs import log_bind, log_context
setup_django()
with log_context(request_id=42):
    log_bind(environment="staging", verb="migrate")
    logging.getLogger("workers.pipeline").warning("request.failed reason=%s", "line one\\nline two")
logging.getLogger("bot.app").warning("outside")
"""


def _logged(**environ: str) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key != "MIGRABOT_LOG_FORMAT"} | environ
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stderr.splitlines()


def test_the_default_is_one_json_object_a_line_carrying_the_request() -> None:
    first, second = (json.loads(line) for line in _logged())
    assert first["message"] == "request.failed reason=line one\nline two"
    assert (first["request_id"], first["environment"], first["verb"]) == (42, "staging", "migrate")
    assert (first["level"], first["logger"]) == ("WARNING", "workers.pipeline")
    assert second["message"] == "outside" and "request_id" not in second


def test_text_is_for_people_with_the_request_named_on_its_first_line() -> None:
    first, second, third = _logged(MIGRABOT_LOG_FORMAT="text")
    tags = "[request=42 environment=staging verb=migrate]"
    assert first.endswith(f"WARNING workers.pipeline request.failed reason=line one {tags}")
    assert second == "    line two"  # indented: only a record's first line starts at the margin
    assert third.endswith("WARNING bot.app outside")


def test_an_unknown_format_stops_the_process() -> None:
    with pytest.raises(subprocess.CalledProcessError) as stopped:
        _logged(MIGRABOT_LOG_FORMAT="xml")
    assert "MIGRABOT_LOG_FORMAT='xml': json or text" in stopped.value.stderr


def test_local_mode_chooses_text_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environ = {key: value for key, value in os.environ.items() if key != "MIGRABOT_LOG_FORMAT"}
    monkeypatch.setattr(local.os, "environ", environ)  # what local mode sets stays in this copy
    local._embedded_defaults(tmp_path, load_config(local.config_path()))
    assert environ["MIGRABOT_LOG_FORMAT"] == "text"
