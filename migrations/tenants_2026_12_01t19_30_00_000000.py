"""Provider integrations get `api_base_url`: another origin for the provider's API (a
regional endpoint, or a local emulator in tests); empty means the provider's public API."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-01T19:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "provider_integration.api_base_url"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)

    manager.add_column(
        table_class_name="ProviderIntegration",
        tablename="provider_integration",
        column_name="api_base_url",
        db_column_name="api_base_url",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 300,
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )
    return manager
