"""core.audit_format: the file says each thing once and loses nothing.

`expand(compact(log)) == log` for generated logs (hypothesis), through the canonical bytes
as audit.json holds them; the real logs of the compiler's tests go through the same round
trip in tests/compiler/scripted.py's `check_audit`. A damaged document is refused with a
ValueError (never another exception), so that a build reads the history again and a
server refuses the build.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import audit_format
from core.audit_format import compact, expand, prepend, prepend_file, subject_of
from core.canonical import serialize

SHAS = ["a" * 40, "b" * 40, "c" * 64]
PEOPLE = [
    {"name": "Ada Lovelace", "email": "ada@example.com"},
    {"name": "GitHub", "email": "noreply@github.com"},
    {"name": "山田 太郎", "email": "taro@example.com"},
]
NEWCOMERS = [  # people only newer entries bring, ahead of the old ones (prepend)
    {"name": "Grace Hopper", "email": "grace@example.com"},
    {"name": "Ada Lovelace", "email": "ada@example.org"},
]
MOMENTS = ["2026-01-02T03:04:05+01:00", "2026-01-02T02:04:05Z", "2025-12-31T23:59:59-08:00"]
MESSAGES = ["Turn it on", "Subject\n\nBody, and more.", " Padded \r\nbody", "", "\n\nodd"]
FILES = ["banner.yaml", "growth/banner.yml", "_project.yaml", "noext", "a.b/c", None]
FIELDS = ["description", "enabled", "environments.prod", "tags", "é", "Z"]
CELLS = ["dev", "dev/web", "prod", "prod/web", "x/y/z", ""]
# What only newer entries bring, ahead of the old ones (prepend): files, fields and cells.
FRESH = {"files": ["fresh/new.yaml"], "fields": ["new.field"], "cells": ["canary", "canary/web"]}
KEYS = ["banner", "growth", None, "c", "Ünïcode"]
CHANGES = ["created", "modified", "moved", "deleted", "project"]
ANY = st.sampled_from([None, True, False, 0, 1, "x", "", [1, "a"], {"a": None}, 2.5, 0.0, -0.0])
CELL_VALUE = st.sampled_from([True, False, "on", "off", "ünï"])
ENVIRONMENTS = st.lists(st.sampled_from(["dev", "prod", "ü", "q a"]), min_size=1, unique=True)
APPLICATIONS = st.lists(st.sampled_from(["web", "ios", "a/b", "x.y", "dev"]), unique=True)


@st.composite
def metadata(draw: st.DrawFn, people: list[dict[str, str]] = PEOPLE) -> dict[str, Any]:
    reason = draw(st.sampled_from(MESSAGES))
    subject = draw(st.sampled_from([subject_of(reason), *MESSAGES]))
    return {
        "commit": draw(st.sampled_from(SHAS)),
        "author": dict(draw(st.sampled_from(people))),
        "committer": dict(draw(st.sampled_from(people))),
        "timestamp": draw(st.sampled_from(MOMENTS)),
        "committed_at": draw(st.sampled_from(MOMENTS)),
        "subject": subject,
        "reason": reason,
    }


@st.composite
def grid_values(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Every cell of a grid, one side absent: a created or deleted flag, some applications
    differing from their environment."""
    side, other = draw(st.sampled_from([("to", "from"), ("from", "to")]))
    cells = []
    applications = draw(APPLICATIONS)
    for environment in draw(ENVIRONMENTS):
        value = draw(CELL_VALUE)
        cells.append({"cell": environment, side: value, other: None})
        for application in applications:
            here = draw(st.one_of(st.just(value), CELL_VALUE))
            cells.append({"cell": f"{environment}/{application}", side: here, other: None})
    return cells


def any_values(cells: list[str] = CELLS) -> st.SearchStrategy[list[dict[str, Any]]]:
    names = st.sampled_from(cells)
    side = st.one_of(st.none(), CELL_VALUE, st.sampled_from([0, 1]))
    item = st.fixed_dictionaries({"cell": names, "from": side, "to": side})
    return st.lists(item, max_size=6)


def fields(names: list[str] = FIELDS) -> st.SearchStrategy[list[dict[str, Any]]]:
    paths = st.sampled_from(names)
    item = st.fixed_dictionaries({"field": paths, "from": ANY, "to": ANY})
    created = st.dictionaries(paths, ANY).map(
        lambda named: [{"field": k, "from": None, "to": named[k]} for k in sorted(named)]
    )
    deleted = st.dictionaries(paths, ANY).map(
        lambda named: [{"field": k, "from": named[k], "to": None} for k in sorted(named)]
    )
    return st.one_of(st.lists(item, max_size=5), created, deleted)


@st.composite
def entries(draw: st.DrawFn, fresh: bool = False) -> dict[str, Any]:
    """An entry; `fresh`: its files, fields and cells may be ones older entries lack."""
    more = FRESH if fresh else {"files": [], "fields": [], "cells": []}
    file = draw(st.sampled_from([*FILES, *more["files"]]))
    stem = audit_format.stem_of(file) if file is not None else None
    return {
        "change": draw(st.sampled_from(CHANGES)),
        "flag": draw(st.sampled_from([stem, *KEYS])),
        "file": file,
        "previous_file": draw(st.sampled_from([None, None, "old.yaml", "banner.yaml"])),
        "fields": draw(fields([*FIELDS, *more["fields"]])),
        "values": draw(st.one_of(grid_values(), any_values([*CELLS, *more["cells"]]))),
        "invalid": draw(st.sampled_from([None, None, "3:1: not valid YAML"])),
    }


@st.composite
def logs(
    draw: st.DrawFn, people: list[dict[str, str]] = PEOPLE, fresh: bool = False
) -> dict[str, Any]:
    found = []
    for meta in draw(st.lists(metadata(people), max_size=5)):
        for entry in draw(st.lists(entries(fresh), min_size=1, max_size=4)):
            found.append({**copy.deepcopy(meta), **entry})
    return {
        "format": 1,
        "head": draw(st.sampled_from([None, *SHAS])),
        "complete": draw(st.booleans()),
        "entries": found,
    }


@settings(max_examples=200, deadline=None)
@given(log=logs())
def test_a_log_comes_back_whole_from_its_file(log: dict[str, Any]) -> None:
    document = compact(log)
    # by bytes: == holds True equal to 1 and -0.0 to 0.0, which `expand` shares apart
    assert serialize(expand(orjson.loads(serialize(document)))) == serialize(log)
    assert compact(expand(document)) == document  # one file per log


@st.composite
def continued(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """An older log, newer entries, and the whole log they make: a log split anywhere (in
    the middle of a commit too), or newer entries of their own, whose people (newcomers
    among them), grids, files, fields and cells are numbered after the old ones."""
    head, complete = draw(st.sampled_from([None, *SHAS])), draw(st.booleans())
    if draw(st.booleans()):
        log = draw(logs())
        split = draw(st.integers(0, len(log["entries"])))
        newer, older = log["entries"][:split], log["entries"][split:]
    else:
        newer = draw(logs([*NEWCOMERS, *PEOPLE], fresh=True))["entries"]
        older = draw(logs())["entries"]
    old = {"format": 1, "head": draw(st.sampled_from([None, *SHAS])), "complete": True}
    whole = {"format": 1, "head": head, "complete": complete, "entries": [*newer, *older]}
    return {**old, "entries": older}, newer, whole


@settings(max_examples=300, deadline=None)
@given(case=continued())
def test_prepending_entries_writes_the_document_of_the_whole_log(
    case: tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]],
) -> None:
    older, newer, whole = case
    document = compact(older)
    kept = copy.deepcopy(document)
    found = prepend(document, newer, whole["head"], whole["complete"])
    assert found == compact(whole)
    assert serialize(found) == serialize(compact(whole))
    assert document == kept  # the old document is not changed
    reused = found["commits"][len(found["commits"]) - len(document["commits"]) + 1 :]
    assert all(a is b for a, b in zip(reused, document["commits"][1:], strict=True))
    file = prepend_file(serialize(document) + b"\n", newer, whole["head"], whole["complete"])
    assert file == serialize(compact(whole)) + b"\n"  # its old commits copied as bytes


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not an audit document"),
        (b"[]\n", "not an audit document"),
        (b'{"cells":[],"commits":[],"complete":true,"format":2}\n', "of format 3"),
        (b'{"cells":[],"commits":[{"author":0,"commit":"a"}],"complete":true', "not an"),
        (b'{"cells":[],"commits":[],"complete":true,"format":3}\n', "'people'"),
    ],
)
def test_a_file_that_cannot_be_continued_is_a_value_error(data: bytes, message: str) -> None:
    with pytest.raises((ValueError, KeyError), match=message):
        prepend_file(data, [], None, True)


def test_newer_entries_add_to_the_tables_ends() -> None:
    """The tables count from the oldest entry: a newer commit's newcomers (a person, a file,
    a field, a cell) go at their ends, and the old commits are reused as they are."""
    meta = {"commit": SHAS[0], "author": PEOPLE[0], "committer": PEOPLE[2]}
    meta |= {"timestamp": MOMENTS[0], "committed_at": MOMENTS[0]}
    meta |= {"subject": "Turn it on", "reason": "Turn it on"}
    entry = {"change": "modified", "flag": "banner", "file": "banner.yaml"}
    entry |= {"previous_file": None, "invalid": None, "values": []}
    entry |= {"fields": [{"field": "enabled", "from": False, "to": True}]}
    old = {"format": 1, "head": SHAS[0], "complete": True, "entries": [{**meta, **entry}]}
    document = compact(old)
    assert document["people"] == [PEOPLE[0], PEOPLE[2]]
    assert (document["files"], document["fields"], document["cells"]) == (
        ["banner.yaml"],
        ["enabled"],
        [],
    )
    assert document["commits"][0] == {
        "commit": SHAS[0],
        "author": 0,
        "committer": 1,
        "timestamp": MOMENTS[0],
        "reason": "Turn it on",
        "entries": [{"file": 0, "fields": [[0, False, True]]}],
    }
    new = {**meta, **entry, "commit": SHAS[1], "author": PEOPLE[1], "committer": PEOPLE[1]}
    new |= {"file": "growth/checkout.yaml", "flag": "checkout", "previous_file": "banner.yaml"}
    new |= {"change": "moved", "fields": [{"field": "owner", "from": "a", "to": "b"}]}
    new |= {"values": [{"cell": "prod/web", "from": True, "to": False}]}
    found = prepend(document, [new], SHAS[1], True)
    assert found["people"] == [PEOPLE[0], PEOPLE[2], PEOPLE[1]]
    assert (found["files"], found["fields"], found["cells"]) == (
        ["banner.yaml", "growth/checkout.yaml"],
        ["enabled", "owner"],
        ["prod/web"],
    )
    assert found["commits"][0]["author"] == 2
    assert found["commits"][0]["entries"] == [
        {
            "change": "moved",
            "file": 1,
            "previous_file": 0,
            "fields": [[1, "a", "b"]],
            "values": [[True, False, [0]]],
        }
    ]
    assert found["commits"][1] is document["commits"][0]  # not renumbered, not copied
    whole = {"format": 1, "head": SHAS[1], "complete": True, "entries": [new, *old["entries"]]}
    assert found == compact(whole)


def test_a_created_flag_states_its_cells_per_environment() -> None:
    cells = [("prod", True), ("prod/web", True), ("prod/ios", False), ("dev", False)]
    cells += [("dev/web", False), ("dev/ios", False)]
    meta = {"commit": SHAS[0], "author": PEOPLE[0], "committer": PEOPLE[0]}
    meta |= {"timestamp": MOMENTS[0], "committed_at": MOMENTS[0]}
    meta |= {"subject": "Add banner", "reason": "Add banner\n\nWhy."}
    entry = {"change": "created", "flag": "banner", "file": "growth/banner.yaml"}
    entry |= {"previous_file": None, "invalid": None}
    entry |= {
        "fields": [
            {"field": f, "from": None, "to": v} for f, v in (("owner", "x"), ("enabled", True))
        ]
    }
    entry |= {"values": [{"cell": cell, "from": None, "to": value} for cell, value in cells]}
    log = {"format": 1, "head": SHAS[0], "complete": True, "entries": [{**meta, **entry}]}
    assert compact(log) == {
        "format": 3,
        "head": SHAS[0],
        "complete": True,
        "people": [PEOPLE[0]],
        "grids": [{"environments": ["prod", "dev"], "applications": ["web", "ios"]}],
        "files": ["growth/banner.yaml"],
        "fields": ["owner", "enabled"],
        "cells": [],
        "commits": [
            {
                "commit": SHAS[0],
                "author": 0,
                "timestamp": MOMENTS[0],
                "reason": "Add banner\n\nWhy.",
                "entries": [
                    {
                        "change": "created",
                        "file": 0,
                        "fields": {"names": [0, 1], "to": ["x", True]},
                        "values": {"grid": 0, "to": [[True, {"ios": False}], False]},
                    }
                ],
            }
        ],
    }
    assert expand(compact(log)) == log


def test_equal_items_of_an_expanded_log_are_one_object() -> None:
    """A created flag's cells, fields and people, repeated in each entry that names them,
    are held once (a server holds the log it serves); items whose values differ only in type
    (True and 1, -0.0 and 0.0) are not."""
    meta = {"commit": SHAS[0], "author": PEOPLE[0], "committer": PEOPLE[0]}
    meta |= {"timestamp": MOMENTS[0], "committed_at": MOMENTS[0]}
    meta |= {"subject": "Add", "reason": "Add", "previous_file": None, "invalid": None}
    cells = [("prod", True), ("prod/web", False)]

    def created(key: str, rollout: Any) -> dict[str, Any]:
        fields = [("enabled", True), ("owner", "x"), ("rollout", rollout)]
        return {
            **meta,
            **{"change": "created", "flag": key, "file": f"{key}.yaml"},
            "fields": [{"field": f, "from": None, "to": v} for f, v in fields],
            "values": [{"cell": cell, "from": None, "to": value} for cell, value in cells],
        }

    def changed(key: str, before: Any, after: Any) -> dict[str, Any]:
        return {
            **meta,
            **{"change": "modified", "flag": key, "file": f"{key}.yaml"},
            "fields": [{"field": "rollout", "from": before, "to": after}],
            "values": [{"cell": "prod/web", "from": before, "to": after}],
        }

    entries = [created("a", 1), created("b", True), created("c", -0.0), created("d", 0.0)]
    entries += [changed("e", 1, 0), changed("f", True, False), changed("g", 1, 0)]
    log = {"format": 1, "head": SHAS[0], "complete": True, "entries": entries}
    found = expand(compact(log))["entries"]
    assert serialize(found) == serialize(entries)
    a, b, c, d, e, f, g = found
    assert a["values"] is b["values"]  # a whole grid's, when its items are the same bytes
    assert a["fields"][:2] == b["fields"][:2] and a["fields"][0] is b["fields"][0]
    assert a["author"] is b["author"] is a["committer"]
    assert a["fields"][2] is not b["fields"][2]  # 1, True
    assert c["fields"][2] is not d["fields"][2]  # -0.0, 0.0: never shared
    assert e["values"][0] is g["values"][0] and e["fields"][0] is g["fields"][0]
    assert e["values"][0] is not f["values"][0]  # 1 -> 0, True -> False


@settings(max_examples=150, deadline=None)
@given(log=logs(), data=st.data())
def test_a_damaged_document_is_refused_with_a_value_error(
    log: dict[str, Any], data: st.DataObject
) -> None:
    document = compact(log)
    places = list(_places(document))
    path = data.draw(st.sampled_from(places))
    damaged = _replace(document, path, data.draw(ANY | st.sampled_from([-1, 7, [[]], {"to": 1}])))
    with contextlib.suppress(ValueError):  # any other exception fails the test
        expand(damaged)


VALID = {
    "format": 3,
    "head": SHAS[0],
    "complete": True,
    "people": [PEOPLE[0]],
    "grids": [{"environments": ["prod"], "applications": ["web"]}],
    "files": ["banner.yaml", "old.yaml"],
    "fields": ["enabled", "owner"],
    "cells": ["prod", "prod/web"],
    "commits": [
        {
            "commit": SHAS[0],
            "author": 0,
            "timestamp": MOMENTS[0],
            "reason": "Move it",
            "entries": [
                {
                    "file": 0,
                    "previous_file": 1,
                    "fields": [[0, False, True]],
                    "values": [[False, True, [0, 1]]],
                },
                {
                    "change": "created",
                    "file": None,
                    "flag": "launch",
                    "fields": {"names": [0, 1], "to": [True, "x"]},
                    "values": {"grid": 0, "to": [True]},
                },
            ],
        }
    ],
}
ENTRY = ("commits", 0, "entries", 0)
CREATED = ("commits", 0, "entries", 1)


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ((), [], r"audit\.json: expected an object"),
        (("format",), 2, r"audit\.json: format: is not 3"),
        (("files",), {"0": "banner.yaml"}, r"audit\.json: files: expected a list"),
        (("fields",), ["enabled", 1], r"audit\.json: fields: expected strings"),
        (("cells",), ["prod", "prod"], r"audit\.json: cells: names an item twice"),
        (("commits", 0, "author"), 1, r"commits\[0\]\.author: not an index"),
        (("people", 0, "name"), [1, "a"], r"people\[0\]: expected a name and an email"),
        (("people", 0, "email"), None, r"people\[0\]: expected a name and an email"),
        ((*ENTRY, "file"), 2, r"entries\[0\]\.file: not an index"),
        ((*ENTRY, "file"), -1, r"entries\[0\]\.file: not an index"),
        ((*ENTRY, "file"), True, r"entries\[0\]\.file: not an index"),
        ((*ENTRY, "file"), "banner.yaml", r"entries\[0\]\.file: not an index"),
        ((*ENTRY, "previous_file"), 5, r"entries\[0\]\.previous_file: not an index"),
        ((*ENTRY, "previous_file"), None, r"previous_file: null is written by omission"),
        ((*ENTRY, "fields", 0, 0), 2, r"entries\[0\]\.fields\[0\]: expected \[field"),
        ((*ENTRY, "fields", 0, 0), "enabled", r"entries\[0\]\.fields\[0\]: expected"),
        ((*ENTRY, "values", 0, 2), [0, 2], r"entries\[0\]\.values\[0\]: a cell is not an"),
        ((*ENTRY, "values", 0, 2), ["prod"], r"entries\[0\]\.values\[0\]: a cell is not"),
        (CREATED, {"file": None}, r"entries\[1\]\.flag: missing, and the file"),
        ((*CREATED, "fields", "names"), [0, 2], r"entries\[1\]\.fields\.names: expected"),
        ((*CREATED, "fields", "names"), [0], r"entries\[1\]\.fields\.names: expected"),
        ((*CREATED, "fields", "to"), [True], r"entries\[1\]\.fields\.to: expected a list"),
        ((*CREATED, "fields"), {"to": [True]}, r"entries\[1\]\.fields: expected names"),
        ((*CREATED, "fields"), {"to": {"enabled": True}}, r"\.fields: expected names and"),
        ((*CREATED, "values", "grid"), 1, r"entries\[1\]\.values\.grid: not an index"),
    ],
)
def test_a_document_compact_does_not_write_is_refused_saying_where(
    path: tuple[Any, ...], value: Any, where: str
) -> None:
    assert expand(VALID)["entries"][0]["previous_file"] == "old.yaml"  # the base is valid
    with pytest.raises(ValueError, match=where):
        expand(_replace(VALID, path, value))


@pytest.mark.parametrize(
    "document",
    [[], {}, {"format": 1, "head": None, "complete": True, "entries": []}, {"format": 3}],
)
def test_another_shape_is_refused(document: Any) -> None:
    with pytest.raises(ValueError, match=r"audit\.json"):
        expand(document)


def test_a_format_2_document_is_refused() -> None:
    """An older flagc's file: neither expanded nor continued (a build reads the history
    whole instead)."""
    older = {**{k: v for k, v in VALID.items() if k not in audit_format.TABLES}, "format": 2}
    with pytest.raises(ValueError, match=r"audit\.json"):
        expand(older)
    with pytest.raises(ValueError, match="format 3"):
        prepend(older, [], None, True)


def _places(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _places(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _places(value, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    damaged = copy.deepcopy(document)
    parent = damaged
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return damaged


@settings(max_examples=150, deadline=None)
@given(log=logs())
def test_headings_are_the_entries_names_and_commits(log: dict[str, Any]) -> None:
    names = ("flag", "change", "timestamp", "reason")
    expected = [
        {**{name: entry[name] for name in names}, "author": {"name": entry["author"]["name"]}}
        for entry in log["entries"]
    ]
    assert list(audit_format.headings(audit_format.compact(log))) == expected
