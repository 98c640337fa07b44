"""The Celery app both sides share: the bot sends a request by the task's stable name, a worker runs it.

Settings are chosen so a migration never runs twice:

- Redis redelivers a message that is not acknowledged within ``visibility_timeout``, even while
  the first run goes on: the timeout is set far above the longest run, and execution claims its
  request row anyway, so a redelivery finds nothing to do.
- No automatic retries and no ``task_reject_on_worker_lost``: a run that died is marked
  ``interrupted`` for a human, never started again by itself.
- Prefetch of one: a worker holds no messages that another worker could have run.

The bot never imports the workers' code: it needs only the name below and a queue.
"""

import logging
import os

from celery import Celery

from migrabot.redact import redact

log = logging.getLogger(__name__)

#: The task that carries out a request; ``workers.tasks`` registers it under this name.
EXECUTE_REQUEST = "migrabot.execute_request"

# A test may shorten it (MIGRABOT_VISIBILITY_TIMEOUT_SECONDS) to see a redelivery happen.
VISIBILITY_TIMEOUT_SECONDS = int(os.environ.get("MIGRABOT_VISIBILITY_TIMEOUT_SECONDS") or 12 * 60 * 60)

app = Celery("migrabot")
app.conf.update(
    broker_url=os.environ.get("MIGRABOT_BROKER_URL", "redis://127.0.0.1:6379/0"),
    broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    task_acks_late=False,
    task_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
)


def enqueue(request_id: int, *, queue: str) -> None:
    """Send a request to its environment's queue (call after the request row is committed)."""
    app.send_task(EXECUTE_REQUEST, args=[request_id], queue=queue, ignore_result=True)


def broker_reachable(*, timeout: float = 2.0) -> bool:
    """One connection to the broker, not retried, given up after ``timeout`` seconds."""
    try:
        with app.connection_for_write(connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=0)  # the socket gives up after connect_timeout
    except Exception as error:  # noqa: BLE001 - kombu's errors, OSError, a transport's: all say "unreachable"
        log.warning("healthz.broker_unreachable error=%s", redact(f"{type(error).__name__}: {error}"))
        return False
    return True
