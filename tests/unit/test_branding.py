"""Branding services: inheritance down the tree, "use inherited", validation that stores
nothing, login host names, logos in the database, contrast warnings."""

from __future__ import annotations

import asyncio

import pytest

from tenants.accounts.tree import create_sub_account
from tenants.audit.record import SYSTEM
from tenants.audit.tables import AuditEvent
from tenants.branding import branding
from tenants.demo import northwind_logo_png, png_bytes
from tenants.errors import NotFound, ValidationFailed


async def set_branding(world, slug, values=None, **kwargs):
    return await branding.update_branding(
        actor=SYSTEM,
        within_account_id=world.accounts[slug],
        account_id=world.accounts[slug],
        values=values or {},
        **kwargs,
    )


async def nothing_stored(account_id: int) -> bool:
    own = await branding.own_settings(account_id)
    audits = await AuditEvent.count().where(
        (AuditEvent.action == "branding.update") & (AuditEvent.account_id == account_id)
    )
    return all(v is None for v in own.values()) and audits == 0


async def test_without_settings_every_field_is_the_built_in_default(world):
    effective = await branding.effective_branding(world.accounts["alpha-one"])
    assert effective.product_name == "SMS Portal"
    assert effective.primary_color == branding.BUILT_IN_DEFAULTS["primary_color"]
    assert effective.logo is None
    assert effective["product_name"].source_name == "built-in default"
    assert not effective["product_name"].own


async def test_each_field_comes_from_the_nearest_account_that_sets_it(world):
    alpha, one = world.accounts["alpha"], world.accounts["alpha-one"]
    grand = await create_sub_account(
        actor=SYSTEM, within_account_id=alpha, parent_id=one, name="Grand", slug="grand"
    )
    await set_branding(
        world,
        "alpha",
        {"product_name": "Alpha Connect", "primary_color": "#0B5394"},
        logo=northwind_logo_png(),
    )
    await set_branding(world, "alpha-one", {"primary_color": "#6a1b9a"})

    sub = await branding.effective_branding(one)
    assert sub.product_name == "Alpha Connect" and sub["product_name"].source_account_id == alpha
    assert sub.primary_color == "#6a1b9a" and sub["primary_color"].own

    deep = await branding.effective_branding(grand.id)
    assert deep.primary_color == "#6a1b9a"
    assert deep["primary_color"].source_account_id == one
    assert deep["primary_color"].source_name == "Alpha One"
    assert deep.logo is not None and deep["logo"].source_account_id == alpha
    assert deep.logo.content_type == "image/png" and deep.logo.width == 64

    # Another tree is untouched.
    assert (
        await branding.effective_branding(world.accounts["beta-one"])
    ).product_name == "SMS Portal"


async def test_platform_branding_is_the_default_for_every_tree(world):
    await set_branding(
        world, "platform", {"product_name": "Textly", "support_email": "help@textly.test"}
    )
    await set_branding(world, "alpha", {"product_name": "Alpha Connect"})
    beta = await branding.effective_branding(world.accounts["beta-one"])
    assert beta.product_name == "Textly"
    assert beta["product_name"].source_name == "Platform (platform)"
    alpha = await branding.effective_branding(world.accounts["alpha-one"])
    assert alpha.product_name == "Alpha Connect" and alpha.support_email == "help@textly.test"
    assert (await branding.platform_branding()).product_name == "Textly"


async def test_use_inherited_clears_one_override_and_is_audited(world):
    await set_branding(world, "alpha", {"primary_color": "#0b5394"})
    await set_branding(world, "alpha-one", {"primary_color": "#6a1b9a", "product_name": "One"})
    after = await branding.clear_override(
        actor=SYSTEM,
        within_account_id=world.accounts["alpha"],
        account_id=world.accounts["alpha-one"],
        field_name="primary_color",
    )
    assert after.primary_color == "#0b5394" and not after["primary_color"].own
    assert after.product_name == "One"
    rows = (
        await AuditEvent.select(AuditEvent.before, AuditEvent.after)
        .where(
            (AuditEvent.action == "branding.update")
            & (AuditEvent.account_id == world.accounts["alpha-one"])
        )
        .order_by(AuditEvent.id)
    )
    assert '"primary_color": "#6a1b9a"' in rows[-1]["before"]
    assert '"primary_color": null' in rows[-1]["after"]


async def test_an_empty_field_goes_back_to_inheriting(world):
    await set_branding(world, "alpha-one", {"product_name": "One"})
    after = await set_branding(world, "alpha-one", {"product_name": "  "})
    assert after.product_name == "SMS Portal"


async def test_clearing_the_logo_falls_back_to_the_parent_logo(world):
    parent_logo = northwind_logo_png(32)
    await set_branding(world, "alpha", logo=parent_logo)
    await set_branding(world, "alpha-one", logo=northwind_logo_png(48))
    own = await branding.effective_branding(world.accounts["alpha-one"])
    assert own.logo.width == 48
    after = await branding.clear_override(
        actor=SYSTEM,
        within_account_id=world.accounts["alpha-one"],
        account_id=world.accounts["alpha-one"],
        field_name="logo",
    )
    assert after.logo.width == 32 and after["logo"].source_account_id == world.accounts["alpha"]
    stored = await branding.get_logo(after.logo.digest)
    assert stored.content == parent_logo and stored.content_type == "image/png"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"primary_color": "blue"}, "primary_color", "#RRGGBB"),
        ({"accent_color": "#12345"}, "accent_color", "#RRGGBB"),
        ({"support_email": "not-an-email"}, "support_email", "valid email"),
        ({"support_phone": "call us"}, "support_phone", "phone number"),
        ({"login_host": "https://portal.example.com/login"}, "login_host", "host name"),
        ({"login_host": "localhost"}, "login_host", "host name"),
        ({"product_name": "x" * 61}, "product_name", "at most 60"),
    ],
)
async def test_invalid_fields_name_the_field_and_store_nothing(world, values, field, message):
    with pytest.raises(ValidationFailed) as caught:
        await set_branding(world, "alpha", {"product_name": "Fine name", **values})
    assert message in caught.value.errors[field]
    assert await nothing_stored(world.accounts["alpha"])


@pytest.mark.parametrize(
    ("logo", "message"),
    [
        (b"just some text, not a picture", "not a PNG, JPEG or SVG"),
        (b"\x89PNG\r\n\x1a\n" + bytes(257 * 1024), "the limit is 256 KB"),
        (png_bytes(2100, 2, lambda x, y: (0, 0, 0, 255)), "the limit is 2000×2000"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "may not contain scripts",
        ),
    ],
)
async def test_a_refused_logo_stores_nothing_not_even_the_valid_fields(world, logo, message):
    with pytest.raises(ValidationFailed) as caught:
        await set_branding(world, "alpha", {"primary_color": "#0b5394"}, logo=logo)
    assert message in caught.value.errors["logo"]
    assert await nothing_stored(world.accounts["alpha"])


async def test_values_are_normalised(world):
    after = await set_branding(
        world,
        "alpha",
        {
            "primary_color": "0B5",
            "support_phone": "02 9000 0000",
            "login_host": "Portal.Alpha.TEST.",
        },
    )
    assert after.primary_color == "#00bb55"
    assert after.support_phone == "+61 2 9000 0000"
    assert after.login_host == "portal.alpha.test"


async def test_login_host_is_unique_and_finds_its_account(world):
    await set_branding(world, "alpha", {"login_host": "portal.alpha.test", "product_name": "Alpha"})
    with pytest.raises(ValidationFailed) as caught:
        await set_branding(world, "beta", {"login_host": "PORTAL.alpha.test"})
    assert "already used" in caught.value.errors["login_host"]
    found = await branding.branding_for_host("Portal.Alpha.Test:8443")
    assert found is not None and found.account_id == world.accounts["alpha"]
    assert found.product_name == "Alpha"
    assert await branding.branding_for_host("other.test") is None
    assert await branding.branding_for_host("") is None
    # The same account may save its own host again.
    await set_branding(world, "alpha", {"login_host": "portal.alpha.test", "product_name": "A2"})


async def test_login_links_use_the_login_host(world):
    await set_branding(world, "alpha", {"login_host": "portal.alpha.test"})
    sub = await branding.effective_branding(world.accounts["alpha-one"])
    assert sub.login_url("https://sms.example.com") == "https://portal.alpha.test/login"
    other = await branding.effective_branding(world.accounts["beta"])
    assert other.login_url("https://sms.example.com/") == "https://sms.example.com/login"


async def test_another_tenants_account_cannot_be_branded(world):
    with pytest.raises(NotFound):
        await branding.update_branding(
            actor=SYSTEM,
            within_account_id=world.accounts["alpha"],
            account_id=world.accounts["beta-one"],
            values={"product_name": "Hijack"},
        )
    assert await nothing_stored(world.accounts["beta-one"])


async def test_preview_applies_valid_fields_reports_bad_ones_and_stores_nothing(world):
    await set_branding(world, "alpha", {"primary_color": "#0b5394"})
    preview, errors = await branding.preview_branding(
        world.accounts["alpha-one"],
        {"product_name": "Preview Co", "accent_color": "nope"},
        logo=northwind_logo_png(16),
    )
    assert preview.product_name == "Preview Co" and preview.primary_color == "#0b5394"
    assert "accent_color" in errors
    assert preview.logo.inline is not None and preview.logo.width == 16
    assert await nothing_stored(world.accounts["alpha-one"])


def test_white_text_contrast_is_checked_against_wcag_aa():
    assert round(branding.contrast_ratio("#ffffff", "#000000"), 1) == 21.0
    warnings = branding.contrast_warnings({"primary_color": "#ffcc00", "accent_color": "#0b5394"})
    assert set(warnings) == {"primary_color"}
    assert "4.5:1" in warnings["primary_color"] and "#ffcc00" in warnings["primary_color"]
    default = {k: branding.BUILT_IN_DEFAULTS[k] for k in ("primary_color", "accent_color")}
    assert branding.contrast_warnings(default) == {}


async def test_two_accounts_claiming_one_host_at_once_get_one_winner(world):
    async def claim(slug: str) -> str:
        try:
            await set_branding(world, slug, {"login_host": "shared.example.com"})
        except ValidationFailed as exc:
            return exc.errors["login_host"]
        return "ok"

    results = await asyncio.gather(claim("alpha"), claim("beta"))
    assert sorted(results) == ["That host name is already used by another account.", "ok"]
    owner = await branding.branding_for_host("shared.example.com")
    winner = "alpha" if results[0] == "ok" else "beta"
    assert owner.account_id == world.accounts[winner]
