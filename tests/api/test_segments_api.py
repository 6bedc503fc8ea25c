"""POST /api/v1/segments: the exact count of CONTRACT.md, and 422 naming `text`."""

from __future__ import annotations

import pytest

from tenants.templates.segments import count_segments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"encoding": "GSM-7", "characters": 0, "units": 0, "segments": 0}),
        ("a" * 160, {"encoding": "GSM-7", "characters": 160, "units": 160, "segments": 1}),
        ("a" * 161, {"encoding": "GSM-7", "characters": 161, "units": 161, "segments": 2}),
        # The escape pair of € would straddle septets 153/154: it moves whole.
        (
            "a" * 152 + "€" + "a" * 10,
            {"encoding": "GSM-7", "characters": 163, "units": 164, "segments": 2},
        ),
        ("a" * 306, {"encoding": "GSM-7", "characters": 306, "units": 306, "segments": 2}),
        ("a" * 307, {"encoding": "GSM-7", "characters": 307, "units": 307, "segments": 3}),
        ("😀" * 35, {"encoding": "UCS-2", "characters": 35, "units": 70, "segments": 1}),
        # 66 units then an emoji: the surrogate pair never splits, so it opens segment 2.
        (
            "ж" * 66 + "😀" + "ж" * 3,
            {"encoding": "UCS-2", "characters": 70, "units": 71, "segments": 2},
        ),
        ("👩‍👩‍👧", {"encoding": "UCS-2", "characters": 1, "units": 8, "segments": 1}),
    ],
)
async def test_counts_match_the_rules(client, make_key, text, expected):
    auth = await make_key("alpha", "Support")
    response = await client.post("/api/v1/segments", json={"text": text}, headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in expected} == expected
    assert body["remaining"] == count_segments(text).remaining


@pytest.mark.parametrize("payload", [{}, {"text": None}, {"text": 7}, {"body": "hi"}, ["hi"]])
async def test_bad_text_is_422_naming_the_field(client, make_key, payload):
    auth = await make_key("alpha", "Viewer")
    response = await client.post("/api/v1/segments", json=payload, headers=auth)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid" and body["field"] == "text" and "text" in body["errors"]


async def test_too_long_text_is_refused(client, make_key):
    auth = await make_key("alpha", "Viewer")
    response = await client.post("/api/v1/segments", json={"text": "a" * 10_001}, headers=auth)
    assert response.status_code == 422 and response.json()["field"] == "text"


async def test_needs_a_key(client, world):
    response = await client.post("/api/v1/segments", json={"text": "hi"})
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"
