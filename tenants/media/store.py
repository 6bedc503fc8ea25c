"""The media store: a file's type is read from its bytes, its bytes are kept once by SHA-256,
each account holds its own reference to them, and providers and pages reach a file only by
an expiring signed URL (HMAC over the id and the expiry), never by a path."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tenants import secrets_box
from tenants.db import placeholders, run_sql, transaction
from tenants.errors import ValidationFailed
from tenants.media.tables import BatchMedia, MediaItem
from tenants.settings import get_settings

# What MMS carries, by the type read from the bytes.
LABELS = {
    "image/jpeg": "JPEG image",
    "image/png": "PNG image",
    "image/gif": "GIF image",
    "video/mp4": "MP4 video",
    "video/3gpp": "3GP video",
    "application/pdf": "PDF document",
    "text/vcard": "vCard",
}
MAX_SUBJECT = 64  # MessageMedia's limit, the tightest of the providers that take one
_TOKEN_INFO = b"portal media url v1"


def sniff_type(data: bytes) -> str | None:
    """The media type of `data` from its first bytes (magic numbers), or None when it is
    none of the types MMS carries. File names and declared types are never trusted."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if len(data) >= 12 and data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand.startswith((b"3gp", b"3g2")):
            return "video/3gpp"
        # QuickTime and audio-only brands are not short video an MMS handset plays.
        if brand not in (b"qt  ", b"M4A ", b"M4B ", b"M4P ", b"heic", b"heix", b"avif"):
            return "video/mp4"
        return None
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n").upper()
    if head.startswith(b"BEGIN:VCARD"):
        return "text/vcard"
    return None


@dataclass(frozen=True)
class MediaView:
    id: int
    account_id: int
    sha256: str
    content_type: str
    size: int
    file_name: str

    @property
    def label(self) -> str:
        return LABELS.get(self.content_type, self.content_type)

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    def url(self, ttl: int | None = None) -> str:
        return signed_url(self.id, ttl)

    @property
    def page_path(self) -> str:
        """The signed URL on the portal's own origin, for pages (same-origin for the CSP)."""
        return f"/media/{media_token(self.id)}"

    @property
    def size_label(self) -> str:
        return (
            f"{self.size / 1000:.1f} kB" if self.size < 1_000_000 else f"{self.size / 1e6:.1f} MB"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "url": self.url(),
        }


@dataclass(frozen=True)
class NewMedia:
    """A file read from an upload or a URL, checked but not stored yet."""

    data: bytes
    content_type: str
    file_name: str = ""

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def read_file(data: bytes, file_name: str = "", *, field: str = "media") -> NewMedia:
    """Check one file: not empty, within MEDIA_FETCH_MAX_BYTES, of a type MMS carries."""
    limit = get_settings().sending.media_fetch_max_bytes
    if not data:
        raise ValidationFailed({field: "The file is empty."})
    if len(data) > limit:
        raise ValidationFailed({field: f"A file may have at most {limit:,} bytes."})
    content_type = sniff_type(data)
    if content_type is None:
        kinds = ", ".join(LABELS.values())
        raise ValidationFailed({field: f"Attach a {kinds}; this file is none of them."})
    return NewMedia(data, content_type, file_name.strip()[:200])


def _row(r: dict[str, Any]) -> MediaView:
    return MediaView(
        r["id"], r["account_id"], r["sha256"], r["content_type"], r["size"], r["file_name"]
    )


async def store_media(account_id: int, media: NewMedia) -> MediaView:
    """Keep the bytes once (by hash) and the account's reference to them; the same file
    stored twice by one account is one item. Joins the open transaction."""
    digest = media.sha256
    async with transaction():
        await run_sql(
            "INSERT INTO media_blob (sha256, content_type, size, data, created_at) "
            "VALUES ({}, {}, {}, {}, CURRENT_TIMESTAMP) ON CONFLICT (sha256) DO NOTHING",
            digest,
            media.content_type,
            media.size,
            media.data,
        )
        await run_sql(
            "INSERT INTO media_item (account_id, owner_key, sha256, content_type, size, "
            "file_name, created_at) VALUES ({}, {}, {}, {}, {}, {}, CURRENT_TIMESTAMP) "
            "ON CONFLICT (owner_key) DO NOTHING",
            account_id,
            f"{account_id}:{digest}",
            digest,
            media.content_type,
            media.size,
            media.file_name,
        )
        rows = await MediaItem.select().where(MediaItem.owner_key == f"{account_id}:{digest}")
    return _row(rows[0])


async def owned_media(
    account_id: int, ids: Sequence[int], *, field: str = "media"
) -> list[MediaView]:
    """The account's media items in the order given; another account's id is not found."""
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not wanted:
        return []
    rows = await run_sql(
        f"SELECT * FROM media_item WHERE account_id = {{}} AND id IN ({placeholders(len(wanted))})",  # noqa: S608 (only placeholders are formatted in)
        account_id,
        *wanted,
    )
    found = {r["id"]: _row(r) for r in rows}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ValidationFailed({field: f"No such media: {', '.join(map(str, missing))}."})
    return [found[i] for i in wanted]


async def media_by_ids(ids: Sequence[int]) -> dict[int, MediaView]:
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return {}
    rows = await run_sql(
        f"SELECT * FROM media_item WHERE id IN ({placeholders(len(wanted))})",  # noqa: S608 (only placeholders are formatted in)
        *wanted,
    )
    return {r["id"]: _row(r) for r in rows}


async def media_content(media_id: int) -> tuple[str, bytes] | None:
    """The type and bytes of a media item (for the signed URL route)."""
    rows = await run_sql(
        "SELECT b.content_type, b.data FROM media_item i JOIN media_blob b ON b.sha256 = i.sha256 "
        "WHERE i.id = {}",
        media_id,
    )
    if not rows:
        return None
    return str(rows[0]["content_type"]), bytes(rows[0]["data"])


# --- signed URLs ------------------------------------------------------------------------


def _key() -> bytes:
    # Its own key, derived from SECRET_KEY, so a media token never doubles as anything else.
    material = secrets_box.key_material().encode()
    return hmac.new(material, _TOKEN_INFO, hashlib.sha256).digest()


def _signature(media_id: int, expires: int) -> str:
    mac = hmac.new(_key(), f"{media_id}.{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def media_token(media_id: int, ttl: int | None = None) -> str:
    seconds = get_settings().sending.media_url_ttl_seconds if ttl is None else ttl
    expires = int(time.time()) + seconds
    return f"{media_id}.{expires}.{_signature(media_id, expires)}"


def signed_url(media_id: int, ttl: int | None = None) -> str:
    base = get_settings().web.base_url.rstrip("/")
    return f"{base}/media/{media_token(media_id, ttl)}"


def verify_token(token: str) -> int | None:
    """The media id a token names, or None when it is malformed, tampered with or expired."""
    parts = token.split(".")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts[:2]):
        return None
    media_id, expires = int(parts[0]), int(parts[1])
    if not hmac.compare_digest(_signature(media_id, expires), parts[2]):
        return None
    if expires < time.time():
        return None
    return media_id


# --- the media of sends ---------------------------------------------------------------------


@dataclass(frozen=True)
class Attached:
    subject: str
    media: list[MediaView]


async def attach_to_batch(
    batch_id: int, account_id: int, media_ids: Sequence[int], subject: str
) -> None:
    await BatchMedia.insert(
        BatchMedia(
            batch_id=batch_id,
            account_id=account_id,
            subject=subject,
            media_ids=json.dumps(list(media_ids)),
        )
    )


async def media_of_batches(batch_ids: Sequence[int]) -> dict[int, Attached]:
    """The subject and media of each MMS batch among `batch_ids`."""
    wanted = sorted({b for b in batch_ids if b is not None})
    if not wanted:
        return {}
    rows = await run_sql(
        f"SELECT batch_id, subject, media_ids FROM batch_media WHERE batch_id IN ({placeholders(len(wanted))})",  # noqa: S608 (only placeholders are formatted in)
        *wanted,
    )
    ids_of = {r["batch_id"]: [int(i) for i in json.loads(r["media_ids"] or "[]")] for r in rows}
    views = await media_by_ids([i for ids in ids_of.values() for i in ids])
    return {
        r["batch_id"]: Attached(
            r["subject"], [views[i] for i in ids_of[r["batch_id"]] if i in views]
        )
        for r in rows
    }
