"""Celery tasks: thin, explicitly named, taking only a request id (the row holds the rest)."""

from migrabot.broker import EXECUTE_REQUEST
from workers import pipeline, runtime
from workers.celery_app import app


@app.task(name=EXECUTE_REQUEST, ignore_result=True)
def execute_request(request_id: int) -> None:
    pipeline.execute(request_id, config=runtime.config(), actor=runtime.worker_name())
