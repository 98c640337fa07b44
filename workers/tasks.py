"""Celery tasks: thin, explicitly named, taking only a request id (the row holds the rest)."""

from workers import pipeline, runtime
from workers.celery_app import app


@app.task(name="migrabot.execute_request", ignore_result=True)
def execute_request(request_id: int) -> None:
    pipeline.execute(request_id, config=runtime.config(), actor=runtime.worker_name())


def enqueue(request_id: int, *, queue: str) -> None:
    """Send a request to its environment's queue (call after the request row is committed)."""
    execute_request.apply_async(args=[request_id], queue=queue)
