"""Credits pages: balances with inline allocate/reclaim, buying, the ledger (filters,
pages, CSV), wallet options of sub-accounts, the price table and low-balance notices."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.auth import current_grants, request_actor
from portal.forms import FORM
from portal.pages import csv_download, csv_safe, render
from tenants.accounts import tree as accounts
from tenants.accounts.tree import AccountView
from tenants.credits import ledger, orders, pricing, spending, transfers, wallets
from tenants.errors import Conflict, InsufficientCredits, ValidationFailed

PAGE_SIZE = 25
CSV_LIMIT = 100_000


def parse_amount(raw: str | None, field: str = "amount") -> int:
    text = (raw or "").strip().replace(",", "").replace("_", "")
    if not text:
        raise ValidationFailed({field: "Enter an amount of credits."})
    try:
        return int(text)
    except ValueError:
        raise ValidationFailed({field: "Enter a whole number of credits."}) from None


def parse_optional_int(raw: str | None, field: str) -> int | None:
    text = (raw or "").strip().replace(",", "")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValidationFailed({field: "Enter a whole number, or leave it empty."}) from None


def parse_day(raw: str | None, field: str) -> date | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed({field: "Use a date like 2026-01-31."}) from None


def tree_order(items: list[AccountView]) -> list[AccountView]:
    """Parents first, each followed by its own descendants (so indentation reads right)."""
    return sorted(items, key=lambda a: a.ancestor_ids)


def _form_id(data: dict[str, str], field: str) -> int:
    try:
        return int(data.get(field, ""))
    except ValueError:
        raise ValidationFailed({field: "Choose an account."}) from None


async def _overview(root: AccountView, allowed: frozenset[str]) -> dict[str, Any]:
    """What the credits page shows: the working wallet and every account below it."""
    root = await accounts.get_account(root.id)
    below = tree_order(await accounts.subtree(root.id, include_self=False))
    settings = await wallets.wallet_settings_many([root.id, *[a.id for a in below]])
    wallet_id = await wallets.wallet_of(root.id)
    wallet = root if wallet_id == root.id else await accounts.get_account(wallet_id)
    return {
        "root": root,
        "below": below,
        "wallets": settings,
        "wallet": wallet,
        "month_spend": await spending.month_spend(root.id),
        "my_settings": settings[root.id],
        "orders": await orders.orders(account_id=root.id, limit=10)
        if "credits.buy" in allowed
        else [],
        "gateways": orders.GATEWAYS,
        "new_key": uuid.uuid4().hex,
    }


class CreditsController(Controller):
    path = "/credits"

    @get("/", opt={"permission": "credits.view"}, name="credits")
    async def overview(self, request: HTMXRequest) -> Any:
        grants = current_grants(request)
        ctx = await _overview(grants.account, grants.allowed())
        return await render(request, "credits.html.jinja", {**ctx, "buy_form": {}, "errors": {}})

    @post("/transfer", opt={"permission": "credits.allocate"})
    async def transfer(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        """Allocate to a descendant or reclaim from it; htmx swaps both balances in place."""
        root = current_grants(request).account
        direction = data.get("direction", "allocate")
        status, message, moved = 200, "", None
        other_id: int | None = None
        try:
            other_id = _form_id(data, "account_id")
            amount = parse_amount(data.get("amount"))
            if direction == "reclaim":
                moved = await transfers.reclaim(
                    actor=request_actor(request),
                    within_account_id=root.id,
                    from_account_id=other_id,
                    amount=amount,
                    idempotency_key=data.get("idempotency_key") or None,
                )
            elif direction == "allocate":
                moved = await transfers.allocate(
                    actor=request_actor(request),
                    within_account_id=root.id,
                    to_account_id=other_id,
                    amount=amount,
                    idempotency_key=data.get("idempotency_key") or None,
                )
            else:
                raise ValidationFailed({"direction": "Choose allocate or reclaim."})
        except ValidationFailed as exc:
            status, message = 422, " ".join(exc.errors.values())
        except (InsufficientCredits, Conflict) as exc:
            status, message = 409, exc.message
        if not request.htmx:
            if status == 200:
                return Redirect(path=data.get("next") or "/credits", status_code=303)
            grants = current_grants(request)
            ctx = await _overview(grants.account, grants.allowed())
            return await render(
                request,
                "credits.html.jinja",
                {**ctx, "buy_form": {}, "errors": {}, "page_error": message},
                status_code=status,
            )
        target = await accounts.get_in_subtree(root.id, other_id) if other_id is not None else None
        touched = [root.id] + ([target.id] if target is not None else [])
        balances = {a.id: a.balance for a in await accounts.get_accounts(touched)}
        if moved is not None and target is not None:
            if moved.kind == "allocate":
                message = f"Allocated {moved.amount:,} credits to {target.name}."
            else:
                message = f"Reclaimed {moved.amount:,} credits from {target.name}."
        return await render(
            request,
            "credits.html.jinja",
            {
                "ok": moved is not None,
                "message": message,
                "balances": balances,
                "target": target,
                "amount": data.get("amount", ""),
                "new_key": uuid.uuid4().hex,
            },
            block="transfer_result",
            status_code=status,
        )

    @post("/buy", opt={"permission": "credits.buy"})
    async def buy(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        grants = current_grants(request)
        form = {"amount": (data.get("amount") or "").strip(), "gateway": data.get("gateway", "")}
        errors: dict[str, str] = {}
        order = None
        status = 201
        try:
            order = await orders.purchase(
                grants.account.id,
                parse_amount(form["amount"]),
                actor=request_actor(request),
                gateway=form["gateway"] or "invoice",
            )
        except ValidationFailed as exc:
            errors, status = exc.errors, 422
        except Conflict as exc:
            errors, status = {"amount": exc.message}, 409
        if not request.htmx and not errors:
            return Redirect(path="/credits", status_code=303)
        ctx = await _overview(grants.account, grants.allowed())
        return await render(
            request,
            "credits.html.jinja",
            {**ctx, "buy_form": form if errors else {}, "errors": errors, "new_order": order},
            block="buy",
            status_code=status if request.htmx else (422 if status == 422 else 409),
        )

    @get("/ledger", opt={"permission": "credits.view"}, name="credits-ledger")
    async def ledger_page(
        self,
        request: HTMXRequest,
        kind: FromQuery[str] = "",
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
        account_id: FromQuery[str] = "",
        page: FromQuery[int] = 1,
    ) -> Any:
        root = current_grants(request).account
        filters = {"kind": kind, "since": since, "until": until, "account_id": account_id}
        errors: dict[str, str] = {}
        rows: list[ledger.LedgerRow] = []
        total = 0
        page = max(page, 1)
        try:
            target, query = await _ledger_query(root, filters)
            rows, total = await ledger.ledger(
                target.id, **query, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
            )
        except ValidationFailed as exc:
            errors = exc.errors
            target = root
        pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
        return await render(
            request,
            "credits_ledger.html.jinja",
            {
                "root": root,
                "target": target,
                "choices": tree_order(await accounts.subtree(root.id)),
                "filters": filters,
                "kinds": ledger.KINDS,
                "rows": rows,
                "total": total,
                "page": page,
                "pages": pages,
                "errors": errors,
                "query": _querystring(filters),
            },
            block="ledger_results",
            status_code=422 if errors else 200,
        )

    @get("/ledger.csv", opt={"permission": "credits.view"})
    async def ledger_csv(
        self,
        request: HTMXRequest,
        kind: FromQuery[str] = "",
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
        account_id: FromQuery[str] = "",
    ) -> Response[str]:
        root = current_grants(request).account
        target, query = await _ledger_query(
            root, {"kind": kind, "since": since, "until": until, "account_id": account_id}
        )
        rows, _ = await ledger.ledger(target.id, **query, limit=CSV_LIMIT)
        return csv_download(
            f"ledger-{target.slug}-{datetime.now(UTC):%Y%m%d}.csv",
            [
                "id",
                "created_at",
                "kind",
                "delta",
                "balance_after",
                "counterparty",
                "reference",
                "who",
                "note",
            ],
            (
                [
                    r.id,
                    r.created_at.isoformat(),
                    r.kind,
                    r.delta,
                    r.balance_after,
                    r.counterparty_name,
                    csv_safe(r.reference),
                    csv_safe(r.who),
                    csv_safe(r.note),
                ]
                for r in rows
            ),
        )

    @get("/wallets", opt={"permission": "credits.allocate"}, name="credits-wallets")
    async def wallets(self, request: HTMXRequest) -> Any:
        root = current_grants(request).account
        below = tree_order(await accounts.subtree(root.id, include_self=False))
        return await render(
            request,
            "credits_wallets.html.jinja",
            {
                "root": root,
                "below": below,
                "wallets": await wallets.wallet_settings_many([a.id for a in below]),
            },
        )

    @get("/wallets/{account_id:int}", opt={"permission": "credits.allocate"})
    async def wallet_form(self, request: HTMXRequest, account_id: FromPath[int]) -> Any:
        root = current_grants(request).account
        target = await accounts.get_in_subtree(root.id, account_id)
        if target.id == root.id:
            raise ValidationFailed({"account_id": "Choose an account below this one."})
        current = await wallets.wallet_settings(target.id)
        return await render(
            request,
            "credits_wallets.html.jinja",
            {"root": root, "target": target, "form": _settings_form(current), "errors": {}},
            block="wallet_form",
        )

    @post("/wallets/{account_id:int}", opt={"permission": "credits.allocate"})
    async def save_wallet(
        self, request: HTMXRequest, account_id: FromPath[int], data: Annotated[dict[str, str], FORM]
    ) -> Any:
        root = current_grants(request).account
        target = await accounts.get_in_subtree(root.id, account_id)
        form = {
            "shared_wallet": data.get("shared_wallet") == "on",
            "monthly_cap": (data.get("monthly_cap") or "").strip(),
            "low_balance_threshold": (data.get("low_balance_threshold") or "").strip(),
            "auto_top_up": data.get("auto_top_up") == "on",
            "top_up_amount": (data.get("top_up_amount") or "").strip(),
        }
        errors: dict[str, str] = {}
        saved = False
        below = tree_order(await accounts.subtree(root.id, include_self=False))
        try:
            parsed: dict[str, int | None] = {}
            for field in ("monthly_cap", "low_balance_threshold", "top_up_amount"):
                try:
                    parsed[field] = parse_optional_int(str(form[field]), field)
                except ValidationFailed as exc:
                    errors |= exc.errors
            if errors:
                raise ValidationFailed(errors)
            await wallets.update_wallet_settings(
                actor=request_actor(request),
                within_account_id=root.id,
                account_id=target.id,
                shared_wallet=bool(form["shared_wallet"]),
                monthly_cap=parsed["monthly_cap"],
                low_balance_threshold=parsed["low_balance_threshold"],
                auto_top_up=bool(form["auto_top_up"]),
                top_up_amount=parsed["top_up_amount"] or 0,
            )
            saved = True
        except ValidationFailed as exc:
            errors = exc.errors
        if saved and not request.htmx:
            return Redirect(path="/credits/wallets", status_code=303)
        return await render(
            request,
            "credits_wallets.html.jinja",
            {
                "root": root,
                "target": target,
                "form": form,
                "errors": errors,
                "saved": saved,
                "below": below,
                "wallets": await wallets.wallet_settings_many([a.id for a in below]),
            },
            block="wallet_form",
            status_code=422 if errors else 200,
        )

    @get("/prices", opt={"permission": "credits.view"}, name="credits-prices")
    async def prices(self, request: HTMXRequest, account_id: FromQuery[str] = "") -> Any:
        grants = current_grants(request)
        ctx = await _price_context(grants, account_id)
        return await render(
            request,
            "credits_prices.html.jinja",
            {**ctx, "form": {"channel": "sms", "country": "", "credits": ""}, "errors": {}},
            block="price_editor" if ctx.get("target") else None,
        )

    @post("/prices", opt={"permission": "pricing.manage"})
    async def set_price(self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]) -> Any:
        grants = current_grants(request)
        form = {
            k: (data.get(k) or "").strip() for k in ("account_id", "channel", "country", "credits")
        }
        errors: dict[str, str] = {}
        try:
            target_id = _form_id(data, "account_id")
            await pricing.set_price(
                actor=request_actor(request),
                account_id=target_id,
                channel=form["channel"],
                country=form["country"],
                credits=parse_amount(form["credits"], "credits"),
                is_operator=grants.is_operator,
                within_account_id=grants.account.id,
            )
        except ValidationFailed as exc:
            errors = exc.errors
        if not errors and not request.htmx:
            return Redirect(
                path=f"/credits/prices?account_id={form['account_id']}", status_code=303
            )
        ctx = await _price_context(grants, form["account_id"])
        return await render(
            request,
            "credits_prices.html.jinja",
            {
                **ctx,
                "form": form
                if errors
                else {"channel": form["channel"], "country": "", "credits": ""},
                "errors": errors,
                "saved": not errors,
            },
            block="price_editor",
            status_code=422 if errors else 200,
        )

    @post("/prices/delete", opt={"permission": "pricing.manage"})
    async def delete_price(
        self, request: HTMXRequest, data: Annotated[dict[str, str], FORM]
    ) -> Any:
        grants = current_grants(request)
        target_id = _form_id(data, "account_id")
        await pricing.delete_price(
            actor=request_actor(request),
            account_id=target_id,
            channel=data.get("channel", ""),
            country=data.get("country", ""),
            is_operator=grants.is_operator,
            within_account_id=grants.account.id,
        )
        if not request.htmx:
            return Redirect(path=f"/credits/prices?account_id={target_id}", status_code=303)
        ctx = await _price_context(grants, str(target_id))
        return await render(
            request,
            "credits_prices.html.jinja",
            {**ctx, "form": {"channel": "sms", "country": "", "credits": ""}, "errors": {}},
            block="price_editor",
        )

    @post("/notices/{notice_id:int}/dismiss", opt={"permission": "credits.allocate"})
    async def dismiss(self, request: HTMXRequest, notice_id: FromPath[int]) -> Any:
        root = current_grants(request).account
        await wallets.dismiss_notice(
            actor=request_actor(request), account_id=root.id, notice_id=notice_id
        )
        if not request.htmx:
            return Redirect(path="/", status_code=303)
        return Response(content="", status_code=200, media_type="text/html")


def _querystring(filters: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in filters.items() if v})


async def _ledger_query(
    root: AccountView, filters: dict[str, str]
) -> tuple[AccountView, dict[str, Any]]:
    errors: dict[str, str] = {}
    target = root
    if filters["account_id"]:
        try:
            target = await accounts.get_in_subtree(root.id, int(filters["account_id"]))
        except ValueError:
            errors["account_id"] = "Choose an account."
    kind = filters["kind"] or None
    if kind is not None and kind not in ledger.KINDS:
        errors["kind"] = "Choose a kind from the list."
    since = until = None
    try:
        since = parse_day(filters["since"], "since")
    except ValidationFailed as exc:
        errors |= exc.errors
    try:
        until = parse_day(filters["until"], "until")
    except ValidationFailed as exc:
        errors |= exc.errors
    if since and until and until < since:
        errors["until"] = "The end date is before the start date."
    if errors:
        raise ValidationFailed(errors)
    return target, {
        "kind": kind,
        "since": datetime.combine(since, datetime.min.time(), UTC) if since else None,
        # The end date is inclusive: everything before the next midnight.
        "until": datetime.combine(until + timedelta(days=1), datetime.min.time(), UTC)
        if until
        else None,
    }


def _settings_form(s: wallets.WalletSettingsView) -> dict[str, Any]:
    return {
        "shared_wallet": s.shared_wallet,
        "monthly_cap": "" if s.monthly_cap is None else str(s.monthly_cap),
        "low_balance_threshold": ""
        if s.low_balance_threshold is None
        else str(s.low_balance_threshold),
        "auto_top_up": s.auto_top_up,
        "top_up_amount": str(s.top_up_amount) if s.top_up_amount else "",
    }


async def _price_context(grants: Any, account_id: str) -> dict[str, Any]:
    """The working account's prices, and the editor for one account the caller may price:
    a descendant (pricing.manage), or for the operator any root account too."""
    root: AccountView = grants.account
    may_edit = grants.decide("pricing.manage").allowed
    choices = tree_order(await accounts.subtree(root.id, include_self=grants.is_operator))
    if grants.is_operator:
        roots = [
            a
            for a in await accounts.root_accounts(kind="platform")
            + await accounts.root_accounts(kind="master")
            if a.id not in {c.id for c in choices}
        ]
        choices = roots + choices
    target = None
    if may_edit and choices:
        wanted = parse_optional_int(account_id, "account_id") if account_id else None
        target = next((c for c in choices if c.id == wanted), choices[0])
    tables = {ch: await pricing.prices_for(root.id, ch) for ch in pricing.CHANNELS}
    editor: dict[str, Any] = {}
    if target is not None:
        editor = {
            "target": target,
            "rules": await pricing.price_rules(target.id),
            "target_tables": {
                ch: await pricing.prices_for(target.id, ch) for ch in pricing.CHANNELS
            },
            "floors": {ch: await pricing.cost_floor(target.id, ch) for ch in pricing.CHANNELS},
        }
    return {
        "root": root,
        "tables": tables,
        "channels": pricing.CHANNELS,
        "may_edit": may_edit,
        "choices": choices,
        **editor,
    }
