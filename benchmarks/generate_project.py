"""Generate a Django project of a chosen size, for benchmarks and the tests of Slack's limits.

    python benchmarks/generate_project.py DEST --apps 100 --migrations 3
    python benchmarks/generate_project.py DEST --apps 6 --migrations 50

Each app ``app000``… has one model; its first migration creates it and each later one adds a
column (or, every ``--data-every``-th, runs a data migration with a reverse), so a rollback
destroys data in its columns and tables. Every app after the first depends on the previous app's first migration, so
rollbacks cascade across apps as they do in real projects. The database comes from DATABASE_URL.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SETTINGS = '''import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "generated-project-not-secret"
INSTALLED_APPS = ["django.contrib.contenttypes", {apps}]
DATABASES = {{"default": dj_database_url.config(default=f"sqlite:///{{BASE_DIR / 'db.sqlite3'}}", conn_max_age=0)}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
'''
MANAGE = '''#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "generated.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
'''
FIRST = '''from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = [{dependencies}]
    operations = [
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=40)),
            ],
        )
    ]
'''
COLUMN = '''from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("{app}", "{previous}")]
    operations = [migrations.AddField("item", "field{number:04d}", models.IntegerField(null=True))]
'''
DATA = '''from django.db import migrations


def forwards(apps, schema_editor):
    apps.get_model("{app}", "Item").objects.filter(name="").update(name="unnamed")


def backwards(apps, schema_editor):
    apps.get_model("{app}", "Item").objects.filter(name="unnamed").update(name="")


class Migration(migrations.Migration):
    dependencies = [("{app}", "{previous}")]
    operations = [migrations.RunPython(forwards, backwards)]
'''


def generate(destination: Path, *, apps: int, migrations: int, data_every: int = 5) -> list[str]:
    """Write the project; return its app labels. Every ``data_every``-th migration after the
    first is a data migration (1: all of them, so only the first of each app destroys data)."""
    labels = [f"app{index:03d}" for index in range(apps)]
    (destination / "generated").mkdir(parents=True, exist_ok=True)
    (destination / "generated" / "__init__.py").write_text("")
    (destination / "generated" / "settings.py").write_text(
        SETTINGS.format(apps=", ".join(f'"{label}"' for label in labels))
    )
    (destination / "manage.py").write_text(MANAGE)
    for position, label in enumerate(labels):
        folder = destination / label / "migrations"
        folder.mkdir(parents=True, exist_ok=True)
        (destination / label / "__init__.py").write_text("")
        (destination / label / "models.py").write_text(_models(migrations, data_every))
        (folder / "__init__.py").write_text("")
        dependencies = f'("{labels[position - 1]}", "0001_initial")' if position else ""
        (folder / "0001_initial.py").write_text(FIRST.format(dependencies=dependencies))
        previous = "0001_initial"
        for number in range(2, migrations + 1):
            data = number % data_every == 0
            name = f"{number:04d}_{'data' if data else 'column'}"
            template = DATA if data else COLUMN
            (folder / f"{name}.py").write_text(template.format(app=label, previous=previous, number=number))
            previous = name
    return labels


def _models(migrations: int, data_every: int) -> str:
    columns = "".join(
        f"    field{number:04d} = models.IntegerField(null=True)\n"
        for number in range(2, migrations + 1)
        if number % data_every
    )
    return (
        "from django.db import models\n\n\n"
        f"class Item(models.Model):\n    name = models.CharField(max_length=40)\n{columns}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("destination", type=Path)
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--migrations", type=int, default=25)
    parser.add_argument("--data-every", type=int, default=5, help="every Nth migration is a data migration")
    options = parser.parse_args()
    labels = generate(
        options.destination, apps=options.apps, migrations=options.migrations, data_every=options.data_every
    )
    print(f"{options.destination}: {len(labels)} apps × {options.migrations} migrations")


if __name__ == "__main__":
    main()
