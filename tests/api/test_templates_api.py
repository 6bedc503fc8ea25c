"""GET /api/v1/templates: templates usable by the key's account, own and shared down."""

from __future__ import annotations

from tenants.audit.record import SYSTEM
from tenants.templates import templates


async def _template(account_id: int, name: str, *, approve: bool, shared: bool = True) -> int:
    created = await templates.create_template(
        actor=SYSTEM, account_id=account_id, name=name, body=f"{name} body", shared_down=shared
    )
    if approve:
        assert created.version_id is not None
        await templates.approve_version(
            actor=SYSTEM,
            account_id=account_id,
            template_id=created.id,
            version_id=created.version_id,
        )
    return created.id


async def test_sub_account_key_lists_own_and_shared_down(client, make_key, world):
    alpha, sub, beta = world.accounts["alpha"], world.accounts["alpha-one"], world.accounts["beta"]
    shared = await _template(alpha, "Reminder", approve=True)
    await _template(alpha, "Private", approve=True, shared=False)
    await _template(alpha, "Shared draft", approve=False)
    own = await _template(sub, "Branch", approve=True)
    await _template(beta, "Beta", approve=True)

    response = await client.get("/api/v1/templates", headers=await make_key("alpha-one", "Support"))
    assert response.status_code == 200
    assert response.json() == [
        {
            "id": own,
            "name": "Branch",
            "body": "Branch body",
            "status": "approved",
            "account_id": sub,
            "shared_down": True,
        },
        {
            "id": shared,
            "name": "Reminder",
            "body": "Reminder body",
            "status": "approved",
            "account_id": alpha,
            "shared_down": True,
        },
    ]


async def test_status_filter_for_writers_and_refusal_for_support(client, make_key, world):
    alpha = world.accounts["alpha"]
    await _template(alpha, "Approved one", approve=True)
    draft = await _template(alpha, "Draft one", approve=False)

    owner = await make_key("alpha", "Owner")
    drafts = await client.get("/api/v1/templates?status=draft", headers=owner)
    assert [t["id"] for t in drafts.json()] == [draft]
    everything = await client.get("/api/v1/templates?status=all", headers=owner)
    assert [t["name"] for t in everything.json()] == ["Approved one", "Draft one"]
    default = await client.get("/api/v1/templates", headers=owner)
    assert [t["name"] for t in default.json()] == ["Approved one"]

    support = await make_key("alpha", "Support")
    refused = await client.get("/api/v1/templates?status=draft", headers=support)
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"

    bad = await client.get("/api/v1/templates?status=pending", headers=owner)
    assert bad.status_code == 422 and bad.json()["field"] == "status"


async def test_finance_key_cannot_list_templates(client, make_key, world):
    response = await client.get("/api/v1/templates", headers=await make_key("alpha", "Finance"))
    assert response.status_code == 403
