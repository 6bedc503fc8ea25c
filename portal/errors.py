"""The one table that maps domain errors to HTTP: JSON under /api, pages elsewhere."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.enums import MediaType
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_429_TOO_MANY_REQUESTS,
)

from tenants.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)

STATUS = {
    NotFound: HTTP_404_NOT_FOUND,
    PermissionDenied: HTTP_403_FORBIDDEN,
    ValidationFailed: HTTP_422_UNPROCESSABLE_ENTITY,
    Conflict: HTTP_409_CONFLICT,
    RateLimited: HTTP_429_TOO_MANY_REQUESTS,
}


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
    from portal.pages import DEFAULT_BRAND

    return Template(
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


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    status = _status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    # A 404 never says more than "not found": the row may belong to another tenant.
    message = "Not found." if isinstance(exc, NotFound) else exc.message
    if _is_api(request):
        body: dict[str, Any] = {"code": exc.code, "message": message}
        if isinstance(exc, ValidationFailed):
            body["errors"] = exc.errors
            body["field"] = next(iter(exc.errors), None)
        return Response(content=body, status_code=status, headers=headers)
    titles = {
        404: "Not found",
        403: "Not allowed",
        409: "Conflict",
        422: "Check your input",
        429: "Too many attempts",
    }
    return _page(request, status, titles.get(status, "Error"), message, headers)


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if _is_api(request):
        code = {
            HTTP_401_UNAUTHORIZED: "unauthorized",
            HTTP_403_FORBIDDEN: "permission_denied",
            HTTP_404_NOT_FOUND: "not_found",
            HTTP_422_UNPROCESSABLE_ENTITY: "invalid",
        }.get(status, "error")
        body: dict[str, Any] = {"code": code, "message": exc.detail}
        if isinstance(exc, ValidationException) and exc.extra:
            body["errors"] = exc.extra
        headers = dict(exc.headers or {})
        if status == HTTP_401_UNAUTHORIZED:
            headers["WWW-Authenticate"] = 'Basic realm="SMS Portal API"'
        return Response(content=body, status_code=status, headers=headers)
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


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    HTTPException: http_error_handler,
}
