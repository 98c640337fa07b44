"""How a probe call ends when it does not simply answer (see ``protocol`` for the documents)."""

from __future__ import annotations

from migrabot_probe.protocol import Failure, Stop


class Refusal(Exception):
    """Input Django itself would reject with a CommandError (or a usage message)."""


class Stopped(Exception):
    """The worker asked us to stop; raised before the next migration began."""

    def __init__(self, app: str, name: str, done: list[str]) -> None:
        super().__init__(f"stopped before {app}.{name}")
        self.document: Stop = {"app": app, "name": name, "done": done}


class MigrationFailed(Exception):
    """A migration raised while it was being applied or unapplied."""

    def __init__(self, app: str, name: str, error: str) -> None:
        super().__init__(f"{app}.{name}: {error}")
        self.document: Failure = {"app": app, "name": name, "error": error}
