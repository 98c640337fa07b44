import uuid

from django.apps.registry import Apps
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def give_tokens(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for lock in apps.get_model("controlplane", "EnvironmentLock").objects.all():
        lock.token = uuid.uuid4().hex
        lock.save(update_fields=["token"])


class Migration(migrations.Migration):
    dependencies = [("controlplane", "0003_hygiene_fingerprints_and_steps_digest")]

    operations = [
        migrations.AddField(
            model_name="request",
            name="lease_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="environmentlock",
            name="token",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(give_tokens, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="environmentlock",
            name="token",
            field=models.CharField(max_length=64, unique=True),
        ),
    ]
