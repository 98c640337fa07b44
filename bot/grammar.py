"""The slash command's grammar: a table of verbs and a strict, pure parser over it.

Parsing only checks shape (which verb, how many arguments, what characters); whether an
environment, app, migration or request exists is ``bot.resolve``'s job. Anything not in the
grammar is refused: arguments never reach a shell, and only ASCII names pass, so look-alike
letters cannot smuggle a different app or migration through.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import Enum

from controlplane.errors import Refusal
from migrabot import messages


class Kind(Enum):
    INFO = "info"  # the bot answers from its configuration
    CONTROL = "control"  # the bot answers or acts on the control plane; no worker involved
    READ = "read"  # runs on the environment's worker, changes nothing
    WRITE = "write"  # runs on the environment's worker behind the environment's policy


class Audience(Enum):
    """Which policy list decides who may use a verb."""

    ANYONE = "anyone"
    READERS = "readers"
    REQUESTERS = "requesters"


class Param(Enum):
    ENV = "env"
    APP = "app"
    MIGRATION = "migration"
    REQUEST = "request-id"
    BACKUP = "backup-id"
    REASON = "reason"  # the rest of the text


@dataclass(frozen=True)
class Verb:
    name: str
    summary: str
    kind: Kind
    audience: Audience
    required: tuple[Param, ...] = ()
    optional: tuple[Param, ...] = ()

    @property
    def usage(self) -> str:
        names = [f"<{p.value}>" for p in self.required] + [f"[{p.value}]" for p in self.optional]
        return " ".join([self.name, *names])


ENV, APP, MIGRATION, REQUEST, BACKUP, REASON = Param
_A = Audience
VERBS: dict[str, Verb] = {
    verb.name: verb
    for verb in (
        Verb("help", "show this help", Kind.INFO, _A.ANYONE),
        Verb("envs", "list the environments", Kind.INFO, _A.ANYONE),
        Verb("showmigrations", "list migrations and whether each is applied", Kind.READ, _A.READERS, (ENV,), (APP,)),
        Verb(
            "plan",
            "preview what `migrate` would do (like `migrate --plan`)",
            Kind.READ,
            _A.READERS,
            (ENV,),
            (APP, MIGRATION),
        ),
        Verb(
            "check",
            "the workflow's rules: applied migrations edited or deleted, conflicts, missing migrations, "
            "numbering clashes",
            Kind.READ,
            _A.READERS,
            (ENV,),
        ),
        Verb("migrate", "apply migrations (forward only)", Kind.WRITE, _A.REQUESTERS, (ENV,), (APP, MIGRATION)),
        Verb(
            "rollback",
            "unapply migrations back to <migration> (or `zero`), after approval and a backup",
            Kind.WRITE,
            _A.REQUESTERS,
            (ENV, APP, MIGRATION),
        ),
        Verb(
            "fake",
            "mark migrations applied/unapplied without running them, after approval and a backup",
            Kind.WRITE,
            _A.REQUESTERS,
            (ENV, APP, MIGRATION),
        ),
        Verb(
            "restore",
            "bring the database back from a recorded backup, after approval",
            Kind.WRITE,
            _A.REQUESTERS,
            (ENV, BACKUP),
        ),
        Verb("backups", "list the recorded backups of an environment", Kind.CONTROL, _A.READERS, (ENV,)),
        Verb("history", "the latest requests on an environment and how they ended", Kind.CONTROL, _A.READERS, (ENV,)),
        Verb("status", "where a request is (or the open requests)", Kind.CONTROL, _A.ANYONE, (), (REQUEST,)),
        Verb("cancel", "cancel a request that has not started running", Kind.CONTROL, _A.ANYONE, (REQUEST,)),
        Verb("lock", "stop all writes to an environment until `unlock`", Kind.CONTROL, _A.REQUESTERS, (ENV, REASON)),
        Verb("unlock", "lift a lock taken with `lock`", Kind.CONTROL, _A.REQUESTERS, (ENV,)),
    )
}

MAX_TEXT = 500
MAX_REASON = 200
_PATTERNS = {
    Param.ENV: re.compile(r"[a-z][a-z0-9_-]{0,31}"),
    Param.APP: re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}"),
    Param.MIGRATION: re.compile(r"[A-Za-z0-9_]{1,100}"),
    Param.REQUEST: re.compile(r"#?[0-9]{1,12}"),
    Param.BACKUP: re.compile(r"#?[0-9]{1,12}"),
}


@dataclass(frozen=True)
class Command:
    verb: Verb
    env: str | None = None
    app: str | None = None
    migration: str | None = None
    number: int | None = None  # a request or backup id
    reason: str | None = None

    @property
    def args(self) -> list[str]:
        """The arguments after the environment, as stored on the request and sent to the worker."""
        values = [self.app, self.migration, None if self.number is None else str(self.number)]
        return [value for value in values if value is not None]


def parse(text: str) -> Command:
    """Parse the text after the slash command; raise ``Refusal`` naming what is wrong."""
    if len(text) > MAX_TEXT:
        raise Refusal(messages.too_long(MAX_TEXT))
    words = text.split()
    if not words:
        return Command(VERBS["help"])
    verb = VERBS.get(words[0].lower())
    if verb is None:
        raise Refusal(messages.unknown_verb(words[0], list(VERBS)))
    params = verb.required + verb.optional
    values = text.split(None, len(params))[1:] if REASON in params else words[1:]
    if len(values) < len(verb.required):
        raise Refusal(messages.missing_argument(verb.required[len(values)].value, verb.usage))
    if len(values) > len(params):
        raise Refusal(messages.extra_arguments(values[len(params) :], verb.usage))
    found = {param: _checked(param, value.strip(), verb) for param, value in zip(params, values, strict=False)}
    number = found.get(REQUEST) or found.get(BACKUP)
    return Command(
        verb,
        env=found.get(ENV),
        app=found.get(APP),
        migration=found.get(MIGRATION),
        number=int(number.lstrip("#")) if number else None,
        reason=found.get(REASON),
    )


def _checked(param: Param, value: str, verb: Verb) -> str:
    if param is REASON:
        printable = all(unicodedata.category(ch)[0] != "C" for ch in value)
        if not printable or len(value) > MAX_REASON:
            raise Refusal(messages.bad_reason(MAX_REASON))
        return value
    if not _PATTERNS[param].fullmatch(value):
        raise Refusal(messages.bad_argument(param.value, value, verb.usage))
    return value
