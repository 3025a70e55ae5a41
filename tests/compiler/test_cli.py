"""`flagc check` and `flagc build`: exit codes, output formats, and what build writes."""

from __future__ import annotations

import datetime
import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.beside import can_fork
from compiler.cli import main
from compiler.commands import build as build_command
from compiler.diagnostics import CODES
from tests.compiler.helpers import run
from tests.compiler.snapshot_checks import FULL_TREE, check_snapshot
from tests.conftest import PROJECT, write_tree

BIN = Path(sys.executable).parent
FIELDS = {"file", "line", "column", "severity", "code", "message"}
TEXT_LINE = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): (error|warning)\[[a-z-]+\]: .+$"
)
GITHUB_LINE = re.compile(
    r"^::(?P<severity>error|warning) file=(?P<file>[^,:]+),line=(?P<line>\d+),"
    r"col=(?P<column>\d+),title=(?P<code>[a-z-]+)::(?P<message>[^\n]+)$"
)

CLEAN = {"_project.yaml": PROJECT, "a.yaml": "description: A\nowner: me\nenabled: true\n"}
EXPIRING = {
    **CLEAN,
    "team/old.yaml": "description: Old\nowner: me\nenabled: false\nexpires: 2026-06-01\n",
}
BROKEN = {
    **CLEAN,
    "off.yaml": "description: Off\nowner: me\nenabled: false\n",
    "team/needs-off.yaml": (
        "description: Needs off\nowner: me\nenabled: true\ndepends_on:\n  - off\n"
    ),
    "team/typo.yaml": "description: Typo\nowner: me\nenabeld: true\n",
    "old.yaml": "description: Old\nowner: me\nenabled: false\nexpires: 2020-01-01\n",
}


def tree(tmp_path: Path, files: dict[str, str], name: str = "flags") -> Path:
    return write_tree(tmp_path / name, files)


# Exit codes


def test_clean_tree_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["check", str(tree(tmp_path, CLEAN))], capsys)
    assert (code, out) == (0, "")
    assert "1 flags checked: 0 errors, 0 warnings" in err


def test_warnings_only_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(tree(tmp_path, EXPIRING))
    code, out, _ = run(["check", folder, "--today", "2026-07-01"], capsys)
    assert code == 0
    assert f"{folder}/team/old.yaml:4:10: warning[expired]: old expired on 2026-06-01" in out


def test_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(tree(tmp_path, BROKEN))
    code, out, err = run(["check", folder, "--today", "2026-07-01"], capsys)
    assert code == 1
    lines = out.splitlines()
    assert all(TEXT_LINE.match(line) for line in lines), lines
    assert any(
        line.startswith(f"{folder}/team/needs-off.yaml:5:5: error[dependency-disabled]: ")
        for line in lines
    )
    assert any(f"{folder}/team/typo.yaml:" in line and "[schema]" in line for line in lines)
    assert "3 errors, 1 warning" in err


def test_strict_makes_expiry_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(tree(tmp_path, EXPIRING))
    code, out, _ = run(["check", folder, "--strict", "--today", "2026-07-01"], capsys)
    assert code == 1
    assert "error[expired]" in out
    code, out, _ = run(["check", folder, "--strict", "--today", "2026-05-01"], capsys)
    assert (code, out) == (0, "")


@pytest.mark.parametrize(
    ("today", "expired"),
    [("2026-05-31", False), ("2026-06-01", False), ("2026-06-02", True), ("2031-01-01", True)],
)
def test_today_makes_expiry_reproducible(
    today: str, expired: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = str(tree(tmp_path, EXPIRING))
    for _ in range(2):
        code, out, _ = run(["check", folder, "--today", today, "--format", "json"], capsys)
        assert code == 0
        assert [d["code"] for d in json.loads(out)] == (["expired"] if expired else [])


def test_missing_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    for command in ("check", "build"):
        code, out, err = run(
            [command, str(missing), *(["-o", str(tmp_path / "out")] * (command == "build"))], capsys
        )
        assert (code, out) == (2, "")
        assert err.startswith("flagc: error:")
        assert str(missing) in err
    assert not (tmp_path / "out").exists()


def test_a_file_given_as_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tree(tmp_path, CLEAN)
    code, _, err = run(["check", str(folder / "a.yaml")], capsys)
    assert code == 2
    assert "is not a folder" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--nope"],
        ["check", "--today", "2026-13-01"],
        ["check", "--today", "tomorrow"],
        ["check", "--format", "xml"],
        ["build", "-o"],
        ["frobnicate"],
        [],
        ["check", "a", "b"],
    ],
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert (code, out) == (2, "")
    assert "usage: flagc" in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    assert all(command in out for command in ("check", "build", "audit", "diff", "export"))


# What a clean build needs, and what it must not load: the other commands and what only a
# document the models refuse needs (jsonschema).
UNNEEDED = ("jsonschema", "compiler.plan", "compiler.commands.diff", "compiler.commands.export",
            "compiler.commands.audit", "core.documents")  # fmt: skip


def test_a_build_imports_only_what_it_needs(tmp_path: Path) -> None:
    folder = tree(tmp_path, CLEAN)
    script = (
        "import sys; from compiler.cli import main; code = main(sys.argv[1:]); "
        f"print(sorted(set(sys.modules) & set({UNNEEDED!r}))); sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "build", str(folder), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_the_command_exits_at_once_with_everything_printed(tmp_path: Path) -> None:
    """`flagc` (compiler.cli.run) leaves without the interpreter's teardown: its exit code
    is main's, and all it printed arrives, more than a pipe holds, on both streams."""
    folder = tree(tmp_path, {f"flag-{n:04d}.yaml": "enabeld: true\n" for n in range(400)})
    command = [sys.executable, "-m", "compiler", "check", str(folder)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert len(done.stdout) > 65536
    assert done.stdout.count("error[schema]") == 400 * 4  # no description, owner, enabled; enabeld
    missing = subprocess.run(
        [sys.executable, "-m", "compiler", "check", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr.startswith("flagc: error: ")


@pytest.mark.parametrize("command", ["build", "check"])
def test_a_command_starts_reading_before_it_imports_the_models(command: str) -> None:
    # `flagc build` and `flagc check` read the flag files beside their imports
    # (compiler.load.ReadAhead): what they import before they start must not include the
    # models (pydantic), the compiler or git.
    modules = ("pydantic", "core.model", "compiler.build", "compiler.pipeline", "git")
    script = (
        f"import sys, compiler.cli, compiler.commands.{command}; "
        f"print(sorted(m for m in {modules!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "[]\n"


@pytest.mark.parametrize(
    ("built_before", "full", "forks", "reads_ahead"),
    [
        (False, False, True, True),
        (True, False, True, False),
        (True, True, True, True),
        (False, True, True, True),
        (False, True, False, False),  # one CPU: nothing would read beside
    ],
)
def test_a_build_reads_ahead_unless_it_may_reuse_the_last_or_cannot_fork(
    tmp_path: Path, built_before: bool, full: bool, forks: bool, reads_ahead: bool
) -> None:
    folder, out = tree(tmp_path, CLEAN), tmp_path / "out"
    if built_before:
        assert main(["build", str(folder), "-o", str(out)]) == 0
    if forks and not can_fork():
        pytest.skip("this process would not fork: one CPU, or another thread runs")
    cpus = os.sched_getaffinity(0)
    if not forks:  # this process on one CPU, as `taskset -c` runs it
        os.sched_setaffinity(0, {min(cpus)})
    try:
        ahead = build_command._read_ahead(folder, out, reuse=not full)
    finally:
        os.sched_setaffinity(0, cpus)
    assert (ahead is not None) == reads_ahead
    if ahead is not None:
        ahead.cancel()


# Formats


def test_format_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(tree(tmp_path, BROKEN))
    code, out, _ = run(["check", folder, "--format", "json", "--today", "2026-07-01"], capsys)
    assert code == 1
    rows = json.loads(out)
    assert isinstance(rows, list)
    assert len(rows) == 4
    for row in rows:
        assert set(row) == FIELDS
        assert isinstance(row["line"], int)
        assert isinstance(row["column"], int)
        assert row["severity"] in ("error", "warning")
        assert row["code"] in CODES
        assert row["file"].startswith(f"{folder}/")
    _, as_text, _ = run(["check", folder, "--today", "2026-07-01"], capsys)
    assert as_text.splitlines() == [
        f"{r['file']}:{r['line']}:{r['column']}: {r['severity']}[{r['code']}]: {r['message']}"
        for r in rows
    ]


def test_format_json_clean_is_an_empty_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["check", str(tree(tmp_path, CLEAN)), "--format", "json"], capsys)
    assert code == 0
    assert json.loads(out) == []


def test_format_github(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(tree(tmp_path, BROKEN))
    code, out, _ = run(["check", folder, "--format", "github", "--today", "2026-07-01"], capsys)
    assert code == 1
    _, as_json_out, _ = run(["check", folder, "--format", "json", "--today", "2026-07-01"], capsys)
    rows = json.loads(as_json_out)
    lines = out.splitlines()
    assert len(lines) == len(rows) == 4
    for line, row in zip(lines, rows, strict=True):
        match = GITHUB_LINE.match(line)
        assert match, line
        assert match["severity"] == row["severity"]
        assert match["file"] == row["file"]
        assert (int(match["line"]), int(match["column"])) == (row["line"], row["column"])
        assert match["code"] == row["code"]
        assert match["message"] == row["message"].replace("%", "%25")


# No traceback, whatever the input

NASTY: dict[str, dict[str, str | bytes]] = {
    "binary": {"x.yaml": b"\xff\xfe\x00garbage"},
    "empty": {"x.yaml": ""},
    "null": {"x.yaml": "~\n"},
    "list": {"x.yaml": "- a\n- b\n"},
    "scalar": {"x.yaml": "just text\n"},
    "alias": {"x.yaml": "description: &d A\nowner: *d\nenabled: true\n"},
    "tag": {"x.yaml": "description: !!binary aGVsbG8=\nowner: me\nenabled: true\n"},
    "duplicate": {"x.yaml": "description: A\ndescription: B\nowner: me\nenabled: true\n"},
    "deep-flow": {"x.yaml": "tags: " + "[" * 5000 + "]" * 5000 + "\n"},
    "deep-block": {"x.yaml": "".join(" " * i + "k:\n" for i in range(200))},
    "syntax": {"x.yaml": "description: [unclosed\nowner: me\n"},
    "tab": {"x.yaml": "description: A\n\towner: me\n"},
    "control-char": {"x.yaml": "description: \x07bell\nowner: me\nenabled: true\n"},
    "big": {"x.yaml": "description: " + "a" * 70_000 + "\nowner: me\nenabled: true\n"},
    "bad-key": {"Bad Key.yaml": "description: A\nowner: me\nenabled: true\n"},
    "yml": {"x.yml": "description: A\nowner: me\nenabled: true\n"},
    "duplicate-flag": {
        "a/x.yaml": "description: A\nowner: me\nenabled: true\n",
        "b/x.yaml": "description: A\nowner: me\nenabled: true\n",
    },
    "null-field": {"x.yaml": "description: A\nowner: ~\nenabled: true\n"},
    "wrong-types": {
        "x.yaml": "description: 1\nowner: [me]\nenabled: yes\nenvironments: [production]\n"
        "applications: {web: 1}\ndepends_on: x\ntags: {a: b}\nexpires: 2026-02-30\n"
    },
    "empty-override": {
        "x.yaml": "description: A\nowner: me\nenabled: true\nenvironments:\n  production: {}\n"
    },
    "unknown-names": {
        "x.yaml": "description: A\nowner: me\nenabled: true\nenvironments:\n  prod: true\n"
        "  staging: {applications: {webb: true}}\napplications:\n  iso: false\n"
        "depends_on: [nothing]\n"
    },
    "cycle": {
        "x.yaml": "description: X\nowner: me\nenabled: true\ndepends_on: [y]\n",
        "y.yaml": "description: Y\nowner: me\nenabled: true\ndepends_on: [x]\n",
        "z.yaml": "description: Z\nowner: me\nenabled: true\ndepends_on: [z]\n",
    },
    "depends-on-broken": {
        "x.yaml": "description: X\nowner: me\nenabled: true\ndepends_on: [y]\n",
        "y.yaml": "description: Y\nowner: me\n",
    },
    "project-list": {"_project.yaml": "- production\n"},
    "project-empty": {"_project.yaml": "environments: []\napplications: []\n"},
    "project-binary": {"_project.yaml": b"\x00\x01\x02"},
    "project-missing": {"_project.yaml": ""},
}


def _write_nasty(folder: Path, files: dict[str, str | bytes]) -> None:
    write_tree(folder, {"_project.yaml": PROJECT})
    for relative, content in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if relative == "_project.yaml" and content == "":
            path.unlink()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


@pytest.mark.parametrize("name", sorted(NASTY))
def test_bad_input_is_reported_not_raised(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "flags"
    _write_nasty(folder, NASTY[name])
    out_dir = tmp_path / "out"
    for form in ("text", "json", "github"):
        code, out, err = run(["build", str(folder), "-o", str(out_dir), "--format", form], capsys)
        assert code == 1, (form, out, err)
        assert out
        assert "nothing written" in err
    assert not out_dir.exists()
    _, as_json_out, _ = run(["check", str(folder), "--format", "json"], capsys)
    rows = json.loads(as_json_out)
    assert any(row["severity"] == "error" for row in rows)
    for row in rows:
        assert set(row) == FIELDS
        assert row["line"] >= 1
        assert row["column"] >= 1


def test_special_files_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tree(tmp_path, CLEAN)
    (folder / "dir.yaml").mkdir()  # a folder named like a flag is only a folder
    (folder / "dangling.yaml").symlink_to(folder / "no-such-file")
    code, out, _ = run(["check", str(folder)], capsys)
    assert code == 2  # io-error: the run could not read its input
    assert f"{folder}/dangling.yaml:1:1: error[io-error]:" in out


_YAMLISH = st.text(
    alphabet=st.sampled_from([*"abenyt: -_[]{},'\"\n#&*!|>?%@`~\t0123456789.", "é", "\x00"]),
    max_size=120,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(flag=_YAMLISH, project=_YAMLISH)
def test_any_text_is_reported_not_raised(
    flag: str, project: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "fuzz"
    shutil.rmtree(folder, ignore_errors=True)
    write_tree(folder, {"_project.yaml": project, "x.yaml": flag})
    code, out, _ = run(["check", str(folder), "--format", "json"], capsys)
    assert code in (0, 1)
    assert all(set(row) == FIELDS for row in json.loads(out))


# Build


def documented(out_dir: Path) -> list[str]:
    """What a reader of OUT sees (the build directories and the link to the current one are
    hidden: compiler/publish.py)."""
    return sorted(p.name for p in out_dir.iterdir() if not p.name.startswith("."))


def test_build_writes_the_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tree(tmp_path, FULL_TREE)
    out_dir = tmp_path / "out"
    code, out, err = run(["build", str(folder), "-o", str(out_dir)], capsys)
    assert (code, out) == (0, "")
    assert f"-> {out_dir}/" in err
    assert documented(out_dir) == ["audit.json", "flagd", "snapshot.json"]
    data = (out_dir / "snapshot.json").read_bytes()
    document = check_snapshot(data, folder)
    assert len(document["flags"]) == 5
    assert data.count(b"\n") == 1


def test_build_with_warnings_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tree(tmp_path, EXPIRING)
    code, out, _ = run(
        ["build", str(folder), "-o", str(tmp_path / "out"), "--today", "2027-01-01"], capsys
    )
    assert code == 0
    assert "warning[expired]" in out
    check_snapshot((tmp_path / "out" / "snapshot.json").read_bytes(), folder)


def test_build_default_out_is_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tree(tmp_path, CLEAN)
    monkeypatch.chdir(tmp_path)
    code, _, _ = run(["build"], capsys)
    assert code == 0
    check_snapshot((tmp_path / "build" / "snapshot.json").read_bytes(), tmp_path / "flags")


def test_build_with_errors_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tree(tmp_path, FULL_TREE, "good")
    bad = tree(tmp_path, BROKEN, "bad")
    fresh = tmp_path / "fresh"
    code, _, err = run(["build", str(bad), "-o", str(fresh)], capsys)
    assert code == 1
    assert "nothing written" in err
    assert not fresh.exists()

    out_dir = tmp_path / "out"
    assert run(["build", str(good), "-o", str(out_dir)], capsys)[0] == 0
    target = out_dir / "snapshot.json"
    before, stat = target.read_bytes(), target.stat()
    assert run(["build", str(bad), "-o", str(out_dir)], capsys)[0] == 1
    assert target.read_bytes() == before
    assert (target.stat().st_mtime_ns, target.stat().st_ino) == (stat.st_mtime_ns, stat.st_ino)
    assert documented(out_dir) == ["audit.json", "flagd", "snapshot.json"]


def test_builds_are_byte_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tree(tmp_path, FULL_TREE)
    elsewhere = tmp_path / "some" / "other" / "place" / "flags"
    shutil.copytree(folder, elsewhere)
    outputs = []
    assert run(["build", str(folder), "-o", str(tmp_path / "a")], capsys)[0] == 0
    outputs.append(tmp_path / "a")
    assert run(["build", str(folder), "-o", str(tmp_path / "b")], capsys)[0] == 0
    outputs.append(tmp_path / "b")
    assert run(["build", str(elsewhere), "-o", str(tmp_path / "c")], capsys)[0] == 0
    outputs.append(tmp_path / "c")
    monkeypatch.chdir(elsewhere.parent)
    assert run(["build", "flags", "-o", "../d"], capsys)[0] == 0
    outputs.append(elsewhere.parent.parent / "d")
    assert run(["build", "./flags/", "-o", str(tmp_path / "e")], capsys)[0] == 0
    outputs.append(tmp_path / "e")
    monkeypatch.chdir(elsewhere)
    assert run(["build", ".", "-o", str(tmp_path / "f")], capsys)[0] == 0
    outputs.append(tmp_path / "f")
    snapshots = [(out / "snapshot.json").read_bytes() for out in outputs]
    assert all(data == snapshots[0] for data in snapshots)
    check_snapshot(snapshots[0], folder)


def test_snapshot_has_no_wall_clock_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tree(tmp_path, FULL_TREE)
    assert run(["build", str(folder), "-o", str(tmp_path / "out")], capsys)[0] == 0
    data = (tmp_path / "out" / "snapshot.json").read_text(encoding="utf-8")
    today = datetime.date.today()
    assert today.isoformat() not in data
    assert str(today.year) not in data
    assert not re.search(r"\d{2}:\d{2}:\d{2}", data)
    keys: set[str] = set()

    def walk(value: object) -> None:
        if isinstance(value, dict):
            keys.update(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    document = json.loads(data)
    walk(document)
    # Times come only from git (the flag's commits); outside git there are none.
    history = {"created_at", "created_by", "updated_at", "updated_by", "updated_reason"}
    assert not {k for k in keys - history if re.search(r"time|date|generated|built", k)}
    assert all(flag[name] is None for flag in document["flags"].values() for name in history)


def test_build_onto_a_folder_exits_2_and_cleans_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tree(tmp_path, CLEAN)
    out_dir = tmp_path / "out"
    (out_dir / "snapshot.json").mkdir(parents=True)
    code, _, err = run(["build", str(folder), "-o", str(out_dir)], capsys)
    assert code == 2
    assert err.startswith("flagc: error:")
    assert [p.name for p in out_dir.iterdir()] == ["snapshot.json"]
    assert (out_dir / "snapshot.json").is_dir()


# The real console script, in a subprocess


def flagc(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "flagc"), *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_console_script(tmp_path: Path) -> None:
    tree(tmp_path, FULL_TREE)
    tree(tmp_path, BROKEN, "broken")
    done = flagc("check", "flags", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "")
    assert "5 flags checked: 0 errors, 0 warnings" in done.stderr
    done = flagc("check", "broken", "--format", "github", "--today", "2026-07-01", cwd=tmp_path)
    assert done.returncode == 1
    assert all(GITHUB_LINE.match(line) for line in done.stdout.splitlines())
    assert (
        "::error file=broken/team/needs-off.yaml,line=5,col=5,title=dependency-disabled::"
        in done.stdout
    )
    for args in (
        ["check", "--today", "2026-13-01"],
        ["check", "missing"],
        ["build", "-o", "flags/growth/banner.yaml"],
    ):
        done = flagc(*args, cwd=tmp_path)
        assert done.returncode == 2, args
        assert "Traceback" not in done.stderr
    done = flagc("build", "flags", "-o", "flags/checkout/new-checkout.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_python_dash_m_compiler_builds_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tree(tmp_path, FULL_TREE)
    done = subprocess.run(
        [sys.executable, "-m", "compiler", "build", "flags", "-o", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    data = (tmp_path / "out" / "snapshot.json").read_bytes()
    check_snapshot(data, folder)
    assert run(["build", str(folder), "-o", str(tmp_path / "in-process")], capsys)[0] == 0
    assert (tmp_path / "in-process" / "snapshot.json").read_bytes() == data
    broken = subprocess.run(
        [sys.executable, "-m", "compiler", "check", str(tree(tmp_path, BROKEN, "broken"))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert broken.returncode == 1
    assert "Traceback" not in broken.stderr


def _eight_mib_stack() -> None:
    resource.setrlimit(resource.RLIMIT_STACK, (8 * 1024 * 1024, resource.RLIM_INFINITY))


def test_deep_block_sequences_do_not_crash(tmp_path: Path) -> None:
    """Found crashing with SIGSEGV: libyaml's composer recursed on '- - - ... a'."""
    tree(tmp_path, {**CLEAN, "deep.yaml": "- " * 32_000 + "a\n"})
    done = subprocess.run(
        [str(BIN / "flagc"), "check", "flags"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        preexec_fn=_eight_mib_stack,
    )
    assert done.returncode == 1, done.returncode
    assert "flags/deep.yaml:1:" in done.stdout
    assert "Traceback" not in done.stderr


def test_non_utf8_file_name_is_reported(tmp_path: Path) -> None:
    folder = tree(tmp_path, CLEAN)
    try:
        bad = Path(os.fsdecode(os.fsencode(folder) + b"/caf\xe9.yaml"))
        bad.write_text("description: A\nowner: me\nenabled: true\n", encoding="utf-8")
    except (OSError, UnicodeError):
        pytest.skip("this file system does not take file names that are not UTF-8")
    done = flagc("check", "flags", cwd=tmp_path, env={"PYTHONIOENCODING": "utf-8"})
    assert "Traceback" not in done.stderr
    assert done.returncode == 1, done.stderr
    assert "invalid-key" in done.stdout


# The summary that `make run` prints


def test_build_summary_shows_each_environment_and_the_applications_that_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tree(
        tmp_path,
        {
            "_project.yaml": PROJECT,
            "new-checkout.yaml": (
                "description: New checkout\nowner: team-checkout\nenabled: false\n"
                "applications:\n  ios: true\n"
                "environments:\n  staging: true\n"
                "  production:\n    applications:\n      web: true\n"
            ),
            "kill-switch.yaml": "description: Kill\nowner: sre\nenabled: true\n",
        },
    )
    code, out, _ = run(["build", str(folder), "-o", str(tmp_path / "out"), "--summary"], capsys)
    assert code == 0
    assert out.splitlines() == [
        "flag          owner          development    staging  production",
        "kill-switch   sre            on             on       on",
        "new-checkout  team-checkout  off (on: ios)  on       off (on: web, ios)",
    ]


def test_output_that_is_a_file_is_a_usage_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tree(tmp_path, CLEAN)
    (tmp_path / "out").write_text("not a folder\n", encoding="utf-8")
    code, out, err = run(["build", str(folder), "-o", str(tmp_path / "out")], capsys)
    assert code == 2
    assert out == ""
    assert err == f"flagc: error: the output {tmp_path / 'out'} exists and is not a folder\n"
    assert (tmp_path / "out").read_text(encoding="utf-8") == "not a folder\n"
