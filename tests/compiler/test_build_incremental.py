"""The incremental build (`compiler.build.build` with reuse, what `flagc build` does): after
every kind of change a history can hold, it writes the same diagnostics and the same bytes
as a full build (`reuse=False`) into a fresh OUT, and it does reuse what did not change;
a cache it cannot trust (damaged, of another shape or flagc, another folder's, or an
output changed behind its back) is never used: the build is then made in full and says so."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import compiler.build
from compiler import incremental, load, publish
from compiler.build import BuildResult, build
from compiler.cli import main
from compiler.diagnostics import has_errors
from compiler.incremental import Kept
from tests.compiler.helpers import BANNER, BANNER_IOS, documented
from tests.compiler.scripted import Scripted, swap_link
from tests.conftest import PROJECT, new_repository

TODAY = datetime.date(2026, 1, 10)
FULL = "built in full"

EVENT_BUS = """\
description: Publish domain events on the new event bus
owner: platform
enabled: true
tags: [platform]
"""
PRICING = """\
description: Compute prices in the pricing service
owner: pricing
enabled: true
depends_on: [event-bus]
"""
PAYMENTS = """\
description: Card payments through the new gateway
owner: payments
enabled: false
environments:
  development: true
  staging: true
  production:
    applications:
      web: true
depends_on: [pricing]
"""
NEW_CHECKOUT = """\
description: The one-page checkout
owner: checkout
enabled: false
environments:
  development: true
  production:
    applications:
      web: true
depends_on: [payments]
expires: 2099-12-31
"""
BUTTON = """\
description: Colour of the pay button
owner: growth
type: string
variants:
  blue: "#1f6feb"
  green: "#2da44e"
default: blue
environments:
  development: green
  production:
    rules:
      - when:
          country: [NL, BE]
        serve: green
      - rollout: {green: 10, blue: 90}
        seed: button-2027
"""
PAGE_SIZE = """\
description: Results on a search page
owner: search
type: integer
variants:
  standard: 20
  large: 50
default: standard
rules:
  - when:
      email: {ends_with: "@example.com"}
    serve: large
"""
RATE_LIMITS = """\
description: API rate limits by plan
owner: platform
type: object
variants:
  standard: {requests_per_minute: 600}
  generous: {requests_per_minute: 6000}
default: standard
off: standard
environments:
  production:
    rules:
      - when:
          plan: [enterprise]
        serve: generous
depends_on: [event-bus]
"""
NEW_SEARCH = """\
description: The new search page, rolled out
owner: search
enabled: false
environments:
  development: true
  production:
    rules:
      - rollout: {on: 25, off: 75}
        seed: search-2027
"""
SUGGESTIONS = """\
description: Suggestions under the search box, within the new search's rollout
owner: search
enabled: false
depends_on: [new-search]
environments:
  development: true
  production:
    rules:
      - rollout: {on: 10, off: 90}
        seed: search-2027
"""
MAINTENANCE = """\
description: The maintenance page
owner: sre
enabled: false
"""
DARK_MODE = """\
description: Dark mode
owner: web
enabled: false
environments:
  development: true
depends_on: [banner]
"""
START = {
    "_project.yaml": PROJECT,
    "platform/event-bus.yaml": EVENT_BUS,
    "checkout/pricing.yaml": PRICING,
    "checkout/payments.yaml": PAYMENTS,
    "checkout/new-checkout.yaml": NEW_CHECKOUT,
    "checkout/button-colour.yaml": BUTTON,
    "platform/page-size.yaml": PAGE_SIZE,
    "platform/rate-limits.yaml": RATE_LIMITS,
    "growth/banner.yaml": BANNER,
    "search/new-search.yaml": NEW_SEARCH,
    "search/suggestions.yaml": SUGGESTIONS,
    "platform/maintenance.yaml": MAINTENANCE,
}


# Building twice and comparing


def below(result: BuildResult, out: Path) -> list[str]:
    return [str(path.relative_to(out)) for path in result.outputs]


def build_into(
    flags: Path,
    out: Path,
    *,
    reuse: bool = True,
    today: datetime.date = TODAY,
    display_root: str | None = None,
    kept: Kept | None = None,
) -> BuildResult:
    return build(
        flags, out, today=today, fork=False, reuse=reuse, display_root=display_root, kept=kept
    )


def full_build(
    flags: Path, fresh: Path, *, today: datetime.date = TODAY, display_root: str | None = None
) -> BuildResult:
    """A full build into `fresh`, an OUT that must not exist yet."""
    assert not fresh.exists()
    return build_into(flags, fresh, reuse=False, today=today, display_root=display_root)


def assert_same_build(
    incremental: BuildResult, out: Path, full: BuildResult, fresh: Path, step: str = ""
) -> None:
    """The same findings, notes and outputs; and, when written, the same bytes."""
    assert incremental.diagnostics == full.diagnostics, step
    assert incremental.notes == full.notes, step
    assert below(incremental, out) == below(full, fresh), step
    if not full.outputs:
        assert not fresh.exists(), step
        return
    written, expected = documented(out), documented(fresh)
    assert sorted(written) == sorted(expected), step
    for name, data in expected.items():
        assert written[name] == data, f"{step}: {name} differs"


def full_notes(result: BuildResult) -> list[str]:
    return [note.message for note in result.notes if FULL in note.message]


# a) A scripted history: every kind of change, built incrementally and in full after each


@dataclass(frozen=True)
class Step:
    """One change: `files` written in the flags folder (None deletes), `moves` made there
    and `outside` written elsewhere in the repository, then committed unless `dirty`.
    `codes`: the diagnostic codes the build must then report; `reuses`: a one-flag edit
    after a clean, written build, which must reuse flags."""

    name: str
    files: Mapping[str, str | None] = field(default_factory=dict)
    moves: tuple[tuple[str, str], ...] = ()
    outside: Mapping[str, str] = field(default_factory=dict)
    codes: frozenset[str] = frozenset()
    dirty: bool = False
    reuses: bool = False


def project(environments: str, applications: str) -> str:
    return f"environments: [{environments}]\napplications: [{applications}]\n"


BANNER_STAGING = BANNER.replace("development: true", "development: true\n  staging: true")
PAYMENTS_V2 = PAYMENTS.replace("owner: payments", "owner: payments-team").replace(
    "new gateway", "gateway v2"
)
BUTTON_30 = BUTTON.replace("{green: 10, blue: 90}", "{green: 30, blue: 70}")
NO_RATE_DEPENDENCY = RATE_LIMITS.replace("depends_on: [event-bus]\n", "")
WITH_TV = project("development, staging, production", "web, ios, android, tv")
WITH_CANARY = project("development, staging, canary, production", "web, ios, android, tv")

STEPS = [
    Step("start", START),
    Step("change a value", {"growth/banner.yaml": BANNER_STAGING}, reuses=True),
    Step("change the owner and description", {"checkout/payments.yaml": PAYMENTS_V2}, reuses=True),
    Step(
        "add a dependency",
        {"growth/banner.yaml": BANNER_STAGING + "depends_on: [event-bus]\n"},
    ),
    Step("remove a dependency", {"platform/rate-limits.yaml": NO_RATE_DEPENDENCY}),
    Step("change the rules", {"checkout/button-colour.yaml": BUTTON_30}, reuses=True),
    Step(
        "change the rules of a dependency whose dependent inlines them (flagd)",
        {"search/new-search.yaml": NEW_SEARCH.replace("{on: 25, off: 75}", "{on: 40, off: 60}")},
        reuses=True,
    ),
    Step(
        "turn a dependency on in more places",
        {
            "checkout/payments.yaml": PAYMENTS_V2.replace(
                "      web: true", "      web: true\n      ios: true"
            )
        },
        reuses=True,
    ),
    Step("add a flag", {"web/dark-mode.yaml": DARK_MODE}),
    Step("move a file to another folder", moves=(("growth/banner.yaml", "marketing/banner.yaml"),)),
    Step("a commit outside the flags folder", outside={"README.md": "# The shop\n"}),
    Step("delete a flag nobody depends on", {"platform/maintenance.yaml": None}),
    Step(
        "make a file invalid YAML",
        {"checkout/pricing.yaml": "description: [\n"},
        codes=frozenset({"yaml-syntax"}),
    ),
    Step("fix it", {"checkout/pricing.yaml": PRICING}),
    Step(
        "make a file schema-invalid",
        {"checkout/new-checkout.yaml": NEW_CHECKOUT.replace("enabled:", "enabeld:")},
        codes=frozenset({"schema"}),
    ),
    Step("fix the schema", {"checkout/new-checkout.yaml": NEW_CHECKOUT}),
    Step(
        "break a dependency: new-checkout is on where payments is off",
        {"checkout/payments.yaml": PAYMENTS.replace("      web: true", "      web: false")},
        codes=frozenset({"dependency-disabled"}),
    ),
    Step("repair the dependency", {"checkout/payments.yaml": PAYMENTS}),
    Step("add an application", {"_project.yaml": WITH_TV}),
    Step("add an environment", {"_project.yaml": WITH_CANARY}),
    Step(
        "an uncommitted edit",
        {"platform/page-size.yaml": PAGE_SIZE.replace("@example.com", "@example.org")},
        dirty=True,
    ),
    Step("commit the edit"),
    Step(
        "change a file",
        {"checkout/pricing.yaml": PRICING.replace("owner: pricing", "owner: finance")},
        reuses=True,
    ),
    Step("change it back", {"checkout/pricing.yaml": PRICING}, reuses=True),
    Step(
        "change two flags at once",
        {
            "platform/event-bus.yaml": EVENT_BUS.replace("new event bus", "event bus v2"),
            "platform/page-size.yaml": PAGE_SIZE.replace("large: 50", "large: 100"),
        },
    ),
    Step(
        "an expiry in the past",
        {"platform/rate-limits.yaml": NO_RATE_DEPENDENCY + "expires: 2020-01-01\n"},
        codes=frozenset({"expired"}),
    ),
]


def take(scripted: Scripted, step: Step) -> None:
    if step.dirty:
        assert not step.moves
        for relative, text in step.files.items():
            assert text is not None
            (scripted.flags / relative).write_text(text, encoding="utf-8")
    else:
        scripted.commit(step.name, step.files, moves=step.moves, outside=step.outside)


def test_every_step_of_a_history_builds_as_a_full_build_does(
    scripted: Scripted, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    previous: BuildResult | None = None
    for number, step in enumerate(STEPS):
        take(scripted, step)
        before = documented(out) if out.exists() else None
        incremental = build_into(scripted.flags, out)
        full = full_build(scripted.flags, tmp_path / f"full-{number}")
        assert {d.code for d in full.diagnostics} == step.codes, step.name
        assert_same_build(incremental, out, full, tmp_path / f"full-{number}", step.name)
        if has_errors(full.diagnostics):
            assert documented(out) == before, f"{step.name}: OUT changed"
        assert full.reused == 0
        if step.reuses:
            assert previous is not None and previous.outputs and not previous.notes, step.name
            assert 0 < incremental.reused < len(full.compiled.flags), step.name
        previous = incremental


def test_a_full_build_continues_the_audit_log_its_cache_vouches_for(
    scripted: Scripted, tmp_path: Path
) -> None:
    """`--full` into the OUT of the previous build compiles every flag, and continues the
    audit log as its file says it (not expanded: core.audit_format.prepend) when the cache
    vouches for it: the same bytes as a build that reads the whole history into a fresh OUT."""
    out = tmp_path / "out"
    for number, step in enumerate(STEPS):
        take(scripted, step)
        again = build_into(scripted.flags, out, reuse=False)
        fresh = tmp_path / f"full-{number}"
        assert_same_build(again, out, full_build(scripted.flags, fresh), fresh, step.name)
        assert again.reused == 0


def test_a_change_to_the_project_is_built_in_full(scripted: Scripted, tmp_path: Path) -> None:
    scripted.commit("start", START)
    out = tmp_path / "out"
    assert build_into(scripted.flags, out).outputs
    scripted.commit("add tv", {"_project.yaml": PROJECT.replace("android]", "android, tv]")})
    incremental = build_into(scripted.flags, out)
    full = full_build(scripted.flags, tmp_path / "full")
    assert_same_build(incremental, out, full, tmp_path / "full")
    assert incremental.reused == 0  # a project change is built in full


def test_a_rebuild_with_nothing_changed_reuses_and_writes_the_same_bytes(
    scripted: Scripted, tmp_path: Path
) -> None:
    scripted.commit("start", START)
    out = tmp_path / "out"
    first = build_into(scripted.flags, out)
    assert first.outputs and first.reused == 0
    written = documented(out)
    again = build_into(scripted.flags, out)
    assert again.reused > 0
    assert (again.diagnostics, again.notes) == (first.diagnostics, first.notes)
    assert documented(out) == written


@pytest.mark.parametrize("told", ["--assume-unchanged", "--skip-worktree"])
def test_a_file_git_is_told_not_to_check_is_read(
    scripted: Scripted, tmp_path: Path, told: str
) -> None:
    """git's index vouches for a clean file's content, but not for one it is told to assume
    unchanged or to skip: that file's edit must be seen."""
    scripted.commit("start", START)
    out = tmp_path / "out"
    assert build_into(scripted.flags, out).outputs
    scripted.git("update-index", told, "flags/growth/banner.yaml")
    (scripted.flags / "growth/banner.yaml").write_text(BANNER_IOS, encoding="utf-8")
    incremental = build_into(scripted.flags, out)
    full = full_build(scripted.flags, tmp_path / "full")
    assert_same_build(incremental, out, full, tmp_path / "full")
    assert b'"ios":{' in documented(out)["snapshot.json"]  # the edit is in the snapshot


def test_an_ignored_or_untracked_flag_file_is_read(scripted: Scripted, tmp_path: Path) -> None:
    """Files git does not hold (untracked, or ignored yet read by flagc) are hashed: an edit
    to one is seen."""
    scripted.commit("start", START, outside={".gitignore": "flags/growth/ignored.yaml\n"})
    for name in ("ignored", "untracked"):
        (scripted.flags / f"growth/{name}.yaml").write_text(EVENT_BUS, encoding="utf-8")
    out = tmp_path / "out"
    assert build_into(scripted.flags, out).outputs
    for name in ("ignored", "untracked"):
        edited = EVENT_BUS.replace("owner: platform", f"owner: {name}-owner")
        (scripted.flags / f"growth/{name}.yaml").write_text(edited, encoding="utf-8")
        incremental = build_into(scripted.flags, out)
        full = full_build(scripted.flags, tmp_path / f"full-{name}")
        assert_same_build(incremental, out, full, tmp_path / f"full-{name}", name)
        assert incremental.reused > 0, name
        assert f"{name}-owner".encode() in documented(out)["snapshot.json"], name


UNUSED_VARIANT = """\
description: Greeting text
owner: growth
type: string
variants:
  hello: "Hello"
  hi: "Hi"
  hey: "Hey"
default: hello
environments:
  production: hi
"""


def test_the_findings_of_files_not_compiled_again_are_kept(
    scripted: Scripted, tmp_path: Path
) -> None:
    """A warning about a file the incremental build does not read again comes from the
    cache, where and as a full build says it."""
    scripted.commit("start", {**START, "growth/greeting.yaml": UNUSED_VARIANT})
    out = tmp_path / "out"
    first = build_into(scripted.flags, out)
    warned = {(d.file, d.code) for d in first.diagnostics}
    assert any(file.endswith("greeting.yaml") for file, _ in warned), first.diagnostics
    scripted.commit("banner on ios", {"growth/banner.yaml": BANNER_IOS})
    incremental = build_into(scripted.flags, out)
    assert incremental.reused > 0 and "greeting" not in incremental.compiled.flags
    assert_same_build(
        incremental, out, full_build(scripted.flags, tmp_path / "full"), tmp_path / "full"
    )
    assert {(d.file, d.code) for d in incremental.diagnostics} == warned


def test_a_touched_file_with_the_same_content_is_reused(scripted: Scripted, tmp_path: Path) -> None:
    scripted.commit("start", START)
    out = tmp_path / "out"
    assert build_into(scripted.flags, out).outputs
    os.utime(scripted.flags / "growth/banner.yaml", (1, 1))  # its stat data no longer the index's
    again = build_into(scripted.flags, out)
    assert again.reused == len(START) - 1  # every flag
    assert_same_build(again, out, full_build(scripted.flags, tmp_path / "full"), tmp_path / "full")


# b) Random sequences of edits


ENVIRONMENTS = ("development", "staging", "production")


@dataclass
class ModelFlag:
    """A boolean flag: its value, per environment where it differs, and (`rollout`) a
    production rollout with a seed all rollouts share, so that a dependent with a smaller
    share stays within its dependency's (and flagd inlines the dependency's targeting)."""

    owner: str
    enabled: bool
    environments: dict[str, bool] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    rollout: int | None = None

    def yaml(self, key: str) -> str:
        lines = [
            f"description: Flag {key}",
            f"owner: {self.owner}",
            f"enabled: {_yaml(self.enabled)}",
        ]
        cells = [
            f"  {name}: {_yaml(self.environments[name])}"
            for name in ENVIRONMENTS
            if name in self.environments and not (name == "production" and self.rollout)
        ]
        if self.rollout is not None:
            cells.append("  production:")
            if "production" in self.environments:
                cells.append(f"    enabled: {_yaml(self.environments['production'])}")
            on = self.rollout
            cells.append(f"    rules: [{{rollout: {{on: {on}, off: {100 - on}}}, seed: s}}]")
        if cells:
            lines += ["environments:", *cells]
        if self.depends_on:
            lines.append(f"depends_on: [{', '.join(self.depends_on)}]")
        return "\n".join(lines) + "\n"


def _yaml(value: bool) -> str:
    return "true" if value else "false"


def initial_model() -> dict[str, ModelFlag]:
    """f6 rolls out in production, and f7, which depends on it, within its share."""
    return {
        "f0": ModelFlag("alpha", True),
        "f1": ModelFlag("beta", True, {"production": False}, ["f0"]),
        "f2": ModelFlag("gamma", False, {"development": True}, ["f1"]),
        "f3": ModelFlag("delta", False, {"development": True, "staging": True}, ["f0"]),
        "f4": ModelFlag("alpha", True),
        "f5": ModelFlag("beta", False, {"staging": True}, ["f3", "f4"]),
        "f6": ModelFlag("search", False, {"development": True}, rollout=25),
        "f7": ModelFlag("search", False, {"development": True}, ["f6"], rollout=10),
    }


def path_of(key: str) -> str:
    return f"team-{int(key[1:]) % 3}/{key}.yaml"


Edit = tuple[str, int, int]  # (kind, which flag, which environment, owner or share)
EDITS = st.tuples(
    st.sampled_from(["flip", "flip", "owner", "delete", "add", "rollout"]),
    st.integers(0, 99),
    st.integers(0, 99),
)


def apply_edit(model: dict[str, ModelFlag], edit: Edit) -> dict[str, str | None]:
    """Change `model` by `edit`; the files it changes (None: deleted; none: an empty commit)."""
    kind, which, other = edit
    keys = sorted(model)
    key = keys[which % len(keys)]
    if kind == "flip":
        environment = ENVIRONMENTS[other % len(ENVIRONMENTS)]
        flag = model[key]
        flag.environments[environment] = not flag.environments.get(environment, flag.enabled)
    elif kind == "owner":
        model[key].owner = f"team-{other % 5}"
    elif kind == "delete":
        needed = {dependency for flag in model.values() for dependency in flag.depends_on}
        leaves = [k for k in keys if k not in needed]
        if len(leaves) < 2:
            return {}
        key = leaves[which % len(leaves)]
        del model[key]
        return {path_of(key): None}
    elif kind == "rollout":
        if "f6" not in model:
            return {}
        key = "f6"
        model[key].rollout = 10 + other % 90  # never below f7's 10
    else:
        key = f"f{max(int(k[1:]) for k in keys) + 1}"
        dependency = [keys[which % len(keys)]] if other % 3 == 0 else []
        model[key] = ModelFlag("new", other % 2 == 0, depends_on=dependency)
    return {path_of(key): model[key].yaml(key)}


# A few seconds when it passes; not shrunk (a sequence is six edits at most, and a
# failure names its edit), so that a failure does not take minutes either.
@settings(max_examples=15, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(edits=st.lists(EDITS, min_size=1, max_size=6))
def test_random_edits_build_as_a_full_build_does(edits: list[Edit]) -> None:
    with tempfile.TemporaryDirectory(prefix="incremental-") as folder:
        root = Path(folder)
        scripted = Scripted(*new_repository(root))
        model = initial_model()
        start: dict[str, str | None] = {"_project.yaml": PROJECT}
        start.update({path_of(key): flag.yaml(key) for key, flag in model.items()})
        scripted.commit("start", start)
        out = root / "out"
        assert build_into(scripted.flags, out).outputs
        for number, edit in enumerate(edits):
            scripted.commit(f"edit {number}: {edit}", apply_edit(model, edit))
            fresh = root / f"full-{number}"
            incremental = build_into(scripted.flags, out)
            full = full_build(scripted.flags, fresh)
            assert_same_build(incremental, out, full, fresh, f"edit {number}: {edit}")


# c) Caches that cannot be trusted


def built_then_changed(scripted: Scripted, out: Path) -> None:
    """A written build in `out` (and its cache), then one flag changed and committed."""
    scripted.commit("start", START)
    assert build_into(scripted.flags, out).outputs
    assert publish.cache_path(out).is_file()
    scripted.commit("banner on ios", {"growth/banner.yaml": BANNER_IOS})


def assert_built_in_full(
    scripted: Scripted,
    out: Path,
    tmp_path: Path,
    display_root: str | None = None,
    kept: Kept | None = None,
) -> BuildResult:
    """The next build into `out` (given what this process `kept` of the last) says it was
    made in full, reuses nothing, and writes what a full build does; returns that full
    build."""
    incremental = build_into(scripted.flags, out, display_root=display_root, kept=kept)
    full = full_build(scripted.flags, tmp_path / "full", display_root=display_root)
    assert len(full_notes(incremental)) == 1, incremental.notes
    assert incremental.reused == 0
    assert incremental.diagnostics == full.diagnostics
    assert below(incremental, out) == below(full, tmp_path / "full")
    assert documented(out) == documented(tmp_path / "full")
    return full


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def one_byte_flipped(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def sealed(body: bytes) -> bytes:
    """`body` framed as the cache frames its JSON: its SHA-256 on the first line, so that
    what is judged is the document's shape, not its checksum."""
    return hashlib.sha256(body).hexdigest().encode() + b"\n" + body + b"\n"


def resealed(change: Callable[[dict[str, Any]], object]) -> Callable[[bytes], bytes]:
    """The cache's own document, changed by `change` (which may return another value to
    put in its place), sealed again."""

    def damage(data: bytes) -> bytes:
        _, _, body = data.partition(b"\n")
        assert sealed(body[:-1]) == data, "the cache is not framed as `sealed` frames it"
        document = json.loads(body)
        replaced = change(document)
        return sealed(json.dumps(document if replaced is None else replaced).encode())

    return damage


def _files_as_a_list(document: dict[str, Any]) -> None:
    document["files"] = sorted(document["files"])


def _another_flagc(document: dict[str, Any]) -> None:
    document["flagc"] = "0" * 64


def _another_format(document: dict[str, Any]) -> None:
    document["format"] += 1


def _snapshot_spans_shifted(document: dict[str, Any]) -> None:
    spans = document["snapshot"]["spans"]
    document["snapshot"]["spans"] = {key: [a + 1, b + 1] for key, (a, b) in spans.items()}


def _flagd_spans_shifted(document: dict[str, Any]) -> None:
    for spans in document["flagd"].values():
        for key, span in spans.items():
            spans[key] = [offset + 1 for offset in span]


DAMAGES: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("truncated", truncated),
    ("one byte flipped", one_byte_flipped),
    ("empty", lambda data: b""),
    ("a JSON list", lambda data: b"[]\n"),
    ("a JSON object of another shape", lambda data: b'{"format": 1, "flags": {"banner": 1}}\n'),
    ("sealed: a JSON list", resealed(lambda document: [document])),
    ("sealed: files as a list", resealed(_files_as_a_list)),
    ("sealed: no outputs", resealed(lambda document: document.pop("outputs") and None)),
    ("sealed: another format", resealed(_another_format)),
    ("sealed: another flagc", resealed(_another_flagc)),
    ("sealed: the snapshot's spans shifted", resealed(_snapshot_spans_shifted)),
    ("sealed: flagd's spans shifted", resealed(_flagd_spans_shifted)),
]


@pytest.mark.parametrize("damage", [d[1] for d in DAMAGES], ids=[d[0] for d in DAMAGES])
def test_a_damaged_cache_is_not_trusted(
    scripted: Scripted, tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    out = tmp_path / "out"
    built_then_changed(scripted, out)
    cache = publish.cache_path(out)
    data = cache.read_bytes()
    assert damage(data) != data
    cache.write_bytes(damage(data))
    assert_built_in_full(scripted, out, tmp_path)


def same_size(data: bytes) -> bytes:
    """One hex digit of the (first) revision changed: still valid JSON, of the same size."""
    start = data.index(b'"revision":"') + len(b'"revision":"')
    digit = b"0" if data[start : start + 1] != b"0" else b"1"
    return data[:start] + digit + data[start + 1 :]


def other_size(data: bytes) -> bytes:
    return data.replace(b"{", b"{ ", 1)


OUTPUTS = [
    (publish.SNAPSHOT, same_size),
    (publish.SNAPSHOT, other_size),
    (f"{publish.FLAGD}/production.json", same_size),
    (f"{publish.FLAGD}/staging.json", other_size),
]


@pytest.mark.parametrize(
    ("name", "change"), OUTPUTS, ids=[f"{name}, {change.__name__}" for name, change in OUTPUTS]
)
def test_an_output_changed_behind_the_cache_is_not_trusted(
    scripted: Scripted, tmp_path: Path, name: str, change: Callable[[bytes], bytes]
) -> None:
    """A file of OUT's current build rewritten in place, its modification time kept."""
    out = tmp_path / "out"
    built_then_changed(scripted, out)
    path = out / name
    data, stat = path.read_bytes(), path.stat()
    changed = change(data)
    assert changed != data and (len(changed) == len(data)) == (change is same_size)
    path.write_bytes(changed)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert_built_in_full(scripted, out, tmp_path)


def another_repository(tmp_path: Path) -> Scripted:
    """A second repository, empty, beside the `scripted` one: tmp_path/other/repo."""
    (tmp_path / "other").mkdir()
    return Scripted(*new_repository(tmp_path / "other"))


@pytest.mark.parametrize("display_root", [None, "flags"], ids=["own paths", "both shown as flags"])
def test_a_cache_of_another_folder_is_not_trusted(
    scripted: Scripted, tmp_path: Path, display_root: str | None
) -> None:
    """Folder Y, another repository holding X's files with one flag changed, built into
    the OUT of X: shown by its own path (an expired flag in both makes a finding that names
    each folder's own file), or both shown as `flags` (two checkouts built by one CI job)."""
    expired = {"platform/old.yaml": MAINTENANCE + "expires: 2020-01-01\n"}
    scripted.commit("start", {**START, **expired})
    out = tmp_path / "out"
    assert build_into(scripted.flags, out, display_root=display_root).outputs
    other = another_repository(tmp_path)
    other.commit("start", {**START, **expired, "growth/banner.yaml": BANNER_IOS})
    [finding] = assert_built_in_full(other, out, tmp_path, display_root).diagnostics
    shown = other.flags if display_root is None else Path(display_root)
    assert finding.file == str(shown / "platform/old.yaml")


def test_a_cache_of_another_folder_is_named_before_its_outputs_are_judged(
    scripted: Scripted, tmp_path: Path
) -> None:
    """The outputs are read and checked in a thread while the folder is read: the note
    still says what is judged first, that the cache is another folder's (both shown as
    `flags`, as one CI job builds two checkouts), not that an output of it changed."""
    scripted.commit("start", START)
    out = tmp_path / "out"
    assert build_into(scripted.flags, out, display_root="flags").outputs
    snapshot = out / publish.SNAPSHOT
    snapshot.write_bytes(other_size(snapshot.read_bytes()))
    other = another_repository(tmp_path)
    other.commit("start", START)
    incremental = build_into(other.flags, out, display_root="flags")
    assert incremental.outputs and incremental.reused == 0
    [note] = full_notes(incremental)
    assert "another flags folder" in note and "snapshot.json" not in note


def test_each_commit_checked_out_into_a_work_tree_of_its_own_is_continued(
    scripted: Scripted, tmp_path: Path
) -> None:
    """git-sync's layout: each new commit checked out into a work tree of its own, a link
    swapped to it by a rename and the old work tree removed; the builder builds the flags
    folder through the link (whose real path changes with each commit), reusing the last
    build after the first, to a full build's bytes."""
    scripted.commit("start", START)
    link, out = tmp_path / "current", tmp_path / "out"

    def check_out() -> None:
        before = link.resolve() if link.is_symlink() else None
        swap_link(link, scripted.check_out(tmp_path))
        if before is not None:
            scripted.git("worktree", "remove", str(before))

    check_out()
    assert build_into(link / "flags", out).outputs
    for number, step in enumerate(step for step in STEPS if step.reuses):
        scripted.commit(step.name, step.files)
        check_out()
        incremental = build_into(link / "flags", out)
        full = full_build(link / "flags", tmp_path / f"full-{number}")
        assert incremental.notes == full.notes == (), step.name
        assert 0 < incremental.reused < len(full.compiled.flags), step.name
        assert_same_build(incremental, out, full, tmp_path / f"full-{number}", step.name)


def test_a_link_swapped_while_a_build_reads_is_not_followed(
    scripted: Scripted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git-sync swaps its link to the next commit's work tree while a build through it is
    under way: the build reads the work tree the link led to when it started, to its end
    (the files, the revision, the history), not its files from one commit and its revision
    and audit log from the next."""
    link, out = tmp_path / "current", tmp_path / "out"
    scripted.commit("start", START)
    swap_link(link, scripted.check_out(tmp_path))
    assert build_into(link / "flags", out).outputs
    changed = [step for step in STEPS if step.reuses][:2]
    scripted.commit(changed[0].name, changed[0].files)
    started = scripted.head()
    swap_link(link, scripted.check_out(tmp_path))
    scripted.commit(changed[1].name, changed[1].files)
    next_tree = scripted.check_out(tmp_path)
    reading = incremental.read_tree

    def read_then_swap(root: Path) -> incremental.Tree | None:
        tree = reading(root)
        swap_link(link, next_tree)  # the next commit lands while this build is under way
        return tree

    monkeypatch.setattr(incremental, "read_tree", read_then_swap)
    result = build_into(link / "flags", out)
    assert link.resolve() == next_tree.resolve()
    assert result.revision == started and result.reused > 0
    full = full_build(tmp_path / started / "flags", tmp_path / "full")
    assert_same_build(result, out, full, tmp_path / "full")


def test_a_commit_landing_while_a_build_reads_is_the_next_builds(
    scripted: Scripted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A work tree changed in place (flagc watch on a developer's tree): the build reads
    an edit, and its commit lands while the build is under way. The build names what it
    read, the last commit and dirty, and reads the history up to that commit (git status
    names the commit it compared with); the next build names the new commit."""
    scripted.commit("start", START)
    out = tmp_path / "out"
    assert build_into(scripted.flags, out).outputs
    last = scripted.head()
    step = next(step for step in STEPS if step.reuses)
    for relative, text in step.files.items():
        assert text is not None
        (scripted.flags / relative).write_text(text)
    reading = incremental.read_tree

    def read_then_commit(root: Path) -> incremental.Tree | None:
        tree = reading(root)
        scripted.commit(step.name)  # the edit, committed while this build is under way
        return tree

    monkeypatch.setattr(incremental, "read_tree", read_then_commit)
    result = build_into(scripted.flags, out)
    assert (result.revision, logged_head(out)) == (f"{last}-dirty", last)
    monkeypatch.undo()
    again = build_into(scripted.flags, out)
    assert (again.revision, logged_head(out)) == (scripted.head(), scripted.head())
    assert again.reused > 0
    full = full_build(scripted.flags, tmp_path / "full")
    assert_same_build(again, out, full, tmp_path / "full")


def logged_head(out: Path) -> Any:
    """The head of the audit log in OUT."""
    return json.loads((out / "audit.json").read_bytes())["head"]


def test_every_file_git_status_lists_is_read_from_the_work_tree(
    scripted: Scripted, tmp_path: Path
) -> None:
    """The blob ids of a tree read in the middle of changes of every kind git status lists
    (changed, staged, deleted, untracked, ignored, unmerged; in a folder named with a space)
    are those of the files' bytes as a full build reads them; HEAD is the commit git
    status compared with, and the folder is dirty."""
    files = {"_project.yaml": PROJECT, "a b/one.yaml": "enabled: true\n"}
    files |= {f"{name}.yaml": "enabled: true\n" for name in ("kept", "changed", "staged")}
    scripted.commit(
        "start", {**files, "gone.yaml": "enabled: true\n", "both.yaml": "enabled: true\n"}
    )
    scripted.git("checkout", "--quiet", "-b", "other")
    scripted.commit("other side", {"both.yaml": "enabled: false\n"})
    scripted.git("checkout", "--quiet", "-")
    scripted.commit("this side", {"both.yaml": "enabled: true\ndescription: here\n"})
    head = scripted.head()
    with pytest.raises(subprocess.CalledProcessError):  # both.yaml is left unmerged
        scripted.git("merge", "--quiet", "other")
    folder = scripted.flags
    (folder / "changed.yaml").write_text("enabled: false\n")
    (folder / "staged.yaml").write_text("enabled: false\n")
    scripted.git("add", "--", f"{scripted.folder}/staged.yaml")
    (folder / "gone.yaml").unlink()
    (folder / "new.yaml").write_text("enabled: false\n")
    (folder / ".gitignore").write_text("ignored.yaml\n")
    (folder / "ignored.yaml").write_text("enabled: false\n")
    (folder / "a b" / "one.yaml").write_text("enabled: false\n")
    tree = incremental.read_tree(folder)
    assert tree is not None
    on_disk = {
        path.relative_to(folder).as_posix(): load.blob_id(path.read_bytes())
        for path in folder.rglob("*.yaml")
        if path.name != "_project.yaml"
    }
    assert tree.blobs == on_disk
    assert (tree.head, tree.dirty) == (head, True)


@pytest.mark.parametrize(
    ("name", "read"),
    [
        ("growth/new-flag.yaml", True),
        ("a b/deep/x_1.yaml", True),
        (f"{'k' * 64}.yaml", True),
        (f"{'k' * 65}.yaml", False),  # too long a key
        ("growth/Upper.yaml", False),
        ("1st.yaml", False),
        ("growth/flag.yml", False),  # read by the loader to be reported
        ("growth/flag.YAML", False),
        ("growth/flag.yaml/inner.yaml", True),  # a folder named like a file
    ],
)
def test_a_file_name_that_is_no_key_leaves_the_folder_to_the_full_loader(
    scripted: Scripted, name: str, read: bool
) -> None:
    scripted.commit("start", {**START, name: "enabled: true\n"})
    tree = incremental.read_tree(scripted.flags)
    assert (tree is not None and name in tree.blobs) if read else tree is None


def test_without_a_cache_the_build_is_full_and_correct(scripted: Scripted, tmp_path: Path) -> None:
    out = tmp_path / "out"
    built_then_changed(scripted, out)
    publish.cache_path(out).unlink()
    incremental = build_into(scripted.flags, out)
    full = full_build(scripted.flags, tmp_path / "full")
    assert incremental.reused == 0
    assert incremental.diagnostics == full.diagnostics
    assert documented(out) == documented(tmp_path / "full")


def test_an_out_without_a_previous_build_says_nothing(scripted: Scripted, tmp_path: Path) -> None:
    scripted.commit("start", START)
    result = build_into(scripted.flags, tmp_path / "out")
    assert result.outputs
    assert (result.notes, result.reused) == ((), 0)


# d) The day of the build, and --strict


def test_an_expiry_that_passes_between_builds_is_found(scripted: Scripted, tmp_path: Path) -> None:
    expiring = {"platform/old.yaml": MAINTENANCE + "expires: 2026-03-01\n"}
    scripted.commit("start", {**START, **expiring})
    out = tmp_path / "out"
    before = build_into(scripted.flags, out, today=datetime.date(2026, 2, 1))
    assert before.outputs and before.diagnostics == []
    later = datetime.date(2026, 4, 1)
    incremental = build_into(scripted.flags, out, today=later)
    full = full_build(scripted.flags, tmp_path / "full", today=later)
    assert [d.code for d in full.diagnostics] == ["expired"]
    assert_same_build(incremental, out, full, tmp_path / "full")
    earlier = build_into(scripted.flags, out, today=datetime.date(2026, 2, 1))
    assert earlier.diagnostics == []


def test_strict_differing_between_builds_gives_a_full_builds_findings(
    scripted: Scripted, tmp_path: Path
) -> None:
    """An expired flag: a warning, then (--strict) an error that writes nothing."""
    scripted.commit("start", {**START, "platform/old.yaml": MAINTENANCE + "expires: 2020-01-01\n"})
    out = tmp_path / "out"
    assert build_into(scripted.flags, out).outputs
    written = documented(out)
    strict = build(scripted.flags, out, today=TODAY, strict=True, fork=False)
    full = build(scripted.flags, tmp_path / "full", today=TODAY, strict=True, reuse=False)
    assert has_errors(full.diagnostics)
    assert_same_build(strict, out, full, tmp_path / "full")
    assert documented(out) == written


# e) flagc build --full


def test_flagc_build_full_writes_the_same_bytes(
    scripted: Scripted,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--full` (reuse=False) into an OUT with a previous build, and into a fresh one,
    writes what the incremental `flagc build` (reuse=True) writes."""
    reuses: list[bool] = []

    def watched(*args: Any, **options: Any) -> BuildResult:
        reuses.append(options.get("reuse", True))
        return build(*args, **options)

    monkeypatch.setattr(compiler.build, "build", watched)  # as `flagc build` imports it
    scripted.commit("start", START)
    flags, today = str(scripted.flags), ["--today", TODAY.isoformat()]
    for out in ("full", "incremental"):
        assert main(["build", flags, "-o", str(tmp_path / out), *today]) == 0
    scripted.commit("banner on ios", {"growth/banner.yaml": BANNER_IOS})
    for out in ("full", "fresh"):
        code = main(["build", flags, "-o", str(tmp_path / out), "--full", *today])
        assert code == 0, capsys.readouterr().err
    assert main(["build", flags, "-o", str(tmp_path / "incremental"), *today]) == 0
    assert reuses == [True, True, False, False, True]
    written = documented(tmp_path / "incremental")
    assert documented(tmp_path / "full") == written == documented(tmp_path / "fresh")


# Schedules: a build with one leaves no cache, so the next build is full


SCHEDULED_BANNER = BANNER + ("schedule:\n  - at: 2099-01-11T09:00:00+01:00\n    enabled: true\n")


def test_a_build_with_a_schedule_is_full_and_leaves_no_cache(
    scripted: Scripted, tmp_path: Path
) -> None:
    """A schedule's checks span every step of every flag it meets and the clock, which the
    cache does not record: the build that brings one in is full, and leaves no cache for
    the next; once the schedule is gone, builds reuse again."""
    scripted.commit("start", START)
    out = tmp_path / "out"
    assert build_into(scripted.flags, out).outputs
    assert publish.cache_path(out).is_file()
    scripted.commit("schedule the banner", {"growth/banner.yaml": SCHEDULED_BANNER})
    scheduled = build_into(scripted.flags, out)
    assert scheduled.reused == 0 and not publish.cache_path(out).exists()
    assert_same_build(scheduled, out, full_build(scripted.flags, tmp_path / "a"), tmp_path / "a")
    pricing = {"checkout/pricing.yaml": PRICING.replace("pricing\n", "prices\n")}
    scripted.commit("pricing owner", pricing)
    again = build_into(scripted.flags, out)
    assert again.reused == 0
    assert_same_build(again, out, full_build(scripted.flags, tmp_path / "b"), tmp_path / "b")
    scripted.commit("unschedule", {"growth/banner.yaml": BANNER})
    assert build_into(scripted.flags, out).reused == 0
    assert publish.cache_path(out).is_file()


def test_a_broken_schedule_brought_in_is_reported_as_a_full_build_does(
    scripted: Scripted, tmp_path: Path
) -> None:
    scripted.commit("start", START)
    out = tmp_path / "out"
    assert build_into(scripted.flags, out).outputs
    broken = BANNER + "schedule:\n  - at: 2099-01-12T09:00:00\n    enabled: true\n"
    scripted.commit("schedule the banner, with no zone", {"growth/banner.yaml": broken})
    incremental = build_into(scripted.flags, out)
    assert "schedule-zone" in {found.code for found in incremental.diagnostics}
    assert_same_build(incremental, out, full_build(scripted.flags, tmp_path / "a"), tmp_path / "a")


# e) What a resident builder (flagc watch) holds of its last build (incremental.Kept)


def kept_then_changed(scripted: Scripted, out: Path) -> Kept:
    """As `built_then_changed`, with what the first build's process holds of it."""
    scripted.commit("start", START)
    first = build_into(scripted.flags, out)
    assert first.published is not None
    assert first.published.current(out, str(scripted.flags))
    scripted.commit("banner on ios", {"growth/banner.yaml": BANNER_IOS})
    return first.published


def test_a_kept_build_is_continued_without_reading_out_again(
    scripted: Scripted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing of OUT's build is read back (the cache, the outputs), yet the bytes are a
    full build's; and the next build holds on from this one."""
    out = tmp_path / "out"
    kept = kept_then_changed(scripted, out)
    read: list[str] = []  # the files of OUT's build read back, by name
    real_output, real_sealed = incremental._output, incremental._sealed

    def output(out: Path, cache: incremental.Cache, name: str) -> bytes:
        read.append(name)
        return real_output(out, cache, name)

    def sealed(out: Path) -> incremental.Cache:
        read.append(publish.CACHE)
        return real_sealed(out)

    monkeypatch.setattr(incremental, "_output", output)
    monkeypatch.setattr(incremental, "_sealed", sealed)
    second = build_into(scripted.flags, out, kept=kept)
    assert read == []
    full = full_build(scripted.flags, tmp_path / "full")
    assert 0 < second.reused < len(full.compiled.flags)
    assert_same_build(second, out, full, tmp_path / "full")
    assert second.published is not None and second.published.current(out, str(scripted.flags))
    assert not kept.current(out, str(scripted.flags))  # no longer OUT's build


KEPT_FILES = [
    *OUTPUTS,
    (publish.AUDIT, other_size),
    (publish.CACHE, other_size),
]


@pytest.mark.parametrize(
    ("name", "change"),
    KEPT_FILES,
    ids=[f"{name}, {change.__name__}" for name, change in KEPT_FILES],
)
def test_a_kept_build_changed_behind_the_process_is_not_trusted(
    scripted: Scripted, tmp_path: Path, name: str, change: Callable[[bytes], bytes]
) -> None:
    """A file of the kept build rewritten in place in OUT, its modification time kept: the
    process reads OUT's build again, which its cache does not vouch for."""
    out = tmp_path / "out"
    kept = kept_then_changed(scripted, out)
    path = out / publish.CURRENT / name
    data, stat = path.read_bytes(), path.stat()
    path.write_bytes(change(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert not kept.current(out, str(scripted.flags))
    assert_built_in_full(scripted, out, tmp_path, kept=kept)


def test_a_build_published_by_another_process_is_read_from_out(
    scripted: Scripted, tmp_path: Path
) -> None:
    """Another flagc built into OUT since: the kept build is not OUT's, so OUT's is read
    (and reused: it is sound), to a full build's bytes."""
    out = tmp_path / "out"
    kept = kept_then_changed(scripted, out)
    assert build_into(scripted.flags, out).outputs  # another process's build
    scripted.commit("banner off", {"growth/banner.yaml": BANNER})
    assert not kept.current(out, str(scripted.flags))
    third = build_into(scripted.flags, out, kept=kept)
    full = full_build(scripted.flags, tmp_path / "full")
    assert third.reused > 0
    assert_same_build(third, out, full, tmp_path / "full")
