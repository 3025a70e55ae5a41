"""core.flagd's files from rows as emit.snapshot gives them: identical rows are one shared
object, whose targeting flagd's files work out once per row. The bytes and spans are those
of rows that are copies, and those of a file made flag by flag (an incremental build's), so
neither sharing nor making every flag at once changes a byte."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import given, settings

from core import flagd
from tests.core.flagd_oracle import (
    ENVIRONMENTS,
    REVISION,
    flag_sets,
    make_document,
    make_flag,
    when,
)


def shared(flags: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`flags` with the rows of equal content, in any flag and environment, one object."""
    rows: dict[bytes, Any] = {}
    return {
        key: {
            **flag,
            "resolved": {
                environment: rows.setdefault(orjson.dumps(row, option=orjson.OPT_SORT_KEYS), row)
                for environment, row in flag["resolved"].items()
            },
        }
        for key, flag in flags.items()
    }


@settings(max_examples=150, deadline=None)
@given(flags=flag_sets())
def test_shared_rows_give_the_files_of_copied_rows(flags: dict[str, dict[str, Any]]) -> None:
    expected = flagd.files(make_document(copy.deepcopy(flags)))
    assert flagd.files(make_document(shared(flags))) == expected


def test_a_row_shared_by_flags_of_another_off_is_read_with_each_ones_off() -> None:
    """`a` is off where `b` is on: shared, their row is one object, read twice."""
    web = {environment: {"web": ("y", "application")} for environment in ENVIRONMENTS}

    def string(off: str) -> dict[str, Any]:
        variants = {"x": "x", "y": "y"}
        cell = ("x", "default")
        return make_flag(variants=variants, off=off, kind="string", cell=cell, applications=web)

    flags = {
        "a": string(off="x"),  # off but at web
        "b": string(off="y"),  # off at web only
        "c": make_flag(cell=("on", "environment"), depends_on=["a"]),
        "d": make_flag(cell=("on", "environment"), depends_on=["b"]),
    }
    together = shared(flags)
    assert together["a"]["resolved"]["production"] is together["b"]["resolved"]["production"]
    made = orjson.loads(flagd.definitions(make_document(together))["production"])["flags"]
    at_web = {"in": [{"var": "application"}, ["web"]]}
    assert made["c"]["targeting"] == {"if": [at_web, "on", "off"]}
    assert made["d"]["targeting"] == {"if": [at_web, "off", None]}  # None: the default, on
    assert flagd.files(make_document(together)) == flagd.files(make_document(flags))


@settings(max_examples=150, deadline=None)
@given(flags=flag_sets())
def test_a_file_made_flag_by_flag_is_the_file_made_at_once(
    flags: dict[str, dict[str, Any]],
) -> None:
    document = make_document(shared(flags))
    made = flagd.files(document)
    for environment in ENVIRONMENTS:
        nothing = flagd.File(b"", {})
        found = flagd.refreshed(nothing, REVISION, document, environment, set(flags))
        assert found == made[environment]


def test_a_dependency_that_closes_a_cycle_is_left_out() -> None:
    """A snapshot with a cycle is refused when read (core.verify), but its files are still
    written first: the dependency met last, from the first flag by name, gates nothing."""
    rules = {"production": [when("country", "in", ["NZ"], serve="off")]}
    flags = {
        "a": make_flag(cell=("on", "environment"), depends_on=["b"]),
        "b": make_flag(cell=("on", "environment"), depends_on=["c"], rules=rules),
        "c": make_flag(cell=("on", "environment"), depends_on=["a"]),
    }
    acyclic = {**flags, "c": make_flag(cell=("on", "environment"))}
    assert flagd.files(make_document(flags)) == flagd.files(make_document(acyclic))
    targeting = orjson.loads(flagd.definitions(make_document(flags))["production"])
    assert targeting["flags"]["a"]["targeting"]["if"][1:] == ["off", "on"]  # b gates a


def entry(file: flagd.File, key: str) -> bytes:
    a, _, _, d = file.spans[key]
    return file.data[a:d]


def test_rules_equal_in_python_but_not_in_json_are_each_their_own() -> None:
    """A rule's condition is made once per rule and reused by every flag with the same
    rule: 1, 1.0 and true are equal in Python but not the same rule (true matches no number),
    nor are the same conditions in another order. Each flag's entry is the one it has alone."""
    rules = [
        [when("plan", "in", [1])],
        [when("plan", "in", [1.0])],
        [when("plan", "in", [True])],
        [{"when": {"plan": {"in": ["a"]}, "country": {"in": ["NZ"]}}, "serve": "on"}],
        [{"when": {"country": {"in": ["NZ"]}, "plan": {"in": ["a"]}}, "serve": "on"}],
    ]
    flags = {
        f"f{n}": make_flag(rules={environment: rule for environment in ENVIRONMENTS})
        for n, rule in enumerate(rules)
    }
    together = flagd.files(make_document(flags))["production"]
    entries = {entry(together, key) for key in flags}
    assert len(entries) == len(flags)
    for key, flag in flags.items():
        alone = flagd.files(make_document({key: flag}))["production"]
        assert entry(together, key) == entry(alone, key)
