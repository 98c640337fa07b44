"""The slash command's grammar: a table of verbs and a strict, pure parser over it.

Parsing only checks shape (which verb, how many arguments, what characters); whether an
environment, app or migration exists is ``bot.resolve``'s job. Anything not in the grammar is
refused: arguments never reach a shell, and only ASCII names pass, so look-alike letters cannot
smuggle a different app or migration through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from controlplane.errors import Refusal
from migrabot import messages


class Kind(Enum):
    INFO = "info"  # answered by the bot itself
    READ = "read"  # runs on the environment's worker, changes nothing


class Param(Enum):
    ENV = "env"
    APP = "app"
    MIGRATION = "migration"


@dataclass(frozen=True)
class Verb:
    name: str
    summary: str
    kind: Kind
    required: tuple[Param, ...] = ()
    optional: tuple[Param, ...] = ()

    @property
    def usage(self) -> str:
        names = [f"<{p.value}>" for p in self.required] + [f"[{p.value}]" for p in self.optional]
        return " ".join([self.name, *names])


VERBS: dict[str, Verb] = {
    verb.name: verb
    for verb in (
        Verb("help", "show this help", Kind.INFO),
        Verb("envs", "list the environments and who may do what there", Kind.INFO),
        Verb(
            "showmigrations",
            "list migrations and whether each is applied",
            Kind.READ,
            required=(Param.ENV,),
            optional=(Param.APP,),
        ),
        Verb(
            "plan",
            "preview what `migrate` would apply or unapply (like `migrate --plan`)",
            Kind.READ,
            required=(Param.ENV,),
            optional=(Param.APP, Param.MIGRATION),
        ),
    )
}

MAX_TEXT = 500
_PATTERNS = {
    Param.ENV: re.compile(r"[a-z][a-z0-9_-]{0,31}"),
    Param.APP: re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}"),
    Param.MIGRATION: re.compile(r"[A-Za-z0-9_]{1,100}"),
}


@dataclass(frozen=True)
class Command:
    verb: Verb
    env: str | None = None
    app: str | None = None
    migration: str | None = None

    @property
    def args(self) -> list[str]:
        """The arguments after the environment, as stored on the request and sent to the worker."""
        return [value for value in (self.app, self.migration) if value is not None]


def parse(text: str) -> Command:
    """Parse the text after the slash command; raise ``Refusal`` naming what is wrong."""
    if len(text) > MAX_TEXT:
        raise Refusal(messages.too_long(MAX_TEXT))
    words = text.split()
    if not words:
        return Command(VERBS["help"])
    name, values = words[0].lower(), words[1:]
    verb = VERBS.get(name)
    if verb is None:
        raise Refusal(messages.unknown_verb(words[0], list(VERBS)))
    params = verb.required + verb.optional
    if len(values) < len(verb.required):
        raise Refusal(messages.missing_argument(verb.required[len(values)].value, verb.usage))
    if len(values) > len(params):
        raise Refusal(messages.extra_arguments(values[len(params) :], verb.usage))
    found: dict[Param, str] = {}
    for param, value in zip(params, values):
        if not _PATTERNS[param].fullmatch(value):
            raise Refusal(messages.bad_argument(param.value, value, verb.usage))
        found[param] = value
    return Command(
        verb,
        env=found.get(Param.ENV),
        app=found.get(Param.APP),
        migration=found.get(Param.MIGRATION),
    )
