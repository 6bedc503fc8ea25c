"""Web layer: app factory, configuration, auth, guards, controllers, JSON API, CLI."""
