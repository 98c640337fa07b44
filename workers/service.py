"""``migrabot worker``: serve one or more environments' queues."""

from __future__ import annotations

from migrabot.config import Config, ConfigError, config_path
from workers.catalog import publish_catalog
from workers.celery_app import app


def run_worker(config: Config, *, envs: list[str], concurrency: int) -> int:
    unknown = [name for name in envs if name not in config.environments]
    if unknown:
        raise ConfigError(
            f"{config_path()}: no environment {', '.join(unknown)}; defined: {', '.join(config.environments)}"
        )
    environments = [config.environments[name] for name in envs]
    for environment in environments:
        publish_catalog(environment)
    app.worker_main(
        [
            "worker",
            "--queues",
            ",".join(environment.celery_queue for environment in environments),
            "--pool",
            "threads",
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"migrabot-{'-'.join(envs)}@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]
    )
    return 0
