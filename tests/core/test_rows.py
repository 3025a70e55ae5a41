"""core.rows.expanded: every application in every row, equal rows of boolean flags without
rules held once."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.canonical import serialize
from core.rows import expanded

APPLICATIONS = ["web", "ios", "api"]
ENVIRONMENTS = ["dev", "prod"]


def cell(variant: str, value: Any, source: str = "environment") -> dict[str, Any]:
    return {"variant": variant, "value": value, "source": source}


def row(own: dict[str, Any], rules: list[Any] | None = None, /, **listed: Any) -> dict[str, Any]:
    return {**own, "rules": rules or [], "applications": listed}


def snapshot(flags: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return {
        "applications": APPLICATIONS,
        "environments": ENVIRONMENTS,
        "flags": {key: {"type": kind, "resolved": rows} for key, (kind, rows) in flags.items()},
    }


ON, OFF = cell("on", True), cell("off", False)
RULE = {"when": {"country": {"in": ["NL"]}}, "serve": "on"}


def test_equal_rows_of_boolean_flags_without_rules_are_one_row() -> None:
    web_off = {"web": cell("off", False, "environment-application")}
    document = snapshot(
        {
            "a": ("boolean", {"dev": row(ON, **web_off), "prod": row(OFF)}),
            "b": ("boolean", {"dev": row(ON, **web_off), "prod": row(OFF)}),
            "c": ("boolean", {"dev": row(ON, [RULE]), "prod": row(OFF)}),
            "d": ("boolean", {"dev": row(ON, [RULE]), "prod": row(ON)}),
            "e": ("string", {"dev": row(cell("on", "on")), "prod": row(cell("on", "on"))}),
            "f": ("string", {"dev": row(cell("on", "on")), "prod": row(cell("on", "on"))}),
        }
    )
    found = expanded(copy.deepcopy(document))["flags"]
    a, b, c, d, e, f = (found[key]["resolved"] for key in "abcdef")
    assert a["dev"] is b["dev"] and a["prod"] is b["prod"] is c["prod"]
    assert a["dev"]["applications"] == {"web": web_off["web"], "ios": ON, "api": ON}
    assert c["dev"] is not d["dev"]  # rules: each flag's own
    assert e["dev"] is not f["dev"]  # not boolean: a variant's value is the flag's own


def test_a_row_of_another_shape_is_not_shared() -> None:
    """A value that is no boolean (1 is equal to True) or a cell with another key: each
    flag keeps its own row."""
    odd = {**ON, "value": 1}
    document = snapshot(
        {
            "a": ("boolean", {"dev": row(ON), "prod": row(ON, web={**ON, "extra": 1})}),
            "b": ("boolean", {"dev": row(odd), "prod": row(ON, web={**ON, "extra": 1})}),
        }
    )
    found = expanded(copy.deepcopy(document))["flags"]
    a, b = found["a"]["resolved"], found["b"]["resolved"]
    assert a["dev"] is not b["dev"] and a["prod"] is not b["prod"]
    assert serialize(b["dev"]["applications"]["web"]) == serialize(odd)


# Few shapes, so that flags often have rows that are equal, or equal but for a 1 (== True).
BOOLEAN_CELLS = st.sampled_from([ON, {**ON, "value": 1}, OFF, cell("on", True, "default")])
ROWS = st.builds(
    row,
    BOOLEAN_CELLS,
    st.sampled_from([[], [RULE]]),
    **{name: st.one_of(st.none(), st.none(), BOOLEAN_CELLS) for name in APPLICATIONS},
).map(lambda found: {**found, "applications": _listed(found["applications"])})


def _listed(applications: dict[str, Any]) -> dict[str, Any]:
    return {name: found for name, found in applications.items() if found is not None}


@settings(max_examples=300, deadline=None)
@given(
    flags=st.dictionaries(
        st.sampled_from("abcdefgh"),
        st.tuples(
            st.sampled_from(["boolean", "string"]),
            st.fixed_dictionaries(dict.fromkeys(ENVIRONMENTS, ROWS)),
        ),
        min_size=2,
    )
)
def test_shared_rows_are_what_each_row_expands_to(
    flags: dict[str, tuple[str, dict[str, Any]]],
) -> None:
    """Each row, shared or not, is its own expansion: its cell for every application it does
    not list, as the bytes say (1 is not true)."""
    document = snapshot(flags)
    found = expanded(copy.deepcopy(document))["flags"]
    for key, (_, rows) in flags.items():
        for environment, own in rows.items():
            whole = {name: own["applications"].get(name, _cell(own)) for name in APPLICATIONS}
            mine = found[key]["resolved"][environment]
            assert serialize(mine) == serialize({**own, "applications": whole})


def _cell(found: dict[str, Any]) -> dict[str, Any]:
    return {"variant": found["variant"], "value": found["value"], "source": found["source"]}


def test_a_scheduled_flag_shares_its_rows_and_its_steps_rows() -> None:
    """A boolean flag with steps: the rows before its first step and each step's rows are
    held once with equal rows of other flags (a view at a step copies `resolved`, never
    changes a row)."""
    document = snapshot(
        {"a": ("boolean", {"dev": row(ON), "prod": row(OFF)}), "b": ("boolean", {})}
    )
    document["flags"]["b"] = {
        "type": "boolean",
        "resolved": {"dev": row(OFF), "prod": row(OFF)},
        "steps": [{"at": "2027-01-01T00:00:00Z", "resolved": {"dev": row(ON)}}],
    }
    found = expanded(copy.deepcopy(document))["flags"]
    a, b = found["a"]["resolved"], found["b"]
    assert b["resolved"]["dev"] is b["resolved"]["prod"] is a["prod"]
    assert b["steps"][0]["resolved"]["dev"] is a["dev"]
