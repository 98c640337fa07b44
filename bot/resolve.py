"""Check a parsed command against what exists: the configured environments and the migrations on
disk that each environment's worker reported (the catalog). Prefixes resolve as Django resolves
them, so the bot accepts exactly what ``manage.py migrate <app> <prefix>`` would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot.grammar import Command
from controlplane.errors import Refusal
from migrabot import messages
from migrabot.config import Config

CatalogLookup = Callable[[str], "dict[str, list[str]] | None"]


def resolve(command: Command, *, config: Config, catalog_of: CatalogLookup) -> Command:
    """Return the command with a full migration name; raise ``Refusal`` naming the valid choices."""
    if command.env is None:
        return command
    if config.environment(command.env) is None:
        raise Refusal(messages.unknown_environment(command.env, sorted(config.environments)))
    if command.app is None:
        return command
    catalog = catalog_of(command.env)
    if catalog is None:
        raise Refusal(messages.no_catalog(command.env))
    if command.app not in catalog:
        raise Refusal(messages.unknown_app(command.app, command.env, sorted(catalog)))
    if command.migration is None or command.migration == "zero":
        return command
    return replace(command, migration=_by_prefix(command, catalog[command.app]))


def _by_prefix(command: Command, names: list[str]) -> str:
    assert command.migration is not None and command.app is not None
    matches = [name for name in names if name.startswith(command.migration)]
    if not matches:
        raise Refusal(messages.unknown_migration(command.migration, command.app, names))
    if len(matches) > 1:
        raise Refusal(messages.ambiguous_migration(command.migration, command.app, matches))
    return matches[0]
