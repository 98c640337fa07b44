"""The worker side of the shared Celery app (``migrabot.broker``): the same app, loading the tasks."""

from migrabot.broker import app

app.conf.include = ["workers.tasks"]

__all__ = ["app"]
