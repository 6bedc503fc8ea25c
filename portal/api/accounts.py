"""/api/v1/account and /api/v1/accounts."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch, post

from portal.auth import current_grants, request_actor
from tenants.accounts import tree as accounts
from tenants.accounts.tree import AccountView
from tenants.consent import scopes as consent_scopes
from tenants.errors import ValidationFailed


def account_json(a: AccountView) -> dict[str, Any]:
    return {
        "id": a.id,
        "slug": a.slug,
        "name": a.name,
        "parent_id": a.parent_id,
        "balance": a.balance,
        "consent_mode": a.consent_mode,
        "status": a.status,
        "kind": a.kind,
    }


def _body(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationFailed({"body": "Send a JSON object."})
    return data


def _opt_str(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise ValidationFailed({field: "Must be a string."})
    return value


def _opt_int(body: dict[str, Any], field: str) -> int | None:
    value = body.get(field)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValidationFailed({field: "Must be an integer."})
    return value


class AccountsApi(Controller):
    @get("/account", opt={"permission": "account.view"})
    async def me(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        return account_json(current_grants(request).account)

    @get("/accounts", opt={"permission": "account.view"})
    async def list_accounts(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        root = current_grants(request).account
        return [account_json(a) for a in await accounts.subtree(root.id)]

    @post("/accounts", opt={"permission": "accounts.manage"}, status_code=201)
    async def create(self, request: Request[Any, Any, Any], data: Any) -> dict[str, Any]:
        body = _body(data)
        root = current_grants(request).account
        parent_id = _opt_int(body, "parent_id")
        created = await accounts.create_sub_account(
            actor=request_actor(request),
            within_account_id=root.id,
            parent_id=parent_id if parent_id is not None else root.id,
            name=_opt_str(body, "name") or "",
            slug=_opt_str(body, "slug") or "",
            consent_mode=_opt_str(body, "consent_mode") or "inherit",
        )
        return account_json(created)

    @patch("/accounts/{account_id:int}", opt={"permission": "accounts.manage"})
    async def update(
        self, request: Request[Any, Any, Any], account_id: int, data: Any
    ) -> dict[str, Any]:
        body = _body(data)
        root = current_grants(request).account
        name, consent_mode = _opt_str(body, "name"), _opt_str(body, "consent_mode")
        # Both fields are checked before either is written: a refusal changes nothing.
        errors = accounts.validate_account_fields(name=name, slug=None, consent_mode=consent_mode)
        if errors:
            raise ValidationFailed(errors)
        actor, within = request_actor(request), root.id
        if consent_mode is not None:
            await consent_scopes.set_consent_mode(
                actor=actor,
                within_account_id=within,
                account_id=account_id,
                consent_mode=consent_mode,
            )
        updated = await accounts.update_account(
            actor=actor, within_account_id=within, account_id=account_id, name=name
        )
        return account_json(updated)
