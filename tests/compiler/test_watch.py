"""`flagc watch`, the resident builder (compiler/commands/watch.py, compiler/watch.py): the
real console script on a real repository, its log read as it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from compiler.build import build
from compiler.watch import state
from tests.compiler.helpers import BANNER, BANNER_IOS, documented
from tests.compiler.scripted import Scripted, swap_link
from tests.conftest import PROJECT

BIN = Path(sys.executable).parent
SEARCH = """\
description: The new search page
owner: search
enabled: false
"""
START = {"_project.yaml": PROJECT, "growth/banner.yaml": BANNER, "search/new.yaml": SEARCH}


class Watching:
    """`flagc watch` running on `scripted`'s flags into `out`, its stderr in `log`."""

    def __init__(self, scripted: Scripted, out: Path, log: Path) -> None:
        self.log = log
        with log.open("wb") as written:
            self.process = subprocess.Popen(
                [BIN / "flagc", "watch", scripted.flags, "-o", out, "--interval", "0.1"],
                stdout=subprocess.DEVNULL,
                stderr=written,
            )

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def wait_for(self, done: Callable[[list[str]], bool]) -> list[str]:
        deadline = time.monotonic() + 60
        while not done(self.lines()):
            assert self.process.poll() is None, self.lines()
            assert time.monotonic() < deadline, self.lines()
            time.sleep(0.05)
        return self.lines()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=10)


@pytest.fixture
def watching(scripted: Scripted, tmp_path: Path) -> Iterator[Watching]:
    scripted.commit("start", START)
    watcher = Watching(scripted, tmp_path / "out", tmp_path / "watch.log")
    try:
        yield watcher
    finally:
        if watcher.process.poll() is None:
            watcher.process.kill()
            watcher.process.wait()


def built(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("flagc: built ")]


def of_commits(lines: list[str]) -> list[str]:
    """The builds of commits, not of a change seen before its commit: the watcher may look
    between a file's writing and its commit, and build it as the last commit, dirty."""
    return [line for line in built(lines) if "-dirty (" not in line]


def test_each_commit_is_built_once_reusing_the_last_build(
    watching: Watching, scripted: Scripted, tmp_path: Path
) -> None:
    """A commit is built (reusing the build held in memory: the change, whether seen
    before its commit or with it, compiles its one flag) to a full build's bytes; a commit
    that does not build is reported once and not tried again; the next is built; SIGTERM
    ends the process with 0."""
    out = tmp_path / "out"
    watching.wait_for(lambda lines: len(built(lines)) == 1)
    changed = scripted.commit("banner on ios", {"growth/banner.yaml": BANNER_IOS})
    lines = watching.wait_for(
        lambda lines: any(f"at revision {changed.sha} (" in line for line in built(lines))
    )
    assert "1 flags reused from the last build" in built(lines)[1]
    full = build(scripted.flags, tmp_path / "full", display_root=str(scripted.flags))
    assert full.outputs and documented(out) == documented(tmp_path / "full")

    broken = scripted.commit("break the banner", {"growth/banner.yaml": "enabled: maybe\n"})
    failed = f"flagc: {broken.sha} did not build; OUT keeps its last build"
    watching.wait_for(lambda lines: failed in lines)
    time.sleep(1)  # ten looks at the folder
    assert watching.lines().count(failed) == 1
    mended = scripted.commit("mend the banner", {"growth/banner.yaml": BANNER})
    watching.wait_for(lambda lines: f"at revision {mended.sha} (" in "\n".join(built(lines)))
    assert len(of_commits(watching.lines())) == 3
    assert watching.stop() == 0


def test_an_uncommitted_edit_is_built(watching: Watching, scripted: Scripted) -> None:
    watching.wait_for(lambda lines: len(built(lines)) == 1)
    (scripted.flags / "growth/banner.yaml").write_text(BANNER_IOS, encoding="utf-8")
    watching.wait_for(lambda lines: len(built(lines)) == 2)
    assert watching.stop() == 0


def test_a_folder_gone_meanwhile_is_reported_once_and_built_when_back(
    watching: Watching, scripted: Scripted
) -> None:
    watching.wait_for(lambda lines: len(built(lines)) == 1)
    away = scripted.repo / "away"
    scripted.flags.rename(away)
    lines = watching.wait_for(lambda lines: any("did not build" in line for line in lines))
    assert any(line.startswith("flagc: error: ") for line in lines), lines
    time.sleep(0.5)
    assert sum("did not build" in line for line in watching.lines()) == 1
    away.rename(scripted.flags)
    watching.wait_for(lambda lines: len(built(lines)) == 2)
    assert watching.stop() == 0


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (["missing"], "flagc: error: missing is not a folder"),
        (["flags", "--interval", "0"], "is not a number of seconds"),
        (["flags", "--interval", "soon"], "is not a number of seconds"),
    ],
)
def test_what_cannot_be_watched_exits_2(
    scripted: Scripted, arguments: list[str], error: str
) -> None:
    scripted.commit("start", START)
    done = subprocess.run(
        [BIN / "flagc", "watch", *arguments],
        cwd=scripted.repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert error in done.stderr


# compiler.watch.state: what tells the folder changed


def test_the_state_changes_with_any_change_to_a_flag_file(scripted: Scripted) -> None:
    """Even a rewrite of the same size with the modification time set back."""
    scripted.commit("start", START)
    before = state(scripted.flags)
    assert state(scripted.flags) == before
    path = scripted.flags / "growth/banner.yaml"
    stat, data = path.stat(), path.read_bytes()
    path.write_bytes(data.replace(b"false", b"fals_"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert state(scripted.flags) != before


def test_the_state_changes_with_a_commit_outside_the_folder(scripted: Scripted) -> None:
    """HEAD moves: the snapshot's revision does too."""
    scripted.commit("start", START)
    before = state(scripted.flags)
    made = scripted.commit("docs", outside={"README.md": "flags\n"})
    after = state(scripted.flags)
    assert (after.files, after.head) == (before.files, made.sha)


def test_the_state_follows_a_link_swapped_to_another_work_tree(
    scripted: Scripted, tmp_path: Path
) -> None:
    """git-sync's layout: the folder is reached through a link that each sync swaps to a
    new work tree, of the same files when the commit changed nothing below the folder."""
    scripted.commit("start", START)
    link = tmp_path / "current"
    states = []
    for name in ("one", "two"):
        swap_link(link, scripted.check_out(tmp_path / name))
        states.append(state(link / "flags"))
    assert states[0].head == states[1].head
    assert states[0].files != states[1].files


def test_the_state_ignores_hidden_files(scripted: Scripted) -> None:
    """The loader reads no hidden file (a repository's .git, which git rewrites as it works,
    when the flags are at its root)."""
    scripted.commit("start", START)
    before = state(scripted.flags)
    (scripted.flags / ".notes").write_text("a note\n", encoding="utf-8")
    assert state(scripted.flags) == before


def test_the_state_outside_git_has_no_head(tmp_path: Path) -> None:
    (tmp_path / "flags").mkdir()
    assert state(tmp_path / "flags").head is None
    assert state(tmp_path / "missing").head is None
