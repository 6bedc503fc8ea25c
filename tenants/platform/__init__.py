"""The platform's own health: worker heartbeats."""
