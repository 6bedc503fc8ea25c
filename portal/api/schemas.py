"""The typed boundary of /api/v1: constrained types shared by every resource, the one error
body, and the strict body check that names the field a client got wrong."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation
from litestar.params import HeaderParameter, PathParameter, QueryParameter
from msgspec import UNSET, Meta, Struct, UnsetType

from tenants.errors import ValidationFailed

# Serial ids are PostgreSQL int4; SQLite is held to the same range so both answer alike.
ID_MAX = 2**31 - 1
PAGE_MAX = 1000
TEXT_MAX = 10_000
LINE_MAX = 500
HEADER_MAX = 200
# No C0 control characters (nor DEL): a NUL cannot be stored by PostgreSQL at all, and the
# others only hide what a text really says. Free text may keep line breaks and tabs.
LINE_PATTERN = r"^[^\x00-\x1f\x7f]*$"
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"

Id = Annotated[int, Meta(ge=1, le=ID_MAX, description="An id (1 to 2147483647).")]
Line = Annotated[str, Meta(pattern=LINE_PATTERN, max_length=LINE_MAX)]
Text = Annotated[str, Meta(pattern=TEXT_PATTERN, max_length=TEXT_MAX)]
Count = Annotated[int, Meta(ge=0, le=2**63 - 1)]

PathId = Annotated[int, PathParameter(ge=1, le=ID_MAX, description="An id (1 to 2147483647).")]
QueryId = Annotated[int | None, QueryParameter(ge=1, le=ID_MAX)]
QueryLine = Annotated[str | None, QueryParameter(pattern=LINE_PATTERN, max_length=LINE_MAX)]
Limit = Annotated[int, QueryParameter(ge=1, le=PAGE_MAX)]
Offset = Annotated[int, QueryParameter(ge=0, le=ID_MAX)]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        max_length=HEADER_MAX,
        pattern=LINE_PATTERN,
        description="Replays the first answer when the same request is sent again.",
    ),
]


class ErrorBody(Struct, omit_defaults=True):
    """Every error of the API: `errors` maps each bad field (or header) to what is wrong."""

    code: str
    message: str
    request_id: str
    errors: dict[str, str] | UnsetType = UNSET
    field: str | None | UnsetType = UNSET


_DESCRIPTIONS = {
    401: "No or bad API key credentials.",
    403: "The key's role lacks a permission.",
    404: "Not found, or belongs to an account the key cannot see.",
    409: "Conflict: insufficient credits, a duplicate, or an idempotency key reused.",
    422: "Invalid input; `errors` names each field.",
}


@dataclass
class ApiOperation(Operation):
    """Litestar documents a 400 for every handler with input; this API answers 422."""

    def __post_init__(self) -> None:
        if self.responses:
            self.responses.pop("400", None)


def documented(*extra: int) -> dict[str, Any]:
    """Decorator keywords that document the error answers of a handler (401, 403 and 422
    always, plus `extra`) with the one error body."""
    codes = sorted({401, 403, 422, *extra})
    return {
        "operation_class": ApiOperation,
        "responses": {
            code: ResponseSpec(data_container=ErrorBody, description=_DESCRIPTIONS[code])
            for code in codes
        },
    }


# --- naming the field in a validation error ---------------------------------------------

_AT = re.compile(r" - at `\$\.?([A-Za-z_][A-Za-z0-9_]*)?[^`]*`$")
_MISSING = re.compile(r"^Object missing required field `([^`]+)`")


def friendly(message: str) -> str:
    """msgspec's words, except for the regular expressions nobody should have to read."""
    text = message.split(" - at ", 1)[0]
    if "matching regex" in text:
        return "Must not contain control characters."
    return text


def required_fields(struct: Any) -> list[str]:
    info = msgspec.inspect.type_info(struct)
    if isinstance(info, msgspec.inspect.StructType):
        return [f.name for f in info.fields if f.required]
    return []


def body_errors(struct: Any, message: str) -> dict[str, str]:
    """The field a msgspec error is about; when the body is no object at all, every
    required field (or `body` when there is none)."""
    at = _AT.search(message)
    field = at.group(1) if at else None
    missing = _MISSING.match(message)
    if missing and not field:
        return {missing.group(1): "Required."}
    if field:
        return {field: friendly(message)}
    names = required_fields(struct) or ["body"]
    return {name: f"Send a JSON object with {', '.join(names)}." for name in names}


def every_field_error(struct: Any, raw: bytes) -> dict[str, str]:
    """Each bad field of a JSON object at once (msgspec stops at the first): every required
    field missing and every present one that does not convert strictly to its type."""
    try:
        body = msgspec.json.decode(raw)
        fields = msgspec.structs.fields(struct)
    except (msgspec.DecodeError, TypeError):
        return {}
    if not isinstance(body, dict):
        return {}
    errors: dict[str, str] = {}
    for f in fields:
        if f.encode_name not in body:
            if f.required:
                errors[f.encode_name] = "Required."
            continue
        try:
            msgspec.convert(body[f.encode_name], type=f.type, strict=True)
        except msgspec.ValidationError as exc:
            errors[f.encode_name] = friendly(str(exc))
    return errors


async def check_body_strictly(request: Request[Any, Any, Any]) -> None:
    """Before Litestar converts the body (it converts leniently: "11" would become 11), decode
    it strictly into the handler's `data` type and refuse it naming the field."""
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return
    struct = data.annotation
    raw = await request.body()
    if not raw.strip():
        raise ValidationFailed(body_errors(struct, "empty"))
    try:
        msgspec.json.decode(raw, type=struct, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(
            every_field_error(struct, raw) or body_errors(struct, str(exc))
        ) from None
    except msgspec.DecodeError:
        raise ValidationFailed({"body": "Send valid JSON."}) from None
