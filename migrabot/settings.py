"""Django settings for the control plane: the bot's own system of record, never a target database.

SQLite under ``MIGRABOT_HOME`` by default; PostgreSQL (or anything dj-database-url knows) through
``DATABASE_URL``. Nothing here is a secret. The apps and middleware beyond ``controlplane`` serve
the audit site (``audit``: Django's admin, signed in with Django's auth); the bot and the workers
load their models only, never the admin's modules. Sessions live in the database and messages in
the session, so nothing a browser holds is signed with ``SECRET_KEY``: the built-in one lets nobody
sign in, yet a deployment sets ``MIGRABOT_SECRET_KEY`` all the same.
"""

import os
from pathlib import Path

import dj_database_url

HOME = Path(os.environ.get("MIGRABOT_HOME", Path.cwd() / "var")).resolve()

SECRET_KEY = os.environ.get("MIGRABOT_SECRET_KEY") or "migrabot-local-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "controlplane",
    "audit",  # before the admin: its templates override the admin's
    # The admin without autodiscovery: only the audit server (migrabot.urls) imports audit.admin.
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "audit.middleware.plain_text_queries",
]
ROOT_URLCONF = "migrabot.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
# The admin's CSS and JavaScript, served by WhiteNoise from the installed apps (no collectstatic).
STATIC_URL = "static/"
FORMAT_MODULE_PATH = ["audit.formats"]
WHITENOISE_USE_FINDERS = True
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
# Behind a TLS-terminating proxy the browser's Origin is https://…: name it, space-separated.
# Served only through https origins, the session and CSRF cookies never travel in the clear.
CSRF_TRUSTED_ORIGINS = os.environ.get("MIGRABOT_AUDIT_ORIGINS", "").split()
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = bool(CSRF_TRUSTED_ORIGINS) and all(
    origin.startswith("https://") for origin in CSRF_TRUSTED_ORIGINS
)

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

# One JSON object a line, tagged with the request being handled (``migrabot.logs``); ``text`` for
# people reading along, which ``migrabot local`` chooses unless MIGRABOT_LOG_FORMAT says otherwise.
LOG_FORMAT = os.environ.get("MIGRABOT_LOG_FORMAT") or "json"
if LOG_FORMAT not in ("json", "text"):
    raise ValueError(f"MIGRABOT_LOG_FORMAT={LOG_FORMAT!r}: json or text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request": {"()": "migrabot.logs.RequestFields"}},
    "formatters": {
        "json": {"()": "migrabot.logs.JsonFormatter"},
        "text": {"()": "migrabot.logs.TextFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("MIGRABOT_LOG_LEVEL", "INFO")},
}
