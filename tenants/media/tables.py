"""Tables of media: rows only; this module imports only other tables and db."""

from __future__ import annotations

from piccolo.columns import Bytea, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class MediaBlob(Table, tablename="media_blob"):
    """The bytes of one file, stored once whoever uploads it (keyed by its SHA-256)."""

    id: Serial
    sha256 = Varchar(length=64, unique=True)
    content_type = Varchar(length=80)
    size = Integer()
    data = Bytea()
    created_at = Timestamptz(default=TimestamptzNow())


class MediaItem(Table, tablename="media_item"):
    """An account's reference to a stored file: what its messages attach and its pages show."""

    id: Serial
    account_id = Integer(index=True)
    # "<account_id>:<sha256>": one item per file per account, however often it is uploaded.
    owner_key = Varchar(length=80, unique=True)
    sha256 = Varchar(length=64, index=True)
    content_type = Varchar(length=80)
    size = Integer()
    file_name = Varchar(length=200, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class BatchMedia(Table, tablename="batch_media"):
    """The media and subject of an MMS send: every message of the batch carries them."""

    id: Serial
    batch_id = Integer(unique=True)
    account_id = Integer(index=True)
    subject = Varchar(length=80, default="")
    media_ids = Text(default="[]")  # MediaItem ids in order (JSON list)
