"""Django settings for the control plane: the bot's own system of record, never a target database.

SQLite under ``MIGRABOT_HOME`` by default; PostgreSQL (or anything dj-database-url knows) through
``DATABASE_URL``. Nothing here is a secret: the secret key only signs the audit page's sessions.
"""

import os
from pathlib import Path

import dj_database_url

HOME = Path(os.environ.get("MIGRABOT_HOME", Path.cwd() / "var")).resolve()

SECRET_KEY = os.environ.get("MIGRABOT_SECRET_KEY", "migrabot-local-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["controlplane"]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware"]
ROOT_URLCONF = "migrabot.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{HOME / 'controlplane.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The bot and the workers write from several processes: WAL lets readers go on while one
    # writes, and IMMEDIATE transactions take the write lock up front instead of failing midway.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("MIGRABOT_LOG_LEVEL", "INFO")},
}
