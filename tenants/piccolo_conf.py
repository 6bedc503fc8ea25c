"""Piccolo configuration: the engine from DATABASE_URL and the one app, `tenants`."""

from piccolo.conf.apps import AppRegistry

from tenants.db import DB

APP_REGISTRY = AppRegistry(apps=["tenants.piccolo_app"])

__all__ = ["DB", "APP_REGISTRY"]
