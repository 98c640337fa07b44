"""The worker side: the Celery tasks, the write pipeline, and running commands against a target project."""
