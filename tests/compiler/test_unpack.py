"""compiler.unpack: a tar of the flags folder written out, files first, links as committed.

The archives are built in memory (what `git archive` writes is a plain tar), so each rule is
tested without a repository: only what lies below the prefix is written, named relative to
it; links keep their targets, whatever they point at; a link never has a file written
through it; and a link whose own name leads out of the destination is skipped.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from compiler.unpack import unpack

Member = tuple[str, str | bytes]  # name, and a link's target (str) or a file's content


def archive(members: list[Member]) -> io.BytesIO:
    """A tar holding `members` in this order, as git archive would list them."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, value in members:
            info = tarfile.TarInfo(name)
            if isinstance(value, str):
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    data.seek(0)
    return data


def written(root: Path) -> dict[str, str | bytes]:
    """{path below root: a link's target, or a file's content}; folders left out."""
    found: dict[str, str | bytes] = {}
    for folder, folders, files in os.walk(root):
        for name in [*folders, *files]:
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[relative] = str(path.readlink())
            elif path.is_file():
                found[relative] = path.read_bytes()
    return found


CASES = {
    "files below the prefix, named relative to it": (
        "config/flags/",
        [("config/flags/a.yaml", b"a"), ("config/flags/team/b.yaml", b"b")],
        {"a.yaml": b"a", "team/b.yaml": b"b"},
    ),
    "what lies outside the prefix is left out": (
        "flags/",
        [("README.md", b"#"), ("flagsmith/x.yaml", b"x"), ("flags/a.yaml", b"a")],
        {"a.yaml": b"a"},
    ),
    "the whole tree when the prefix is empty": (
        "",
        [("a.yaml", b"a"), ("team/b.yaml", b"b")],
        {"a.yaml": b"a", "team/b.yaml": b"b"},
    ),
    "a link keeps its target, inside or out": (
        "flags/",
        [("flags/a.yaml", b"a"), ("flags/b.yaml", "a.yaml"), ("flags/netrc.yaml", "/root/.netrc")],
        {"a.yaml": b"a", "b.yaml": "a.yaml", "netrc.yaml": "/root/.netrc"},
    ),
    "a link named out of the destination is skipped": (
        "flags/",
        [("flags/a.yaml", b"a"), ("flags/../escape.yaml", "a.yaml")],
        {"a.yaml": b"a"},
    ),
    "a link with an absolute name is skipped": (
        "",
        [("a.yaml", b"a"), ("{tmp}/abs.yaml", "a.yaml")],
        {"a.yaml": b"a"},
    ),
}


@pytest.mark.parametrize(("prefix", "members", "expected"), list(CASES.values()), ids=list(CASES))
def test_unpack(
    tmp_path: Path, prefix: str, members: list[Member], expected: dict[str, str | bytes]
) -> None:
    destination = tmp_path / "tree"
    # {tmp} in a name stands for tmp_path: an absolute name that would land beside the tree
    named = [(name.format(tmp=tmp_path), value) for name, value in members]
    unpack(archive(named), prefix, destination)
    assert written(destination) == expected
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tree"]  # nothing beside it


def test_no_file_is_written_through_a_link(tmp_path: Path) -> None:
    """A link to a folder outside, listed before a file below its name: files come first,
    so the file makes a real folder and the link is not made, and the outside folder stays
    empty."""
    outside = tmp_path / "outside"
    outside.mkdir()
    members: list[Member] = [("flags/team", str(outside)), ("flags/team/a.yaml", b"a")]
    unpack(archive(members), "flags/", tmp_path / "tree")
    assert written(tmp_path / "tree") == {"team/a.yaml": b"a"}
    assert list(outside.iterdir()) == []
