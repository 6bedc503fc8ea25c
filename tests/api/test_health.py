"""/healthz reports the database and a broker round trip."""

from __future__ import annotations


async def test_healthz_ok_with_a_worker(client, worker):
    r = await client.get("/healthz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


async def test_healthz_503_when_no_worker_answers(client, monkeypatch):
    from portal.controllers import health

    monkeypatch.setattr(health, "PING_TIMEOUT_SECONDS", 0.3)
    r = await client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["checks"]["broker"]["ok"] is False
