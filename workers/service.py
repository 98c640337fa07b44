"""``migrabot worker``: serve one or more environments' queues; ``migrabot worker-ping``: is it up?"""

from __future__ import annotations

import logging

from celery.utils.nodenames import host_format

from migrabot import metrics
from migrabot.config import Config, ConfigError, config_path
from migrabot.redact import redact
from workers.backup import remove_stale_partials
from workers.catalog import publish_catalog
from workers.celery_app import app
from workers.rehearsal import sweep_leftovers

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
        try:  # a killed worker's rehearsal copy holds production data: drop it now
            for name in sweep_leftovers(environment):
                logger.warning("dropped %s, the rehearsal copy of a worker that is gone", name)
        except Exception as error:  # noqa: BLE001 - the target's database down: the next rehearsal sweeps
            reason = redact(str(error), environment.secrets())
            logger.warning("rehearsal.sweep_failed environment=%s error=%s", environment.name, reason)
        publish_catalog(environment)
    if (port := metrics.serve_if_asked()) is not None:
        logger.info("metrics.serving port=%s", port)
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
            worker_nodename(envs),
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ]
    )
    return 0


def worker_nodename(envs: list[str]) -> str:
    """The name the worker for ``envs`` runs under on this host, as Celery expands it."""
    return host_format(f"migrabot-{'-'.join(envs)}@%h")


def ping_worker(envs: list[str], *, timeout: float) -> bool:
    """Whether the worker for ``envs`` on this host answers a ping through the broker in ``timeout`` seconds."""
    name = worker_nodename(envs)
    try:
        answers = app.control.inspect(destination=[name], timeout=timeout).ping()
    except Exception as error:  # noqa: BLE001 - the broker unreachable: the worker cannot be reached either
        logger.warning("worker.ping_failed worker=%s error=%r", name, error)
        return False
    return bool(answers and name in answers)
