"""Reading form posts: the body markers, one value or every value of a repeated field."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.params import Body

from portal.api.schemas import ID_MAX, TEXT_PATTERN
from tenants.errors import ValidationFailed

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
MULTIPART = Body(media_type=RequestEncodingType.MULTI_PART)
_CLEAN_TEXT = re.compile(TEXT_PATTERN)
# Providers post callbacks as forms too: a control character in a text message is theirs
# to send, and the inbound pipeline strips it (refusing would only make them retry).
_NOT_TYPED_BY_PEOPLE = ("/hooks/", "/simulator/", "/api/")


async def refuse_control_characters(request: Request[Any, Any, Any]) -> None:
    """A form field never holds NUL or another control character (line breaks and tabs are
    text): 422 naming the field, before any handler runs, so nothing is written."""
    if request.method not in ("POST", "PUT", "PATCH") or request.url.path.startswith(
        _NOT_TYPED_BY_PEOPLE
    ):
        return
    if request.content_type[0] not in (
        RequestEncodingType.URL_ENCODED,
        RequestEncodingType.MULTI_PART,
    ):
        return
    form = await request.form()
    bad = {
        name: "Must not contain control characters."
        for name, value in form.multi_items()
        if isinstance(value, str) and not _CLEAN_TEXT.match(value)
    }
    if bad:
        raise ValidationFailed(bad)


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
    """The whole numbers given in a repeated field (weekday 0 included); others left out."""
    return [int(v) for v in many(data, key) if digits(v)]


def id_list(data: dict[str, Any], key: str) -> list[int]:
    """The ids given in a repeated field; values no row can have are left out."""
    return [n for v in many(data, key) if (n := parse_id(v)) is not None]


def digits(value: Any) -> bool:
    """Whole number as typed: ASCII digits only (str.isdigit also takes "²" and "٣",
    which int() then refuses)."""
    text = str(value if value is not None else "")
    return text.isascii() and text.isdigit()


def parse_id(value: Any) -> int | None:
    """A row id chosen or typed in a form: a whole number in the database's id range
    (1 to ID_MAX), else None, so that no statement ever sees an id no row can have (a
    value past 64 bits would not even bind on SQLite)."""
    text = str(value if value is not None else "").strip()
    if not digits(text):
        return None
    n = int(text)
    return n if 0 < n <= ID_MAX else None


def form_id(value: Any, field: str, message: str) -> int:
    """parse_id, or ValidationFailed naming the field with `message`."""
    n = parse_id(value)
    if n is None:
        raise ValidationFailed({field: message})
    return n
