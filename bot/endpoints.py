"""The bot's two endpoints beside Slack's, on the same port: ``/healthz`` and ``/metrics``.

Neither needs a signature (a load balancer, docker's healthcheck and Prometheus ask them) and
neither says more than it must: ``/healthz`` answers 200 ``{"controlplane": "ok", "broker": "ok"}``,
or 503 with ``"unreachable"`` for what did not answer (the error itself goes to the log, masked);
``/metrics`` is this process's counters (``migrabot.metrics``). Both are cheap — a ``SELECT 1``
and one broker connection, given up after ``BROKER_TIMEOUT_SECONDS`` — and only GET and HEAD are
answered. Every other path goes on to Slack's handler, behind its own checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.db import close_old_connections

from controlplane.health import controlplane_reachable
from migrabot import metrics
from migrabot.broker import broker_reachable

WsgiApp = Callable[..., Iterable[bytes]]
BROKER_TIMEOUT_SECONDS = 2.0


def with_endpoints(slack: WsgiApp) -> WsgiApp:
    """``slack`` with ``/healthz`` and ``/metrics`` answered before it."""
    endpoints = {"/healthz": _healthz, "/metrics": _metrics}

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        endpoint = endpoints.get(environ.get("PATH_INFO", ""))
        if endpoint is None:
            return slack(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            allow = [("Allow", "GET, HEAD")]
            return _answer(start_response, "405 Method Not Allowed", b"GET only", "text/plain", allow)
        status, body, content_type = endpoint()
        return _answer(start_response, status, b"" if environ["REQUEST_METHOD"] == "HEAD" else body, content_type)

    return application


def _healthz() -> tuple[str, bytes, str]:
    try:
        reachable = {
            "controlplane": controlplane_reachable(),
            "broker": broker_reachable(timeout=BROKER_TIMEOUT_SECONDS),
        }
    finally:
        close_old_connections()  # outside Bolt's middleware, which does it for Slack's requests
    said = {name: "ok" if ok else "unreachable" for name, ok in reachable.items()}
    status = "200 OK" if all(reachable.values()) else "503 Service Unavailable"
    return status, json.dumps(said).encode(), "application/json"


def _metrics() -> tuple[str, bytes, str]:
    body, content_type = metrics.exposition()
    return "200 OK", body, content_type


def _answer(
    start_response: Callable[..., Any],
    status: str,
    body: bytes,
    content_type: str,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *(headers or [])])
    return [body]
