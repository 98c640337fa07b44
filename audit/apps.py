from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Nothing is imported here: the bot and the workers load this app too (it has no models)."""

    name = "audit"
    verbose_name = "Audit"
