"""The Slack side: the Bolt app, its listeners, the command grammar, and the notifier that posts."""
