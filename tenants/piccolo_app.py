"""The Piccolo app of the domain: every table of every tenants/<context>/tables.py, found by
table_finder, and the migrations folder at the top of the repository."""

from __future__ import annotations

from pathlib import Path

from piccolo.conf.apps import AppConfig, table_finder

CONTEXTS = (
    "accounts",
    "access",
    "audit",
    "branding",
    "consent",
    "contacts",
    "credits",
    "media",
    "links",
    "messaging",
    "numbers",
    "platform",
    "providers",
    "reports",
    "templates",
    "webhooks",
)
MIGRATIONS_FOLDER = Path(__file__).resolve().parent.parent / "migrations"

APP_CONFIG = AppConfig(
    app_name="tenants",
    migrations_folder_path=str(MIGRATIONS_FOLDER),
    # exclude_imported: a tables module imports the tables it references; each table is
    # registered once, by the module that defines it.
    table_classes=table_finder(
        modules=[f"tenants.{context}.tables" for context in CONTEXTS], exclude_imported=True
    ),
    migration_dependencies=[],
    commands=[],
)
