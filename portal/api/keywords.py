"""/api/v1/keywords: claim, list, release keywords and add their actions."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post

from portal.api.accounts import _body, _opt_int, _opt_str
from portal.auth import current_grants, request_actor
from tenants.errors import ValidationFailed
from tenants.numbers import keywords, numbers


def keyword_json(k: keywords.KeywordView) -> dict[str, Any]:
    return {
        "id": k.id,
        "word": k.word,
        "number_id": k.number_id,
        "number": k.number,
        "account_id": k.account_id,
        "actions": [
            {"id": a.id, "kind": a.kind, "reply_text": a.reply_text, "list_id": a.list_id}
            for a in k.actions
        ],
    }


class KeywordsApi(Controller):
    path = "/keywords"

    @get("/", opt={"permission": "keywords.manage"})
    async def list_keywords(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        account = current_grants(request).account
        return [keyword_json(k) for k in await keywords.keywords_for(account.id)]

    @post("/", opt={"permission": "keywords.manage"}, status_code=201)
    async def claim(self, request: Request[Any, Any, Any], data: Any) -> dict[str, Any]:
        """`{word, number_id | number, account_id?}`; 409 `duplicate_keyword` or
        `compliance_keyword` with the reason."""
        body = _body(data)
        account = current_grants(request).account
        number_id = _opt_int(body, "number_id")
        if number_id is None:
            value = _opt_str(body, "number")
            found = await numbers.find_number(value) if value else None
            if found is None:
                raise ValidationFailed({"number_id": "Give the number_id (or number) to claim on."})
            number_id = found.id
        owner_id = _opt_int(body, "account_id")
        claimed = await keywords.claim_keyword(
            actor=request_actor(request),
            within_account_id=account.id,
            number_id=number_id,
            word=_opt_str(body, "word") or "",
            account_id=owner_id if owner_id is not None else account.id,
        )
        return keyword_json(claimed)

    @delete("/{keyword_id:int}", opt={"permission": "keywords.manage"}, status_code=204)
    async def release(self, request: Request[Any, Any, Any], keyword_id: int) -> None:
        await keywords.release_keyword(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            keyword_id=keyword_id,
        )

    @post("/{keyword_id:int}/actions", opt={"permission": "keywords.manage"}, status_code=201)
    async def add_action(
        self, request: Request[Any, Any, Any], keyword_id: int, data: Any
    ) -> dict[str, Any]:
        body = _body(data)
        updated = await keywords.add_action(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            keyword_id=keyword_id,
            kind=_opt_str(body, "kind") or "",
            reply_text=_opt_str(body, "reply_text") or "",
            list_id=_opt_int(body, "list_id"),
        )
        return keyword_json(updated)
