"""The typed boundary of /api/v1: ids in the database's range (404 in a path, 422 naming the
field in a body or query), control characters, the Idempotency-Key bound, the one error body
(request id included, 5xx too) and an OpenAPI document that tells the truth."""

from __future__ import annotations

import logging

import pytest

from tenants.accounts.tables import Account
from tenants.audit.record import SYSTEM
from tenants.contacts.tables import Contact
from tenants.credits import ledger as credits

BIG = 4611686018427387905  # beyond int8, let alone PostgreSQL's int4 Serial


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/contacts/{BIG}",
        "/api/v1/contacts/0",
        f"/api/v1/messages/{2**31}",
        "/api/v1/messages/-1",
    ],
)
async def test_an_id_out_of_range_in_a_path_is_404(client, make_key, path):
    auth = await make_key("alpha", "Owner")
    r = await client.get(path, headers=auth)
    assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_an_id_out_of_range_in_a_path_of_a_write_is_404_and_changes_nothing(
    client, make_key, world
):
    auth = await make_key("alpha", "Owner")
    r = await client.patch(f"/api/v1/accounts/{BIG}", json={"name": "x"}, headers=auth)
    assert r.status_code == 404
    r = await client.delete(f"/api/v1/keywords/{2**31}", headers=auth)
    assert r.status_code == 404
    assert await Account.count() == len(world.accounts)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"offset=53347546&account_id={BIG}", "account_id"),
        ("account_id=0", "account_id"),
        (f"offset={BIG}", "offset"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("kind=a%00b", "kind"),
    ],
)
async def test_bad_ledger_query_is_422_naming_the_field(client, make_key, query, field):
    auth = await make_key("alpha", "Owner")
    r = await client.get(f"/api/v1/credits/ledger?{query}", headers=auth)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "invalid" and body["field"] == field and field in body["errors"]


async def test_ids_out_of_range_in_a_body_are_422_naming_the_field(client, make_key, world):
    await credits.adjust(world.accounts["alpha"], 100, reason="test", actor=SYSTEM)
    auth = await make_key("alpha", "Owner")
    cases = [
        ("/api/v1/credits/transfers", {"to_account_id": BIG, "amount": 1}, "to_account_id"),
        (
            "/api/v1/credits/transfers",
            {"to_account_id": world.accounts["alpha-one"], "amount": 1, "from_account_id": 0},
            "from_account_id",
        ),
        ("/api/v1/accounts", {"name": "N", "slug": "nn", "parent_id": 2**31}, "parent_id"),
        ("/api/v1/messages", {"to": ["+61400000001"], "template_id": BIG}, "template_id"),
        ("/api/v1/keywords", {"word": "deals", "number_id": BIG}, "number_id"),
        ("/api/v1/sender-ids", {"value": "Alpha", "account_id": -5}, "account_id"),
    ]
    for path, body, field in cases:
        r = await client.post(path, json=body, headers=auth)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["field"] == field, (path, r.json())
    # A string where an id goes is refused too, not read as a number.
    r = await client.post(
        "/api/v1/credits/transfers",
        json={"to_account_id": str(world.accounts["alpha-one"]), "amount": 1},
        headers=auth,
    )
    assert r.status_code == 422 and r.json()["field"] == "to_account_id"
    assert await credits.balance(world.accounts["alpha"]) == 100
    assert await Account.count() == len(world.accounts)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/contacts", {"phone": "+61412345678", "first_name": "A\x00n"}, "first_name"),
        ("/api/v1/contacts", {"phone": "+6141234\x005678"}, "phone"),
        ("/api/v1/contacts", {"phone": "+61412345678", "last_name": "a\x1bb"}, "last_name"),
        ("/api/v1/accounts", {"name": "Nul\x00", "slug": "nul"}, "name"),
        ("/api/v1/segments", {"text": "hi\x00"}, "text"),
        ("/api/v1/consent", {"phone": "+61412345678", "action": "opt_out", "note": "\x07"}, "note"),
    ],
)
async def test_control_characters_are_422_naming_the_field(client, make_key, path, body, field):
    auth = await make_key("alpha", "Owner")
    r = await client.post(path, json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert r.json()["errors"][field] == "Must not contain control characters."
    assert await Contact.count() == 0


async def test_line_breaks_stay_allowed_in_free_text(client, make_key):
    auth = await make_key("alpha", "Owner")
    r = await client.post("/api/v1/segments", json={"text": "a\nb\r\n\tc"}, headers=auth)
    assert r.status_code == 200 and r.json()["characters"] == 6  # \r\n is one character


async def test_a_body_that_is_not_json_or_empty_names_what_is_missing(client, make_key):
    auth = await make_key("alpha", "Owner")
    r = await client.post(
        "/api/v1/contacts", content=b"{nope", headers={**auth, "Content-Type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["field"] == "body"
    r = await client.post("/api/v1/contacts", headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "phone"


async def test_a_long_idempotency_key_is_422_naming_the_header(client, make_key, world):
    await credits.adjust(world.accounts["alpha"], 100, reason="test", actor=SYSTEM)
    auth = await make_key("alpha", "Owner")
    body = {"to_account_id": world.accounts["alpha-one"], "amount": 5}
    for path, payload in (
        ("/api/v1/credits/transfers", body),
        ("/api/v1/messages", {"to": ["+61400000001"], "body": "hi"}),
    ):
        r = await client.post(path, json=payload, headers={**auth, "Idempotency-Key": "k" * 201})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "Idempotency-Key"
    assert await credits.balance(world.accounts["alpha"]) == 100
    r = await client.post(
        "/api/v1/credits/transfers", json=body, headers={**auth, "Idempotency-Key": "k" * 200}
    )
    assert r.status_code == 201


async def test_errors_carry_the_request_id_that_the_log_line_carries(client, make_key, caplog):
    auth = await make_key("alpha", "Owner")
    with caplog.at_level(logging.INFO, logger="portal.errors"):
        r = await client.get("/api/v1/contacts/999999", headers=auth)
    assert r.status_code == 404
    rid = r.json()["request_id"]
    assert r.headers["x-request-id"] == rid
    lines = [rec for rec in caplog.records if rid in rec.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO and lines[0].exc_info is None
    ok = await client.get("/api/v1/account", headers={**auth, "X-Request-Id": "trace-abc-123"})
    assert ok.headers["x-request-id"] == "trace-abc-123"
    bad = await client.get("/api/v1/account", headers={**auth, "X-Request-Id": "x\ty"})
    assert bad.headers["x-request-id"] != "x\ty"


async def test_a_fault_is_a_json_500_with_code_and_request_id(
    client, make_key, monkeypatch, caplog
):
    from portal.api import accounts as accounts_api

    async def broken(root_id: int) -> list:
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(accounts_api.accounts, "subtree", broken)
    auth = await make_key("alpha", "Owner")
    with caplog.at_level(logging.INFO, logger="portal.errors"):
        r = await client.get("/api/v1/accounts", headers=auth)
    assert r.status_code == 500
    body = r.json()
    assert body["code"] == "internal_error" and "fell over" not in r.text
    assert r.headers["x-request-id"] == body["request_id"]
    faults = [rec for rec in caplog.records if body["request_id"] in rec.getMessage()]
    assert len(faults) == 1 and faults[0].levelno == logging.ERROR and faults[0].exc_info


async def test_a_page_fault_renders_the_error_page_with_the_request_id(client, monkeypatch):
    from portal.controllers import session

    def broken(next_url: str | None) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(session, "_safe_next", broken)
    r = await client.get("/login")
    assert r.status_code == 500 and "text/html" in r.headers["content-type"]
    assert r.headers["x-request-id"] in r.text and "boom" not in r.text


async def test_the_csv_answer_names_its_charset_once(client, make_key):
    auth = await make_key("alpha", "Sender")
    r = await client.get("/api/v1/contacts/export", headers=auth)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"


async def test_openapi_documents_bodies_errors_and_the_idempotency_header(client):
    r = await client.get("/api/schema/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    schemas = doc["components"]["schemas"]
    assert set(schemas["ErrorBody"]["required"]) == {"code", "message", "request_id"}
    api = {p: ops for p, ops in doc["paths"].items() if p.startswith("/api/v1")}
    writes = [
        (path, method, op)
        for path, ops in api.items()
        for method, op in ops.items()
        if method in ("post", "patch", "put")
    ]
    assert len(writes) >= 12
    for path, method, op in writes:
        assert "$ref" in op["requestBody"]["content"]["application/json"]["schema"], (path, method)
    for path, ops in api.items():
        for method, op in ops.items():
            assert "400" not in op["responses"], (path, method)
            for code in ("401", "403", "422"):
                ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorBody"), (path, method, code)
    assert "404" in api["/api/v1/contacts/{contact_id}"]["get"]["responses"]
    assert "409" in api["/api/v1/credits/transfers"]["post"]["responses"]
    for path in ("/api/v1/credits/transfers", "/api/v1/messages"):
        headers = [p for p in api[path]["post"]["parameters"] if p["in"] == "header"]
        assert [(h["name"], h["schema"]["maxLength"]) for h in headers] == [
            ("Idempotency-Key", 200)
        ]
    ids = api["/api/v1/contacts/{contact_id}"]["get"]["parameters"][0]["schema"]
    assert (ids["minimum"], ids["maximum"]) == (1, 2**31 - 1)


async def test_every_invalid_field_is_named_at_once(client, make_key):
    auth = await make_key("alpha", "Owner")
    r = await client.post(
        "/api/v1/messages",
        json={"to": 5, "template_id": "seven", "channel": 7, "variables": []},
        headers=auth,
    )
    assert r.status_code == 422
    assert set(r.json()["errors"]) == {"to", "template_id", "channel", "variables"}
    r = await client.post("/api/v1/contacts", json={"first_name": 3}, headers=auth)
    assert r.status_code == 422
    assert set(r.json()["errors"]) == {"phone", "first_name"}
    assert await Contact.count() == 0
