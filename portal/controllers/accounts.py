"""The account tree: browse (children load on demand), create, suspend, reactivate."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM
from portal.pages import render
from tenants.accounts import tree as accounts
from tenants.errors import ValidationFailed


async def _nodes(parent_ids: list[int]) -> dict[int, int]:
    return await accounts.child_counts(parent_ids)


async def _tree_page(root: accounts.AccountView, parent: accounts.AccountView) -> dict[str, Any]:
    """The whole tree page with `parent`'s children listed (the root's by default)."""
    kids = await accounts.children(parent.id)
    return {
        "root": root,
        "parent": parent,
        "nodes": kids,
        "counts": await _nodes([root.id, parent.id, *[k.id for k in kids]]),
        "parents": await accounts.subtree(root.id),
        "form": {"parent_id": str(root.id), "consent_mode": "inherit"},
        "errors": {},
    }


class AccountsController(Controller):
    path = "/accounts"

    @get("/", opt={"permission": "account.view"}, name="accounts")
    async def tree(self, request: HTMXRequest) -> Any:
        root = current_grants(request).account
        return await render(request, "accounts.html.jinja", await _tree_page(root, root))

    @get("/{account_id:int}/children", opt={"permission": "account.view"})
    async def children(self, request: HTMXRequest, account_id: FromPath[int]) -> Any:
        root = current_grants(request).account
        parent = await accounts.get_in_subtree(root.id, account_id)
        if not request.htmx:
            # Opened without JavaScript: the tree page showing this account's children.
            return await render(request, "accounts.html.jinja", await _tree_page(root, parent))
        kids = await accounts.children(parent.id)
        return await render(
            request,
            "accounts.html.jinja",
            {
                "root": root,
                "parent": parent,
                "nodes": kids,
                "counts": await _nodes([k.id for k in kids]),
            },
            block="children",
        )

    @post("/", opt={"permission": "accounts.manage"})
    async def create(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        root = current_grants(request).account
        form = {
            k: (data.get(k) or "").strip() for k in ("name", "slug", "parent_id", "consent_mode")
        }
        errors: dict[str, str] = {}
        created = None
        try:
            parent_id = int(form["parent_id"] or root.id)
        except ValueError:
            errors["parent_id"] = "Choose a parent account."
        if not errors:
            try:
                created = await accounts.create_sub_account(
                    actor=request_actor(request),
                    within_account_id=root.id,
                    parent_id=parent_id,
                    name=form["name"],
                    slug=form["slug"],
                    consent_mode=form["consent_mode"] or "inherit",
                )
            except ValidationFailed as exc:
                errors = exc.errors
        context = {
            "root": root,
            "parents": await accounts.subtree(root.id),
            "form": form if errors else {"parent_id": form["parent_id"], "consent_mode": "inherit"},
            "errors": errors,
            "created": created,
        }
        if errors:
            if not request.htmx:
                kids = await accounts.children(root.id)
                context |= {"nodes": kids, "counts": await _nodes([root.id, *[k.id for k in kids]])}
            return await render(
                request, "accounts.html.jinja", context, block="create_form", status_code=422
            )
        if not request.htmx:
            return Redirect(path="/accounts", status_code=303)
        return await render(
            request,
            "accounts.html.jinja",
            context,
            block="create_form",
            status_code=201,
            headers={"HX-Trigger": "tree-changed"},
        )

    @post("/{account_id:int}/status", opt={"permission": "accounts.manage"})
    async def set_status(
        self, request: HTMXRequest, account_id: FromPath[int], data: Annotated[dict[str, str], FORM]
    ) -> Any:
        root = current_grants(request).account
        status = data.get("status", "")
        updated = await accounts.set_status(
            actor=request_actor(request),
            within_account_id=root.id,
            account_id=account_id,
            status=status,
        )
        if not request.htmx:
            return Redirect(path="/accounts", status_code=303)
        return await render(
            request,
            "accounts.html.jinja",
            {"root": root, "node": updated, "counts": await _nodes([updated.id])},
            block="node",
        )
