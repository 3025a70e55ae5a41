"""The one model of a change (compiler.changes), shared by the audit log and the plan: which
declared fields and which resolved values count as changed, and how a cell is named."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.changes import Cell, FieldChange, ValueChange, changed_fields, changed_values
from compiler.yamlsource import Data

FLAG = {"description": "Banner", "owner": "growth", "enabled": False}

# before, after, the changes (in any order: each output sorts them its own way)
FIELD_CASES: dict[str, tuple[Data, Data, list[FieldChange]]] = {
    "equal": (FLAG, dict(FLAG), []),
    "one value": (
        FLAG,
        {**FLAG, "enabled": True},
        [FieldChange("enabled", False, True)],
    ),
    "added field": (
        FLAG,
        {**FLAG, "expires": "2099-12-31"},
        [FieldChange("expires", None, "2099-12-31")],
    ),
    "removed field": (
        {**FLAG, "tags": ["a"]},
        FLAG,
        [FieldChange("tags", ["a"], None)],
    ),
    "a list is one value": (
        {**FLAG, "depends_on": ["a", "b"]},
        {**FLAG, "depends_on": ["b", "a"]},
        [FieldChange("depends_on", ["a", "b"], ["b", "a"])],
    ),
    "nested path": (
        {**FLAG, "environments": {"production": {"applications": {"web": True}}}},
        {**FLAG, "environments": {"production": {"applications": {"web": False}}}},
        [FieldChange("environments.production.applications.web", True, False)],
    ),
    "a mapping replaced by a value": (
        {**FLAG, "environments": {"production": {"enabled": True}}},
        {**FLAG, "environments": {"production": False}},
        [
            FieldChange("environments.production.enabled", True, None),
            FieldChange("environments.production", None, False),
        ],
    ),
    "a value replaced by a mapping": (
        {**FLAG, "environments": {"staging": True}},
        {**FLAG, "environments": {"staging": {"applications": {"ios": True}}}},
        [
            FieldChange("environments.staging.applications.ios", None, True),
            FieldChange("environments.staging", True, None),
        ],
    ),
    "a new file": (
        None,
        FLAG,
        [FieldChange(name, None, value) for name, value in FLAG.items()],
    ),
    "a deleted file": (
        FLAG,
        None,
        [FieldChange(name, value, None) for name, value in FLAG.items()],
    ),
    "a file that is not a mapping has no fields": ("text", 3, []),
}


def by_path(changes: list[FieldChange]) -> list[FieldChange]:
    return sorted(changes, key=lambda change: change.path)


@pytest.mark.parametrize("case", sorted(FIELD_CASES))
def test_changed_fields(case: str) -> None:
    before, after, expected = FIELD_CASES[case]
    found = changed_fields(before, after)
    assert len(found) == len({change.path for change in found})  # each path once
    assert by_path(found) == by_path(expected)


# No null: the schemas never allow it, and None is how a change says "absent".
_scalars = st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b"])
_names = st.sampled_from(["enabled", "owner", "production", "web", "tags"])
_trees: st.SearchStrategy[Any] = st.recursive(
    _scalars | st.lists(_scalars, max_size=2),
    lambda children: st.dictionaries(_names, children, max_size=3),
    max_leaves=8,
)


def _declared(tree: Any) -> Any:
    """`tree` without the empty mappings in it (nested ones emptied by this included)."""
    if not isinstance(tree, dict):
        return tree
    kept = {key: _declared(value) for key, value in tree.items()}
    return {key: value for key, value in kept.items() if value != {}}


@given(st.dictionaries(_names, _trees, max_size=4), st.dictionaries(_names, _trees, max_size=4))
def test_changed_fields_properties(before: dict[str, Any], after: dict[str, Any]) -> None:
    """No change exactly when the two declare the same (an empty mapping declares nothing);
    every change differs; reversing the two reverses each change."""
    found = changed_fields(before, after)
    assert (found == []) == (_declared(before) == _declared(after))
    assert all(change.before != change.after for change in found)
    reversed_ = [FieldChange(c.path, c.after, c.before) for c in changed_fields(after, before)]
    assert by_path(found) == by_path(reversed_)


@given(st.dictionaries(_names, _trees, max_size=4))
def test_a_created_or_deleted_flag_declares_what_a_comparison_finds(tree: dict[str, Any]) -> None:
    """Nothing before (or after): the shortcut that lists the fields finds what comparing
    with an empty mapping finds, sides and all."""
    assert by_path(changed_fields(None, tree)) == by_path(changed_fields({}, tree))
    assert by_path(changed_fields(tree, None)) == by_path(changed_fields(tree, {}))


PRODUCTION: Cell = ("production", None)
WEB: Cell = ("production", "web")
QA: Cell = ("qa", None)


@pytest.mark.parametrize(
    ("before", "after", "cells", "expected"),
    [
        ({PRODUCTION: True}, {PRODUCTION: True}, [PRODUCTION], ()),
        (
            {PRODUCTION: False, WEB: False},
            {PRODUCTION: True, WEB: False},
            [PRODUCTION, WEB],
            (ValueChange("production", None, False, True),),
        ),
        (  # a cell missing from a side is absent there
            {PRODUCTION: True},
            {PRODUCTION: True, QA: False},
            [PRODUCTION, QA],
            (ValueChange("qa", None, None, False),),
        ),
        (  # in the order of `cells`, whatever the mappings' order
            {PRODUCTION: False, WEB: False},
            {WEB: True, PRODUCTION: True},
            [WEB, PRODUCTION],
            (
                ValueChange("production", "web", False, True),
                ValueChange("production", None, False, True),
            ),
        ),
    ],
)
def test_changed_values(
    before: dict[Cell, bool],
    after: dict[Cell, bool],
    cells: list[Cell],
    expected: tuple[ValueChange, ...],
) -> None:
    assert changed_values(before, after, cells) == expected


@pytest.mark.parametrize(
    ("change", "name"),
    [
        (ValueChange("production", None, False, True), "production"),
        (ValueChange("production", "web", None, True), "production/web"),
    ],
)
def test_a_cell_is_named_as_people_write_it(change: ValueChange, name: str) -> None:
    assert change.cell == name


@pytest.mark.parametrize(
    ("change", "turns"),
    [
        (ValueChange("production", None, False, True), "on"),
        (ValueChange("production", None, True, None), "off"),
        (ValueChange("production", None, None, False), None),
        (ValueChange("production", None, "blue", "green", "blue", "blue"), "on"),
        (ValueChange("production", None, "green", "blue", "blue", "blue"), "off"),
        (ValueChange("production", None, "green", "red", "blue", "blue"), None),
        (ValueChange("production", None, "blue", "green", None, None), None),
        (ValueChange("production", None, None, "blue", None, None), "on"),
    ],
    ids=[
        "boolean-on",
        "boolean-removed",
        "boolean-added-off",
        "from-off-variant",
        "to-off-variant",
        "between-variants",
        "no-off-variant",
        "added-without-off",
    ],
)
def test_turning_on_and_off(change: ValueChange, turns: str | None) -> None:
    assert (change.turns_on, change.turns_off) == (turns == "on", turns == "off")
