"""Logo files: recognise PNG, JPEG and SVG by their bytes, read their dimensions, and
rebuild SVG from an allowlist (refusing scripts, event handlers and external references).

Nothing here trusts a file name or a declared content type: the bytes decide.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import zlib
from dataclasses import dataclass
from xml.parsers import expat
from xml.sax.saxutils import escape, quoteattr

from tenants.errors import ValidationFailed

MAX_LOGO_BYTES = 256 * 1024
MAX_LOGO_PIXELS = 2000  # per side

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOT_AN_IMAGE = "The file is not a PNG, JPEG or SVG image."


@dataclass(frozen=True)
class LogoFile:
    """A logo that passed every check: the bytes to store and serve, and what they are."""

    content: bytes
    content_type: str
    width: int | None
    height: int | None

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def data_uri(self) -> str:
        return f"data:{self.content_type};base64,{base64.b64encode(self.content).decode()}"


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed({"logo": message})


def _check_dimensions(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise _refuse("The image has no width or height.")
    if width > MAX_LOGO_PIXELS or height > MAX_LOGO_PIXELS:
        raise _refuse(
            f"The logo is {width}×{height} pixels; the limit is "
            f"{MAX_LOGO_PIXELS}×{MAX_LOGO_PIXELS}."
        )


def inspect_logo(data: bytes) -> LogoFile:
    """Accept a PNG, JPEG or SVG logo, or raise ValidationFailed({"logo": reason})."""
    if not data:
        raise _refuse("The file is empty.")
    if len(data) > MAX_LOGO_BYTES:
        raise _refuse(
            f"The logo is {len(data) // 1024} KB; the limit is {MAX_LOGO_BYTES // 1024} KB."
        )
    if data.startswith(PNG_MAGIC):
        width, height = png_dimensions(data)
        return LogoFile(data, "image/png", width, height)
    if data.startswith(b"\xff\xd8\xff"):
        width, height = jpeg_dimensions(data)
        return LogoFile(data, "image/jpeg", width, height)
    if _looks_like_xml(data):
        return sanitise_svg(data)
    raise _refuse(NOT_AN_IMAGE)


# --- PNG -------------------------------------------------------------------------------

_PNG_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def png_dimensions(data: bytes) -> tuple[int, int]:
    """Walk every chunk (lengths and CRCs), then inflate the image data to prove it is whole.

    The dimensions are checked before inflating, so a small file cannot expand into an
    enormous buffer; the inflated bytes are counted, not kept.
    """
    broken = _refuse("The PNG file is damaged or truncated.")
    pos = len(PNG_MAGIC)
    header: tuple[int, ...] | None = None
    has_palette = False
    idat: list[bytes] = []
    while True:
        if pos + 12 > len(data):
            raise broken
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise broken
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : end])
        if zlib.crc32(kind + body) != crc:
            raise broken
        if header is None:
            if kind != b"IHDR" or length != 13:
                raise broken
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            has_palette = True
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos = end
    width, height, depth, colour, compression, filtering, interlace = header
    if (
        depth not in _PNG_DEPTHS.get(colour, set())
        or compression != 0
        or filtering != 0
        or interlace not in (0, 1)
        or (colour == 3 and not has_palette)
        or not idat
    ):
        raise broken
    _check_dimensions(width, height)
    bits = _PNG_CHANNELS[colour] * depth
    if interlace == 0:
        passes = [(width, height)]
    else:
        passes = [
            (_ceil_div(width - x0, dx), _ceil_div(height - y0, dy))
            for x0, y0, dx, dy in _ADAM7
            if width > x0 and height > y0
        ]
    expected = sum(h * (1 + _ceil_div(w * bits, 8)) for w, h in passes)
    _inflate_exactly(b"".join(idat), expected, broken)
    return width, height


def _inflate_exactly(stream: bytes, expected: int, broken: ValidationFailed) -> None:
    inflater = zlib.decompressobj()
    produced = 0
    pending = stream
    try:
        while pending and not inflater.eof:
            chunk = inflater.decompress(pending, 1 << 16)
            produced += len(chunk)
            if produced > expected:
                raise broken
            pending = inflater.unconsumed_tail
        produced += len(inflater.flush())
    except zlib.error:
        raise broken from None
    if not inflater.eof or produced != expected:
        raise broken


# --- JPEG ------------------------------------------------------------------------------

# Start-of-frame markers carry the dimensions (C4 DHT, C8 JPG and CC DAC are not frames).
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """Walk the marker segments up to the frame header; the scan must end with EOI."""
    broken = _refuse("The JPEG file is damaged or truncated.")
    pos = 2
    size: tuple[int, int] | None = None
    while pos < len(data):
        if data[pos] != 0xFF:
            raise broken
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1  # fill bytes
        if pos >= len(data):
            raise broken
        marker = data[pos]
        pos += 1
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue  # standalone markers carry no length
        if marker in (0xD8, 0xD9):
            raise broken
        if pos + 2 > len(data):
            raise broken
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2 or pos + length > len(data):
            raise broken
        if marker in _SOF_MARKERS:
            if length < 8:
                raise broken
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            size = (width, height)
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if size is None:
                raise broken
            if data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
                raise broken
            _check_dimensions(*size)
            return size
        pos += length
    raise broken


# --- SVG -------------------------------------------------------------------------------

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
# Editor bookkeeping (Inkscape, Sodipodi, RDF metadata) is dropped, not refused.
_DROPPED_NAMESPACES = {
    "http://www.inkscape.org/namespaces/inkscape",
    "http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "http://purl.org/dc/elements/1.1/",
    "http://creativecommons.org/ns#",
    "http://web.resource.org/cc/",
}
_ALLOWED_ELEMENTS = frozenset(
    {
        "svg", "g", "defs", "symbol", "use", "title", "desc", "path", "rect", "circle",
        "ellipse", "line", "polyline", "polygon", "text", "tspan", "textPath",
        "linearGradient", "radialGradient", "stop", "clipPath", "mask", "pattern", "marker",
        "style", "filter", "feBlend", "feColorMatrix", "feComponentTransfer", "feComposite",
        "feDropShadow", "feFlood", "feFuncA", "feFuncB", "feFuncG", "feFuncR",
        "feGaussianBlur", "feMerge", "feMergeNode", "feMorphology", "feOffset",
    }
)  # fmt: skip
_TEXT_ELEMENTS = frozenset({"title", "desc", "text", "tspan", "textPath", "style"})
_DROPPED_ELEMENTS = frozenset({"metadata"})
_NAMED_REFUSALS = {
    "script": "SVG logos may not contain scripts.",
    "foreignObject": "SVG logos may not contain foreignObject (embedded HTML).",
    "image": "SVG logos may not embed or link other images.",
    "a": "SVG logos may not contain links.",
}
_URL_RE = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)
_LENGTH_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(px)?\s*$")
_MAX_DEPTH = 64
_MAX_ELEMENTS = 10_000


def _looks_like_xml(data: bytes) -> bool:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<") or data.startswith((b"\xff\xfe", b"\xfe\xff"))


def _squash(value: str) -> str:
    """What a browser would see as a URL scheme: no whitespace or control characters."""
    return "".join(ch for ch in value if ch > " ").lower()


def _check_css(text: str) -> None:
    squashed = _squash(text)
    if "javascript:" in squashed or "expression(" in squashed:
        raise _refuse("SVG logos may not contain javascript: URLs or script in styles.")
    if "@import" in squashed:
        raise _refuse("SVG logos may not reference external resources (@import).")
    for _, target in _URL_RE.findall(text):
        if not target.strip().startswith("#"):
            raise _refuse(
                f"SVG logos may not reference external resources ({target.strip()[:60]})."
            )


class _SvgRebuilder:
    """Re-serialises the parsed SVG from allowlisted parts; refuses anything dangerous."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.stack: list[str] = []  # local names of open, kept elements
        self.skipping = 0  # depth inside a dropped subtree
        self.elements = 0
        self.root_attrs: dict[str, str] | None = None

    def start(self, name: str, attrs: dict[str, str]) -> None:
        self.elements += 1
        if self.elements > _MAX_ELEMENTS or len(self.stack) + self.skipping > _MAX_DEPTH:
            raise _refuse("The SVG file is too complex.")
        ns, _, local = name.rpartition(" ")
        if self.skipping:
            self.skipping += 1
            return
        if local in _NAMED_REFUSALS:
            raise _refuse(_NAMED_REFUSALS[local])
        if ns in _DROPPED_NAMESPACES or (ns == SVG_NS and local in _DROPPED_ELEMENTS):
            if not self.stack:
                raise _refuse(NOT_AN_IMAGE)
            self.skipping = 1
            return
        if ns != SVG_NS:
            if not self.stack:
                raise _refuse(NOT_AN_IMAGE)
            raise _refuse(f"SVG logos may not contain <{local}> elements.")
        if not self.stack and local != "svg":
            raise _refuse(NOT_AN_IMAGE)
        if local not in _ALLOWED_ELEMENTS:
            raise _refuse(f"SVG logos may not contain <{local}> elements.")
        kept = self._attributes(attrs)
        if not self.stack:
            self.root_attrs = kept
            kept = {
                "xmlns": SVG_NS,
                "xmlns:xlink": XLINK_NS,
                **{k: v for k, v in kept.items() if not k.startswith("xmlns")},
            }
        rendered = "".join(f" {k}={quoteattr(v)}" for k, v in kept.items())
        self.out.append(f"<{local}{rendered}>")
        self.stack.append(local)

    def _attributes(self, attrs: dict[str, str]) -> dict[str, str]:
        kept: dict[str, str] = {}
        for name, value in attrs.items():
            ns, _, local = name.rpartition(" ")
            if local.lower().startswith("on"):
                raise _refuse(f"SVG logos may not contain event handler attributes ({local}).")
            squashed = _squash(value)
            if "javascript:" in squashed or "vbscript:" in squashed:
                raise _refuse("SVG logos may not contain javascript: URLs.")
            if local == "href" and ns in ("", XLINK_NS):
                if not value.strip().startswith("#"):
                    raise _refuse(
                        f"SVG logos may not reference external resources ({value.strip()[:60]})."
                    )
                kept["xlink:href" if ns else "href"] = value
                continue
            if ns == XML_NS and local in ("space", "lang"):
                kept[f"xml:{local}"] = value
                continue
            if ns:
                continue  # editor attributes (inkscape:label, sodipodi:...) carry nothing
            if "url(" in squashed or "@import" in squashed or "expression(" in squashed:
                _check_css(value)
            kept[local] = value
        return kept

    def end(self, name: str) -> None:
        if self.skipping:
            self.skipping -= 1
            return
        self.out.append(f"</{self.stack.pop()}>")

    def text(self, data: str) -> None:
        if self.skipping or not self.stack:
            return
        if self.stack[-1] == "style":
            _check_css(data)
        if self.stack[-1] in _TEXT_ELEMENTS or not data.strip():
            self.out.append(escape(data))


def _refuse_declaration(what: str):  # type: ignore[no-untyped-def]
    def handler(*_args: object) -> None:
        raise _refuse(f"SVG logos may not contain {what}.")

    return handler


def sanitise_svg(data: bytes) -> LogoFile:
    """Parse without DTDs or entities and rebuild the document from the allowlist."""
    rebuilder = _SvgRebuilder()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    # A DOCTYPE can declare entities (billion laughs, external files): none are needed.
    parser.StartDoctypeDeclHandler = _refuse_declaration("a DOCTYPE declaration")
    parser.EntityDeclHandler = _refuse_declaration("entity declarations")
    parser.ExternalEntityRefHandler = _refuse_declaration("external entities")
    parser.ProcessingInstructionHandler = _refuse_declaration("processing instructions")
    parser.StartElementHandler = rebuilder.start
    parser.EndElementHandler = rebuilder.end
    parser.CharacterDataHandler = rebuilder.text
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except expat.ExpatError:
        raise _refuse(NOT_AN_IMAGE) from None
    if rebuilder.root_attrs is None:
        raise _refuse(NOT_AN_IMAGE)
    width, height = _svg_size(rebuilder.root_attrs)
    content = "".join(rebuilder.out).encode()
    return LogoFile(content, "image/svg+xml", width, height)


def _svg_size(attrs: dict[str, str]) -> tuple[int | None, int | None]:
    """Pixel size from width/height, else from the viewBox; relative units give no size."""
    sizes: list[float | None] = []
    for key in ("width", "height"):
        match = _LENGTH_RE.match(attrs.get(key, ""))
        sizes.append(float(match.group(1)) if match else None)
    box = attrs.get("viewBox", "").replace(",", " ").split()
    if len(box) == 4:
        try:
            box_w, box_h = float(box[2]), float(box[3])
        except ValueError:
            raise _refuse("The SVG viewBox is not four numbers.") from None
        sizes = [
            sizes[0] if sizes[0] is not None else box_w,
            sizes[1] if sizes[1] is not None else box_h,
        ]
    width = round(sizes[0]) if sizes[0] is not None else None
    height = round(sizes[1]) if sizes[1] is not None else None
    if width is not None and height is not None:
        _check_dimensions(max(width, 1), max(height, 1))
    return width, height
