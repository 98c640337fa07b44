"""What migrations an environment has on disk, published so the bot can validate commands.

Every read the probe answers carries the catalog too, so a newly deployed migration file is known
to the bot after the next read (and when a worker starts), without a restart.
"""

from typing import Any

from controlplane import services
from migrabot.config import Environment
from workers.target import Target


def publish_catalog(environment: Environment) -> dict[str, list[str]]:
    apps: dict[str, list[str]] = Target(environment).probe("catalog")["apps"]
    services.catalog_publish(environment=environment.name, apps=apps)
    return apps


def read(target: Target, command: str, *args: str) -> dict[str, Any]:
    """A read from the probe (showmigrations, plan, check), publishing the catalog it carries."""
    result = target.probe(command, *args)
    services.catalog_publish(environment=target.environment.name, apps=result.pop("catalog"))
    return result
