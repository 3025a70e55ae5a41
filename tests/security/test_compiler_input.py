"""Issue 12, the compiler's half of item 5 and its text output (item 7): `flagc` reads only
regular files inside the flags folder, answers at once whatever sits there, and prints
nothing a terminal or GitHub Actions would act on, whoever wrote the file names, flag data,
commit messages and author names.

Each test here failed on the code before the fix: it read and printed a file outside the
folder, hung on a FIFO or /dev/stdin, or printed control characters and `::` lines raw.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.cli import main
from compiler.diagnostics import Diagnostic, Severity
from compiler.pipeline import compile_tree
from compiler.printable import printable
from compiler.render.diagnostics import github, text
from compiler.render.matrix import matrix
from tests.compiler.scripted import Person, Scripted
from tests.conftest import PROJECT, Git, write_tree

REPO = Path(__file__).resolve().parents[2]
FLAG = "description: A flag\nowner: team-a\nenabled: true\n"
SECRET = "hunter2-the-secret-beside-the-flags"
NETRC = f"machine example.com login ada password {SECRET}\n"
SECRET_FLAG = f"description: {SECRET}\nowner: {SECRET}\nenabled: true\n"  # would compile
FORMATS = ("text", "json", "github")
AT_ONCE = 20  # seconds: far more than a check of a few files takes, far less than a hang

# What no text output may hold: control characters (C0, DEL, C1), bidi controls, separators.
UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)


def flagc(*args: str, cwd: Path, timeout: float = AT_ONCE) -> subprocess.CompletedProcess[str]:
    """flagc in a child process whose standard input stays open and empty, as a CI job's
    may: anything that reads /dev/stdin or opens a FIFO blocks, and the timeout fails the
    test instead of hanging it."""
    with subprocess.Popen(
        [sys.executable, "-m", "compiler", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="backslashreplace",
    ) as child:
        try:
            out, err = _wait(child, timeout)
        finally:
            child.kill()
    assert "Traceback" not in err, err
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def _wait(child: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    # communicate() would close stdin (an end of file unblocks a reader); keep it open.
    child.wait(timeout=timeout)
    assert child.stdout is not None and child.stderr is not None
    return child.stdout.read(), child.stderr.read()


def flags_beside_a_secret(tmp_path: Path) -> Path:
    """tmp_path/repo/flags with a valid flag, and secrets beside the folder: a .netrc and
    a folder holding a file that would compile as a flag."""
    write_tree(tmp_path, {"home/.netrc": NETRC, "elsewhere/stolen.yaml": SECRET_FLAG})
    return write_tree(tmp_path / "repo" / "flags", {"_project.yaml": PROJECT, "a.yaml": FLAG})


# (name, how the link is planted in `flags`) for links whose target leaves the folder.
Plant = Callable[[Path, Path], Path]
LINKS_OUT: dict[str, Plant] = {
    "absolute link": lambda flags, tmp: _link(flags / "growth/netrc.yaml", tmp / "home/.netrc"),
    "relative link": lambda flags, tmp: _link(flags / "netrc.yaml", Path("../../home/.netrc")),
    "link through an inside link": lambda flags, tmp: _link(
        flags / "b.yaml", _link(flags / "hop.yaml", tmp / "home/.netrc").relative_to(flags)
    ),
    "the project file": lambda flags, tmp: _replace(flags / "_project.yaml", tmp / "home/.netrc"),
    "a folder link": lambda flags, tmp: _link(flags / "team", tmp / "elsewhere"),
    "a folder link named like a flag": lambda flags, tmp: _link(
        flags / "x.yaml", tmp / "elsewhere"
    ),
}


def _link(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    return link


def _replace(link: Path, target: Path) -> Path:
    link.unlink()
    return _link(link, target)


@pytest.mark.parametrize("output", FORMATS)
@pytest.mark.parametrize("plant", list(LINKS_OUT.values()), ids=list(LINKS_OUT))
def test_a_link_out_of_the_folder_is_reported_and_never_read(
    tmp_path: Path,
    plant: Plant,
    output: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = flags_beside_a_secret(tmp_path)
    planted = plant(flags, tmp_path)
    monkeypatch.chdir(flags.parent)
    assert main(["check", "flags", "--format", output]) == 1
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    assert "file-outside-tree" in captured.out
    assert str(planted.relative_to(flags.parent)) in captured.out.replace("%2F", "/")


def test_a_link_to_a_fifo_outside_is_never_opened(tmp_path: Path) -> None:
    """Opening a FIFO with no writer blocks: an answer proves the target was not opened."""
    flags = flags_beside_a_secret(tmp_path)
    os.mkfifo(tmp_path / "pipe")
    _link(flags / "pipe.yaml", tmp_path / "pipe")
    result = flagc("check", "flags", cwd=flags.parent)
    assert result.returncode == 1
    assert "flags/pipe.yaml:1:1: error[file-outside-tree]" in result.stdout


@pytest.fixture
def committed(git_repo: tuple[Path, Git]) -> tuple[Path, Git]:
    """A git repository whose flags/ (the project and a.yaml) is committed once."""
    repo, git = git_repo
    write_tree(repo / "flags", {"_project.yaml": PROJECT, "a.yaml": FLAG})
    git("add", "--all")
    git("commit", "--quiet", "--message", "Add the flags")
    return repo, git


def test_diff_of_the_work_tree_never_reads_a_link_out(
    tmp_path: Path, committed: tuple[Path, Git]
) -> None:
    repo, _ = committed
    write_tree(tmp_path, {"home/.netrc": SECRET_FLAG})
    _link(repo / "flags/stolen.yaml", tmp_path / "home/.netrc")
    for output in ("text", "json", "markdown"):
        result = flagc("diff", "HEAD", "--format", output, cwd=repo)
        assert result.returncode == 1, result
        assert SECRET not in result.stdout + result.stderr


def test_diff_of_committed_links_judges_them_as_check_does(
    tmp_path: Path, committed: tuple[Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    """A pull request commits the link: at a revision it is reported, never followed out,
    and a link inside the folder works, as in the work tree."""
    repo, git = committed
    write_tree(tmp_path, {"home/.netrc": SECRET_FLAG})
    _link(repo / "flags/stolen.yaml", tmp_path / "home/.netrc")
    _link(repo / "flags/up.yaml", Path("../../home/.netrc"))
    _link(repo / "flags/same.yaml", Path("a.yaml"))
    git("add", "--all")
    git("commit", "--quiet", "--message", "Plant links")
    assert main(["diff", "HEAD~1", "HEAD", "--dir", str(repo / "flags"), "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    plan = json.loads(captured.out)
    assert [(flag["key"], flag["kind"]) for flag in plan["flags"]] == [("same", "added")]
    assert plan["head"]["errors"] == 2  # stolen.yaml and up.yaml: file-outside-tree


def _fifo_project(flags: Path) -> None:
    (flags / "_project.yaml").unlink()
    os.mkfifo(flags / "_project.yaml")


def _linked_fifo(link: Path) -> None:
    os.mkfifo(link.parent / ".pipe")  # hidden: only the link is a flag file
    _link(link, Path(".pipe"))


def _socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the file stays


# Entries that are no regular file: (name, how it is made, the code it gets, the exit code)
Make = Callable[[Path], object]
SPECIAL: list[tuple[str, Make, str, int]] = [
    ("a FIFO", lambda flags: os.mkfifo(flags / "pipe.yaml"), "io-error", 2),
    ("a FIFO as the project file", _fifo_project, "io-error", 2),
    ("a link to a FIFO inside", lambda flags: _linked_fifo(flags / "p.yaml"), "io-error", 2),
    ("a socket", lambda flags: _socket(flags / "s.yaml"), "io-error", 2),
    (
        "a link to /dev/stdin",
        lambda flags: _link(flags / "in.yaml", Path("/dev/stdin")),
        "file-outside-tree",
        1,
    ),
    (
        "a link to /dev/zero",
        lambda flags: _link(flags / "z.yaml", Path("/dev/zero")),
        "file-outside-tree",
        1,
    ),
]


@pytest.mark.parametrize(
    ("make", "code", "exit_code"),
    [pytest.param(make, code, exit_code, id=name) for name, make, code, exit_code in SPECIAL],
)
def test_special_files_are_errors_at_once(
    tmp_path: Path, make: Make, code: str, exit_code: int
) -> None:
    flags = write_tree(tmp_path / "flags", {"_project.yaml": PROJECT, "a.yaml": FLAG})
    make(flags)
    result = flagc("check", "flags", cwd=tmp_path)
    assert result.returncode == exit_code, result
    assert f"error[{code}]" in result.stdout


@pytest.mark.parametrize("command", [("check", "flags"), ("build", "flags", "-o", "out")])
def test_io_error_exits_2_as_readme_says(tmp_path: Path, command: tuple[str, ...]) -> None:
    flags = write_tree(tmp_path / "flags", {"_project.yaml": PROJECT, "a.yaml": FLAG})
    os.mkfifo(flags / "b.yaml")
    result = flagc(*command, "--format", "json", cwd=tmp_path)
    assert result.returncode == 2
    readme = (REPO / "docs" / "check.md").read_text(encoding="utf-8")
    assert (
        "| `io-error` | error | a file could not be read, or is not a regular file (exit code 2) |"
        in readme
    )


def test_links_inside_the_folder_keep_working(tmp_path: Path) -> None:
    flags = write_tree(
        tmp_path / "flags", {"_project.yaml": PROJECT, "team/a.yaml": FLAG, "shared/c.yaml": FLAG}
    )
    _link(flags / "b.yaml", Path("team/a.yaml"))  # a flag whose file is another's
    _link(flags / "d.yaml", Path("b.yaml"))  # a chain, every step inside
    _link(flags / "again", Path("shared"))  # a folder: read where it is, not twice
    result = flagc("check", "flags", "--format", "json", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "[]\n")
    assert "4 flags checked" in result.stderr


# Text output: nothing a terminal or GitHub Actions acts on


def _unescape(shown: str) -> str:
    """The reader's way back from `printable`: each escape to its character."""
    named = {"n": "\n", "r": "\r", "t": "\t"}
    return re.sub(
        r"\\(x[0-9a-f]{2}|u[0-9a-f]{4}|[nrt])",
        lambda m: named.get(m[1]) or chr(int(m[1][1:], 16)),
        shown,
    )


@given(st.text())
def test_printable_leaves_nothing_to_act_on_and_loses_nothing(value: str) -> None:
    shown = printable(value)
    assert not UNSAFE.search(shown)
    assert "\n" not in shown
    assert not shown.startswith("::")
    if "\\" not in value:  # a backslash is kept as it is, so only then is the way back unique
        assert _unescape(shown) == value


@given(st.text(st.characters(exclude_categories=("Cc", "Cf", "Zl", "Zp", "Cs"))))
def test_printable_text_reads_unchanged(value: str) -> None:
    if not value.startswith("::"):
        assert printable(value) == value


_DIAGNOSTICS = st.lists(
    st.builds(
        Diagnostic,
        file=st.text(min_size=1),
        line=st.integers(1, 10_000),
        column=st.integers(1, 10_000),
        severity=st.sampled_from(Severity),
        code=st.sampled_from(["schema", "io-error", "missing-reason"]),
        message=st.text(),
    ),
    max_size=5,
)


@given(_DIAGNOSTICS)
def test_text_and_github_formats_give_one_safe_line_per_diagnostic(
    diagnostics: list[Diagnostic],
) -> None:
    for rendered in (text(diagnostics), github(diagnostics)):
        lines = rendered.split("\n")
        assert lines.pop() == ""
        assert len(lines) == len(diagnostics)
        assert not UNSAFE.search(rendered)
    assert not any(line.startswith("::") for line in text(diagnostics).splitlines())
    assert all(
        line.startswith(("::error file=", "::warning file=")) and line.count("::") == 2
        for line in github(diagnostics).splitlines()
    )


NASTY_NAMES = [
    "x\n::error file=README.md,line=1::pwned",
    "::warning title=forged::hello",
    "clear\x1b[2J\x1b[Hscreen",
    "back\rspace",
    "csi\x9b31m",
    "bidi\u202eevil",
]


@pytest.mark.parametrize("output", ["text", "github"])
def test_check_prints_nasty_file_names_safely(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], output: str
) -> None:
    flags = write_tree(tmp_path / "flags", {"_project.yaml": PROJECT})
    for name in NASTY_NAMES:
        (flags / f"{name}.yaml").write_text("description: [\n", encoding="utf-8")
    monkeypatch.chdir(flags)  # DIR `.`: each line starts with the file's own name
    assert main(["check", ".", "--format", output]) == 1
    out = capsys.readouterr().out
    assert not UNSAFE.search(out)
    lines = out.splitlines()
    assert len(lines) == 2 * len(NASTY_NAMES)  # invalid-key and yaml-syntax for each
    if output == "text":
        assert not any(line.startswith("::") for line in lines)
    else:
        assert all(line.startswith("::error file=") for line in lines)


MALLORY = Person("Mallory\x1b[2J\x1b[H\u202e", "mallory\x1b]0;owned\x07@example.com")
SUBJECT = "Turn the banner on\rLooks innocent\x1b[8m hidden \x9b0m"
BODY = "::error file=README.md::pwned\n\x1b[1A\x1b[2KRewritten line"


def test_audit_text_shows_crafted_commits_safely(
    git_repo: tuple[Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    scripted = Scripted(*git_repo)
    banner = 'description: "Banner \\e[2J \\x9b \\u202e"\nowner: growth\nenabled: false\n'
    scripted.commit("Add the banner", {"_project.yaml": PROJECT, "banner.yaml": banner})
    scripted.commit(
        f"{SUBJECT}\n\n{BODY}",
        {"banner.yaml": banner.replace("false", "true")},
        author=MALLORY,
    )
    assert main(["audit", "banner", str(scripted.flags)]) == 0
    out = capsys.readouterr().out
    assert "Mallory\\x1b[2J\\x1b[H\\u202e" in out  # visible, not acted on
    assert "Turn the banner on\\rLooks innocent\\x1b[8m hidden \\x9b0m" in out
    assert not UNSAFE.search(out)
    assert not any(line.startswith("::") for line in out.splitlines())


def test_diff_text_shows_crafted_names_and_data_safely(
    committed: tuple[Path, Git], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, _ = committed
    nasty = (
        'description: "Clears \\e[2J, then \\x9b31m and \\u202e reversed"\n'
        "owner: x\nenabled: true\n"
    )
    write_tree(repo / "flags", {"b.yaml": nasty, "a.yaml": nasty})
    (repo / "flags" / "a.yaml").rename(repo / "flags" / "a\x1b[2J\n::error::x.yaml")
    monkeypatch.chdir(repo)
    main(["diff", "HEAD", "--format", "text"])
    out = capsys.readouterr().out
    assert "\\x1b[2J" in out
    assert not UNSAFE.search(out)
    assert not any(line.startswith("::") for line in out.splitlines())


def test_build_summary_shows_a_crafted_owner_safely(tmp_path: Path) -> None:
    owner = 'owner: "team\\e[2J\\x9b\\u202e"\n'
    flags = write_tree(
        tmp_path / "flags",
        {"_project.yaml": PROJECT, "a.yaml": FLAG.replace("owner: team-a\n", owner)},
    )
    compiled = compile_tree(flags)
    assert compiled.grid is not None and not compiled.diagnostics
    owners = {key: flag_file.flag.owner for key, flag_file in compiled.flags.items()}
    shown = matrix(compiled.grid, compiled.resolved, owners)
    assert "team\\x1b[2J\\x9b\\u202e" in shown
    assert not UNSAFE.search(shown)


def test_unsafe_pattern_covers_every_control_character() -> None:
    """The tests' own yardstick: every Cc character and every bidi control is matched."""
    for code in range(0x110000):
        character = chr(code)
        if unicodedata.category(character) == "Cc" and character != "\n":
            assert UNSAFE.match(character), hex(code)
    for character in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f":
        assert UNSAFE.match(character)
