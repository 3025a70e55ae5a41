"""Issue 12, part 6: `flagc export` replaces only the files of its own previous export and
keeps every other file (a Pages checkout's .git, CNAME, .nojekyll, someone's README.md and
src/); where it cannot do that safely it refuses with exit 2 and changes nothing; a manifest
naming paths outside SITE, or a symbolic link on the way, never makes it write or delete
outside; and a run killed with SIGKILL at any point is finished, its leftovers removed, by
the next one."""

from __future__ import annotations

import fcntl
import os
import posixpath
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.commands.export import MANIFEST, STAGING, is_inside, write_site
from core.documents import documents
from core.snapshot import load
from tests.conftest import Git, write_tree
from tests.server.conftest import Built
from tests.server.exports import export, manifest, state, tree

FOREIGN = {
    "CNAME": b"flags.example.com\n",
    ".nojekyll": b"",
    ".git/config": b"[core]\n\tbare = false\n",
    ".git/HEAD": b"ref: refs/heads/gh-pages\n",
    "README.md": b"# Our flags, published\n",
    "src/notes.txt": b"mine\n",
    "api/v1/mine.txt": b"beside the export's own files\n",
}


def plant(site: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_bytes(data)


def ours(site: Path) -> dict[str, bytes]:
    """The files of the export in `site`: what its manifest lists, and the manifest."""
    return {path: data for path, data in tree(site).items() if path not in FOREIGN}


def reference(built: Built, tmp_path: Path, *options: str) -> dict[str, bytes]:
    """What an export of the build into a fresh folder holds."""
    fresh = tmp_path / f"fresh-{len(list(tmp_path.iterdir()))}"
    assert export(fresh, built.out, *options) == 0
    return tree(fresh)


# Keeping what it did not write -----------------------------------------------------------


def test_a_previous_export_is_replaced_and_every_other_file_kept(
    built: Built, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    assert export(site, built.out) == 0
    plant(site, FOREIGN)
    built.commit("Retire the free shipping banner", {"growth/banner.yaml": None})
    assert export(site, built.out) == 0
    assert {path: tree(site)[path] for path in FOREIGN} == FOREIGN
    assert ours(site) == reference(built, tmp_path)
    assert not (site / "api/v1/flags/banner.json").exists()  # the stale document is gone


def test_a_pages_checkout_is_written_into_when_asked(built: Built, tmp_path: Path) -> None:
    """A first export into a folder with files of its own: refused unless --into-nonempty,
    then written beside them; from then on it is an export and needs no option."""
    site = tmp_path / "site"
    pages = {name: FOREIGN[name] for name in ("CNAME", ".nojekyll", ".git/config")}
    plant(site, pages)
    before = state(site)
    assert export(site, built.out) == 2
    assert state(site) == before
    assert export(site, built.out, "--into-nonempty") == 0
    assert export(site, built.out) == 0
    assert {path: tree(site)[path] for path in pages} == pages
    assert ours(site) == reference(built, tmp_path)


def test_folders_the_previous_export_leaves_empty_are_removed_and_no_other(
    built: Built, tmp_path: Path
) -> None:
    """An export of only the snapshot after a full one: every other document goes, with
    the folders that leaves empty; a folder holding someone's file stays, with the file."""
    site = tmp_path / "site"
    assert export(site, built.out) == 0
    plant(site, FOREIGN)
    snapshot = load(built.out)
    only = [document for document in documents(snapshot) if document.path == "api/v1/snapshot.json"]
    assert write_site(site, only, snapshot, 1000) == 1
    folders = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_dir())
    assert folders == [".git", "api", "api/v1", "src"]
    assert set(tree(site)) == {*FOREIGN, "api/v1/snapshot.json", MANIFEST}


def _foreign_manifest(site: Path) -> None:
    plant(site, {MANIFEST: b'{"generator": "someone else"}\n'})


def _foreign_document(site: Path) -> None:
    plant(site, {"api/v1/snapshot.json": b"mine\n"})


def _folder_at_a_document(site: Path) -> None:
    plant(site, {"api/v1/snapshot.json/inside.txt": b"mine\n"})


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (_foreign_manifest, "index.json is not a file of the previous export"),
        (_foreign_document, "api/v1/snapshot.json is not a file of the previous export"),
        (_folder_at_a_document, "api/v1/snapshot.json is a folder"),
    ],
    ids=["foreign manifest", "foreign document", "folder at a document"],
)
def test_a_file_of_someone_else_at_an_exported_path_is_refused(
    built: Built,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setup: Callable[[Path], None],
    message: str,
) -> None:
    site = tmp_path / "site"
    plant(site, {"CNAME": FOREIGN["CNAME"]})
    setup(site)
    before = state(tmp_path)
    capsys.readouterr()
    assert export(site, built.out, "--into-nonempty") == 2
    err = capsys.readouterr().err
    assert message in err
    assert "nothing was changed" in err
    assert err.count("\n") == 1, err
    assert state(tmp_path) == before


def test_a_new_document_where_someone_put_a_file_is_refused(built: Built, tmp_path: Path) -> None:
    """Over a previous export too: a path it did not write before is not its to replace."""
    site = tmp_path / "site"
    assert export(site, built.out) == 0
    plant(site, {"api/v1/flags/coupon.json": b"mine\n", **FOREIGN})
    built.commit("Add the coupon flag", {"growth/coupon.yaml": COUPON})
    before = state(tmp_path)
    assert export(site, built.out) == 2
    assert state(tmp_path) == before


COUPON = "description: Coupon field at checkout\nowner: team-growth\nenabled: false\n"


# Never outside SITE ----------------------------------------------------------------------

ESCAPES = ["../victim.txt", "../../victim.txt", "/tmp/victim.txt", "api/../../victim.txt",
           "..\\victim.txt", "", ".", "api//x.json", "api/./x.json"]  # fmt: skip


@pytest.mark.parametrize("listed", ESCAPES)
def test_a_manifest_naming_a_path_outside_is_refused(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str], listed: str
) -> None:
    """Whatever the rest of the manifest says: nothing is removed, inside or out."""
    site = tmp_path / "sites" / "site"
    assert export(site, built.out) == 0
    plant(site, FOREIGN)
    (site.parent / "victim.txt").write_bytes(b"not the export's\n")
    document = manifest(site)
    document["documents"][listed] = {"url": "/x", "etag": '"x"', "size": 1}
    (site / MANIFEST).write_bytes(orjson.dumps(document))
    built.commit("Retire the free shipping banner", {"growth/banner.yaml": None})
    before = state(tmp_path / "sites")
    capsys.readouterr()
    assert export(site, built.out) == 2
    assert "which is not a path inside" in capsys.readouterr().err
    assert state(tmp_path / "sites") == before


@given(st.text(alphabet="ab./\\\0", max_size=12))
def test_a_path_said_to_be_inside_stays_inside(relative: str) -> None:
    if is_inside(relative):
        joined = posixpath.normpath(posixpath.join("/site", relative))
        assert joined.startswith("/site/"), relative


def _link_at_a_document(site: Path, outside: Path) -> None:
    (site / "api/v1/snapshot.json").unlink()
    (site / "api/v1/snapshot.json").symlink_to(outside / "target.txt")


def _link_on_the_way(site: Path, outside: Path) -> None:
    (site / "api/v1/environments").rename(outside / "environments")
    (site / "api/v1/environments").symlink_to(outside / "environments")


@pytest.mark.parametrize("setup", [_link_at_a_document, _link_on_the_way])
def test_a_symbolic_link_in_the_site_is_never_followed(
    built: Built, tmp_path: Path, setup: Callable[[Path, Path], None]
) -> None:
    site, outside = tmp_path / "site", tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_bytes(b"outside\n")
    assert export(site, built.out) == 0
    setup(site, outside)
    built.commit("Retire the free shipping banner", {"growth/banner.yaml": None})
    before = state(outside)
    assert export(site, built.out) == 2
    assert state(outside) == before


def test_a_link_where_a_stale_document_was_is_kept_and_not_followed(
    built: Built, tmp_path: Path
) -> None:
    site, outside = tmp_path / "site", tmp_path / "outside.txt"
    outside.write_bytes(b"outside\n")
    assert export(site, built.out) == 0
    (site / "api/v1/flags/banner.json").unlink()
    (site / "api/v1/flags/banner.json").symlink_to(outside)
    built.commit("Retire the free shipping banner", {"growth/banner.yaml": None})
    assert export(site, built.out) == 0
    assert (site / "api/v1/flags/banner.json").is_symlink()
    assert outside.read_bytes() == b"outside\n"


def test_a_fifo_for_a_manifest_is_refused_at_once(built: Built, tmp_path: Path) -> None:
    """Reading it would block for good: it is not a manifest, so the folder is not ours."""
    site = tmp_path / "site"
    site.mkdir()
    os.mkfifo(site / MANIFEST)
    done = subprocess.run(
        [sys.executable, "-m", "compiler", "export", str(site), "--from", str(built.out)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "neither empty nor a previous export" in done.stderr


def test_one_export_at_a_time(
    built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    descriptor = os.open(site, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        capsys.readouterr()
        assert export(site, built.out) == 2
        assert "another flagc export is writing" in capsys.readouterr().err
    finally:
        os.close(descriptor)
    assert list(site.iterdir()) == []


# Killed runs -----------------------------------------------------------------------------

MANY = 200  # flags: with one item a page, some 1,000 files, a couple of seconds of writing


@pytest.fixture
def large(git_repo: tuple[Path, Git], tmp_path: Path) -> Built:
    repo, git = git_repo
    files = {
        f"flags/gen/flag-{number}.yaml": f"description: Flag {number}\nowner: team-gen\n"
        "enabled: false\n"
        for number in range(MANY)
    }
    write_tree(repo, {"flags/_project.yaml": PROJECT, **files})
    git("add", "--all")
    git("commit", "--quiet", "--message", "Add the generated flags")
    built = Built(repo, repo / "flags", tmp_path / "out", git)
    built.build()
    return built


PROJECT = "environments: [development, staging, production]\napplications: [web, ios, android]\n"


def exporting(site: Path, out: Path, *options: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "compiler", "export", str(site), "--from", str(out)]
    return subprocess.Popen([*command, "--page-size", "1", *options], stderr=subprocess.DEVNULL)


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not condition() and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.002)


def staging(site: Path) -> list[Path]:
    return [path for path in site.iterdir() if STAGING.fullmatch(path.name)]


def _staged(site: Path) -> bool:
    return any(any(folder.iterdir()) for folder in staging(site))


def _applying(site: Path) -> bool:
    return (site / "api/v1/audit.json").exists()  # among the first renamed into place


# When to kill: while it writes its temporary folder, while it renames files into place,
# and at random moments (seeded: the same moments each run).
_RANDOM = random.Random(12)
MOMENTS: list[Callable[[Path], bool] | float] = [
    _staged,
    _applying,
    *[round(_RANDOM.uniform(0.3, 2.0), 2) for _ in range(2)],
]


@pytest.mark.parametrize("moment", MOMENTS, ids=lambda m: getattr(m, "__name__", f"{m}s"))
def test_a_killed_export_is_finished_and_cleaned_by_the_next(
    large: Built, tmp_path: Path, moment: Callable[[Path], bool] | float
) -> None:
    """kill -9 during a first export into a Pages checkout: its files are kept, and the
    next run (needing no option: the leftover says the folder is an export) completes the
    export and removes every temporary folder, also those the former whole-folder swap
    left beside SITE."""
    site = tmp_path / "site"
    plant(site, FOREIGN)
    former = [tmp_path / ".site.abcd1234.export", tmp_path / ".site.efgh5678.old"]
    for folder in former:
        plant(folder, {"api/v1/snapshot.json": b"x" * 1_000_000})
    process = exporting(site, large.out, "--into-nonempty")
    if isinstance(moment, float):
        time.sleep(moment)
    else:
        wait_for(lambda: moment(site), process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    print("killed with", sorted(ours(site))[:3], "in place")  # where it stopped, if it fails
    assert {path: tree(site)[path] for path in FOREIGN} == FOREIGN

    # A leftover with its manifest marks SITE as an export; killed before that, nothing was
    # renamed into place and the folder still needs --into-nonempty (refused, unchanged).
    if exporting(site, large.out).wait(timeout=120) != 0:
        assert not (site / "api/v1/snapshot.json").exists()
        assert exporting(site, large.out, "--into-nonempty").wait(timeout=120) == 0
    assert staging(site) == []
    assert [folder for folder in former if folder.exists()] == []
    assert {path: tree(site)[path] for path in FOREIGN} == FOREIGN
    assert ours(site) == reference(large, tmp_path, "--page-size", "1")
