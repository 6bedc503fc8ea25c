"""/api/v1/keywords: claim, list, release keywords and add their actions."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.params import JSONBody
from msgspec import Struct

from portal.api.schemas import Id, Line, PathId, Text, documented
from portal.auth import current_grants, request_actor
from tenants.errors import ValidationFailed
from tenants.numbers import keywords, numbers


class KeywordActionOut(Struct):
    id: int
    kind: str
    reply_text: str
    list_id: int | None


class KeywordOut(Struct):
    id: int
    word: str
    number_id: int
    number: str
    account_id: int
    actions: list[KeywordActionOut]


class KeywordClaim(Struct):
    word: Line
    number_id: Id | None = None
    number: Line | None = None
    account_id: Id | None = None


class KeywordActionCreate(Struct):
    kind: Line
    reply_text: Text = ""
    list_id: Id | None = None


def keyword_json(k: keywords.KeywordView) -> KeywordOut:
    return KeywordOut(
        id=k.id,
        word=k.word,
        number_id=k.number_id,
        number=k.number,
        account_id=k.account_id,
        actions=[
            KeywordActionOut(id=a.id, kind=a.kind, reply_text=a.reply_text, list_id=a.list_id)
            for a in k.actions
        ],
    )


class KeywordsApi(Controller):
    path = "/keywords"

    @get("/", opt={"permission": "keywords.manage"}, **documented())
    async def list_keywords(self, request: Request[Any, Any, Any]) -> list[KeywordOut]:
        account = current_grants(request).account
        return [keyword_json(k) for k in await keywords.keywords_for(account.id)]

    @post("/", opt={"permission": "keywords.manage"}, status_code=201, **documented(404, 409))
    async def claim(
        self, request: Request[Any, Any, Any], data: JSONBody[KeywordClaim]
    ) -> KeywordOut:
        """`{word, number_id | number, account_id?}`; 409 `duplicate_keyword` or
        `compliance_keyword` with the reason."""
        account = current_grants(request).account
        number_id = data.number_id
        if number_id is None:
            found = await numbers.find_number(data.number) if data.number else None
            if found is None:
                raise ValidationFailed({"number_id": "Give the number_id (or number) to claim on."})
            number_id = found.id
        claimed = await keywords.claim_keyword(
            actor=request_actor(request),
            within_account_id=account.id,
            number_id=number_id,
            word=data.word,
            account_id=data.account_id if data.account_id is not None else account.id,
        )
        return keyword_json(claimed)

    @delete(
        "/{keyword_id:int}",
        opt={"permission": "keywords.manage"},
        status_code=204,
        **documented(404, 409),
    )
    async def release(self, request: Request[Any, Any, Any], keyword_id: PathId) -> None:
        await keywords.release_keyword(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            keyword_id=keyword_id,
        )

    @post(
        "/{keyword_id:int}/actions",
        opt={"permission": "keywords.manage"},
        status_code=201,
        **documented(404, 409),
    )
    async def add_action(
        self,
        request: Request[Any, Any, Any],
        keyword_id: PathId,
        data: JSONBody[KeywordActionCreate],
    ) -> KeywordOut:
        updated = await keywords.add_action(
            actor=request_actor(request),
            within_account_id=current_grants(request).account.id,
            keyword_id=keyword_id,
            kind=data.kind,
            reply_text=data.reply_text,
            list_id=data.list_id,
        )
        return keyword_json(updated)
