"""Settings for the example target project that migrabot demos and tests run against.

Kept deliberately small (no admin, sessions or middleware) so that a fresh
`manage.py showmigrations` starts quickly. The database comes from DATABASE_URL
so the same project runs on SQLite and PostgreSQL.
"""
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

# Development-only default: this project holds no real data.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-only-insecure-example-key")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS: list[str] = []

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "accounts",
    "marketplace",
    "media",
]

ROOT_URLCONF = "backend.urls"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=0,
    )
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

# A rehearsal sets it to Django's dummy backend (migrabot.toml, rehearsal_env): a data migration
# that sends mail sends nothing while it is tried on a copy.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
