"""The simulator is no data source: its outbox and settings (every tenant's recipients and
texts) need the simulator secret, and SIMULATOR_ENABLED=0 removes its mount altogether."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

SECRET = {"X-Simulator-Secret": "simulator-secret"}


@pytest.mark.parametrize("path", ["/simulator/outbox", "/simulator/config"])
async def test_outbox_and_config_need_the_secret(client, simulator, path):
    simulator.records.clear()
    await simulator.submit(
        [{"reference": "41", "to": "+61400000041", "from": "Alpha", "body": "Private text"}],
        "http://127.0.0.1:9/hooks/simulator/status",
    )
    for headers in ({}, {"X-Simulator-Secret": "wrong"}):
        r = await client.get(path, headers=headers)
        assert r.status_code == 403
        assert r.json()["code"] == "forbidden" and r.json()["message"]
        assert "Private text" not in r.text and "+61400000041" not in r.text
    r = await client.get(path, headers=SECRET)
    assert r.status_code == 200
    if path.endswith("outbox"):
        assert [o["body"] for o in r.json()] == ["Private text"]


async def test_simulator_enabled_0_removes_the_mount(settings_env, world):
    from portal.app import create_app

    settings_env(SIMULATOR_ENABLED="0")
    app = create_app()
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as c:
        for path in ("/simulator/outbox", "/simulator/config"):
            r = await c.get(path, headers=SECRET)
            assert r.status_code == 404
        r = await c.post("/simulator/api/messages", json={"messages": []}, headers=SECRET)
        assert r.status_code == 404
    settings_env(SIMULATOR_ENABLED=None)
    # On by default: the demo's simulator answers again.
    async with AsyncTestClient(app=create_app(), base_url="http://testserver.local") as c:
        assert (await c.get("/simulator/config", headers=SECRET)).status_code == 200
