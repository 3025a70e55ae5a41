"""compiler.publish.publish: each file written in a thread of its own, the cache made while
they are written; whatever fails, the build that was current stays current."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from compiler import publish


def published(out: Path) -> dict[str, bytes]:
    current = out / publish.CURRENT
    return {
        str(path.relative_to(current)): path.read_bytes()
        for path in sorted(current.rglob("*"))
        if path.is_file()
    }


def first_build(out: Path) -> dict[str, bytes]:
    with publish.locked(out):
        publish.publish(out, b"{}\n", b"[]\n", {"production": b"{}\n"}, b"cache\n")
    return published(out)


def test_the_cache_made_while_the_outputs_are_written_is_published_with_them(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    calls: list[None] = []

    def cache() -> bytes:
        calls.append(None)
        return b"made\n"

    flagd = {name: name.encode() * 1000 for name in ("a", "b", "c", "d", "e", "f", "g", "h", "i")}
    with publish.locked(out):
        publish.publish(out, b"snapshot" * 100_000, b"audit", flagd, cache)
    assert len(calls) == 1
    assert published(out) == {
        "snapshot.json": b"snapshot" * 100_000,
        "audit.json": b"audit",
        publish.CACHE: b"made\n",
        **{f"flagd/{name}.json": data for name, data in flagd.items()},
    }
    assert threading.active_count() == 1  # no writer left: a build may fork after


def test_an_error_writing_one_file_is_raised_and_the_last_build_stays(tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = first_build(out)
    flagd = {"production": b"{}\n", "no/such/folder": b"{}\n"}  # its thread cannot write it
    with publish.locked(out), pytest.raises(FileNotFoundError):
        publish.publish(out, b"{}\n", b"[]\n", flagd, b"cache\n")
    assert published(out) == before
    assert threading.active_count() == 1


def test_an_error_making_the_cache_is_raised_and_the_last_build_stays(tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = first_build(out)

    def cache() -> bytes:
        raise ValueError("no cache")

    with publish.locked(out), pytest.raises(ValueError, match="no cache"):
        publish.publish(out, b"{}\n", b"[]\n", {"production": b"{}\n"}, cache)
    assert published(out) == before
    assert threading.active_count() == 1
