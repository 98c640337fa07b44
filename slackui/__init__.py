"""The Slack rendering layer: cards, Block Kit builders and thread messages, from the control plane's records."""
