"""The media of an MMS send: checked against the chosen provider's limits when the send is
accepted (before any reserve), attached to its batch in the send's transaction, and turned
into signed URLs when the outbox hands the messages to the provider."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tenants.db import transaction
from tenants.errors import ValidationFailed
from tenants.media import store
from tenants.media.limits import LIMITS, Candidate, MediaLimits, media_problem
from tenants.media.store import MAX_SUBJECT, MediaView, NewMedia
from tenants.providers import integrations
from tenants.providers.tables import ProviderIntegration

MAX_FILES = 10  # what any request may name, whatever the provider


@dataclass(frozen=True)
class MmsContent:
    """What an accepted MMS send attaches: stored items and files to store with the send."""

    subject: str
    existing: list[MediaView]
    new: list[NewMedia]


def request_errors(
    channel: str, media_ids: Sequence[Any], new: Sequence[NewMedia], subject: str
) -> dict[str, str]:
    """Field errors of the media part of a send, before anything is looked up."""
    count = len(media_ids) + len(new)
    if channel != "mms":
        if count:
            return {"media": "Only MMS carries media; choose the MMS channel."}
        if subject:
            return {"subject": "Only MMS has a subject."}
        return {}
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**31 for i in media_ids):
        return {"media": "Media ids are positive integers."}
    if count == 0:
        return {"media": "An MMS needs at least one image, video or document."}
    if count > MAX_FILES:
        return {"media": f"At most {MAX_FILES} files per MMS."}
    if len(subject) > MAX_SUBJECT:
        return {"subject": f"A subject has at most {MAX_SUBJECT} characters."}
    return {}


async def limits_of(provider: str) -> MediaLimits | None:
    """The media limits of a provider key (`simulator` or `integration:<id>`)."""
    integration_id = integrations.integration_id_of(provider)
    if integration_id is None:
        return LIMITS["simulator"] if provider == integrations.BUILTIN else None
    row = (
        await ProviderIntegration.select(ProviderIntegration.kind)
        .where(ProviderIntegration.id == integration_id)
        .first()
    )
    return LIMITS.get(row["kind"]) if row else None


async def check_mms(
    account_id: int, media_ids: Sequence[int], new: Sequence[NewMedia], subject: str
) -> MmsContent:
    """The send's media, owned by the account and within its MMS provider's limits; a
    ValidationFailed naming `media` (or `subject`, `channel`) otherwise."""
    existing = await store.owned_media(account_id, media_ids)
    limits = await limits_of(await integrations.provider_for(account_id, "mms"))
    if limits is None:
        raise ValidationFailed({"channel": "The account's MMS provider cannot send MMS."})
    files = [Candidate(m.content_type, m.size) for m in existing]
    files += [Candidate(m.content_type, m.size) for m in new]
    problem = media_problem(limits, files)
    if problem:
        raise ValidationFailed({"media": problem})
    if subject and not limits.subject:
        raise ValidationFailed({"subject": f"{limits.provider} sends no MMS subject."})
    return MmsContent(subject.strip(), existing, list(new))


async def keep_uploads(account_id: int, new: Sequence[NewMedia]) -> list[MediaView]:
    """Store files a person attached (the send page keeps them between preview and send)."""
    async with transaction():
        return [await store.store_media(account_id, m) for m in new]


async def attach(batch_id: int, account_id: int, content: MmsContent) -> list[int]:
    """Store the new files and attach every file to the batch (in the send's transaction)."""
    stored = [await store.store_media(account_id, m) for m in content.new]
    ids = [m.id for m in content.existing] + [m.id for m in stored]
    await store.attach_to_batch(batch_id, account_id, ids, content.subject)
    return ids


async def signed_media_of(batch_ids: Sequence[int]) -> dict[int, tuple[tuple[str, ...], str]]:
    """Per MMS batch: the signed URLs of its files (in order) and its subject."""
    attached = await store.media_of_batches(batch_ids)
    return {b: (tuple(m.url() for m in a.media), a.subject) for b, a in attached.items()}
