"""/api/v1/integrations and /api/v1/channels: the provider integrations the key's account
owns (with a provider permit) and its default provider per channel. Secrets go in, never out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, patch, post, put
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, Meta, Struct, UnsetType

from portal.api.schemas import Id, Line, PathId, documented
from portal.auth import current_grants, request_actor
from tenants.errors import ValidationFailed
from tenants.providers import integrations as providers

Fields = Annotated[dict[Line, Line], Meta(max_length=50)]


class CallbackUrlsOut(Struct):
    status: str
    inbound: str


class IntegrationOut(Struct):
    id: int
    kind: str
    name: str
    account_id: int
    status: str
    channels: list[str]
    settings: dict[str, str]  # the fields that are not secret
    secrets_set: list[str]  # names of the stored secret fields, never their values
    api_base_url: str | None
    callback_urls: CallbackUrlsOut


class IntegrationCreate(Struct):
    kind: Line
    name: Line
    fields: Fields = {}
    api_base_url: Line | None = None


class IntegrationUpdate(Struct):
    name: Line | UnsetType = UNSET
    fields: Fields | UnsetType = UNSET
    status: Literal["active", "disabled"] | UnsetType = UNSET
    api_base_url: Line | None | UnsetType = UNSET


class ChannelChoice(Struct):
    """An integration id, or "simulator" (the built-in one) or "inherit" (the parent's)."""

    integration_id: Id | Literal["simulator", "inherit"]


class ChannelOut(Struct):
    channel: str
    integration_id: int | None  # the provider that now sends; null = the built-in simulator
    choice: str  # the account's own choice: an integration id, "simulator" or "inherit"


async def integration_json(view: providers.IntegrationView) -> IntegrationOut:
    urls = await providers.callback_urls_of(view)
    return IntegrationOut(
        id=view.id,
        kind=view.kind,
        name=view.name,
        account_id=view.account_id,
        status=view.status,
        channels=sorted(view.channels),
        settings=dict(view.settings),
        secrets_set=sorted(view.secret_hints),
        api_base_url=view.api_base_url or None,
        callback_urls=CallbackUrlsOut(status=urls["status"], inbound=urls["inbound"]),
    )


class IntegrationsApi(Controller):
    @get("/integrations", opt={"permission": "providers.manage"}, **documented())
    async def list_integrations(self, request: Request[Any, Any, Any]) -> list[IntegrationOut]:
        grants = current_grants(request)
        refusal = await providers.ownership_refusal(grants.account, is_operator=grants.is_operator)
        owned = [] if refusal else await providers.list_owned(grants.account.id)
        return [await integration_json(v) for v in owned]

    @post(
        "/integrations",
        opt={"permission": "providers.manage"},
        status_code=201,
        **documented(404),
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[IntegrationCreate]
    ) -> IntegrationOut:
        grants = current_grants(request)
        created = await providers.create_integration(
            request_actor(request),
            account_id=grants.account.id,
            kind=data.kind,
            name=data.name,
            values=dict(data.fields),
            is_operator=grants.is_operator,
            api_base_url=data.api_base_url or "",
        )
        return await integration_json(created.integration)

    @patch(
        "/integrations/{integration_id:int}",
        opt={"permission": "providers.manage"},
        **documented(404),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        integration_id: PathId,
        data: JSONBody[IntegrationUpdate],
    ) -> IntegrationOut:
        """Fields not sent keep their values, and so does a secret sent empty."""
        account_id = current_grants(request).account.id
        actor = request_actor(request)
        view = await providers.get_integration(account_id, integration_id)
        if not (data.name is UNSET and data.fields is UNSET and data.api_base_url is UNSET):
            view = (
                await providers.update_integration(
                    actor,
                    account_id=account_id,
                    integration_id=integration_id,
                    name=view.name if data.name is UNSET else data.name,
                    values=view.settings if data.fields is UNSET else view.settings | data.fields,
                    rate_limit=view.rate_limit,
                    api_base_url=None if data.api_base_url is UNSET else data.api_base_url or "",
                )
            ).integration
        if data.status is not UNSET:
            view = await providers.set_integration_status(
                actor, account_id=account_id, integration_id=integration_id, status=data.status
            )
        return await integration_json(view)

    @put("/channels/{channel:str}", opt={"permission": "settings.manage"}, **documented(404))
    async def set_channel(
        self, request: Request[Any, Any, Any], channel: FromPath[str], data: JSONBody[ChannelChoice]
    ) -> ChannelOut:
        """The account's default provider for `sms`, `mms`, `rcs` or `whatsapp`, inherited
        down the tree unless a sub-account chooses its own."""
        account_id = current_grants(request).account.id
        await providers.set_channel_default(
            request_actor(request),
            account_id=account_id,
            channel=channel,
            choice=str(data.integration_id),
        )
        row = next(
            (r for r in await providers.channel_settings(account_id) if r.channel == channel),
            None,
        )
        if row is None:
            raise ValidationFailed({"channel": "Choose sms, mms, rcs or whatsapp."})
        return ChannelOut(
            channel=channel,
            integration_id=row.effective.id if row.effective else None,
            choice=row.own_choice,
        )
