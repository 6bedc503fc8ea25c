"""Outbound customer webhooks: subscriptions, signed deliveries, attempts."""
