"""tenants.db.view_of: a view dataclass from a selected row, by field name."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tenants.db import view_of


@dataclass(frozen=True)
class Thing:
    id: int
    name: str
    label: str = "none"


def test_fields_come_from_the_row_by_name_and_extra_columns_are_ignored():
    assert view_of(Thing, {"id": 1, "name": "a", "label": "b", "secret": "x"}) == Thing(1, "a", "b")


def test_computed_values_win_and_a_defaulted_field_may_be_absent():
    assert view_of(Thing, {"id": 1, "name": "raw"}, name="done") == Thing(1, "done", "none")


def test_a_required_field_missing_from_the_row_is_an_error():
    with pytest.raises(KeyError):
        view_of(Thing, {"id": 1})
