"""``migrabot audit`` as deployed: gunicorn serving the admin and its static files, and ``/healthz``
answering 200 while the control plane's database answers, 503 (and a log line with no password)
when it does not."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from services import free_port
from serving import audit_server


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def test_the_audit_server_serves_the_admin_its_static_files_and_health(tmp_path: Path) -> None:
    with audit_server(tmp_path / "audit.log") as url:
        assert get(f"{url}/healthz") == (200, "application/json", b'{"controlplane": "ok"}')
        status, _, body = get(f"{url}/login/")
        assert status == 200 and b"migrabot audit" in body
        for asset in ("/static/admin/css/base.css", "/static/audit/audit.css"):
            status, kind, _ = get(f"{url}{asset}")
            assert (status, kind.split(";")[0]) == (200, "text/css"), asset


def test_healthz_is_503_while_the_control_plane_does_not_answer(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    nowhere = f"postgres://migrabot:hunter2-not-for-logs@127.0.0.1:{free_port()}/migrabot"
    with audit_server(log, DATABASE_URL=nowhere) as url:
        status, kind, body = get(f"{url}/healthz")
    assert (status, kind, json.loads(body)) == (503, "application/json", {"controlplane": "unreachable"})
    said = log.read_text()
    assert "healthz.controlplane_unreachable" in said and "hunter2-not-for-logs" not in said
