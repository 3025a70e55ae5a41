"""Issue 12, part 4 and the server half of 5: flagserve trusts no build for its digest alone,
and never waits on a file.

Each case edits a real build by hand and recomputes its digest (as an attacker, or a
careless script, would), then publishes it as flagc does. Every one was served before,
with /readyz reporting nothing; now each is refused at start-up (exit 2, the reason on
stderr) and on reload (the last good build stays; /readyz and /metrics count the refusal).
A FIFO in place of any file of a build is refused at once, never read. And the written-out
shape checks of `core.verify` never accept what the JSON Schemas refuse (hypothesis).
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import falcon.testing
import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import publish
from compiler.cli import main as flagc
from core import canonical, flagd, verify
from core.model import Flag
from core.resolve import Grid, resolve
from core.rows import resolved_rows, steps
from core.schemas import schema_document
from server import metrics
from server.app import create_app
from server.store import Store
from tests.conftest import git_in
from tests.server.conftest import FLAGS, Built, built_in_git
from tests.server.helpers import finish, running, sample, wait_until

Document = dict[str, Any]
Edit = Callable[[Document, Document], None]  # edits (snapshot, audit) in place


def read_build(out: Path) -> tuple[Document, Document]:
    return orjson.loads((out / "snapshot.json").read_bytes()), orjson.loads(
        (out / "audit.json").read_bytes()
    )


def publish_edited(out: Path, snapshot: Document, audit: Document, **flagd_files: bytes) -> None:
    """Publish the documents as one build, the snapshot's digest recomputed, with flagd's
    files as the snapshot gives them (or as given)."""
    snapshot["digest"] = canonical.digest_of(snapshot)
    files = flagd.definitions(snapshot)
    files.update(flagd_files)
    with publish.locked(out):
        publish.publish(out, canonical.serialize(snapshot), canonical.serialize(audit), files)


def reresolve(snapshot: Document, key: str) -> None:
    """Set a flag's `resolved` from its declared fields, as the compiler would."""
    flag = snapshot["flags"][key]
    declared = {name: flag[name] for name in ("description", "owner", "enabled")}
    declared |= {"environments": flag["environments"], "applications": flag["applications"]}
    grid = Grid(tuple(snapshot["environments"]), tuple(snapshot["applications"]))
    model = Flag.model_validate(declared)
    flag["default"] = model.default_variant
    flag["resolved"] = resolved_rows(key, model, resolve(grid, {key: model})[key], grid)


def unknown_dependency(snapshot: Document, audit: Document) -> None:
    snapshot["flags"]["new-checkout"]["depends_on"] = ["nope", "pricing-engine"]


def on_where_dependency_off(snapshot: Document, audit: Document) -> None:
    snapshot["flags"]["pricing-engine"]["enabled"] = False
    reresolve(snapshot, "pricing-engine")


def invalid_key(snapshot: Document, audit: Document) -> None:
    flag = snapshot["flags"].pop("banner")
    snapshot["flags"]["Banner!"] = {**flag, "key": "Banner!"}


def duplicated_environment(snapshot: Document, audit: Document) -> None:
    snapshot["environments"].append("staging")


def null_description(snapshot: Document, audit: Document) -> None:
    snapshot["flags"]["banner"]["description"] = None


def garbage_timestamp(snapshot: Document, audit: Document) -> None:
    audit["commits"][0]["timestamp"] = "garbage"


def dependents_not_mirrored(snapshot: Document, audit: Document) -> None:
    snapshot["flags"]["pricing-engine"]["dependents"] = []


def cycle(snapshot: Document, audit: Document) -> None:
    snapshot["flags"]["pricing-engine"]["depends_on"] = ["new-checkout"]
    snapshot["flags"]["new-checkout"]["dependents"] = ["pricing-engine"]


def resolved_edited(snapshot: Document, audit: Document) -> None:
    snapshot["flags"]["banner"]["resolved"]["production"]["value"] = True


def integer_for_boolean(snapshot: Document, audit: Document) -> None:
    snapshot["flags"]["banner"]["enabled"] = 0


def format_2(snapshot: Document, audit: Document) -> None:
    snapshot["format"] = 2  # a build of an older flagc


def audit_of_another_build(snapshot: Document, audit: Document) -> None:
    audit["head"] = "0" * 40


def audit_out_of_order(snapshot: Document, audit: Document) -> None:
    audit["commits"].append(audit["commits"][0])


def audit_format_2(snapshot: Document, audit: Document) -> None:
    """An older flagc's audit.json (format 2: no tables of files, fields and cells)."""
    for name in ("files", "fields", "cells"):
        del audit[name]
    audit["format"] = 2


def audit_file_out_of_its_table(snapshot: Document, audit: Document) -> None:
    audit["commits"][0]["entries"][0]["file"] = len(audit["files"])


def audit_field_out_of_its_table(snapshot: Document, audit: Document) -> None:
    """A created flag's fields name one past the table's end."""
    entry = next(
        e for c in audit["commits"] for e in c["entries"] if "names" in e.get("fields", ())
    )
    entry["fields"]["names"][0] = len(audit["fields"])


def audit_cell_out_of_its_table(snapshot: Document, audit: Document) -> None:
    audit["commits"][0]["entries"][0]["values"] = [[True, False, [len(audit["cells"])]]]


def audit_files_named_twice(snapshot: Document, audit: Document) -> None:
    audit["files"].append(audit["files"][0])


def audit_fields_as_an_object(snapshot: Document, audit: Document) -> None:
    audit["fields"] = dict.fromkeys(audit["fields"], 0)


CASES: list[tuple[Edit, str]] = [
    (unknown_dependency, "flags.new-checkout.depends_on: 'nope' is no flag"),
    (on_where_dependency_off, "new-checkout is on in development/ios, but its dependency"),
    (invalid_key, "'Banner!' does not match"),
    (duplicated_environment, "environments: names a value twice"),
    (null_description, "flags.banner.description: expected a string, got null"),
    (garbage_timestamp, "commits[0].timestamp: 'garbage' is not a date-time"),
    (dependents_not_mirrored, "flags.pricing-engine.dependents: [] but the flags that depend"),
    (cycle, "dependency cycle: "),
    (resolved_edited, "resolved.production: {'rules': [], 'source': 'default', 'value': True"),
    (integer_for_boolean, "flags.banner.enabled: expected true or false, got 0"),
    (format_2, "snapshot.json: format 2 is not 3"),
    (audit_of_another_build, "the two files are from different builds"),
    (audit_out_of_order, "appears again after another commit"),
    (audit_format_2, "audit.json: format 2 is not 3: rebuild with this flagc"),
    (audit_file_out_of_its_table, "entries[0].file: not an index of its table"),
    (audit_field_out_of_its_table, "fields.names: expected a list of two indexes of fields"),
    (audit_cell_out_of_its_table, "values[0]: a cell is not an index of cells"),
    (audit_files_named_twice, "audit.json: files: names an item twice"),
    (audit_fields_as_an_object, "audit.json: fields: expected a list of strings"),
]
IDS = [edit.__name__ for edit, _ in CASES]


@pytest.mark.parametrize(("edit", "reason"), CASES, ids=IDS)
def test_a_hand_edited_build_stops_the_start_with_exit_2(
    built: Built, edit: Edit, reason: str
) -> None:
    snapshot, audit = read_build(built.out)
    edit(snapshot, audit)
    publish_edited(built.out, snapshot, audit)
    started = time.monotonic()
    done = finish([str(built.out)])
    assert done.returncode == 2, done.stderr
    assert "flagserve: error: " in done.stderr
    assert reason in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(("edit", "reason"), CASES, ids=IDS)
def test_a_hand_edited_build_is_refused_on_reload(
    built: Built, store: Store, edit: Edit, reason: str
) -> None:
    metrics.observe(store)
    good = store.current
    failures = sample("flagserve_reloads_total", result="failure")
    snapshot, audit = read_build(built.out)
    edit(snapshot, audit)
    publish_edited(built.out, snapshot, audit)

    assert store.reload() is False
    assert store.current is good
    assert store.failures == 1
    assert store.last_error is not None
    assert reason in store.last_error
    assert sample("flagserve_reloads_total", result="failure") == failures + 1
    ready = falcon.testing.TestClient(create_app(store)).simulate_get("/readyz").json
    assert ready["revision"] == good.revision
    assert ready["reload_failures"] == 1
    assert reason in ready["last_error"]


def test_the_pages_that_answered_500_answer_for_the_build_kept(built: Built, store: Store) -> None:
    """`description: null` broke / and /?sort=expires, `timestamp: "garbage"` /api/v1/audit:
    the build holding them is refused, so they answer from the good one."""
    snapshot, audit = read_build(built.out)
    null_description(snapshot, audit)
    garbage_timestamp(snapshot, audit)
    publish_edited(built.out, snapshot, audit)
    assert store.reload() is False
    client = falcon.testing.TestClient(create_app(store))
    for path in ("/", "/?sort=expires", "/api/v1/audit"):
        assert client.simulate_get(path).status_code == 200, path


FLAGD_CASES: list[tuple[str, Callable[[Document], dict[str, bytes]], str]] = [
    (
        "another revision",
        lambda s: {"production": flagd.definitions({**s, "revision": "1" * 40})["production"]},
        "flagd/production.json differs from the snapshot",
    ),
    (
        "an environment too many",
        lambda s: {"qa": flagd.definitions(s)["production"]},
        "flagd/qa.json: no such environment",
    ),
]


@pytest.mark.parametrize(("_name", "files", "reason"), FLAGD_CASES, ids=[c[0] for c in FLAGD_CASES])
def test_flagd_files_of_another_build_are_refused(
    built: Built,
    store: Store,
    _name: str,
    files: Callable[[Document], dict[str, bytes]],
    reason: str,
) -> None:
    snapshot, audit = read_build(built.out)
    snapshot["flags"]["banner"]["description"] = "Edited"  # a build of its own
    publish_edited(built.out, snapshot, audit, **files(snapshot))
    assert store.reload() is False
    assert store.last_error is not None
    assert reason in store.last_error


@pytest.mark.parametrize("part", ["audit.json", "flagd"])
def test_a_build_flagc_swapped_in_must_be_whole(built: Built, store: Store, part: str) -> None:
    """A plain folder may lack audit.json and flagd/ (made by hand); a build of flagc's,
    which always has them, is refused without one."""
    path = (built.out / part).resolve()
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert store.reload(force=True) is False
    assert store.last_error is not None
    assert f"{part} does not exist" in store.last_error


# -- FIFOs: never opened for reading, never waited on --------------------------------------

FIFO_PLACES = ["snapshot.json", "audit.json", "flagd/production.json"]


def plant_fifo(out: Path, place: str) -> None:
    """Replace a file of the current build by a FIFO that nobody writes to."""
    path = (out / place).resolve()
    path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize("place", FIFO_PLACES)
def test_a_fifo_in_a_build_stops_the_start_at_once(built: Built, place: str) -> None:
    plant_fifo(built.out, place)
    started = time.monotonic()
    done = finish([str(built.out)])
    assert done.returncode == 2, done.stderr
    assert f"{place.rpartition('/')[2]} is a FIFO (named pipe), not a regular file" in done.stderr
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("place", FIFO_PLACES)
def test_a_fifo_is_refused_on_reload_without_blocking(
    built: Built, store: Store, place: str
) -> None:
    good = store.current
    plant_fifo(built.out, place)
    swapped: list[bool] = []
    # in a thread, so that a reload that waits on the FIFO fails the test instead of hanging it
    reloading = threading.Thread(target=lambda: swapped.append(store.reload()), daemon=True)
    reloading.start()
    reloading.join(timeout=5)
    assert swapped == [False], "the reload waited on the FIFO"
    assert store.current is good
    assert store.last_error is not None
    assert "is a FIFO (named pipe), not a regular file" in store.last_error


def test_a_served_fifo_is_refused_and_sigterm_stops_flagserve(built: Built, tmp_path: Path) -> None:
    """The master and both workers poll the build; SIGHUP re-forks; SIGTERM must still stop
    everything within gunicorn's graceful timeout (10 s)."""
    log = tmp_path / "flagserve.log"
    with running([str(built.out)], log) as live:
        revision = live.get("/readyz").json()["revision"]
        plant_fifo(built.out, "audit.json")
        wait_until(lambda: "is a FIFO" in log.read_text(), what="the refusal", live=live)
        wait_until(
            lambda: all(live.get("/readyz").json()["reload_failures"] >= 1 for _ in range(6)),
            what="every worker refusing it",
            live=live,
        )
        os.kill(live.process.pid, signal.SIGHUP)
        time.sleep(1)
        assert live.get("/readyz").json()["revision"] == revision
        assert live.get("/api/v1/audit").status_code == 200
        started = time.monotonic()
        os.killpg(live.process.pid, signal.SIGTERM)
        live.process.wait(timeout=12)
        assert time.monotonic() - started < 11


# -- the written-out checks never accept what the schemas refuse ----------------------------

VALIDATORS = {
    name: jsonschema.Draft202012Validator(
        schema_document(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for name in ("snapshot", "audit")
}
ODD_VALUES = [
    None, True, False, 0, 1, 2.5, "", "x", "Bad Name", "production", "2026-13-40", "garbage",
    "2026-01-02T03:04:05+01:00", "2026-01-02", [], ["a", "a"], ["Bad"], {}, {"x": 1},
    {"value": True, "source": "default"}, {"value": 1, "source": "nowhere"},
]  # fmt: skip


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document (keys of objects, indexes of lists)."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


def mutate(document: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    """A copy with the value at `path` replaced, removed, or given an extra key."""
    mutated = copy.deepcopy(document)
    if not path:
        return value
    parent = mutated
    for part in path[:-1]:
        parent = parent[part]
    if how == "remove" and isinstance(parent, dict):
        del parent[path[-1]]
    elif how == "extra" and isinstance(parent[path[-1]], dict):
        parent[path[-1]]["unexpected"] = value
    else:
        parent[path[-1]] = value
    return mutated


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> tuple[Document, Document]:
    """A small real build (the server tests' example): jsonschema is slow on large ones."""
    root = tmp_path_factory.mktemp("verify")
    message = "Add the pricing engine, the banner, the checkout and the launch"
    out = built_in_git(root, {**FLAGS, "growth/launch.yaml": LAUNCH}, message)
    # A change too, so that the log holds each form the file has (core.audit_format).
    git = git_in(root / "repo")
    banner = root / "repo" / "flags" / "growth" / "banner.yaml"
    banner.write_text(FLAGS["growth/banner.yaml"].replace("false", "true"), encoding="utf-8")
    git("commit", "--quiet", "--all", "--message", "Show the banner")
    assert flagc(["build", str(root / "repo" / "flags"), "-o", str(out)]) == 0
    return read_build(out)


LAUNCH = """\
description: A launch on a schedule
owner: team-growth
enabled: false
environments:
  production:
    enabled: false
    schedule:
      - at: 2031-01-11T09:00:00+01:00
        enabled: true
schedule:
  - ramp:
      from: 2031-01-01T00:00:00Z
      to: 2031-01-01T05:00:00Z
      variant: on
"""


def problems_of(
    which: str, mutated: Any, documents: tuple[Document, Document], path: tuple[Any, ...]
) -> tuple[bool, list[str]]:
    """Whether the schema refuses the document mutated at `path`, and what verify says."""
    refused = any(True for _ in VALIDATORS[which].iter_errors(mutated))
    if which == "audit":
        return refused, verify.audit_problems(mutated, documents[0]["revision"])
    if path[:1] != ("digest",):  # so that a refusal is for the shape, not a stale digest
        with contextlib.suppress(KeyError, TypeError, AttributeError):
            mutated["digest"] = canonical.digest_of(mutated)
    return refused, verify.snapshot_problems(mutated)


@pytest.mark.parametrize("which", ["snapshot", "audit"])
def test_what_the_schemas_refuse_is_refused_at_every_field(
    documents: tuple[Document, Document], which: str
) -> None:
    """Every place outside the resolved cells, every odd value, removed, given an extra key."""
    document = documents[0] if which == "snapshot" else documents[1]
    accepted = []
    for path in paths(document):
        if "resolved" in path:
            continue
        for how, value in [("remove", None), ("extra", 1)] + [("replace", v) for v in ODD_VALUES]:
            mutated = mutate(document, path, how, value)
            refused, problems = problems_of(which, mutated, documents, path)
            if refused and not problems:
                accepted.append(f"{path} {how} {value!r}")
    assert accepted == [], "the schema refuses these, verify accepted them"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_what_the_schemas_refuse_is_refused(
    documents: tuple[Document, Document], data: st.DataObject
) -> None:
    """Anywhere, the resolved cells included, one odd value at a time."""
    which = data.draw(st.sampled_from(["snapshot", "audit"]))
    document = documents[0] if which == "snapshot" else documents[1]
    path = data.draw(st.sampled_from(paths(document)))
    how = data.draw(st.sampled_from(["replace", "remove", "extra"]))
    mutated = mutate(document, path, how, data.draw(st.sampled_from(ODD_VALUES)))
    refused, problems = problems_of(which, mutated, documents, path)
    if refused:
        assert problems, f"{which} {path} {how}: the schema refuses it, verify accepted it"


def test_a_build_as_flagc_writes_it_is_accepted(documents: tuple[Document, Document]) -> None:
    snapshot, audit = documents
    for name, document in (("snapshot", snapshot), ("audit", audit)):
        assert list(VALIDATORS[name].iter_errors(document)) == []
    assert verify.snapshot_problems(snapshot) == []
    assert verify.audit_problems(audit, snapshot["revision"]) == []


# -- schedules: the steps are what the declared schedule gives, and hold dependencies --------


def test_steps_that_are_not_the_schedules_are_refused(documents: tuple[Document, Document]) -> None:
    snapshot = copy.deepcopy(documents[0])
    steps = snapshot["flags"]["launch"]["steps"]
    assert [step["at"] for step in steps][-1] == "2031-01-11T08:00:00Z"
    steps[-1]["at"] = "2031-01-11T09:00:00Z"  # an hour late
    snapshot["digest"] = canonical.digest_of(snapshot)
    assert verify.snapshot_problems(snapshot) == [
        "snapshot.json: flags.launch.steps: not what the schedule gives"
    ]


@pytest.mark.parametrize("removed", ["steps", "schedule"])
def test_a_schedule_without_its_steps_is_refused(
    documents: tuple[Document, Document], removed: str
) -> None:
    snapshot = copy.deepcopy(documents[0])
    del snapshot["flags"]["launch"][removed]
    snapshot["digest"] = canonical.digest_of(snapshot)
    assert verify.snapshot_problems(snapshot) == [
        "snapshot.json: flags.launch: has one of 'schedule' and 'steps' without the other"
    ]


@pytest.mark.parametrize("at", ["2030-05-01T12:00:00Z", "1970-01-01T00:00:00Z"])
def test_a_dependency_switched_off_by_a_step_is_refused(
    documents: tuple[Document, Document], at: str
) -> None:
    """pricing-engine is on everywhere; a step turns it off in production while
    new-checkout, which depends on it, stays on for web there (at the first moment a
    schedule may name too, 0)."""
    snapshot = copy.deepcopy(documents[0])
    engine = snapshot["flags"]["pricing-engine"]
    engine["environments"] = {"production": {"schedule": [{"at": at, "enabled": False}]}}
    declared = {name: engine[name] for name in ("description", "owner", "enabled")}
    model = Flag.model_validate({**declared, "environments": engine["environments"]})
    grid = Grid(tuple(snapshot["environments"]), tuple(snapshot["applications"]))
    engine["schedule"], engine["steps"] = [], steps("pricing-engine", model, grid)
    snapshot["digest"] = canonical.digest_of(snapshot)
    assert verify.snapshot_problems(snapshot) == [
        "snapshot.json: flags.new-checkout is on in production/web, but its dependency "
        f"pricing-engine is off there from {at}"
    ]
