"""Merge fields: `{{name}}` / `{{name|default}}` only, and nothing is ever evaluated."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenants.templates.merge_fields import fields_in, render, unknown_fields


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("No fields here", []),
        ("Hi {{first_name}}", ["first_name"]),
        ("Hi {{ first_name }} {{last_name|x}} {{first_name|there}}", ["first_name", "last_name"]),
        ("{{b}}{{a}}{{b}}{{_c9}}", ["b", "a", "_c9"]),
        ("{{First_Name}} {{first_name}}", ["First_Name", "first_name"]),  # case-sensitive
        ("{{__class__}}", ["__class__"]),  # just a name, looked up in values, never an attribute
        ("{{ 7*7 }} {% if x %}y{% endif %} {{ x.upper() }} {{1abc}} {{a-b}}", []),
        ("{{a|b|c}} {{a|{{b}}}} {first_name} {{first_name", ["b"]),
    ],
)
def test_fields_in(text: str, expected: list[str]) -> None:
    assert fields_in(text) == expected


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("Hi {{first_name}}!", {"first_name": "Ana"}, "Hi Ana!"),
        ("Hi {{ first_name }}!", {"first_name": "Ana"}, "Hi Ana!"),
        ("Hi {{\tfirst_name\t}}!", {"first_name": "Ana"}, "Hi Ana!"),
        ("Hi {{first_name|there}}!", {"first_name": "Ana"}, "Hi Ana!"),
        ("Hi {{first_name|there}}!", {}, "Hi there!"),
        ("Hi {{first_name|there}}!", {"first_name": None}, "Hi there!"),
        ("Hi {{first_name|there}}!", {"first_name": ""}, "Hi there!"),
        ("Hi {{ first_name | there }}!", {}, "Hi there!"),
        ("Hi {{first_name|dear friend}}!", {}, "Hi dear friend!"),
        ("Hola {{first_name|amigo ñ}}", {}, "Hola amigo ñ"),
        # A filter-like default is just default text, never a call.
        ("{{ first_name|upper() }}", {"upper": "X"}, "upper()"),
        ("{{ first_name|upper() }}", {"first_name": "Ana"}, "Ana"),
        ("Hi {{first_name}}!", {}, "Hi !"),
        ("Hi {{first_name|}}!", {}, "Hi !"),
        ("Hi {{first_name}}!", {"first_name": None}, "Hi !"),
        ("{{a}}{{b}}{{a}}", {"a": "1", "b": "2"}, "121"),
        ("{{First_Name}}", {"first_name": "Ana"}, ""),  # names are case-sensitive
        ("{{first_name}} {{unused_in_values}}", {"first_name": "Ana"}, "Ana "),
        ("Code: {{code}}", {"code": "A\\1\\g<0>"}, "Code: A\\1\\g<0>"),  # no regex escapes
    ],
)
def test_render(text: str, values: dict[str, str | None], expected: str) -> None:
    assert render(text, values) == expected


@pytest.mark.parametrize(
    "text",
    [
        "{{ 7*7 }}",
        "{{7*7}}",
        "{% if first_name %}Hi{% endif %}",
        "{% for x in range(10**9) %}{% endfor %}",
        "{# comment #}",
        "{{ first_name.upper() }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ config.items() }}",
        "{{ lipsum.__globals__['os'].popen('id').read() }}",
        "{{ first_name|a|b }}",
        "{{ first_name|line\nbreak }}",
        "{{1abc}}",
        "{{}}",
        "{{ }}",
        "{first_name}",
        "{{first_name",
        "first_name}}",
        "${first_name} %(first_name)s {0}",
    ],
)
def test_never_evaluated_stays_literal(text: str) -> None:
    values = {"first_name": "Ana", "config": "SECRET", "upper": "X"}
    assert render(text, values) == text
    assert fields_in(text) == []


def test_jinja_lookalike_next_to_real_field() -> None:
    text = "{{ 7*7 }} and {{first_name}} and {% raw %}"
    assert render(text, {"first_name": "Ana"}) == "{{ 7*7 }} and Ana and {% raw %}"


def test_values_are_not_rendered_again() -> None:
    # Recipient data must not be able to pull other fields (or anything else) in.
    values = {"first_name": "{{secret}}", "secret": "leaked", "last_name": "{{ 7*7 }}"}
    assert render("{{first_name}} {{last_name}}", values) == "{{secret}} {{ 7*7 }}"


def test_defaults_are_literal_text() -> None:
    assert render("{{first_name|{{secret}}}}", {"secret": "leaked"}) == "{{first_name|leaked}}"
    assert render("{{first_name|%s \\n}}", {}) == "%s \\n"


@pytest.mark.parametrize(
    ("text", "known", "expected"),
    [
        ("Hi {{first_name}}", ["first_name"], []),
        ("Hi {{first_name}} {{coupon}} {{coupon|none}}", ["first_name"], ["coupon"]),
        ("{{b}} {{a}} {{c}}", [], ["b", "a", "c"]),
        ("{{ 7*7 }} {{Coupon}}", {"coupon"}, ["Coupon"]),
        ("", ["first_name"], []),
    ],
)
def test_unknown_fields(text: str, known: list[str] | set[str], expected: list[str]) -> None:
    assert unknown_fields(text, known) == expected


def test_unknown_fields_accepts_a_one_shot_iterable() -> None:
    known = (name for name in ["first_name", "last_name"])
    assert unknown_fields("{{first_name}} {{last_name}} {{city}}", known) == ["city"]


# Explicit characters(): the default text() alphabet costs seconds to build cold.
any_char = st.characters(exclude_categories=("Cs",))


@settings(max_examples=100, deadline=None, database=None)
@given(
    st.text(alphabet=any_char).map(lambda text: text.replace("{", "")),
    st.dictionaries(st.sampled_from(["a", "first_name", "x"]), st.text(any_char, max_size=5)),
)
def test_text_without_braces_is_unchanged(text: str, values: dict[str, str]) -> None:
    assert render(text, values) == text
    assert fields_in(text) == []


_LETTERS = string.ascii_letters + "_"
# Field names, [A-Za-z_][A-Za-z0-9_]*, built by hand: from_regex is slow to start.
names = st.tuples(
    st.sampled_from(_LETTERS), st.text(alphabet=_LETTERS + string.digits, max_size=10)
).map("".join)


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.tuples(st.text(alphabet="ab }|%"), names), max_size=6), st.text(any_char))
def test_every_field_is_replaced(chunks: list[tuple[str, str]], value: str) -> None:
    # Literal chunks carry no "{", so the only fields are the ones placed here.
    text = "".join(chunk + "{{" + name + "}}" for chunk, name in chunks)
    values = {name: value for _, name in chunks}
    assert set(fields_in(text)) == set(values)
    assert render(text, values) == "".join(chunk + value for chunk, _ in chunks)
