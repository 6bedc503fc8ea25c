"""Logo files: PNG, JPEG and SVG recognised by their bytes, limits, SVG sanitising."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenants.branding.logos import inspect_logo
from tenants.demo import northwind_logo_png, png_bytes
from tenants.errors import ValidationFailed

# A 12×5 baseline JPEG drawn by Chromium's canvas encoder.
JPEG_12X5 = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEUAAQEAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRiWFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAAADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBhcmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADb/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxOUlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT0//wAARCAAFAAwDASIAAhEBAxEB/8QAFgABAQEAAAAAAAAAAAAAAAAAAAQF/8QAHRAAAQQCAwAAAAAAAAAAAAAAAwACBBEBIRIxQf/EABQBAQAAAAAAAAAAAAAAAAAAAAX/xAAZEQEBAAMBAAAAAAAAAAAAAAACAQADQTH/2gAMAwEAAhEDEQA/AMeNMAGEUBIYykffErqtt4rWvO1GiJYaiLUe+4UnVJLzP//Z"
)


def solid(width: int, height: int) -> bytes:
    return png_bytes(width, height, lambda x, y: (11, 83, 148, 255))


def refusal(data: bytes) -> str:
    with pytest.raises(ValidationFailed) as caught:
        inspect_logo(data)
    assert set(caught.value.errors) == {"logo"}
    return caught.value.errors["logo"]


def interlaced_png(width: int, height: int) -> bytes:
    """An Adam7-interlaced RGB PNG (the encoder in demo.py writes only non-interlaced)."""
    passes = (
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    )
    raw = b""
    for x0, y0, dx, dy in passes:
        cols = range(x0, width, dx)
        for _ in range(y0, height, dy):
            if cols:
                raw += b"\x00" + b"\x10\x20\x30" * len(cols)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_png_dimensions_are_read_from_the_file():
    logo = inspect_logo(solid(40, 12))
    assert (logo.content_type, logo.width, logo.height) == ("image/png", 40, 12)
    assert inspect_logo(northwind_logo_png()).width == 64


def test_interlaced_png_is_accepted():
    logo = inspect_logo(interlaced_png(13, 7))
    assert (logo.width, logo.height) == (13, 7)


def test_jpeg_dimensions_are_read_from_the_frame_header():
    logo = inspect_logo(JPEG_12X5)
    assert (logo.content_type, logo.width, logo.height) == ("image/jpeg", 12, 5)


def test_a_text_file_is_not_an_image():
    assert refusal(b"hello, this is not a picture") == "The file is not a PNG, JPEG or SVG image."
    assert "not a PNG, JPEG or SVG" in refusal(b"GIF89a\x01\x00\x01\x00")
    assert "not a PNG, JPEG or SVG" in refusal(b"<html><body>hi</body></html>")


def test_a_png_named_file_with_damaged_bytes_is_refused():
    data = bytearray(solid(8, 8))
    data[40] ^= 0xFF  # inside IDAT: the chunk CRC no longer matches
    assert "damaged or truncated" in refusal(bytes(data))
    assert "damaged or truncated" in refusal(solid(8, 8)[:-20])
    assert "damaged or truncated" in refusal(JPEG_12X5[:-30])


def test_too_large_a_file_is_refused_with_the_limit():
    big = b"\x89PNG\r\n\x1a\n" + bytes(300 * 1024)
    assert refusal(big) == "The logo is 300 KB; the limit is 256 KB."


def test_too_many_pixels_is_refused():
    assert refusal(solid(2001, 1)) == "The logo is 2001×1 pixels; the limit is 2000×2000."
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 5000 100"/>'
    assert "5000×100" in refusal(svg)


@pytest.mark.parametrize(
    ("svg", "message"),
    [
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "may not contain scripts",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
            "event handler attributes (onload)",
        ),
        ('<svg xmlns="http://www.w3.org/2000/svg"><rect ONCLICK="x()"/></svg>', "event handler"),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject></svg>',
            "foreignObject",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><use xlink:href="https://evil.test/a.svg#x"/></svg>',
            "external resources",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><use href=" java&#10;script:alert(1)"/></svg>',
            "javascript:",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill: url(https://evil.test/p)"/></svg>',
            "external resources",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(x.css);</style></svg>',
            "@import",
        ),
        (
            '<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>',
            "DOCTYPE",
        ),
        (
            '<svg xmlns="http://www.w3.org/2000/svg"><animate attributeName="href" to="#x"/></svg>',
            "<animate>",
        ),
        (
            '<?xml-stylesheet href="x.css"?><svg xmlns="http://www.w3.org/2000/svg"/>',
            "processing instructions",
        ),
    ],
)
def test_dangerous_svg_is_refused_with_a_clear_message(svg, message):
    assert message in refusal(svg.encode())


def test_svg_is_rebuilt_without_editor_clutter_and_keeps_its_drawing():
    svg = b"""<?xml version="1.0" encoding="UTF-8"?>
<!-- made with an editor -->
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"
     xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd"
     width="120" height="40" viewBox="0 0 120 40" inkscape:version="1.3">
  <sodipodi:namedview pagecolor="#fff"/>
  <metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></metadata>
  <defs><linearGradient id="g"><stop offset="0" stop-color="#0b5394"/></linearGradient></defs>
  <rect width="120" height="40" fill="url(#g)" inkscape:label="bg"/>
  <use xlink:href="#g"/>
  <text x="4" y="28" style="font: bold 20px sans-serif">Acme &amp; Co</text>
</svg>"""
    logo = inspect_logo(svg)
    text = logo.content.decode()
    assert (logo.content_type, logo.width, logo.height) == ("image/svg+xml", 120, 40)
    assert "sodipodi" not in text and "inkscape" not in text and "metadata" not in text
    assert 'fill="url(#g)"' in text and 'xlink:href="#g"' in text
    assert "Acme &amp; Co" in text
    # What is stored parses again to the same thing: the output is itself a clean logo.
    assert inspect_logo(logo.content).content == logo.content


@settings(max_examples=150, deadline=None)
@given(
    st.binary(max_size=600), st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"<svg "])
)
def test_arbitrary_bytes_are_accepted_or_refused_never_crash(tail, prefix):
    try:
        logo = inspect_logo(prefix + tail)
    except ValidationFailed as exc:
        assert set(exc.errors) == {"logo"}
    else:
        assert logo.content_type in ("image/png", "image/jpeg", "image/svg+xml")
