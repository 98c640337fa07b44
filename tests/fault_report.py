"""Figures for ``scripts/fault-report``: what the fault and hostile-input tests tried and found.

Active only when ``MIGRABOT_FAULT_REPORT`` names a file: each test outcome, and each figure a test
tallies through the ``fault_report`` fixture, is appended to it as one JSON line (one ``write``
per line, so parallel test processes can share the file). Without the variable nothing is written.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

REPORT_ENV = "MIGRABOT_FAULT_REPORT"


def _write(record: dict[str, Any]) -> None:
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as report:
            report.write(json.dumps(record) + "\n")


class FaultReport:
    """``tally(hostile=40, crashes=0, leaks=0, duplicate_runs=0, lost=0)`` adds to the totals."""

    def __init__(self, test: str) -> None:
        self.test = test

    def tally(self, **figures: int) -> None:
        _write({"test": self.test, "figures": figures})


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> FaultReport:
    return FaultReport(request.node.nodeid)


@pytest.fixture(scope="module")
def module_fault_report(request: pytest.FixtureRequest) -> FaultReport:
    return FaultReport(request.node.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each outcome once: under xdist the controller sees every worker's reports, so only it writes."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    if report.when == "call" or report.outcome != "passed":  # a failed setup counts as a failure
        _write({"test": report.nodeid, "outcome": report.outcome, "when": report.when})
