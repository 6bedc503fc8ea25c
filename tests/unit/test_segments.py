"""Segment counting: table-driven boundaries, properties, and a differential test vs smsutil.

Where smsutil 1.1.3 (`smsutil.split`) disagrees with our billing rules, each verified
by running it (see test_smsutil_known_differences, which pins every example below):

1. Empty text: `is_valid_gsm` matches `^[...]+$`, which needs one character, so ""
   falls through to `unicode_split` and comes back as 1 part, encoding utf_16_be.
   We count 0 segments, GSM-7.
2. ESC: smsutil's GSM_BASIC_CHARSET contains "\\x1b", so "Hi\\x1b" is GSM-7 at 1 septet
   per ESC. A raw 0x1B is the escape to the extension table (the handset pairs it with
   the next septet), so it cannot be sent as itself; we count the text as UCS-2.
3. Grapheme clusters: `unicode_split` cuts between any two code points, so it tears
   multi-code-point characters apart at the 67-unit boundary and under-counts:
   "ê"*64 + "🇦🇺" + "ê"*64 -> smsutil 2 parts, the first ending in a lone "🇦";
   "ê"*60 + "👨‍👩‍👧" + "ê"*60 -> smsutil 2 parts (family cut after "👨‍👩‍"); and
   "ê"*66 + "e\\u0301" + "ê"*66 -> 2 parts (accent orphaned). We count 3 for each.
4. Surrogate pairs stored as two code points (e.g. text decoded with "surrogatepass"):
   `unicode_split` only knows astral code points (ord >= 0x10000), so "\\ud83d\\ude00"
   is two 2-byte characters and "ê"*66 + "\\ud83d\\ude00" + "ê"*66 is cut inside the pair
   (2 parts); we keep the pair whole (3 segments).

Verified correct in smsutil, hence the differential domain: GSM-7 text (escape pairs
are moved whole at every 153-septet boundary: "a"*152 + "€" + "a"*10 -> parts of 152 and
12 septets), and UCS-2 text whose grapheme clusters are single code points, including
astral characters (a proper astral code point at the 67-unit boundary moves whole).
`Part.length` counts code points rather than user-perceived characters, but that does
not affect segments.
"""

from __future__ import annotations

import pytest
import smsutil
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenants.templates.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM_LOOKALIKES,
    SegmentCount,
    count_segments,
    grapheme_clusters,
    replace_lookalikes,
    ucs2_characters,
)

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧: 8 UTF-16 units
FLAG_AU = "\U0001f1e6\U0001f1fa"  # 🇦🇺: two regional indicators, 4 units
THUMBS_MEDIUM = "\U0001f44d\U0001f3fd"  # 👍🏽: 4 units
KEYCAP_ONE = "1\ufe0f\u20e3"  # 1️⃣: 3 units
GRIN = "\U0001f600"  # 😀: one astral code point, 2 units
E_COMBINING = "e\u0301"  # é written as e + combining acute: 2 units


def gsm(characters: int, units: int, segments: int, remaining: int, per: int) -> SegmentCount:
    return SegmentCount("GSM-7", characters, units, segments, remaining, per)


def ucs(characters: int, units: int, segments: int, remaining: int, per: int) -> SegmentCount:
    return SegmentCount("UCS-2", characters, units, segments, remaining, per)


CASES = [
    pytest.param("", gsm(0, 0, 0, 160, 160), id="empty"),
    pytest.param("a", gsm(1, 1, 1, 159, 160), id="one-char"),
    pytest.param("a" * 160, gsm(160, 160, 1, 0, 160), id="gsm-160"),
    pytest.param("a" * 161, gsm(161, 161, 2, 145, 153), id="gsm-161"),
    pytest.param("a" * 306, gsm(306, 306, 2, 0, 153), id="gsm-306"),
    pytest.param("a" * 307, gsm(307, 307, 3, 152, 153), id="gsm-307"),
    *[
        pytest.param("a" * n, gsm(n, n, segments, remaining, 153), id=f"gsm-{n}")
        for k in (3, 4, 5)
        for n, segments, remaining in (
            (153 * k - 1, k, 1),
            (153 * k, k, 0),
            (153 * k + 1, k + 1, 152),
        )
    ],
    # Extension characters: 2 septets, and the escape pair never straddles segments.
    pytest.param("€", gsm(1, 2, 1, 158, 160), id="euro-only"),
    pytest.param("€" * 80, gsm(80, 160, 1, 0, 160), id="euro-80-single"),
    pytest.param("€" * 81, gsm(81, 162, 2, 143, 153), id="euro-81-76-per-segment"),
    pytest.param("a" * 158 + "€", gsm(159, 160, 1, 0, 160), id="euro-fills-160"),
    pytest.param("a" * 159 + "€", gsm(160, 161, 2, 145, 153), id="euro-tips-to-2"),
    pytest.param("a" * 151 + "€" + "a" * 10, gsm(162, 163, 2, 143, 153), id="euro-ends-seg1"),
    pytest.param("a" * 152 + "€" + "a" * 10, gsm(163, 164, 2, 141, 153), id="euro-moves-seg2"),
    pytest.param("a" * 152 + "{" + "a" * 10, gsm(163, 164, 2, 141, 153), id="brace-moves-seg2"),
    pytest.param("a" * 153 + "€" + "a" * 10, gsm(164, 165, 2, 141, 153), id="euro-starts-seg2"),
    pytest.param("a" * 304 + "€", gsm(305, 306, 2, 0, 153), id="euro-ends-seg2"),
    pytest.param("a" * 305 + "€", gsm(306, 307, 3, 151, 153), id="euro-moves-seg3"),
    pytest.param("a" * 457 + "€", gsm(458, 459, 3, 0, 153), id="euro-ends-seg3"),
    pytest.param("a" * 458 + "\\", gsm(459, 460, 4, 151, 153), id="backslash-moves-seg4"),
    pytest.param("a" * 611 + "|", gsm(612, 613, 5, 151, 153), id="pipe-moves-seg5"),
    # GSM splits septets, not clusters: CR and LF may land in different segments.
    pytest.param("a" * 152 + "\r\n" + "a" * 10, gsm(163, 164, 2, 142, 153), id="crlf-gsm"),
    pytest.param("a\r\nb", gsm(3, 4, 1, 156, 160), id="crlf-one-character"),
    # é is in the GSM basic set; ê is not and drags the whole message to UCS-2.
    pytest.param("Café ok", gsm(7, 7, 1, 153, 160), id="e-acute-is-gsm"),
    pytest.param("Crêpe ok", ucs(8, 8, 1, 62, 70), id="e-circumflex-is-ucs2"),
    pytest.param("a" * 159 + "é", gsm(160, 160, 1, 0, 160), id="gsm-with-e-acute"),
    pytest.param("a" * 159 + "ê", ucs(160, 160, 3, 41, 67), id="gsm-with-e-circumflex"),
    pytest.param("\x1b", ucs(1, 1, 1, 69, 70), id="escape-is-not-gsm"),
    # UCS-2 boundaries.
    pytest.param("ê" * 70, ucs(70, 70, 1, 0, 70), id="ucs2-70"),
    pytest.param("ê" * 71, ucs(71, 71, 2, 63, 67), id="ucs2-71"),
    pytest.param("ê" * 134, ucs(134, 134, 2, 0, 67), id="ucs2-134"),
    pytest.param("ê" * 135, ucs(135, 135, 3, 66, 67), id="ucs2-135"),
    pytest.param("€" * 69 + "ê", ucs(70, 70, 1, 0, 70), id="euro-is-one-unit-in-ucs2"),
    # Astral characters: 2 units, never split.
    pytest.param(GRIN, ucs(1, 2, 1, 68, 70), id="emoji-alone"),
    pytest.param("ê" * 68 + GRIN, ucs(69, 70, 1, 0, 70), id="emoji-fills-70"),
    pytest.param("ê" * 69 + GRIN, ucs(70, 71, 2, 63, 67), id="emoji-tips-to-2"),
    pytest.param("ê" * 65 + GRIN + "ê" * 10, ucs(76, 77, 2, 57, 67), id="emoji-ends-seg1"),
    pytest.param("ê" * 66 + GRIN + "ê" * 10, ucs(77, 78, 2, 55, 67), id="emoji-straddles-67"),
    pytest.param("ê" * 133 + GRIN, ucs(134, 135, 3, 65, 67), id="emoji-straddles-134"),
    pytest.param(
        "ê" * 66 + "\ud83d\ude00" + "ê" * 10, ucs(77, 78, 2, 55, 67), id="lone-surrogate-pair"
    ),
    # Multi-code-point grapheme clusters move whole.
    pytest.param(FAMILY, ucs(1, 8, 1, 62, 70), id="family-alone"),
    pytest.param("ê" * 59 + FAMILY + "ê" * 10, ucs(70, 77, 2, 57, 67), id="family-ends-seg1"),
    pytest.param("ê" * 60 + FAMILY + "ê" * 10, ucs(71, 78, 2, 49, 67), id="family-straddles"),
    pytest.param("ê" * 60 + FAMILY + "ê" * 60, ucs(121, 128, 3, 66, 67), id="family-adds-seg"),
    pytest.param("ê" * 63 + FLAG_AU + "ê" * 10, ucs(74, 77, 2, 57, 67), id="flag-ends-seg1"),
    pytest.param("ê" * 65 + FLAG_AU + "ê" * 10, ucs(76, 79, 2, 53, 67), id="flag-straddles"),
    pytest.param("ê" * 64 + FLAG_AU + "ê" * 64, ucs(129, 132, 3, 66, 67), id="flag-adds-seg"),
    pytest.param(
        "ê" * 64 + THUMBS_MEDIUM + "ê" * 10, ucs(75, 78, 2, 53, 67), id="skin-tone-straddles"
    ),
    pytest.param("ê" * 65 + KEYCAP_ONE + "ê" * 10, ucs(76, 78, 2, 54, 67), id="keycap-straddles"),
    pytest.param(
        "ê" * 66 + E_COMBINING + "ê" * 10, ucs(77, 78, 2, 55, 67), id="combining-straddles"
    ),
    pytest.param("ê" * 66 + "\r\n" + "ê" * 10, ucs(77, 78, 2, 55, 67), id="crlf-ucs2-straddles"),
    # A cluster longer than a segment is cut between code points, never in a pair.
    pytest.param("a" + "\u0301" * 100, ucs(1, 101, 2, 33, 67), id="huge-cluster"),
    pytest.param("ê" * 10 + "a" + "\u0301" * 100, ucs(11, 111, 2, 23, 67), id="huge-cluster-fills"),
    pytest.param("\U0001f44d" + "\U0001f3fd" * 40, ucs(1, 82, 2, 51, 67), id="huge-astral"),
    pytest.param(
        "ê" * 2 + "\U0001f44d" + "\U0001f3fd" * 40, ucs(3, 84, 2, 49, 67), id="huge-astral-pair"
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_count_segments(text: str, expected: SegmentCount) -> None:
    assert count_segments(text) == expected


@pytest.mark.parametrize(
    ("text", "characters"),
    [
        (GRIN, 1),
        (FAMILY, 1),
        (FLAG_AU, 1),
        (FLAG_AU + FLAG_AU[0], 2),  # an odd regional indicator stands alone
        (THUMBS_MEDIUM, 1),
        (KEYCAP_ONE, 1),
        (E_COMBINING, 1),
        ("\u2764\ufe0f", 1),  # ❤️ heart with emoji presentation selector
        ("\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", 1),  # 🏴 tag
        ("\u1100\u1161\u11a8", 1),  # Hangul jamo L V T
        ("한국어", 3),
        ("Hi 👋🏽 " + FAMILY + "!", 7),
        ("\r\n", 1),
        ("\n\u0301", 2),  # a mark cannot attach to a control
    ],
)
def test_characters_are_grapheme_clusters(text: str, characters: int) -> None:
    assert count_segments(text).characters == characters
    assert "".join(grapheme_clusters(text)) == text


def test_gsm_alphabet_sizes() -> None:
    # 128 positions in the default alphabet minus ESC; 10 characters behind ESC.
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("Plain GSM text: é à € {braces} [ok] ~ \\ | ^", []),
        ("Crêpe ê and ✓ then ê again", ["ê", "✓"]),
        ("Hi " + FAMILY + " and " + GRIN + " " + FAMILY, [FAMILY, GRIN]),
        ("Cafe" + E_COMBINING[1:] + " vs " + E_COMBINING, ["e\u0301"]),
        ("“quoted”", ["“", "”"]),
        ("esc\x1b", ["\x1b"]),
    ],
)
def test_ucs2_characters(text: str, expected: list[str]) -> None:
    assert ucs2_characters(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("“Hello” ‘world’", "\"Hello\" 'world'"),
        ("It’s 5–10 mins — ok…", "It's 5-10 mins - ok..."),
        ("50\u00a0km\u2009away", "50 km away"),
        ("• one\n• two", "- one\n- two"),
        ("soft\u00adhyphen\u200b", "softhyphen"),
        ("Plain text stays", "Plain text stays"),
    ],
)
def test_replace_lookalikes(text: str, expected: str) -> None:
    assert replace_lookalikes(text) == expected


def test_replace_lookalikes_turns_smart_quotes_message_into_gsm() -> None:
    text = "We’re open “late” tonight – see you… " * 3
    before, after = count_segments(text), count_segments(replace_lookalikes(text))
    assert before.encoding == "UCS-2"
    assert after.encoding == "GSM-7"
    assert after.segments < before.segments


def test_lookalikes_map_non_gsm_to_gsm() -> None:
    for source, replacement in GSM_LOOKALIKES.items():
        assert len(source) == 1
        assert source not in GSM7_BASIC | GSM7_EXTENSION, source
        assert set(replacement) <= GSM7_BASIC | GSM7_EXTENSION, source


# --- smsutil -------------------------------------------------------------------------


def smsutil_count(text: str) -> tuple[str, int, int, int]:
    """(encoding, units, segments, units used in the last segment) as smsutil sees them."""
    result = smsutil.split(text)
    width = 1 if result.encoding == "gsm0338" else 2  # smsutil counts UCS-2 in bytes
    encoding = "GSM-7" if result.encoding == "gsm0338" else "UCS-2"
    last = result.parts[-1].bytes // width
    return encoding, result.total_bytes // width, len(result.parts), last


def our_count(text: str) -> tuple[str, int, int, int]:
    count = count_segments(text)
    return count.encoding, count.units, count.segments, count.per_segment - count.remaining


def test_smsutil_alphabet_is_ours_plus_escape() -> None:
    assert set(smsutil.codecs.GSM_CHARSET) == GSM7_BASIC | GSM7_EXTENSION | {"\x1b"}


@pytest.mark.parametrize(
    ("text", "smsutil_says", "we_say"),
    [
        pytest.param("", ("UCS-2", 0, 1, 0), ("GSM-7", 0, 0, 0), id="empty"),
        pytest.param("Hi\x1b", ("GSM-7", 3, 1, 3), ("UCS-2", 3, 1, 3), id="escape"),
        pytest.param(
            "ê" * 64 + FLAG_AU + "ê" * 64, ("UCS-2", 132, 2, 66), ("UCS-2", 132, 3, 1), id="flag"
        ),
        pytest.param(
            "ê" * 60 + FAMILY + "ê" * 60, ("UCS-2", 128, 2, 62), ("UCS-2", 128, 3, 1), id="family"
        ),
        pytest.param(
            "ê" * 66 + E_COMBINING + "ê" * 66,
            ("UCS-2", 134, 2, 67),
            ("UCS-2", 134, 3, 1),
            id="combining",
        ),
        pytest.param(
            "ê" * 66 + "\ud83d\ude00" + "ê" * 66,
            ("UCS-2", 134, 2, 67),
            ("UCS-2", 134, 3, 1),
            id="lone-surrogates",
        ),
    ],
)
def test_smsutil_known_differences(
    text: str, smsutil_says: tuple[str, int, int, int], we_say: tuple[str, int, int, int]
) -> None:
    # Pins the module docstring: if smsutil changes, the documented list must too.
    assert smsutil_count(text) == smsutil_says
    assert our_count(text) == we_say


def test_smsutil_tears_flag_apart() -> None:
    parts = smsutil.split("ê" * 64 + FLAG_AU + "ê" * 64).parts
    assert parts[0].content.endswith(FLAG_AU[0])
    assert parts[1].content.startswith(FLAG_AU[1])


@pytest.mark.parametrize(
    "text",
    ["a" * 152 + "€" + "a" * 10, "a" * 305 + "€", "ê" * 66 + GRIN + "ê" * 66, "ê" * 133 + GRIN],
    ids=["euro-seg2", "euro-seg3", "emoji-seg2", "emoji-seg3"],
)
def test_smsutil_agrees_on_boundaries_it_handles(text: str) -> None:
    assert smsutil_count(text) == our_count(text)


def test_matches_smsutil_sweeping_every_boundary_position() -> None:
    # Random generation rarely puts an escape pair or a surrogate pair exactly on a
    # boundary, so sweep every head length around the first boundaries deterministically.
    for edge in (153, 160, 306, 459, 612):
        for n in range(edge - 8, edge + 3):
            for tail in ("€", "a€", "€€", "€a€", "\\]" * 3, "a" * 10 + "€"):
                text = "a" * n + tail
                assert our_count(text) == smsutil_count(text), (n, tail)
    for edge in (67, 70, 134, 201, 268):
        for n in range(edge - 6, edge + 3):
            for tail in (GRIN, "ê" + GRIN, GRIN * 2, GRIN + "ê" + GRIN, "ê" * 5 + GRIN):
                text = "ê" * n + tail
                assert our_count(text) == smsutil_count(text), (n, tail)


GSM_ALPHABET = sorted(GSM7_BASIC | GSM7_EXTENSION)
GSM_BASIC_ALPHABET = sorted(GSM7_BASIC)
EXTENSION_ALPHABET = sorted(GSM7_EXTENSION)


def near_boundaries(per_segment: int, segments: int) -> st.SearchStrategy[int]:
    """Lengths just short of each concatenation boundary, where off-by-one bugs live."""
    edges = [per_segment * k for k in range(1, segments + 1)]
    return st.sampled_from(edges).flatmap(lambda edge: st.integers(edge - 4, edge))


@st.composite
def gsm_texts(draw: st.DrawFn) -> str:
    # A long cheap head stops just short of a boundary; about a third of the random
    # tail is extension characters, so escape pairs land on every offset around it.
    # (A list, not st.text: text() flattens the weighted alphabet to a plain set and
    # the extension share drops to about 7%.)
    length = draw(near_boundaries(153, 4) | st.integers(0, 800))
    head = draw(st.sampled_from(GSM_BASIC_ALPHABET)) * length
    tail_chars = st.sampled_from(EXTENSION_ALPHABET * 6 + GSM_BASIC_ALPHABET)
    tail = "".join(draw(st.lists(tail_chars, min_size=8, max_size=28)))
    text = head + tail
    return text or "a"  # smsutil mislabels "" (documented above)


def _single_code_point_cluster(char: str) -> bool:
    """Excludes everything that can join its neighbour into a multi-code-point cluster."""
    cp = ord(char)
    return not (
        char in "\r\x1b\u200c\u200d"
        or 0x1F1E6 <= cp <= 0x1F1FF  # regional indicators
        or 0x1F3FB <= cp <= 0x1F3FF  # skin-tone modifiers
        or 0xE0000 <= cp <= 0xE007F  # tags
        or 0x1100 <= cp <= 0x11FF  # Hangul conjoining jamo
        or 0xA960 <= cp <= 0xA97F
        or 0xD7B0 <= cp <= 0xD7FF
    )


simple_bmp_chars = st.characters(
    max_codepoint=0xFFFF, exclude_categories=("Cs", "Mn", "Mc", "Me")
).filter(_single_code_point_cluster)
simple_astral_chars = st.characters(
    min_codepoint=0x10000, exclude_categories=("Cs", "Mn", "Mc", "Me")
).filter(_single_code_point_cluster)
non_gsm_chars = simple_bmp_chars.filter(lambda c: c not in GSM7_BASIC | GSM7_EXTENSION)


@st.composite
def simple_ucs2_texts(draw: st.DrawFn) -> str:
    length = draw(near_boundaries(67, 3) | st.integers(60, 72) | st.just(0))
    head = draw(non_gsm_chars) * length
    tail = "".join(draw(st.lists(simple_astral_chars | simple_bmp_chars, max_size=28)))
    # One non-GSM character anywhere forces UCS-2 for the whole text.
    text = head + tail
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(non_gsm_chars) + text[at:]


def assert_prefixes_match_smsutil(text: str) -> None:
    # Every prefix through the random tail is another string in the same domain, and
    # checking them all puts each escape or surrogate pair on every boundary offset
    # for a fraction of the cost of generating each string separately.
    for end in range(max(1, len(text) - 30), len(text) + 1):
        prefix = text[:end]
        assert our_count(prefix) == smsutil_count(prefix), prefix


FAST = settings(max_examples=300, deadline=None, database=None)


@FAST
@given(gsm_texts())
def test_matches_smsutil_on_gsm7(text: str) -> None:
    assert_prefixes_match_smsutil(text)


@settings(FAST, suppress_health_check=[HealthCheck.filter_too_much])
@given(simple_ucs2_texts())
def test_matches_smsutil_on_single_code_point_ucs2(text: str) -> None:
    # Guard the domain: outside it smsutil is knowingly wrong (see module docstring).
    assert all(len(cluster) == 1 for cluster in grapheme_clusters(text))
    assert_prefixes_match_smsutil(text)


# --- properties ----------------------------------------------------------------------

# Characters that stress every rule: GSM, escape pairs, astral, and cluster builders.
tricky_chars = st.sampled_from(
    [
        "a",
        "é",
        "€",
        "{",
        "\r",
        "\n",
        "ê",
        "\x1b",
        GRIN,
        "\u200d",
        "\ufe0f",
        "\u0301",
        "\u20e3",
        "\U0001f3fd",
        "\U0001f1e6",
        "\U0001f1fa",
        "\U0001f468",
        "\U000e0067",
        "\u1100",
        "\u1161",
        "\ud83d",
        "\ude00",
    ]
)


@st.composite
def tricky_texts(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["a", "ê", "€"])) * draw(st.integers(0, 320))
    return head + draw(st.text(alphabet=tricky_chars, max_size=60))


@settings(max_examples=500, deadline=None, database=None)
@given(tricky_texts(), tricky_chars)
def test_segments_never_decrease_when_appending(text: str, char: str) -> None:
    before, after = count_segments(text), count_segments(text + char)
    assert after.segments >= before.segments
    if after.encoding == before.encoding:  # septets and UTF-16 units do not compare
        assert after.units >= before.units


@settings(max_examples=500, deadline=None, database=None)
@given(tricky_texts())
def test_count_invariants(text: str) -> None:
    count = count_segments(text)
    assert 0 <= count.remaining <= count.per_segment
    assert (count.segments == 0) == (text == "")
    assert count.characters == len(grapheme_clusters(text))
    assert count.units <= count.segments * count.per_segment
    if count.segments > 1:
        assert count.per_segment in (153, 67)
        assert count.units > {153: 160, 67: 70}[count.per_segment]


@settings(max_examples=500, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from(GSM_ALPHABET), max_size=400))
def test_gsm_units_are_sum_of_septets(text: str) -> None:
    count = count_segments(text)
    assert count.encoding == "GSM-7"
    assert count.units == sum(2 if char in GSM7_EXTENSION else 1 for char in text)
    assert count.characters == len(text) - text.count("\r\n")


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from([*GSM_LOOKALIKES, *GSM_ALPHABET]), max_size=200))
def test_replace_lookalikes_always_yields_gsm(text: str) -> None:
    assert count_segments(replace_lookalikes(text)).encoding == "GSM-7"


def test_zwj_between_letters_does_not_glue_them_into_one_character():
    # Arabic and Indic text use ZWJ for shaping; only emoji sequences are joined by it
    # (UAX #29 GB11), so this text fits two segments, not three.
    text = "ж" * 65 + "\u0628\u200d\u0628" + "ж" * 66
    count = count_segments(text)
    assert (count.segments, count.characters) == (2, 133)
    assert len(grapheme_clusters("👨\u200d👩\u200d👧")) == 1
    assert len(grapheme_clusters("🏳\ufe0f\u200d🌈")) == 1
