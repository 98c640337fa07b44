"""The Slack side: the Bolt app, its listeners, the command grammar and the cards it posts."""
