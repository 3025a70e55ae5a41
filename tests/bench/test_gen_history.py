"""bench/gen_history.py at a small scale: a valid repository, deterministic, appendable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.cli import main as flagc

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gen_history.py"
FLAGS, COMMITS = 30, 60
# A high rate of rare events and small folders, so that 60 changes hold moves, deletions,
# re-creations and broken files; seed 3 gives at least one of each.
OPTIONS = (
    *("--flags", str(FLAGS), "--commits", str(COMMITS), "--seed", "3"),
    *("--event-rate", "0.06", "--folder-size", "10"),
)


def generate(out: Path, *options: str) -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT), str(out), *options],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def first_parent(repo: Path, *args: str) -> list[str]:
    return git(repo, "log", "--first-parent", "--format=%H", *args).split()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("history") / "repo"
    generate(out, *OPTIONS)
    return out


def check_passes(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = flagc(["check", str(folder), "--format", "json"])
    findings = json.loads(capsys.readouterr().out)
    assert code == 0, findings
    assert all(finding["severity"] == "warning" for finding in findings)


def test_fsck_clean(generated: Path) -> None:
    done = subprocess.run(
        ["git", "fsck", "--strict", "--no-progress", "--no-dangling"],
        cwd=generated,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert git(generated, "status", "--porcelain") == ""  # the work tree is HEAD
    assert git(generated, "branch", "--all", "--format=%(refname)") == "refs/heads/main\n"


def test_every_change_is_one_first_parent_commit_touching_flags(generated: Path) -> None:
    assert len(first_parent(generated, "--", "flags")) == COMMITS + 1
    assert first_parent(generated, "--", "flags") == first_parent(generated)
    merges = first_parent(generated, "--merges")
    assert len(merges) == COMMITS // 10
    # the first commit adds the project file and the initial flags
    root = git(generated, "rev-list", "--max-parents=0", "HEAD").split()
    added = git(generated, "show", "--format=", "--name-only", root[0]).split()
    assert "flags/_project.yaml" in added
    assert len(added) == FLAGS + 1


def test_authors_time_zones_and_dates(generated: Path) -> None:
    lines = git(generated, "log", "--first-parent", "--format=%an|%ai|%ct|%B%x00").split("\0")
    records = [line.strip("\n").split("|", 3) for line in lines if line.strip()]
    names = {name for name, *_ in records}
    offsets = {date[-5:] for _, date, *_ in records}
    assert len(names) > 5
    assert any(not name.isascii() for name in names)
    assert len(offsets) > 3
    dates = [int(seconds) for _, _, seconds, _ in records]
    assert dates == sorted(dates, reverse=True)
    assert len(set(dates)) == len(dates)
    for *_, message in records:
        subject, blank, body = message.split("\n", 2)
        assert subject and not blank and body.strip()


def test_rare_events(generated: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = git(
        generated, "log", "--first-parent", "-M", "--diff-merges=first-parent", "--name-status"
    )
    statuses = {line.split("\t")[0][:1] for line in log.splitlines() if "\t" in line}
    assert {"A", "M", "D", "R"} <= statuses
    assert first_parent(generated, "--grep=^Bring back ")
    fixes = first_parent(generated, "--grep=^Fix ")
    assert fixes
    # the version before a fix does not pass flagc check; the fixed one does
    message = git(generated, "show", "--no-patch", "--format=%B", fixes[0])
    key = next(line for line in message.splitlines() if line.startswith("Fix "))[4:]
    key = key.split(":", 1)[0]
    changed = git(generated, "show", "--format=", "--name-only", "--first-parent", fixes[0])
    path = next(name for name in changed.split() if name.endswith(f"/{key}.yaml"))
    for revision, broken in ((f"{fixes[0]}^", True), (fixes[0], False)):
        tree = tmp_path / revision.replace("^", "-parent")
        tree.mkdir()
        shutil.copy(generated / "flags" / "_project.yaml", tree)
        (tree / f"{key}.yaml").write_text(git(generated, "show", f"{revision}:{path}"))
        flagc(["check", str(tree), "--format", "json"])
        found = {f["code"] for f in json.loads(capsys.readouterr().out) if f["severity"] == "error"}
        # its dependencies (platform flags) are unknown in this one-file tree: not the point
        assert bool(found - {"unknown-dependency"}) == broken, (revision, found)


def test_final_tree_passes_check(generated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_passes(generated / "flags", capsys)


def test_deterministic(generated: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", *OPTIONS)
    assert git(tmp_path / "again", "rev-parse", "HEAD") == git(generated, "rev-parse", "HEAD")
    generate(tmp_path / "other", *OPTIONS, "--seed", "4")
    assert git(tmp_path / "other", "rev-parse", "HEAD") != git(generated, "rev-parse", "HEAD")


def test_append(generated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "appended"
    shutil.copytree(generated, repo, symlinks=True)
    before = first_parent(repo)
    generate(repo, "--append", "12")
    after = first_parent(repo)
    assert after[12:] == before
    assert len(first_parent(repo, f"{before[0]}..HEAD", "--", "flags")) == 12
    assert git(repo, "status", "--porcelain") == ""
    check_passes(repo / "flags", capsys)
    git(repo, "fsck", "--strict", "--no-progress")


def test_append_refuses_a_repository_that_moved(generated: Path, tmp_path: Path) -> None:
    repo = tmp_path / "moved"
    shutil.copytree(generated, repo, symlinks=True)
    env = {"GIT_AUTHOR_NAME": "x", "GIT_AUTHOR_EMAIL": "x@example.com"}
    env |= {"GIT_COMMITTER_NAME": "x", "GIT_COMMITTER_EMAIL": "x@example.com"}
    subprocess.run(
        ["git", "commit", "--quiet", "--allow-empty", "-m", "by hand"],
        cwd=repo,
        env={**os.environ, **env},
        check=True,
    )
    with pytest.raises(subprocess.CalledProcessError) as raised:
        generate(repo, "--append", "1")
    assert raised.value.returncode == 2
    assert b"has moved" in raised.value.stderr


def test_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    with pytest.raises(subprocess.CalledProcessError) as raised:
        generate(tmp_path / "full", "--flags", "3", "--commits", "1")
    assert raised.value.returncode == 2
