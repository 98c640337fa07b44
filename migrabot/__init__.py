"""migrabot: the shared core (settings, configuration, messages, redaction, the broker) and the entry points."""
