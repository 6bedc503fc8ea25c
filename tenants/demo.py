"""The demo data of CONTRACT.md, seeded idempotently by `portal demo`."""

from __future__ import annotations

from tenants import accounts, credits, users
from tenants.audit import SYSTEM, Actor
from tenants.db import transaction
from tenants.errors import NotFound

DEMO_PASSWORD = "demo-pass-123"

# slug, name, parent slug, consent_mode
DEMO_ACCOUNTS = [
    ("northwind", "Northwind Messaging", None, "inherit"),
    ("sydney", "Sydney Branch", "northwind", "inherit"),
    ("melbourne", "Melbourne Branch", "northwind", "isolated"),
    ("melbourne-events", "Melbourne Events", "melbourne", "inherit"),
]
# email, account slug, role
DEMO_USERS = [
    ("owner@northwind.test", "northwind", "Owner"),
    ("finance@northwind.test", "northwind", "Finance"),
    ("sender@sydney.test", "sydney", "Sender"),
    ("support@sydney.test", "sydney", "Support"),
    ("admin@melbourne.test", "melbourne", "Admin"),
    ("events@melbourne.test", "melbourne-events", "Sender"),
]
OPERATOR_EMAIL = "operator@portal.test"
# Balances of CONTRACT.md, reached the way a customer would: Northwind buys once (the
# operator approves the invoice) and allocates down the tree.
DEMO_PURCHASE = ("northwind", 13200)
# from slug, to slug, credits
DEMO_ALLOCATIONS = [
    ("northwind", "sydney", 2000),
    ("northwind", "melbourne", 1200),
    ("melbourne", "melbourne-events", 200),
]


async def _ensure_account(
    slug: str, name: str, parent_slug: str | None, consent_mode: str
) -> accounts.AccountView:
    try:
        return await accounts.get_account_by_slug(slug)
    except NotFound:
        pass
    if parent_slug is None:
        return await accounts.create_root_account(
            name=name, slug=slug, kind="master", consent_mode=consent_mode
        )
    parent = await accounts.get_account_by_slug(parent_slug)
    return await accounts.create_sub_account(
        actor=SYSTEM,
        within_account_id=parent.id,
        parent_id=parent.id,
        name=name,
        slug=slug,
        consent_mode=consent_mode,
    )


async def _ensure_user(email: str, *, password_hash: str, is_operator: bool = False) -> int:
    existing = await users.find_user_by_email(email)
    if existing:
        return existing.id
    created = await users.create_user(
        email=email,
        password=DEMO_PASSWORD,
        name=email.split("@")[0].title(),
        is_operator=is_operator,
        password_hash=password_hash,
    )
    return created.id


async def ensure_platform_account() -> accounts.AccountView:
    try:
        return await accounts.get_account_by_slug("platform")
    except NotFound:
        return await accounts.create_root_account(
            name="SMS Portal Platform", slug="platform", kind="platform"
        )


async def seed_demo() -> dict[str, int]:
    """Create whatever part of the demo data is missing; returns account ids by slug."""
    password_hash = users.hash_password(DEMO_PASSWORD)
    platform = await ensure_platform_account()
    ids = {"platform": platform.id}
    for slug, name, parent, mode in DEMO_ACCOUNTS:
        ids[slug] = (await _ensure_account(slug, name, parent, mode)).id
    operator_id = await _ensure_user(OPERATOR_EMAIL, password_hash=password_hash, is_operator=True)
    await users.add_membership(user_id=operator_id, account_id=platform.id, role="Owner")
    for email, slug, role in DEMO_USERS:
        user_id = await _ensure_user(email, password_hash=password_hash)
        await users.add_membership(user_id=user_id, account_id=ids[slug], role=role)
    await _seed_credits(ids)
    return ids


async def _seed_credits(ids: dict[str, int]) -> None:
    """Buy and allocate the demo credits once; a ledger already there means it was done."""
    buyer_slug, amount = DEMO_PURCHASE
    async with transaction():
        if await credits.LedgerEntry.exists().where(
            credits.LedgerEntry.account_id == ids[buyer_slug]
        ):
            return
        order = await credits.purchase(
            ids[buyer_slug], amount, actor=Actor(label="finance@northwind.test")
        )
        await credits.approve_order(
            order.id, actor=Actor(label=OPERATOR_EMAIL), note="demo data: paid"
        )
        owner = Actor(label="owner@northwind.test")
        for source, target, credits_amount in DEMO_ALLOCATIONS:
            await credits.allocate(
                actor=owner,
                within_account_id=ids[source],
                to_account_id=ids[target],
                amount=credits_amount,
                idempotency_key=f"demo-{source}-{target}",
                reference="demo data",
            )
