"""What the composer shows: culprits and their stand-ins, estimates, samples, cost."""

from __future__ import annotations

import pytest

from tenants.templates.composer import apply_replacement, compose, gsm_replacement


def test_plain_text_is_counted_exactly():
    c = compose("a" * 161)
    assert (c.estimated, c.count.segments, c.count.remaining, c.cost) == (False, 2, 145, 2)
    assert c.culprits == [] and c.pieces == [] and c.sample_text is None


def test_culprits_in_order_with_stand_ins_and_highlight_pieces():
    c = compose("It’s “done” 😀 ’")
    assert [(x.text, x.replacement, x.occurrences) for x in c.culprits] == [
        ("’", "'", 2),
        ("“", '"', 1),
        ("”", '"', 1),
        ("😀", None, 1),
    ]
    assert "".join(p.text for p in c.pieces) == "It’s “done” 😀 ’"
    assert [p.text for p in c.pieces if p.forces_ucs2] == ["’", "“", "”", "😀", "’"]


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [("\u00a0", " "), ("\u200b", ""), ("e\u0301", "é"), ("ж", None), ("👍🏽", None)],
)
def test_gsm_stand_ins(cluster, expected):
    assert gsm_replacement(cluster) == expected


def test_replacement_touches_only_a_known_culprit():
    text = "Price – {{x}} – ok"
    assert apply_replacement(text, "–") == "Price - {{x}} - ok"
    # Text that is not a culprit, or has no stand-in, leaves the message as it was.
    assert apply_replacement(text, "Price") == text
    assert apply_replacement("Hi 😀", "😀") == "Hi 😀"
    assert apply_replacement("“Hi”\u00a0e\u0301 😀", "all") == '"Hi" é 😀'


def test_merge_fields_give_an_estimate_and_an_exact_sample():
    c = compose("Dear {{first_name}} {{last_name}}, {{code|none}}", samples={"code": "ABC"})
    assert c.estimated and c.fields == ["first_name", "last_name", "code"]
    assert c.unknown_fields == ["code"]
    # 5 + 8 + 1 + 10 + 2 + 10 characters at the typical lengths.
    assert c.count.characters == 36
    assert c.sample_text == "Dear Alex Taylor, ABC"
    assert c.sample_count is not None and c.sample_count.characters == 21


def test_custom_fields_count_as_known_and_cost_follows_the_rate():
    c = compose(
        "{{first_name}} {{member_no}}" + "x" * 150,
        known_fields=["first_name", "member_no"],
        credits_per_segment=3,
        cost_label="credits",
    )
    assert c.unknown_fields == []
    assert c.count.segments == 2 and c.cost == 6 and c.cost_label == "credits"
