"""Keyword forwarding now queues customer webhook events: drop its own endpoint and delivery
tables and the inbound route's list of their delivery ids."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T19:59:27:478515"
VERSION = "1.38.0"
DESCRIPTION = "drop the keyword-forward webhook tables"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="tenants", description=DESCRIPTION)

    manager.drop_table(class_name="WebhookEndpoint", tablename="webhook_endpoint", schema=None)

    # Raw, not drop_table: the migration history also names the customer webhooks'
    # webhook_event_delivery table class "WebhookDelivery", and drop_table by that class
    # name would take the customer table out of the schema snapshot as well.
    async def drop_keyword_deliveries():
        await engine_finder().run_ddl("DROP TABLE IF EXISTS webhook_delivery")

    manager.add_raw(drop_keyword_deliveries)

    manager.drop_column(
        table_class_name="InboundRoute",
        tablename="inbound_route",
        column_name="webhook_delivery_ids",
        db_column_name="webhook_delivery_ids",
        schema=None,
    )
    return manager
