"""Reading form posts: the body markers, one value or every value of a repeated field."""

from __future__ import annotations

from typing import Any

from litestar.enums import RequestEncodingType
from litestar.params import Body

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
MULTIPART = Body(media_type=RequestEncodingType.MULTI_PART)


def one(data: dict[str, Any], key: str) -> str:
    """The field's value stripped ("" when missing; the last one when repeated)."""
    value = data.get(key, "")
    if isinstance(value, list):
        value = value[-1] if value else ""
    return str(value).strip()


def many(data: dict[str, Any], key: str) -> list[str]:
    """Every value of a repeated field (checkboxes), without blanks."""
    value = data.get(key, [])
    values = value if isinstance(value, list) else [value]
    return [str(v).strip() for v in values if str(v).strip()]


def int_list(data: dict[str, Any], key: str) -> list[int]:
    return [int(v) for v in many(data, key) if v.isdigit()]
