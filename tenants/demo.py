"""The demo data of CONTRACT.md, seeded idempotently by `portal demo`."""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable

from tenants.access import users
from tenants.access.decide import BUILTIN_ROLES, format_permissions
from tenants.access.tables import CustomRole, PermissionOverride, Team, TeamMember
from tenants.accounts import tree as accounts
from tenants.audit.record import SYSTEM, Actor
from tenants.branding import branding
from tenants.contacts import contacts
from tenants.credits import orders, transfers
from tenants.credits.tables import LedgerEntry
from tenants.db import transaction
from tenants.errors import NotFound
from tenants.numbers import keywords, numbers
from tenants.providers import integrations as providers
from tenants.templates import templates

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
    ("sales@sydney.test", "sydney", "Viewer"),
]
# Access scenarios: a custom role the master defines for its tree, teams in Sydney, and
# one member of a team given a privilege beyond the team's role.
SALES_ROLE = ("northwind", "Sales", BUILTIN_ROLES["Sender"] - {"contacts.export"})
# team name, account slug, role, members
DEMO_TEAMS = [
    ("Sales team", "sydney", "Sales", ["sales@sydney.test"]),
    ("Front desk", "sydney", "Support", ["support@sydney.test"]),
]
# member, account slug, permission, effect, set by
DEMO_OVERRIDES = [
    ("sales@sydney.test", "sydney", "templates.approve", "grant", "owner@northwind.test"),
]
OPERATOR_EMAIL = "operator@portal.test"
# name, owner slug, body; approved and shared down the owner's subtree
DEMO_TEMPLATES = [
    ("Appointment reminder", "northwind", "Hi {{first_name|there}}, see you at {{time}}."),
]
# Northwind brands its tree; Melbourne overrides only the colour, so Sydney shows
# Northwind's colour and logo and Melbourne Events Melbourne's colour with Northwind's logo.
DEMO_BRANDING: dict[str, dict[str, str]] = {
    "northwind": {
        "product_name": "Northwind Connect",
        "primary_color": "#0b5394",
        "support_email": "support@northwind.test",
        # Browsers resolve *.localhost to this machine, so the branded sign-in page works
        # locally at http://northwind.localhost:8000/login.
        "login_host": "northwind.localhost",
    },
    "melbourne": {"primary_color": "#6a1b9a"},
}

Pixel = tuple[int, int, int, int]


def png_bytes(width: int, height: int, pixel: Callable[[int, int], Pixel]) -> bytes:
    """An 8-bit RGBA PNG drawn by `pixel(x, y)`: the demo logo (and test images) need no
    imaging library."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    raw = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def northwind_logo_png(size: int = 64) -> bytes:
    """A compass rose: a navy disc with a white needle pointing north-west."""
    centre = (size - 1) / 2

    def pixel(x: int, y: int) -> Pixel:
        dx, dy = x - centre, y - centre
        radius = math.hypot(dx, dy)
        if radius > size / 2 - 1:
            return (0, 0, 0, 0)
        # The needle: a thin diamond along the x = y diagonal.
        along, across = (dx + dy) / math.sqrt(2), (dx - dy) / math.sqrt(2)
        if abs(across) < (size / 2 - 6 - abs(along)) * 0.28 and abs(along) < size / 2 - 6:
            return (255, 255, 255, 255) if along < 0 else (244, 180, 0, 255)
        return (11, 83, 148, 255)

    return png_bytes(size, size, pixel)


# account slug, phone, first name, last name, tags
DEMO_CONTACTS = [
    ("sydney", "+61412000101", "Olivia", "Smith", ["vip"]),
    ("sydney", "+61412000102", "Jack", "Nguyen", []),
    ("sydney", "+61412000103", "Mia", "Brown", ["newsletter"]),
    ("melbourne-events", "+61412000201", "Noah", "Wilson", ["festival"]),
    ("melbourne-events", "+61412000202", "Ava", "Taylor", []),
]
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
    for name, slug, body in DEMO_TEMPLATES:
        await templates.ensure_approved_template(
            actor=SYSTEM, account_id=ids[slug], name=name, body=body, shared_down=True
        )
    await _seed_branding(ids)
    for slug, phone, first, last, tags in DEMO_CONTACTS:
        if await contacts.find_contact_by_phone(ids[slug], phone) is None:
            await contacts.create_contact(
                actor=SYSTEM,
                account_id=ids[slug],
                phone=phone,
                first_name=first,
                last_name=last,
                tags=tags,
            )
    await _seed_credits(ids)
    await _seed_numbers_and_keywords(ids)
    await _seed_access(ids)
    # CONTRACT.md: Northwind may configure its own provider integrations.
    await providers.set_master_permit(SYSTEM, master_id=ids["northwind"], allowed=True)
    return ids


# number, owner slug, holder slug (None: kept by the owner), label
DEMO_NUMBERS = [
    ("+61480000000", "northwind", None, "Northwind shared number"),
    ("+61480000001", "northwind", "melbourne", "Melbourne number"),
]
DEMO_JOIN_LIST = "JOIN subscribers"
DEMO_JOIN_REPLY = (
    "Thanks {{first_name|there}}, you are on the Sydney Branch list. Reply STOP to opt out."
)


async def _seed_numbers_and_keywords(ids: dict[str, int]) -> None:
    """Northwind's shared number with JOIN for Sydney; Melbourne's own number."""
    for value, owner, holder, label in DEMO_NUMBERS:
        number = await numbers.find_number(value)
        if number is None:
            number = await numbers.add_number(
                actor=SYSTEM,
                owner_account_id=ids[owner],
                number=value,
                kind="long_code",
                label=label,
            )
            if holder is not None:
                await numbers.assign_number(
                    actor=SYSTEM,
                    within_account_id=ids[owner],
                    number_id=number.id,
                    to_account_id=ids[holder],
                )
    shared = await numbers.find_number(DEMO_NUMBERS[0][0])
    assert shared is not None
    if await keywords.keyword_on(shared.id, "JOIN") is not None:
        return
    join_list = next(
        (
            item
            for item in await contacts.contact_lists(ids["sydney"])
            if item.name == DEMO_JOIN_LIST
        ),
        None,
    ) or await contacts.create_list(actor=SYSTEM, account_id=ids["sydney"], name=DEMO_JOIN_LIST)
    join = await keywords.claim_keyword(
        actor=SYSTEM,
        within_account_id=ids["northwind"],
        number_id=shared.id,
        word="JOIN",
        account_id=ids["sydney"],
    )
    await keywords.add_action(
        actor=SYSTEM,
        within_account_id=ids["northwind"],
        keyword_id=join.id,
        kind="add_to_list",
        list_id=join_list.id,
    )
    await keywords.add_action(
        actor=SYSTEM,
        within_account_id=ids["northwind"],
        keyword_id=join.id,
        kind="auto_reply",
        reply_text=DEMO_JOIN_REPLY,
    )


async def _seed_branding(ids: dict[str, int]) -> None:
    for slug, values in DEMO_BRANDING.items():
        own = await branding.own_settings(ids[slug])
        if any(value is not None for value in own.values()):
            continue  # already branded (by an earlier seed or by a person): leave it
        await branding.update_branding(
            actor=SYSTEM,
            within_account_id=ids[slug],
            account_id=ids[slug],
            values=values,
            logo=northwind_logo_png() if slug == "northwind" else None,
        )


async def _seed_credits(ids: dict[str, int]) -> None:
    """Buy and allocate the demo credits once; a ledger already there means it was done."""
    buyer_slug, amount = DEMO_PURCHASE
    async with transaction():
        if await LedgerEntry.exists().where(LedgerEntry.account_id == ids[buyer_slug]):
            return
        order = await orders.purchase(
            ids[buyer_slug], amount, actor=Actor(label="finance@northwind.test")
        )
        await orders.approve_order(
            order.id, actor=Actor(label=OPERATOR_EMAIL), note="demo data: paid"
        )
        owner = Actor(label="owner@northwind.test")
        for source, target, credits_amount in DEMO_ALLOCATIONS:
            await transfers.allocate(
                actor=owner,
                within_account_id=ids[source],
                to_account_id=ids[target],
                amount=credits_amount,
                idempotency_key=f"demo-{source}-{target}",
                reference="demo data",
            )


async def _seed_access(ids: dict[str, int]) -> None:
    slug, name, permissions = SALES_ROLE
    async with transaction():
        if not await CustomRole.exists().where(
            (CustomRole.account == ids[slug]) & (CustomRole.name == name)
        ):
            await CustomRole.insert(
                CustomRole(
                    account=ids[slug],
                    name=name,
                    description="Sends and works with contacts; cannot export them",
                    permissions=format_permissions(permissions),
                )
            )
        for team_name, team_slug, role, members in DEMO_TEAMS:
            team = (
                await Team.select(Team.id)
                .where((Team.account == ids[team_slug]) & (Team.name == team_name))
                .first()
            )
            if team is None:
                rows = await Team.insert(
                    Team(account=ids[team_slug], name=team_name, role=role)
                ).returning(Team.id)
                team = rows[0]
            for email in members:
                user = await users.find_user_by_email(email)
                if user and not await TeamMember.exists().where(
                    (TeamMember.team == team["id"]) & (TeamMember.user == user.id)
                ):
                    await TeamMember.insert(TeamMember(team=team["id"], user=user.id))
        for email, o_slug, permission, effect, set_by in DEMO_OVERRIDES:
            user = await users.find_user_by_email(email)
            setter = await users.find_user_by_email(set_by)
            if user and not await PermissionOverride.exists().where(
                (PermissionOverride.user == user.id)
                & (PermissionOverride.account == ids[o_slug])
                & (PermissionOverride.permission == permission)
            ):
                await PermissionOverride.insert(
                    PermissionOverride(
                        user=user.id,
                        account=ids[o_slug],
                        permission=permission,
                        effect=effect,
                        set_by_user_id=setter.id if setter else None,
                        set_by_label=set_by,
                    )
                )
