"""Publishing what migrations an environment has on disk, so the bot can validate commands."""

from controlplane import services
from migrabot.config import Environment
from workers.target import Target


def publish_catalog(environment: Environment) -> dict[str, list[str]]:
    apps = Target(environment).probe("catalog")["apps"]
    services.catalog_publish(environment=environment.name, apps=apps)
    return apps
