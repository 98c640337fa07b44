"""Log lines that name the request they belong to: its context, and the two formats that show it.

While the bot or a worker handles a request, ``log_context`` and ``log_bind`` hold its id,
environment and verb in a context variable; ``RequestFields``, a filter on the handler, copies them
onto every record, whichever logger wrote it. ``JsonFormatter`` writes each record as one JSON
object on one line (a message or a traceback spanning lines is escaped, never split), for the
services; ``TextFormatter`` writes the same for people, in local mode, a record's further lines
(a traceback) indented so that only a record's first line starts at the margin. ``MIGRABOT_LOG_FORMAT``
chooses (``migrabot.settings.LOGGING``).

A thread does not inherit context variables: code that hands work to another thread for a request
runs it in ``contextvars.copy_context()`` (the bot's follow-up jobs, a worker's heartbeat).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType

#: What a line may be tagged with, in the order the text format shows it.
FIELDS = ("request_id", "environment", "verb")

_fields: ContextVar[Mapping[str, object]] = ContextVar("migrabot_log_fields", default=MappingProxyType({}))


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Tag the lines logged inside the block (added to the enclosing block's tags); whatever
    ``log_bind`` adds inside ends with the block too."""
    token = _fields.set({**_fields.get(), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def log_bind(**fields: object) -> None:
    """Tag the rest of the current ``log_context`` block's lines (once the request is known)."""
    _fields.set({**_fields.get(), **fields})


class RequestFields(logging.Filter):
    """Puts the current request's tags on each record (an empty string where one is not known)."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _fields.get()
        for name in FIELDS:
            setattr(record, name, current.get(name, ""))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the request's tags, any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({name: value for name in FIELDS if (value := getattr(record, name, ""))})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message [request=… environment=… verb=…]`` for a person reading along,
    any further lines of the record indented under it."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        tagged = ((name.removesuffix("_id"), getattr(record, name, "")) for name in FIELDS)
        tags = " ".join(f"{name}={value}" for name, value in tagged if value)
        first, *rest = text.split("\n")
        return "\n    ".join([f"{first} [{tags}]" if tags else first, *rest])
