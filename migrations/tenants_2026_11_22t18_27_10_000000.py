"""Composite unique keys of the access tables (written by hand: Piccolo's ADD CONSTRAINT
does not run on SQLite, while a unique index works on both databases)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T18:27:10:000000"
VERSION = "1.38.0"
DESCRIPTION = "access: composite unique indexes"

UNIQUE_INDEXES = (
    ("custom_role_account_name_uq", "custom_role", ("account", "name")),
    ("team_account_name_uq", "team", ("account", "name")),
    ("team_member_team_user_uq", "team_member", ("team", "user")),
    ("permission_override_uq", "permission_override", ("user", "account", "permission")),
    ("sso_identity_provider_subject_uq", "sso_identity", ("provider", "subject")),
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)

    async def create_indexes():
        engine = engine_finder()
        for name, table, columns in UNIQUE_INDEXES:
            cols = ", ".join(f'"{c}"' for c in columns)
            await engine.run_ddl(f'CREATE UNIQUE INDEX "{name}" ON "{table}" ({cols})')

    async def drop_indexes():
        engine = engine_finder()
        for name, _, _ in UNIQUE_INDEXES:
            await engine.run_ddl(f'DROP INDEX IF EXISTS "{name}"')

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
