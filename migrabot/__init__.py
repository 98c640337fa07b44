"""migrabot: a Slack ChatOps bot for Django migrations (glue: settings, config, CLI, local mode)."""
