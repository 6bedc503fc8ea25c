"""Domain errors: services raise these; portal/ maps them to HTTP in one table."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__name__
        if code:
            self.code = code


class NotFound(DomainError):
    """The row does not exist or belongs to an account the caller cannot see."""

    code = "not_found"


class PermissionDenied(DomainError):
    code = "permission_denied"


class ValidationFailed(DomainError):
    """Bad input; `errors` maps each field name to a message a person can act on."""

    code = "invalid"

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class FieldErrors:
    """Refusals gathered from several checks, so one ValidationFailed names every bad field."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def add(self, field: str, message: str) -> None:
        self.errors[field] = message

    @contextmanager
    def collected(self) -> Iterator[None]:
        """Run one check; its ValidationFailed joins the others instead of stopping here."""
        try:
            yield
        except ValidationFailed as exc:
            self.errors |= exc.errors

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


class Conflict(DomainError):
    code = "conflict"


class InsufficientCredits(Conflict):
    code = "insufficient_credits"


class AccountSuspended(PermissionDenied):
    code = "account_suspended"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
