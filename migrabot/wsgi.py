"""WSGI entry point of the audit pages (``migrabot audit`` serves it with gunicorn)."""

from django.core.wsgi import get_wsgi_application

from migrabot.boot import setup_django

setup_django()
application = get_wsgi_application()
