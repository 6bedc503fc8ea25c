"""/api/v1/account and /api/v1/accounts."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch, post
from litestar.params import JSONBody
from msgspec import UNSET, Struct, UnsetType

from portal.api.schemas import Id, Line, PathId, documented
from portal.auth import current_grants, request_actor
from tenants.accounts import tree as accounts
from tenants.accounts.tree import AccountView
from tenants.consent import scopes as consent_scopes
from tenants.errors import ValidationFailed


class AccountOut(Struct):
    id: int
    slug: str
    name: str
    parent_id: int | None
    balance: int
    consent_mode: str
    status: str
    kind: str


class AccountCreate(Struct):
    name: Line
    slug: Line
    parent_id: Id | None = None
    consent_mode: Line = "inherit"


class AccountUpdate(Struct):
    name: Line | UnsetType = UNSET
    consent_mode: Line | UnsetType = UNSET


def account_json(a: AccountView) -> AccountOut:
    return AccountOut(
        id=a.id,
        slug=a.slug,
        name=a.name,
        parent_id=a.parent_id,
        balance=a.balance,
        consent_mode=a.consent_mode,
        status=a.status,
        kind=a.kind,
    )


class AccountsApi(Controller):
    @get("/account", opt={"permission": "account.view"}, **documented())
    async def me(self, request: Request[Any, Any, Any]) -> AccountOut:
        return account_json(current_grants(request).account)

    @get("/accounts", opt={"permission": "account.view"}, **documented())
    async def list_accounts(self, request: Request[Any, Any, Any]) -> list[AccountOut]:
        root = current_grants(request).account
        return [account_json(a) for a in await accounts.subtree(root.id)]

    @post(
        "/accounts", opt={"permission": "accounts.manage"}, status_code=201, **documented(404, 409)
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[AccountCreate]
    ) -> AccountOut:
        root = current_grants(request).account
        created = await accounts.create_sub_account(
            actor=request_actor(request),
            within_account_id=root.id,
            parent_id=data.parent_id if data.parent_id is not None else root.id,
            name=data.name,
            slug=data.slug,
            consent_mode=data.consent_mode or "inherit",
        )
        return account_json(created)

    @patch("/accounts/{account_id:int}", opt={"permission": "accounts.manage"}, **documented(404))
    async def update(
        self, request: Request[Any, Any, Any], account_id: PathId, data: JSONBody[AccountUpdate]
    ) -> AccountOut:
        root = current_grants(request).account
        name = None if data.name is UNSET else data.name
        consent_mode = None if data.consent_mode is UNSET else data.consent_mode
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
