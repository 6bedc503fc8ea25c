"""/media/{token}: a stored file by its expiring signed token, for providers fetching MMS
media and for pages showing it. No session: the token is the permission; a bad, tampered
or expired token is a 404, like a file that never existed."""

from __future__ import annotations

from litestar import Response, get
from litestar.params import FromPath

from tenants.errors import NotFound
from tenants.media import store

# A stored file is data, never a page: no scripts, no plugins, no frames, even for PDF.
MEDIA_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"


@get("/media/{token:str}", opt={"public": True}, name="media_file", include_in_schema=False)
async def media_file(token: FromPath[str]) -> Response[bytes]:
    media_id = store.verify_token(token)
    found = await store.media_content(media_id) if media_id is not None else None
    if found is None:
        raise NotFound("media not found")
    content_type, data = found
    disposition = "inline" if content_type.startswith(("image/", "video/")) else "attachment"
    return Response(
        content=data,
        media_type=content_type,
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": MEDIA_CSP,
            "Cache-Control": "private, max-age=3600",
            "Content-Disposition": disposition,
        },
    )
