"""Merge fields in message bodies: `{{first_name}}` and `{{first_name|there}}`, nothing more.

This module owns the merge-field syntax. It is deliberately not a template language:
message bodies are written by tenants and rendered per recipient, so nothing in them
is ever evaluated. Only `{{ name }}` or `{{ name | default }}` with a plain identifier
is a field; anything else (`{{ 7*7 }}`, `{% if %}`, `{{ name.upper() }}`) is literal
text and is sent exactly as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# A default may not contain braces, a pipe or a line break, so a field can never
# swallow the text around it or nest; anything richer stays literal text.
_FIELD = re.compile(
    r"\{\{[ \t]*(?P<name>[A-Za-z_][A-Za-z0-9_]*)[ \t]*"
    r"(?:\|(?P<default>[^{}|\r\n]*))?\}\}"
)


def fields_in(text: str) -> list[str]:
    """Distinct field names used in text, in order of first use."""
    seen: dict[str, None] = {}
    for match in _FIELD.finditer(text):
        seen.setdefault(match.group("name"), None)
    return list(seen)


def render(text: str, values: Mapping[str, str | None]) -> str:
    """Substitute every field; a missing or empty value falls back to the default or ''.

    Values are inserted verbatim: a value that itself looks like a field is not
    rendered again, so recipient data can never inject fields.
    """

    def substitute(match: re.Match[str]) -> str:
        value = values.get(match.group("name"))
        if value:
            return value
        default = match.group("default")
        return default.strip() if default else ""

    return _FIELD.sub(substitute, text)


def unknown_fields(text: str, known: Iterable[str]) -> list[str]:
    """Field names used in text that are not in known, in order of first use."""
    known_names = set(known)
    return [name for name in fields_in(text) if name not in known_names]
