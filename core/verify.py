"""Verify a build before it is served: plain data in, the reasons to refuse it out.

A build is served only when every rule holds; each broken one is a reason, naming the file
and the place in it. The rules:

- Shape: `snapshot.json` and `audit.json` have exactly the shape their JSON Schemas in
  `schemas/` describe (fields, types, patterns, enumerations, unique names, dates). The
  schemas are read once, here, for their patterns and field lists; the checks themselves are
  written out, since jsonschema needs 12 s for a snapshot of 2,000 flags and 70 s for
  10,000, and these take a fraction of a second. tests/security/test_verify.py runs both
  over the same documents, valid and mutated, so that they cannot drift apart.
- The snapshot: every flag's `key` is its name; `resolved` has exactly the environments and
  applications, and is what the compiler's own resolution (`core.resolve`) gives for the
  declared fields, which are a valid flag (`core.model.Flag`); every dependency exists,
  `dependents` is exactly the sorted list of flags naming it, no dependency forms a cycle,
  and no flag is on in a cell where a dependency is off; the digest matches the content.
- The audit log (the file, format 3: `core.audit_format`): its head is the commit the
  snapshot was built from (its revision, less `-dirty`), or null when the snapshot is not
  from git; each commit appears once (the log is per commit, newest first); every index
  names an item of its table and every grid's values name each environment once, so that
  it expands to the log served.
- flagd's files: exactly one per environment, each byte for byte what the snapshot gives
  (`core.flagd`), so the same revision and the same values.

Nothing here reads a file or imports git or Falcon: `core.snapshot` reads, this judges.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import pydantic

from core import audit_format
from core.canonical import SNAPSHOT_FORMAT, digest_of, serialize
from core.graph import find_cycle, is_cyclic, strongly_connected
from core.model import Flag
from core.resolve import Grid, Resolution, resolve
from core.rows import Row, declared_fields, resolved_rows, steps
from core.schedule import Phase, phase_index, phases, scheduled, utc_text
from core.schemas import schema_document

MAX_REASONS: Final = 20  # a broken build is refused on the first few; the rest are noise

_SNAPSHOT: Final = schema_document("snapshot")
_AUDIT: Final = schema_document("audit")
_FLAG: Final = _SNAPSHOT["$defs"]["flag"]
_ENTRY: Final = _AUDIT["$defs"]["compact"]  # an entry as the file records it
_COMMIT_SCHEMA: Final = _AUDIT["$defs"]["commit"]
_NAME: Final = re.compile(_SNAPSHOT["$defs"]["name"]["pattern"])
_REVISION: Final = re.compile(_SNAPSHOT["properties"]["revision"]["pattern"])
_DIGEST: Final = re.compile(_SNAPSHOT["properties"]["digest"]["pattern"])
_COMMIT: Final = re.compile(_COMMIT_SCHEMA["properties"]["commit"]["pattern"])
_CHANGES: Final = frozenset(_ENTRY["properties"]["change"]["enum"])
# RFC 3339 (what the schemas' format: date-time means), which Python must also parse: the
# server reads these dates with datetime.fromisoformat.
_DATE_TIME: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_DATE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DECLARED: Final = ("description", "owner", "environments", "applications")
_OPTIONAL: Final = ("depends_on", "tags", "expires", "rules")  # omitted from a flag when empty
_TYPES: Final = tuple(_FLAG["properties"]["type"]["enum"])
_OVERRIDE_FIELDS: Final = frozenset(
    _FLAG["properties"]["environments"]["additionalProperties"]["properties"]
)


class Reasons(list[str]):
    """The reasons found so far; `full` once MAX_REASONS are known, to stop looking."""

    @property
    def full(self) -> bool:
        return len(self) >= MAX_REASONS


def snapshot_problems(document: Any) -> list[str]:
    """Why the snapshot document cannot be served; empty when it can."""
    reasons = Reasons()
    _snapshot_shape(document, reasons)
    if reasons:  # the invariants below need the shape
        return reasons
    if digest_of(document) != document["digest"]:  # edited, or damaged: nothing else counts
        return ["snapshot.json: the snapshot's content does not match its digest"]
    grid = Grid(tuple(document["environments"]), tuple(document["applications"]))
    timelines: dict[str, list[Phase]] = {}
    resolved = _resolutions(document["flags"], grid, reasons, timelines)
    _dependencies(document["flags"], resolved, grid, reasons)
    if not reasons:
        reasons.extend(_disabled_later(document["flags"], resolved, timelines, grid))
        del reasons[MAX_REASONS:]
    return reasons


def _disabled_later(
    flags: Mapping[str, Any],
    resolved: Mapping[str, Resolution],
    timelines: Mapping[str, list[Phase]],
    grid: Grid,
) -> Iterator[str]:
    """No flag on where a dependency is off at any step either: each edge with a flag that
    has a schedule at either end, from each moment either of its two flags changes (each
    phase resolved once); the first broken edge, in key order, is the reason."""
    found: dict[tuple[str, int], Resolution] = {}

    def at(key: str, index: int) -> Resolution:
        if (key, index) not in found:
            found[key, index] = resolve(grid, {key: timelines[key][index].flag})[key]
        return found[key, index]

    for key in sorted(flags):
        for dependency in flags[key]["depends_on"]:
            scheduled_end = key in timelines or dependency in timelines
            if not scheduled_end or key not in resolved or dependency not in resolved:
                continue
            for moment, mine, theirs in _edge_phases(key, dependency, timelines):
                now = {
                    key: resolved[key] if mine is None else at(key, mine),
                    dependency: resolved[dependency] if theirs is None else at(dependency, theirs),
                }
                for reason in _disabled({key: [dependency]}, now, grid):
                    yield f"{reason} from {utc_text(moment)}"
                    return


def _edge_phases(
    key: str, dependency: str, timelines: Mapping[str, list[Phase]]
) -> Iterator[tuple[int, int | None, int | None]]:
    """Each moment either flag of an edge changes, with the index of each flag's phase in
    force from then on (None: a flag without a schedule)."""
    moments = sorted(
        {
            p.start
            for name in (key, dependency)
            for p in timelines.get(name, ())
            if p.start is not None  # a moment may be 0, 1970-01-01T00:00:00Z
        }
    )
    for moment in moments:
        mine, theirs = (
            phase_index(timelines[name], moment) if name in timelines else None
            for name in (key, dependency)
        )
        yield moment, mine, theirs


def audit_problems(document: Any, revision: str) -> list[str]:
    """Why the audit document (the file, format 3) cannot be served beside a snapshot of
    `revision`."""
    return checked_audit(document, revision)[1]


def checked_audit(document: Any, revision: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The log the audit document holds (`core.audit_format.expand`), or None, and why it
    cannot be served beside a snapshot of `revision`."""
    reasons = Reasons()
    _audit_shape(document, reasons)
    if reasons:
        return None, reasons
    head = document["head"]
    built_from = None if revision.startswith("content-") else revision.removesuffix("-dirty")
    if head != built_from:
        reasons.append(
            f"audit.json: its head is {head!r} but the snapshot was built from {built_from!r}: "
            "the two files are from different builds"
        )
    _contiguous(document["commits"], reasons)
    try:
        log = audit_format.expand(document)
    except ValueError as exc:  # an index out of its table, a grid's item count, ...
        reasons.append(str(exc))
        return None, reasons
    return (None if reasons else log), reasons


def flagd_problems(expected: Mapping[str, bytes], found: Mapping[str, bytes]) -> list[str]:
    """Why flagd's files (by environment) are not those of the snapshot (`expected`)."""
    reasons = [
        f"flagd/{name}.json: no such environment in the snapshot"
        for name in sorted(found.keys() - expected.keys())
    ]
    reasons += [f"flagd/{name}.json is missing" for name in sorted(expected.keys() - found.keys())]
    reasons += [
        f"flagd/{name}.json differs from the snapshot (another revision, or edited)"
        for name in sorted(expected.keys() & found.keys())
        if expected[name] != found[name]
    ]
    return reasons[:MAX_REASONS]


# -- shape: what the schemas say, written out ---------------------------------------------


def _shown(value: Any) -> str:
    text = "null" if value is None else repr(value)
    return text if len(text) <= 60 else f"{text[:59]}…"


def _fields(value: Any, where: str, schema: Mapping[str, Any], reasons: Reasons) -> bool:
    """An object with every required field and no other (additionalProperties: false)."""
    if type(value) is not dict:
        reasons.append(f"{where}: expected an object, got {_shown(value)}")
        return False
    missing = [name for name in schema["required"] if name not in value]
    extra = sorted(value.keys() - schema["properties"].keys())
    for name in missing:
        reasons.append(f"{where}: lacks {name!r}")
    for name in extra:
        reasons.append(f"{where}: has an unknown field {name!r}")
    return not missing and not extra


def _text(value: Any, where: str, reasons: Reasons, *, null: bool = False) -> None:
    if not (type(value) is str or (null and value is None)):
        expected = "a string or null" if null else "a string"
        reasons.append(f"{where}: expected {expected}, got {_shown(value)}")


def _matches(value: Any, pattern: re.Pattern[str], where: str, reasons: Reasons) -> None:
    if type(value) is not str or not pattern.search(value):
        reasons.append(f"{where}: {_shown(value)} does not match {pattern.pattern}")


def _boolean(value: Any, where: str, reasons: Reasons, *, null: bool = False) -> None:
    if not (type(value) is bool or (null and value is None)):
        reasons.append(f"{where}: expected true or false, got {_shown(value)}")


def _names(value: Any, where: str, reasons: Reasons) -> None:
    """A list of valid names, each once."""
    if type(value) is not list:
        reasons.append(f"{where}: expected a list of names, got {_shown(value)}")
        return
    for index, name in enumerate(value):
        _matches(name, _NAME, f"{where}[{index}]", reasons)
    if all(type(name) is str for name in value) and len(set(value)) != len(value):
        reasons.append(f"{where}: names a value twice: {_shown(value)}")


def _mapping(
    value: Any, where: str, reasons: Reasons, each: Callable[[Any, str, Reasons], None]
) -> None:
    """An object whose keys are names and whose values pass `each`."""
    if type(value) is not dict:
        reasons.append(f"{where}: expected an object, got {_shown(value)}")
        return
    for name, item in value.items():
        _matches(name, _NAME, f"{where} key", reasons)
        each(item, f"{where}.{name}", reasons)
        if reasons.full:
            return


def _date_time(value: Any, where: str, reasons: Reasons) -> None:
    _when(
        value,
        where,
        reasons,
        _DATE_TIME,
        datetime.datetime.fromisoformat,
        "a date-time (RFC 3339, with an offset)",
    )


def _date(value: Any, where: str, reasons: Reasons) -> None:
    _when(value, where, reasons, _DATE, datetime.date.fromisoformat, "a date (YYYY-MM-DD)")


def _when(
    value: Any,
    where: str,
    reasons: Reasons,
    pattern: re.Pattern[str],
    parse: Callable[[str], object],
    what: str,
) -> None:
    """None, or a string of `pattern` that `parse` takes; else a reason."""
    if value is None:
        return
    if type(value) is str and pattern.fullmatch(value):
        try:
            parse(value)
            return
        except ValueError:
            pass
    reasons.append(f"{where}: {_shown(value)} is not {what}")


def _snapshot_shape(document: Any, reasons: Reasons) -> None:
    if not _fields(document, "snapshot.json", _SNAPSHOT, reasons):
        return
    if type(document["format"]) is not int or document["format"] != SNAPSHOT_FORMAT:
        reasons.append(
            f"snapshot.json: format {_shown(document['format'])} is not {SNAPSHOT_FORMAT}"
        )
    _matches(document["revision"], _REVISION, "snapshot.json: revision", reasons)
    _matches(document["digest"], _DIGEST, "snapshot.json: digest", reasons)
    _names(document["environments"], "snapshot.json: environments", reasons)
    if document["environments"] == []:  # as _project.yaml's schema requires
        reasons.append("snapshot.json: environments: none; a build has at least one")
    _names(document["applications"], "snapshot.json: applications", reasons)
    _mapping(document["flags"], "snapshot.json: flags", reasons, _flag_shape)


def _flag_shape(flag: Any, where: str, reasons: Reasons) -> None:
    if not _fields(flag, where, _FLAG, reasons):
        return
    _matches(flag["key"], _NAME, f"{where}.key", reasons)
    for name in ("file", "description", "owner"):
        _text(flag[name], f"{where}.{name}", reasons)
    for name in ("created_by", "updated_by", "updated_reason"):
        _text(flag[name], f"{where}.{name}", reasons, null=True)
    for name in ("created_at", "updated_at"):
        _date_time(flag[name], f"{where}.{name}", reasons)
    _date(flag["expires"], f"{where}.expires", reasons)
    tags = flag["tags"]
    if type(tags) is not list or any(type(tag) is not str for tag in tags):
        reasons.append(f"{where}.tags: expected a list of strings, got {_shown(tags)}")
    if flag["type"] not in _TYPES:
        reasons.append(f"{where}.type: {_shown(flag['type'])} is not one of {list(_TYPES)}")
    _boolean(flag["enabled"], f"{where}.enabled", reasons, null=True)
    if type(flag["variants"]) is not dict:
        reasons.append(f"{where}.variants: expected an object, got {_shown(flag['variants'])}")
    _matches(flag["default"], _NAME, f"{where}.default", reasons)
    if flag["off"] is not None:
        _matches(flag["off"], _NAME, f"{where}.off", reasons)
    _objects(flag["rules"], f"{where}.rules", reasons)
    _mapping(flag["environments"], f"{where}.environments", reasons, _override_shape)
    _mapping(flag["applications"], f"{where}.applications", reasons, _value)
    _names(flag["depends_on"], f"{where}.depends_on", reasons)
    _names(flag["dependents"], f"{where}.dependents", reasons)
    if type(flag["resolved"]) is not dict:
        reasons.append(f"{where}.resolved: expected an object, got {_shown(flag['resolved'])}")
    _schedule_shape(flag, where, reasons)


def _schedule_shape(flag: dict[str, Any], where: str, reasons: Reasons) -> None:
    """`schedule` and `steps`: both, or neither (a flag without a schedule)."""
    if ("schedule" in flag) != ("steps" in flag):
        reasons.append(f"{where}: has one of 'schedule' and 'steps' without the other")
    elif "schedule" in flag:
        _objects(flag["schedule"], f"{where}.schedule", reasons)
        _each(flag["steps"], f"{where}.steps", reasons, _step_shape)


def _step_shape(step: Any, where: str, reasons: Reasons) -> None:
    if type(step) is not dict or step.keys() != {"at", "resolved"}:
        reasons.append(f"{where}: expected {{at, resolved}}, got {_shown(step)}")
        return
    _date_time(step["at"], f"{where}.at", reasons)
    if type(step["resolved"]) is not dict or any(
        type(row) is not dict for row in step["resolved"].values()
    ):
        reasons.append(f"{where}.resolved: expected an object of rows")


def _value(value: Any, where: str, reasons: Reasons) -> None:
    """A declared value: a boolean, or a variant's name."""
    if type(value) is not bool and type(value) is not str:
        reasons.append(f"{where}: expected a boolean or a variant name, got {_shown(value)}")


def _objects(value: Any, where: str, reasons: Reasons) -> None:
    if type(value) is not list or any(type(item) is not dict for item in value):
        reasons.append(f"{where}: expected a list of objects, got {_shown(value)}")


def _override_shape(value: Any, where: str, reasons: Reasons) -> None:
    if type(value) is bool or type(value) is str:
        return
    if type(value) is not dict or not value.keys() <= _OVERRIDE_FIELDS:
        reasons.append(f"{where}: expected a value or {{{', '.join(sorted(_OVERRIDE_FIELDS))}}}")
        return
    if "enabled" in value:
        _boolean(value["enabled"], f"{where}.enabled", reasons)
    if "default" in value:
        _matches(value["default"], _NAME, f"{where}.default", reasons)
    if "applications" in value:
        _mapping(value["applications"], f"{where}.applications", reasons, _value)
    if "rules" in value:
        _objects(value["rules"], f"{where}.rules", reasons)
    if "schedule" in value:
        _objects(value["schedule"], f"{where}.schedule", reasons)


def _audit_shape(document: Any, reasons: Reasons) -> None:
    """The file's shape (format 3, `core.audit_format`); a file of another format (an
    older flagc's) is refused for that alone, its other differences being noise."""
    if type(document) is dict and "format" in document and not _same_format(document["format"]):
        reasons.append(
            f"audit.json: format {_shown(document['format'])} is not "
            f"{audit_format.FILE_FORMAT}: rebuild with this flagc"
        )
        return
    if not _fields(document, "audit.json", _AUDIT, reasons):
        return
    if document["head"] is not None:
        _matches(document["head"], _COMMIT, "audit.json: head", reasons)
    _boolean(document["complete"], "audit.json: complete", reasons)
    for name in audit_format.TABLES:
        _table(document[name], f"audit.json: {name}", reasons)
    for name, check in (("people", _person), ("grids", _grid), ("commits", _commit)):
        _each(document[name], f"audit.json: {name}", reasons, check)


def _each(
    value: Any, where: str, reasons: Reasons, check: Callable[[Any, str, Reasons], None]
) -> None:
    if type(value) is not list:
        reasons.append(f"{where}: expected a list, got {_shown(value)}")
        return
    for index, item in enumerate(value):
        check(item, f"{where}[{index}]", reasons)
        if reasons.full:
            return


def _person(value: Any, where: str, reasons: Reasons) -> None:
    if _fields(value, where, _AUDIT["$defs"]["person"], reasons):
        _text(value["name"], f"{where}.name", reasons)
        _text(value["email"], f"{where}.email", reasons)


def _grid(value: Any, where: str, reasons: Reasons) -> None:
    if _fields(value, where, _AUDIT["$defs"]["grid"], reasons):
        for name in ("environments", "applications"):
            _strings(value[name], f"{where}.{name}", reasons)


def _same_format(found: Any) -> bool:
    return type(found) is int and found == audit_format.FILE_FORMAT


def _table(value: Any, where: str, reasons: Reasons) -> None:
    """A table of names (files, fields, cells): strings, each once."""
    _strings(value, where, reasons)
    if type(value) is list and len(set(map(str, value))) != len(value):
        reasons.append(f"{where}: names an item twice")


def _strings(value: Any, where: str, reasons: Reasons, *, least: int = 0) -> None:
    if type(value) is not list or len(value) < least or any(type(v) is not str for v in value):
        reasons.append(f"{where}: expected a list of strings, got {_shown(value)}")


def _index(value: Any, where: str, reasons: Reasons, *, null: bool = False) -> None:
    if not (type(value) is int and value >= 0) and not (null and value is None):
        expected = "an index (0 or more) or null" if null else "an index (0 or more)"
        reasons.append(f"{where}: expected {expected}, got {_shown(value)}")


def _indexes(value: Any, where: str, reasons: Reasons, *, least: int = 1) -> None:
    if (
        type(value) is not list
        or len(value) < least
        or any(type(v) is not int or v < 0 for v in value)
    ):
        reasons.append(
            f"{where}: expected a list of {least} or more indexes (0 or more), got {_shown(value)}"
        )


def _commit(value: Any, where: str, reasons: Reasons) -> None:
    if not _fields(value, where, _COMMIT_SCHEMA, reasons):
        return
    _commit_metadata(value, where, reasons)
    entries = value["entries"]
    if type(entries) is not list or not entries:
        reasons.append(f"{where}.entries: expected a list of entries, got {_shown(entries)}")
        return
    for index, entry in enumerate(entries):
        _entry_shape(entry, f"{where}.entries[{index}]", reasons)


def _commit_metadata(value: dict[str, Any], where: str, reasons: Reasons) -> None:
    _matches(value["commit"], _COMMIT, f"{where}.commit", reasons)
    for name in ("author", "committer"):
        if name in value:
            _index(value[name], f"{where}.{name}", reasons)
    for name in ("timestamp", "committed_at"):
        if name in value:
            if value[name] is None:  # which _date_time lets by
                reasons.append(f"{where}.{name}: expected a date-time, got null")
            _date_time(value[name], f"{where}.{name}", reasons)
    for name in ("subject", "reason"):
        if name in value:
            _text(value[name], f"{where}.{name}", reasons)


def _entry_shape(entry: Any, where: str, reasons: Reasons) -> None:
    if not _fields(entry, where, _ENTRY, reasons):
        return
    change = entry.get("change", audit_format.DEFAULT_CHANGE)
    if type(change) is not str or change not in _CHANGES:
        reasons.append(f"{where}.change: {_shown(change)} is not one of {sorted(_CHANGES)}")
    _index(entry["file"], f"{where}.file", reasons, null=True)
    if "previous_file" in entry:
        _index(entry["previous_file"], f"{where}.previous_file", reasons)
    if "flag" in entry:
        _text(entry["flag"], f"{where}.flag", reasons, null=True)
    if "invalid" in entry:
        _text(entry["invalid"], f"{where}.invalid", reasons)
    if "fields" in entry:
        _field_changes(entry["fields"], f"{where}.fields", reasons)
    if "values" in entry:
        _value_changes(entry["values"], f"{where}.values", reasons)


def _one_side(value: Any, where: str, reasons: Reasons, allowed: set[str]) -> str | None:
    """An object of exactly one of `allowed` beside `grid` (if allowed): that one's name."""
    sides = value.keys() & {"to", "from"}
    if (
        not value.keys() <= allowed | {"to", "from"}
        or len(sides) != 1
        or not allowed <= value.keys()
    ):
        expected = " and ".join([*sorted(allowed), "one of to or from"])
        reasons.append(f"{where}: expected {expected}, got {_shown(value)}")
        return None
    return str(sides.pop())


def _field_changes(value: Any, where: str, reasons: Reasons) -> None:
    """[[field, from, to], ...], or {"names": [field, ...], "to": [value, ...]} / "from";
    each field an index."""
    if type(value) is dict:
        side = _one_side(value, where, reasons, {"names"})
        if side is None:
            return
        _indexes(value["names"], f"{where}.names", reasons, least=2)
        if type(value[side]) is not list or not value[side]:
            reasons.append(f"{where}.{side}: expected a list of values, got {_shown(value[side])}")
        return
    if type(value) is not list or not value:
        reasons.append(f"{where}: expected a list or an object, got {_shown(value)}")
        return
    for index, item in enumerate(value):
        if type(item) is not list or len(item) != 3 or type(item[0]) is not int or item[0] < 0:
            reasons.append(f"{where}[{index}]: expected [field, from, to], got {_shown(item)}")


def _value_changes(value: Any, where: str, reasons: Reasons) -> None:
    """[[from, to, [cell, ...]], ...] (cells as indexes), or {"grid": i, "to": [...]} /
    "from"."""
    if type(value) is dict:
        side = _one_side(value, where, reasons, {"grid"})
        if side is None:
            return
        _index(value["grid"], f"{where}.grid", reasons)
        _each(value[side], f"{where}.{side}", reasons, _environment_values)
        return
    if type(value) is not list or not value:
        reasons.append(f"{where}: expected a list or an object, got {_shown(value)}")
        return
    for index, run in enumerate(value):
        here = f"{where}[{index}]"
        if type(run) is not list or len(run) != 3:
            reasons.append(f"{here}: expected [from, to, [cell, ...]], got {_shown(run)}")
            continue
        for side, name in ((run[0], "from"), (run[1], "to")):
            if side is not None:
                _value(side, f"{here} {name}", reasons)
        _indexes(run[2], f"{here} cells", reasons)


def _environment_values(value: Any, where: str, reasons: Reasons) -> None:
    """An environment's value, or [its value, {application: value where it differs}]."""
    if type(value) is list and len(value) == 2 and type(value[1]) is dict and value[1]:
        _value(value[0], where, reasons)
        for name, item in value[1].items():
            _value(item, f"{where}.{name}", reasons)
        return
    _value(value, where, reasons)


def _contiguous(commits: list[dict[str, Any]], reasons: Reasons) -> None:
    """Newest commit first, each commit's entries together: a commit seen again after
    another is out of order."""
    seen: set[str] = set()
    for index, commit in enumerate(commits):
        if commit["commit"] in seen:
            reasons.append(
                f"audit.json: commits[{index}]: commit {commit['commit']} appears again after "
                "another commit; the log is not in order"
            )
            return
        seen.add(commit["commit"])


# -- the snapshot's invariants: what the compiler guarantees --------------------------------


def _declared(flag: Mapping[str, Any]) -> dict[str, Any]:
    """The flag file's fields as the snapshot records them (empty optional ones omitted)."""
    declared = {name: flag[name] for name in _DECLARED}
    declared.update({name: flag[name] for name in _OPTIONAL if flag[name]})
    if flag.get("schedule"):
        declared["schedule"] = flag["schedule"]
    if flag["type"] == "boolean":
        declared["enabled"] = flag["enabled"]
    else:
        variants = flag["variants"]
        order = {name: variants[name] for name in _bucket_order(flag) if name in variants}
        declared.update(type=flag["type"], variants={**order, **variants}, default=flag["default"])
        if flag["off"] is not None:
            declared["off"] = flag["off"]
    return declared


def _bucket_order(flag: Mapping[str, Any]) -> list[str]:
    """The variant names as the first rollout in the flag's rows lists them. A rollout's
    buckets follow the order in which the file declared `variants`, which the snapshot's
    `variants` (canonical JSON: sorted keys) does not keep; the rows rebuilt in that order
    match the snapshot's only if all its rollouts agree on it. Rows are not checked for
    shape yet: anything else gives no order."""
    for row in flag["resolved"].values():
        rules = row.get("rules") if type(row) is dict else None
        for rule in rules if type(rules) is list else ():
            rollout = rule.get("rollout") if type(rule) is dict else None
            if type(rollout) is list:
                return [
                    pair[0]
                    for pair in rollout
                    if type(pair) is list and pair and type(pair[0]) is str
                ]
    return []


def _resolutions(
    flags: Mapping[str, Any], grid: Grid, reasons: Reasons, timelines: dict[str, list[Phase]]
) -> dict[str, Resolution]:
    """Each flag's resolution by the compiler, for the flags whose `resolved` (and `steps`)
    is exactly it; `timelines` gets the phases of those with a schedule."""
    found: dict[str, Resolution] = {}
    shared: dict[Row, dict[str, Any]] = {}  # a large snapshot has few distinct rows
    known: dict[int, tuple[Any, bytes]] = {}  # rows' bytes by id(), each with its row
    for key, flag in flags.items():
        where = f"snapshot.json: flags.{key}"
        if flag["key"] != key:
            reasons.append(f"{where}.key: is {flag['key']!r}, not the flag's name")
        try:
            model = Flag.model_validate(_declared(flag))
        except pydantic.ValidationError as exc:
            problem = exc.errors()[0]
            place = ".".join(str(part) for part in problem["loc"])
            reasons.append(f"{where}.{place}: not a valid flag: {problem['msg']}")
            continue
        mismatch = _field_mismatch(flag, model)
        if mismatch is not None:
            reasons.append(f"{where}.{mismatch}")
            continue
        resolution = resolve(grid, {key: model})[key]
        try:
            expected = resolved_rows(key, model, resolution, grid, shared)
        except KeyError as exc:  # a level names a variant the flag does not have
            reasons.append(f"{where}: names the variant {exc}, which it does not declare")
            continue
        mismatch = _first_mismatch(flag["resolved"], expected, grid, known)
        if mismatch is not None:
            reasons.append(f"{where}.resolved.{mismatch}")
        elif _steps_mismatch(key, flag, model, grid):
            reasons.append(f"{where}.steps: not what the schedule gives")
        else:
            found[key] = resolution
            if scheduled(model):
                timelines[key] = phases(model, grid.environments)
        if reasons.full:
            break
    return found


def _steps_mismatch(key: str, flag: Mapping[str, Any], model: Flag, grid: Grid) -> bool:
    """Whether the flag's `steps` are not what its schedule gives (as the build writes them:
    a step's rows list only the applications whose cell is not the environment's)."""
    if not scheduled(model):
        return "steps" in flag
    if "steps" not in flag:
        return True
    return serialize({"_": flag["steps"]}) != serialize({"_": steps(key, model, grid)})


def _field_mismatch(flag: Mapping[str, Any], model: Flag) -> str | None:
    """The first of type, variants, default, off and enabled that is not what the declared
    fields give."""
    for name, wanted in declared_fields(model).items():
        if serialize({"_": flag[name]}) != serialize({"_": wanted}):
            return f"{name}: {_shown(flag[name])}, but the declared fields give {_shown(wanted)}"
    return None


def _first_mismatch(
    resolved: Mapping[str, Any],
    expected: Mapping[str, dict[str, Any]],
    grid: Grid,
    known: dict[int, tuple[Any, bytes]],
) -> str | None:
    """Where `resolved` differs from the compiler's rows (or lacks a cell, or has one too
    many), as a message; None when it is exactly them. Rows are compared as canonical
    bytes, which also tells `true` from `1`."""
    if resolved.keys() != set(grid.environments):
        return f"names environments {sorted(resolved)}, not {list(grid.environments)}"
    for environment in grid.environments:
        wanted = expected[environment]
        # Kept with its row, so that no other row can take its id() while it is a key.
        found = known.get(id(wanted))
        if found is None:
            found = known[id(wanted)] = (wanted, serialize(wanted))
        if serialize(resolved[environment]) != found[1]:
            return _differing(environment, resolved[environment], wanted)
    return None


def _differing(environment: str, row: Any, wanted: Mapping[str, Any]) -> str:
    """The first place in a row that is not the compiler's, in words."""
    if type(row) is not dict or row.keys() != wanted.keys():
        return f"{environment}: expected exactly {', '.join(sorted(wanted))}"
    found, listed = row["applications"], list(wanted["applications"])
    if type(found) is not dict or found.keys() != set(listed):
        return (
            f"{environment}.applications: expected exactly {', '.join(listed) or 'none'} "
            "(the applications whose cell is not the environment's)"
        )
    places = [
        (environment, _without_applications(row), _without_applications(wanted)),
        *((f"{environment}.applications.{a}", found[a], wanted["applications"][a]) for a in listed),
    ]
    for place, cell, expected in places:
        if serialize(cell) != serialize(expected):
            return (
                f"{place}: {_shown(cell)}, but the flag's declared fields give {_shown(expected)}"
            )
    return f"{environment}: not what the flag's declared fields give"


def _without_applications(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "applications"}


def _dependencies(
    flags: Mapping[str, Any], resolved: Mapping[str, Resolution], grid: Grid, reasons: Reasons
) -> None:
    edges = {key: flag["depends_on"] for key, flag in flags.items()}
    mirrored: dict[str, list[str]] = {key: [] for key in flags}
    for key in sorted(flags):
        for dependency in edges[key]:
            if dependency not in flags:
                reasons.append(f"snapshot.json: flags.{key}.depends_on: {dependency!r} is no flag")
            else:
                mirrored[dependency].append(key)
    for key, flag in flags.items():
        if flag["dependents"] != mirrored[key]:
            reasons.append(
                f"snapshot.json: flags.{key}.dependents: {flag['dependents']} but the flags "
                f"that depend on it are {mirrored[key]}"
            )
    reasons.extend(_cycles(edges))
    reasons.extend(_disabled(edges, resolved, grid))
    del reasons[MAX_REASONS:]


def _cycles(edges: Mapping[str, list[str]]) -> Iterator[str]:
    for component in strongly_connected(sorted(edges), edges):
        if is_cyclic(component, edges):
            cycle = " -> ".join(find_cycle(component, edges))
            yield f"snapshot.json: dependency cycle: {cycle}"


def _disabled(
    edges: Mapping[str, list[str]], resolved: Mapping[str, Resolution], grid: Grid
) -> Iterator[str]:
    for key, dependencies in edges.items():
        for dependency in dependencies:
            if key not in resolved or dependency not in resolved:
                continue
            broken = resolved[key].on & ~resolved[dependency].on
            if broken:
                cell = grid.name((broken & -broken).bit_length() - 1)
                yield (
                    f"snapshot.json: flags.{key} is on in {cell}, but its dependency "
                    f"{dependency} is off there"
                )
