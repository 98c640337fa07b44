"""A third-party app installed outside the project, as from site-packages: `vendorcms`, whose own
dependencies order its two 0002 migrations, and which nobody on the team can renumber. Shared by
the probe's hygiene tests and the end-to-end ones."""

from __future__ import annotations

from pathlib import Path

MIGRATIONS = {
    "0001_initial.py": """from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel(
            "Page",
            [
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("title", models.CharField(max_length=80)),
            ],
        )
    ]
""",
    "0002_page_slug.py": """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("vendorcms", "0001_initial")]
    operations = [migrations.AddField("page", "slug", models.SlugField(default=""))]
""",
    "0002_page_body.py": """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("vendorcms", "0002_page_slug")]
    operations = [migrations.AddField("page", "body", models.TextField(default=""))]
""",
}
MODELS = """from django.db import models


class Page(models.Model):
    title = models.CharField(max_length=80)
    slug = models.SlugField(default="")
    body = models.TextField(default="")
"""


def install(project: Path, site: Path) -> Path:
    """Put `vendorcms` in ``site`` (a folder outside ``project``) and add it to the project's
    settings, with ``site`` on its path; the package's folder."""
    package = site / "vendorcms"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "migrations" / "__init__.py").write_text("")
    (package / "models.py").write_text(MODELS)
    for name, text in MIGRATIONS.items():
        (package / "migrations" / name).write_text(text)
    settings = project / "backend" / "settings.py"
    settings.write_text(
        settings.read_text() + f"\nimport sys\nsys.path.append({str(site)!r})\nINSTALLED_APPS += ['vendorcms']\n"
    )
    return package
