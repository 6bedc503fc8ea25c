"""/api/v1/segments: how a text is encoded and billed, without sending it."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, post
from litestar.params import JSONBody
from msgspec import Meta, Struct

from portal.api.schemas import TEXT_PATTERN, documented
from tenants.templates.segments import count_segments

# Counting is linear, but an unbounded body would let one request hold a worker.
TEXT_MAX = 10_000


class SegmentsIn(Struct):
    text: Annotated[str, Meta(max_length=TEXT_MAX, pattern=TEXT_PATTERN)]


class SegmentsOut(Struct):
    encoding: str
    characters: int
    units: int
    segments: int
    remaining: int
    per_segment: int


class SegmentsApi(Controller):
    @post("/segments", opt={"permission": "account.view"}, status_code=200, **documented())
    async def count(
        self, request: Request[Any, Any, Any], data: JSONBody[SegmentsIn]
    ) -> SegmentsOut:
        counted = count_segments(data.text)
        return SegmentsOut(
            encoding=counted.encoding,
            characters=counted.characters,
            units=counted.units,
            segments=counted.segments,
            remaining=counted.remaining,
            per_segment=counted.per_segment,
        )
