"""Users get `default_account_id`: the account a person who belongs to several chose to
land in at sign-in (empty: the shallowest membership, as before)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Integer
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-02T01:10:17:170317"
VERSION = "1.38.0"
DESCRIPTION = "portal_user.default_account_id"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)

    manager.add_column(
        table_class_name="User",
        tablename="portal_user",
        column_name="default_account_id",
        db_column_name="default_account_id",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": None,
            "null": True,
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
