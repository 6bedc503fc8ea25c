"""/favicon.ico: browsers ask for it at the root of every site, whatever the page links."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get

FAVICON = Path(__file__).resolve().parents[2] / "ui" / "static" / "favicon.ico"


@get("/favicon.ico", opt={"public": True}, name="favicon", include_in_schema=False)
async def favicon() -> Response[bytes]:
    return Response(
        content=FAVICON.read_bytes(),
        media_type="image/vnd.microsoft.icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )
