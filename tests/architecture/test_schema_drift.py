"""The migrations describe exactly the tables the code defines: after the last migration,
Piccolo's auto-migration finds nothing to do (it once proposed dropping a live table)."""

from __future__ import annotations

from piccolo.apps.migrations.commands.new import AutoMigrationManager

from tenants.audit.record import SYSTEM
from tenants.contacts import contacts
from tenants.piccolo_app import APP_CONFIG


async def test_migrations_match_the_table_classes() -> None:
    statements = await AutoMigrationManager(auto_input="n").get_alter_statements(
        app_config=APP_CONFIG
    )
    pending = [line for group in statements for line in group.statements]
    assert pending == [], "a migration is missing:\n" + "\n".join(pending)


def test_every_table_is_found_once() -> None:
    names = [table._meta.tablename for table in APP_CONFIG.table_classes]
    assert len(names) == len(set(names))
    classes = [table.__name__ for table in APP_CONFIG.table_classes]
    assert len(classes) == len(set(classes)), "two tables share a class name"
    assert len(names) >= 58


async def test_a_deleted_rows_id_is_never_given_to_another_tenant(world) -> None:  # type: ignore[no-untyped-def]
    """SQLite would hand the highest deleted id to the next row without AUTOINCREMENT."""
    first = await contacts.create_contact(
        actor=SYSTEM, account_id=world.accounts["alpha-one"], phone="+61413000001"
    )
    await contacts.delete_contact(
        actor=SYSTEM, account_id=world.accounts["alpha-one"], contact_id=first.id
    )
    second = await contacts.create_contact(
        actor=SYSTEM, account_id=world.accounts["beta-one"], phone="+61413000001"
    )
    assert second.id > first.id
