"""The worker side: the Celery app, its tasks, and running commands against a target project."""
