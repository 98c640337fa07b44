"""``migrabot worker``: serve one or more environments' queues."""

from __future__ import annotations

import logging

from migrabot.config import Config, ConfigError, config_path
from workers.backup import remove_stale_partials
from workers.catalog import publish_catalog
from workers.celery_app import app

logger = logging.getLogger(__name__)


def run_worker(config: Config, *, envs: list[str], concurrency: int) -> int:
    unknown = [name for name in envs if name not in config.environments]
    if unknown:
        raise ConfigError(
            f"{config_path()}: no environment {', '.join(unknown)}; defined: {', '.join(config.environments)}"
        )
    environments = [config.environments[name] for name in envs]
    for environment in environments:
        environment.check_secrets()
    for environment in environments:
        # A worker killed mid-backup left its partial file; nothing recorded it, nothing else removes it.
        for path in remove_stale_partials(environment.backup_dir):
            logger.warning("removed %s, an unfinished backup of a worker that is gone", path)
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
