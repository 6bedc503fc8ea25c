"""The one table that maps domain errors to HTTP: JSON under /api, pages elsewhere. Every
answer carries a request id (header `X-Request-Id`, and `request_id` in a JSON error body)
that the log line of an error carries too."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from litestar import Request, Response
from litestar.enums import MediaType
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.response import Redirect
from litestar.status_codes import (
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
    HTTP_500_INTERNAL_SERVER_ERROR,
)
from litestar.types import Message, Scope

from portal.api.schemas import friendly, required_fields
from tenants.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)

log = logging.getLogger("portal.errors")

STATUS = {
    NotFound: HTTP_404_NOT_FOUND,
    PermissionDenied: HTTP_403_FORBIDDEN,
    ValidationFailed: HTTP_422_UNPROCESSABLE_ENTITY,
    Conflict: HTTP_409_CONFLICT,
    RateLimited: HTTP_429_TOO_MANY_REQUESTS,
}


REQUEST_ID_HEADER = "x-request-id"
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id(scope: Scope) -> str:
    """This request's id: the caller's `X-Request-Id` when it is a plain token, else new."""
    state = scope.setdefault("state", {})  # type: ignore[typeddict-item]
    rid = state.get("request_id")
    if rid is None:
        sent = dict(scope.get("headers") or ()).get(REQUEST_ID_HEADER.encode(), b"")
        text = sent.decode("latin-1")
        rid = text if _CLIENT_REQUEST_ID.match(text) else uuid.uuid4().hex
        state["request_id"] = rid
    return str(rid)


async def send_request_id(message: Message, scope: Scope) -> None:
    """`before_send` hook: every HTTP answer names its request id."""
    if message["type"] == "http.response.start" and scope["type"] == "http":
        headers = list(message.get("headers") or [])
        if not any(k.lower() == REQUEST_ID_HEADER.encode() for k, _ in headers):
            headers.append((REQUEST_ID_HEADER.encode(), request_id(scope).encode()))
            message["headers"] = headers  # type: ignore[typeddict-unknown-key]


def _is_api(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/api/") or request.url.path.startswith("/hooks/")


def _status_for(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def _page(
    request: Request[Any, Any, Any],
    status: int,
    title: str,
    message: str,
    headers: dict | None = None,
) -> Response[Any]:
    from portal.pages import DEFAULT_BRAND, LayoutPage

    # Refusals and faults alike show the person's own layout (navigation, branding,
    # sign-out); LayoutPage renders the page bare when the layout's look-ups fail too.
    return LayoutPage(
        template_name="error.html.jinja",
        context={
            "status": status,
            "title": title,
            "message": message,
            "brand": DEFAULT_BRAND,
            "principal": None,
            "allowed": frozenset(),
            "nav_routes": frozenset(),
        },
        status_code=status,
        headers=headers or {},
        media_type=MediaType.HTML,
    )


def _refused(request: Request[Any, Any, Any], status: int, code: str) -> str:
    """A refusal is the caller's business, not a fault: one INFO line, no traceback."""
    rid = request_id(request.scope)
    log.info("%s %s -> %d %s request_id=%s", request.method, request.url.path, status, code, rid)
    return rid


def _json_error(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    message: str,
    errors: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    rid = _refused(request, status, code) if status < 500 else request_id(request.scope)
    body: dict[str, Any] = {"code": code, "message": message, "request_id": rid}
    if errors is not None:
        body["errors"] = errors
        body["field"] = next(iter(errors), None)
    return Response(content=body, status_code=status, headers=headers or {})


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    status = _status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    # A 404 never says more than "not found": the row may belong to another tenant.
    message = "Not found." if isinstance(exc, NotFound) else exc.message
    if _is_api(request):
        errors = exc.errors if isinstance(exc, ValidationFailed) else None
        return _json_error(request, status, exc.code, message, errors, headers)
    _refused(request, status, exc.code)
    titles = {
        404: "Not found",
        403: "Not allowed",
        409: "Conflict",
        422: "Check your input",
        429: "Too many attempts",
    }
    return _page(request, status, titles.get(status, "Error"), message, headers)


def _validation_answer(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Litestar's own validation of path, query and header values: a path id out of range
    names nothing that exists (404); anything else is 422 naming the field or header."""
    problems = exc.extra if isinstance(exc.extra, list) else []
    if any(isinstance(p, dict) and p.get("source") == "path" for p in problems):
        return _json_error(request, HTTP_404_NOT_FOUND, "not_found", "Not found.")
    params = request.route_handler.parsed_fn_signature.parameters
    errors: dict[str, str] = {}
    for problem in problems:
        if not isinstance(problem, dict):
            continue
        key = str(problem.get("key") or "body")
        text = friendly(str(problem.get("message") or "Invalid."))
        if key == "data":
            data = params.get("data")
            for name in (required_fields(data.annotation) if data else []) or ["body"]:
                errors[name] = text
            continue
        definition = params[key].kwarg_definition if key in params else None
        # Named as the client sends it (`Idempotency-Key`), not as the handler's argument.
        named = getattr(definition, "header", None) or getattr(definition, "name", None)
        errors[named or key] = text
    errors = errors or {"body": str(exc.detail)}
    message = "; ".join(f"{k}: {v}" for k, v in errors.items())
    return _json_error(request, HTTP_422_UNPROCESSABLE_ENTITY, "invalid", message, errors)


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= HTTP_500_INTERNAL_SERVER_ERROR:
        return internal_error_handler(request, exc)
    if _is_api(request):
        if isinstance(exc, ValidationException):
            return _validation_answer(request, exc)
        if type(exc) is ClientException and status == 400:
            # Litestar's "malformed body" answers: invalid input like any other.
            errors = {"body": str(exc.detail)}
            return _json_error(request, 422, "invalid", str(exc.detail), errors)
        code = {
            HTTP_401_UNAUTHORIZED: "unauthorized",
            HTTP_403_FORBIDDEN: "permission_denied",
            HTTP_404_NOT_FOUND: "not_found",
            HTTP_422_UNPROCESSABLE_ENTITY: "invalid",
            405: "method_not_allowed",
        }.get(status, "error")
        headers = dict(exc.headers or {})
        if status == HTTP_401_UNAUTHORIZED:
            headers["WWW-Authenticate"] = 'Basic realm="SMS Portal API"'
        return _json_error(request, status, code, exc.detail, headers=headers)
    _refused(request, status, type(exc).__name__)
    if isinstance(exc, NotAuthorizedException):
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        if request.headers.get("hx-request"):
            return Response(content="", status_code=401, headers={"HX-Redirect": "/login"})
        return Redirect(path="/login", query_params={"next": target}, status_code=303)
    if isinstance(exc, PermissionDeniedException):
        return _page(request, HTTP_403_FORBIDDEN, "Not allowed", exc.detail)
    if isinstance(exc, NotFoundException):
        return _page(request, HTTP_404_NOT_FOUND, "Not found", "Not found.")
    return _page(request, status, "Error", exc.detail)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A real fault: the traceback goes to the log with the request id, the caller gets the
    id and nothing of the fault itself."""
    rid = request_id(request.scope)
    log.error(
        "%s %s -> 500 internal_error request_id=%s",
        request.method,
        request.url.path,
        rid,
        exc_info=exc,
    )
    message = f"Something went wrong on our side; quote request id {rid}."
    if _is_api(request):
        return _json_error(request, HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", message)
    return _page(request, HTTP_500_INTERNAL_SERVER_ERROR, "Something went wrong", message)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    HTTPException: http_error_handler,
    Exception: internal_error_handler,
}
