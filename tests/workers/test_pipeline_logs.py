"""A worker's log lines while it carries out a request: one JSON object each, naming the request."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane import services
from controlplane.models import Request, State
from migrabot.config import load_config
from migrabot.logs import JsonFormatter, RequestFields
from workers import pipeline, reads
from workers.job import Job

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example" / "backend"
ENV = f"logs{uuid.uuid4().hex[:8]}"
CONFIG = f"""
[environments.{ENV}]
project = "{EXAMPLE_PROJECT}"
settings = "backend.settings"
[environments.{ENV}.policy]
readers = ["*"]
"""


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the settings' console handler would write in JSON (its formatter and filter, our stream)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestFields())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def test_a_failed_step_logs_one_json_line_naming_the_request_its_environment_and_verb(
    tmp_path: Path, lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "migrabot.toml").write_text(CONFIG)
    config = load_config(tmp_path / "migrabot.toml")
    request, _ = services.request_create(
        verb="showmigrations", environment=ENV, args=[], requester="U0ALICE", channel="C0OPS", trigger_id=None
    )

    def broken(job: Job) -> None:
        logging.getLogger("workers.reads").info("reading\nthe target")
        raise RuntimeError("the target said:\nTraceback (most recent call last):\n  boom")

    monkeypatch.setattr(reads, "run", broken)
    pipeline.execute(request.pk, config=config, actor="worker@test")

    assert Request.objects.get(pk=request.pk).state == State.FAILED
    records = [json.loads(line) for line in lines.getvalue().splitlines()]  # each line is one whole object
    mine = [record for record in records if record.get("request_id") == request.pk]
    failed = next(record for record in mine if record["message"].startswith("request.failed"))
    assert failed["message"].endswith("the target said:\nTraceback (most recent call last):\n  boom")
    assert (failed["environment"], failed["verb"], failed["level"]) == (ENV, "showmigrations", "ERROR")
    said = next(record for record in mine if record["logger"] == "workers.reads")
    assert said["message"] == "reading\nthe target" and said["environment"] == ENV

    logging.getLogger("workers.pipeline").warning("after the request")  # once execute returned: untagged
    assert "request_id" not in json.loads(lines.getvalue().splitlines()[-1])
