"""/api/v1/segments: how a text is encoded and billed, without sending it."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post

from tenants.errors import ValidationFailed
from tenants.templates.segments import count_segments

# Counting is linear, but an unbounded body would let one request hold a worker.
TEXT_MAX = 10_000


class SegmentsApi(Controller):
    @post("/segments", opt={"permission": "account.view"}, status_code=200)
    async def count(self, request: Request[Any, Any, Any], data: Any = None) -> dict[str, Any]:
        if not isinstance(data, dict) or "text" not in data:
            raise ValidationFailed({"text": "Send a JSON object with the text to count."})
        text = data["text"]
        if not isinstance(text, str):
            raise ValidationFailed({"text": "Must be a string."})
        if len(text) > TEXT_MAX:
            raise ValidationFailed({"text": f"Must be at most {TEXT_MAX} characters."})
        counted = count_segments(text)
        return {
            "encoding": counted.encoding,
            "characters": counted.characters,
            "units": counted.units,
            "segments": counted.segments,
            "remaining": counted.remaining,
            "per_segment": counted.per_segment,
        }
