"""Taking and recording the backup that must exist before a rollback, fake or restore runs."""

from __future__ import annotations

from controlplane import services
from controlplane.models import Backup
from migrabot import metrics
from workers.backup import Database, take_backup
from workers.catalog import read
from workers.job import Job


def back_up(job: Job) -> Backup:
    """Back up the target's database, verified, and record it; ``BackupError`` stops the run."""
    state = read(job.target, "showmigrations")
    label = f"{job.environment.name}-request{job.request.pk}"
    with metrics.timed("backup", environment=job.environment.name):
        backup = take_backup(target_database(job), job.environment.backup_dir, label=label)
    return services.backup_record(request=job.request, backup=backup, migration_state=state, actor=job.actor)


def target_database(job: Job) -> Database:
    return Database(**job.target.probe("connection"))
