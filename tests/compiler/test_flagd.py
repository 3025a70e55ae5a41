"""core.flagd and `flagc build`'s OUT/flagd/<environment>.json: flagd's flag definitions,
shaped as schemas/flagd.schema.json says (the subset of flagd's format that flagc writes),
saying what the compiler resolved, deterministic, written atomically, and only for the
environments the project has. What flagd's own provider makes of them is in
tests/server/test_flagd.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.cli import main
from core import flagd
from tests.compiler.helpers import VALIDATOR
from tests.conftest import write_tree

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "flags"
REVISION = "content-0123456789ab"

# The pure function over hand-made snapshot documents ------------------------------------


def snapshot(rows: dict[str, tuple[bool, dict[str, bool]]], apps: list[str]) -> dict[str, Any]:
    """A snapshot (format 2) with one environment, `production`, and one boolean flag
    without rules per row: its environment-wide value and its value per application (what
    flagd.definitions reads). Typed flags, rules and dependencies: tests/core/test_evaluate.py."""

    def cell(value: bool) -> dict[str, Any]:
        return {"variant": "on" if value else "off", "value": value, "source": "default"}

    return {
        "revision": REVISION,
        "environments": ["production"],
        "applications": apps,
        "flags": {
            key: {
                "owner": f"team-{key}",
                "type": "boolean",
                "variants": {"off": False, "on": True},
                "off": "off",
                "depends_on": [],
                "resolved": {
                    "production": {
                        **cell(value),
                        "rules": [],
                        "applications": {app: cell(per_app[app]) for app in apps},
                    }
                },
            }
            for key, (value, per_app) in rows.items()
        },
    }


def targeting(variant: str, applications: list[str]) -> dict[str, Any]:
    return {"if": [{"in": [{"var": "application"}, applications]}, variant, None]}


APPS = ["web", "ios", "android"]
CASES = [  # environment-wide value, (web, ios, android) -> defaultVariant, targeting
    (True, (True, True, True), "on", None),
    (False, (False, False, False), "off", None),
    (False, (False, True, False), "off", targeting("on", ["ios"])),
    (True, (False, True, False), "on", targeting("off", ["android", "web"])),
    (False, (True, True, True), "off", targeting("on", ["android", "ios", "web"])),
]


@pytest.mark.parametrize(("value", "per_app", "default", "rule"), CASES)
def test_one_flag_says_the_environment_wide_value_and_the_applications_that_differ(
    value: bool, per_app: tuple[bool, ...], default: str, rule: dict[str, Any] | None
) -> None:
    rows = {"checkout": (value, dict(zip(APPS, per_app, strict=True)))}
    data = flagd.definitions(snapshot(rows, APPS))["production"]
    expected: dict[str, Any] = {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": default,
        "metadata": {"owner": "team-checkout", "revision": REVISION},
    }
    if rule is not None:
        expected["targeting"] = rule
    document = json.loads(data)
    assert document == {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "metadata": {"environment": "production", "revision": REVISION},
        "flags": {"checkout": expected},
    }
    VALIDATOR.validate(document)


def test_a_project_without_applications_has_no_targeting() -> None:
    data = flagd.definitions(snapshot({"a": (True, {}), "b": (False, {})}, []))["production"]
    flags = json.loads(data)["flags"]
    assert {key: flag["defaultVariant"] for key, flag in flags.items()} == {"a": "on", "b": "off"}
    assert not any("targeting" in flag for flag in flags.values())


def test_the_bytes_are_canonical_and_do_not_depend_on_the_order_of_flags() -> None:
    rows = {key: (index % 2 == 0, {"web": index % 3 == 0}) for index, key in enumerate("zyxab")}
    document = snapshot(rows, ["web"])
    data = flagd.definitions(document)["production"]
    reordered = {**document, "flags": dict(reversed(document["flags"].items()))}
    assert flagd.definitions(reordered)["production"] == data
    assert flagd.definitions(document)["production"] == data
    assert data.endswith(b"}\n")
    assert data.count(b"\n") == 1
    assert data.startswith(b'{"$schema":"https://flagd.dev/schema/v0/flags.json","flags":{"a":')
    assert json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode() + b"\n" == (
        data
    )


# What `flagc build` writes --------------------------------------------------------------


def cells(value: bool, **applications: bool) -> tuple[bool, dict[str, bool]]:
    """A row of `snapshot`: `value` everywhere but in the `applications` given."""
    return value, {app: applications.get(app, value) for app in APPS}


def test_each_entry_stands_where_its_span_says() -> None:
    """An entry is its bytes before the metadata, the metadata, and its bytes after: what
    a later build takes again (core.flagd.refreshed)."""
    rows = {"a": cells(True, web=False), "b": cells(False), "c": cells(False, ios=True)}
    document = snapshot(rows, APPS)
    file = flagd.files(document)["production"]
    assert file.data == flagd.definitions(document)["production"]
    entries = json.loads(file.data)["flags"]
    for key, (a, b, c, d) in file.spans.items():
        metadata = json.dumps(entries[key]["metadata"], separators=(",", ":")).encode()
        rebuilt = file.data[a:b] + b',"metadata":' + metadata + b"," + file.data[c:d]
        assert json.loads(rebuilt) == entries[key]


@pytest.mark.parametrize("changed", [set(), {"b"}, {"a", "b", "c"}])
def test_a_refreshed_file_is_the_file_made_anew(changed: set[str]) -> None:
    """Taken from an earlier file at another revision (with an entry added and one gone),
    only the `changed` entries made again: the bytes and spans of a file made anew."""
    before = snapshot({"a": cells(True), "b": cells(False), "gone": cells(True)}, APPS)
    now = snapshot({"a": cells(True), "b": cells(False, ios=True), "c": cells(True)}, APPS)
    now["revision"] = "f" * 40 + "-dirty"  # another length: every later span moves
    previous = flagd.files(before)["production"]
    refreshed = flagd.refreshed(previous, REVISION, now, "production", changed | {"c"})
    expected = flagd.files(now)["production"]
    if "b" in changed:
        assert refreshed == expected
    else:  # b's entry was taken as it was: its old targeting, the new revision
        assert refreshed.data != expected.data
        assert json.loads(refreshed.data)["flags"]["b"] == {
            **json.loads(flagd.files({**before, "revision": now["revision"]})["production"].data)[
                "flags"
            ]["b"]
        }


KEYS = st.sampled_from([f"f{n:02}" for n in range(12)])
REVISIONS = st.sampled_from(["a" * 40, "b" * 40, "c" * 40 + "-dirty", REVISION])


@settings(max_examples=60, deadline=None)
@given(
    before=st.dictionaries(KEYS, st.booleans(), max_size=10),
    now=st.dictionaries(KEYS, st.booleans(), max_size=10),
    holding=st.sets(KEYS),
    revisions=st.tuples(REVISIONS, REVISIONS),
)
def test_a_refreshed_file_is_the_file_made_anew_for_any_change(
    before: dict[str, bool],
    now: dict[str, bool],
    holding: set[str],
    revisions: tuple[str, str],
) -> None:
    """Any flags added, removed or changed between two revisions of any length; some flags
    hold the old revision's bytes in a variant's value, so that a run of entries taken
    again is taken entry by entry: the same bytes and spans as a file made anew."""
    old, new = revisions

    def document(rows: dict[str, bool], revision: str) -> dict[str, Any]:
        made = snapshot({key: cells(value) for key, value in rows.items()}, APPS)
        for key in holding & rows.keys():
            flag = made["flags"][key]
            flag["type"], flag["variants"] = "object", {"off": {}, "on": {"a": 1, "revision": old}}
            for cell in [flag["resolved"]["production"], *flag["resolved"]["production"][
                "applications"
            ].values()]:  # fmt: skip
                cell["value"] = flag["variants"][cell["variant"]]
        return {**made, "revision": revision}

    previous = flagd.files(document(before, old))["production"]
    changed = {key for key in now if before.get(key) != now[key]}
    refreshed = flagd.refreshed(previous, old, document(now, new), "production", changed)
    assert refreshed == flagd.files(document(now, new))["production"]


def test_a_file_that_is_not_what_its_spans_say_is_refused() -> None:
    document = snapshot({"a": cells(True), "b": cells(False)}, APPS)
    previous = flagd.files(document)["production"]
    shifted = flagd.File(b" " + previous.data, previous.spans)
    with pytest.raises(ValueError, match="not what its spans say"):
        flagd.refreshed(shifted, REVISION, document, "production", set())


def build(folder: Path, out: Path) -> int:
    return main(["build", str(folder), "-o", str(out)])


def written(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((out / "flagd").iterdir())}


def check_against_snapshot(out: Path) -> None:
    """Every file follows the schema and says, for each flag, what the snapshot resolved:
    the environment-wide value as default, and exactly the applications that differ."""
    document = json.loads((out / "snapshot.json").read_bytes())
    assert sorted(written(out)) == sorted(f"{env}.json" for env in document["environments"])
    for environment in document["environments"]:
        data = (out / "flagd" / f"{environment}.json").read_bytes()
        assert data == flagd.definitions(document)[environment]
        definition = json.loads(data)
        VALIDATOR.validate(definition)
        assert definition["metadata"] == {
            "environment": environment,
            "revision": document["revision"],
        }
        assert sorted(definition["flags"]) == sorted(document["flags"])
        for key, flag in document["flags"].items():
            check_flag(definition["flags"][key], flag, environment, document["revision"])


def check_flag(emitted: dict[str, Any], flag: dict[str, Any], environment: str, rev: str) -> None:
    """The variants, default and metadata; and for a boolean flag without rules or
    dependencies, format 1's targeting. What flagd makes of any other targeting is held to
    core.evaluate by tests/core/test_evaluate.py."""
    row = flag["resolved"][environment]
    variant = {True: "on", False: "off"}
    assert emitted["variants"] == flag["variants"]
    assert emitted["defaultVariant"] == row["variant"]
    assert emitted["metadata"] == {"owner": flag["owner"], "revision": rev}
    if flag["type"] != "boolean" or row["rules"] or flag["depends_on"]:
        return
    differing = sorted(
        app for app, cell in row["applications"].items() if cell["value"] != row["value"]
    )
    if differing:
        condition, then, otherwise = emitted["targeting"]["if"]
        assert condition == {"in": [{"var": "application"}, differing]}
        assert (then, otherwise) == (variant[not row["value"]], None)
    else:
        assert "targeting" not in emitted


def test_the_example_tree_builds_one_file_per_environment(tmp_path: Path) -> None:
    folder = shutil.copytree(EXAMPLE, tmp_path / "flags")
    assert build(folder, tmp_path / "out") == 0
    check_against_snapshot(tmp_path / "out")
    # The example has flags whose applications differ, and flags whose do not.
    production = json.loads((tmp_path / "out" / "flagd" / "production.json").read_bytes())
    assert {"targeting" in flag for flag in production["flags"].values()} == {True, False}


def test_builds_of_the_same_flags_are_byte_identical(tmp_path: Path) -> None:
    first = shutil.copytree(EXAMPLE, tmp_path / "one" / "flags")
    second = shutil.copytree(EXAMPLE, tmp_path / "elsewhere" / "two" / "flags")
    assert build(first, tmp_path / "a") == 0
    assert build(first, tmp_path / "b") == 0
    assert build(second, tmp_path / "c") == 0
    assert written(tmp_path / "a") == written(tmp_path / "b") == written(tmp_path / "c")


# A dependency's targeting is inlined into its dependent only where it can serve its
# `off`: dependency rules (production only) -> the dependent's targeting in production.
BASE = "description: d\nowner: o\n"
ROLLOUT = {"fractional": [{"cat": ["s", ":", {"var": "targetingKey"}]}, ["on", 20], ["off", 80]]}
GATES = [
    pytest.param(  # rules that only serve `on` in a flag that is on: never off, no gate
        "enabled: true\nrules:\n  - when: {country: [NL]}\n    serve: on\n",
        None,
        id="never-off",
    ),
    pytest.param(  # a rollout whose `off` has no weight: never off either
        "enabled: true\nrules:\n  - rollout: {on: 100, off: 0}\n",
        None,
        id="off-of-weight-0",
    ),
    pytest.param(  # a rollout that can serve `off`: inlined (the dependent's shares the seed)
        "enabled: true\nrules:\n  - rollout: {on: 50, off: 50}\n    seed: s\n",
        "inlined",
        id="sometimes-off",
    ),
]


@pytest.mark.parametrize(("dependency", "targeting"), GATES)
def test_a_dependency_is_inlined_only_where_it_can_serve_its_off(
    tmp_path: Path, dependency: str, targeting: str | None
) -> None:
    files = {
        "_project.yaml": "environments: [production]\napplications: [web]\n",
        "dep.yaml": BASE + dependency,
        "flag.yaml": BASE + "enabled: false\ndepends_on: [dep]\n"
        "rules:\n  - rollout: {on: 20, off: 80}\n    seed: s\n",
    }
    out = tmp_path / "out"
    assert build(write_tree(tmp_path / "flags", files), out) == 0
    flags = json.loads((out / "flagd" / "production.json").read_bytes())["flags"]
    found = flags["flag"]["targeting"]
    if targeting == "inlined":
        assert found["if"][:2] == [{"===": [flags["dep"]["targeting"], "off"]}, "off"]
    elif targeting is None:  # no gate: the flag's own rollout alone
        assert found == {"if": [{"!==": [{"var": "targetingKey"}, None]}, ROLLOUT, "off"]}


def test_rules_that_serve_only_the_cells_variant_make_no_targeting(tmp_path: Path) -> None:
    files = {
        "_project.yaml": "environments: [production]\napplications: [web]\n",
        "flag.yaml": BASE + "enabled: false\nrules:\n  - when: {country: [NL]}\n    serve: off\n",
    }
    out = tmp_path / "out"
    assert build(write_tree(tmp_path / "flags", files), out) in (0, 1)  # 1: warnings only
    flags = json.loads((out / "flagd" / "production.json").read_bytes())["flags"]
    assert "targeting" not in flags["flag"]


PROJECT = "environments: [development, staging, production]\napplications: [web, ios]\n"
CHECKOUT = (
    "description: Single-page checkout\nowner: team-checkout\nenabled: false\n"
    "applications:\n  ios: true\n"
    "environments:\n  production:\n    enabled: true\n    applications:\n      web: false\n"
)


def test_a_rebuild_replaces_files_and_removes_those_of_environments_gone(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "flags", {"_project.yaml": PROJECT, "checkout.yaml": CHECKOUT})
    out = tmp_path / "out"
    assert build(folder, out) == 0
    assert sorted(written(out)) == ["development.json", "production.json", "staging.json"]
    production = out / "flagd" / "production.json"
    before = production.stat().st_ino
    write_tree(out / "flagd", {"qa.json": "{}\n", "README.txt": "kept\n"})
    write_tree(folder, {"_project.yaml": PROJECT.replace("staging, ", "")})

    assert build(folder, out) == 0
    assert sorted(written(out)) == ["README.txt", "development.json", "production.json"]
    assert production.stat().st_ino != before  # a new file renamed into place, not rewritten
    (out / "flagd" / "README.txt").unlink()
    check_against_snapshot(out)


def test_a_failed_build_leaves_the_files_alone(tmp_path: Path) -> None:
    folder = write_tree(tmp_path / "flags", {"_project.yaml": PROJECT, "checkout.yaml": CHECKOUT})
    out = tmp_path / "out"
    assert build(folder, out) == 0
    before = {path: (path.read_bytes(), path.stat()) for path in (out / "flagd").iterdir()}
    write_tree(folder, {"checkout.yaml": CHECKOUT.replace("enabled: false", "enabled: maybe")})
    assert build(folder, out) == 1
    after = {path: (path.read_bytes(), path.stat()) for path in (out / "flagd").iterdir()}
    assert after.keys() == before.keys()
    for path, (data, stat) in before.items():
        assert after[path][0] == data
        assert after[path][1].st_ino == stat.st_ino


@pytest.mark.parametrize(
    "blocker",
    [
        pytest.param(lambda out: write_tree(out, {"flagd": "a file\n"}), id="flagd-is-a-file"),
        pytest.param(
            lambda out: (out / "flagd" / "staging.json").mkdir(parents=True),
            id="an-environment-file-is-a-folder",
        ),
    ],
)
def test_an_output_in_the_way_exits_2_without_the_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], blocker: Any
) -> None:
    folder = write_tree(tmp_path / "flags", {"_project.yaml": PROJECT, "checkout.yaml": CHECKOUT})
    out = tmp_path / "out"
    blocker(out)
    assert build(folder, out) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    error = [line for line in err.splitlines() if line.startswith("flagc: error:")]
    assert len(error) == 1
    assert str(out / "flagd") in error[0]
    assert not (out / "snapshot.json").exists()


MUTATIONS = {  # what flagd would refuse or misread, and what flagc never writes
    "null metadata": lambda flag: flag["metadata"].update(owner=None),
    "unknown variant": lambda flag: flag.update(defaultVariant="maybe"),
    "a third variant": lambda flag: flag["variants"].update(maybe=True),
    "disabled": lambda flag: flag.update(state="DISABLED"),
    "an unknown field": lambda flag: flag.update(description="flagd refuses it"),
}


@pytest.mark.parametrize("mutate", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_the_schema_refuses_what_flagc_never_writes(mutate: Any) -> None:
    data = flagd.definitions(snapshot({"checkout": (False, {"ios": True})}, ["ios"]))
    document = json.loads(data["production"])
    VALIDATOR.validate(document)
    mutate(document["flags"]["checkout"])
    assert not VALIDATOR.is_valid(document)
