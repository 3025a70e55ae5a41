"""core.regular: only regular files are read, and nothing else is waited on."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from core.regular import NotRegularFile, read_regular_file


def test_a_regular_file_is_read_whole_or_up_to_a_limit(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"0123456789")
    assert read_regular_file(tmp_path / "f") == b"0123456789"
    assert read_regular_file(tmp_path / "f", 4) == b"0123"


def test_anything_else_is_refused_at_once(tmp_path: Path) -> None:
    """A FIFO with no writer would block `open` itself, /dev/stdin a read."""
    os.mkfifo(tmp_path / "pipe")
    cases = [
        (tmp_path / "pipe", "a FIFO"),
        (tmp_path, "a folder"),
        (Path("/dev/null"), "a character device"),
    ]
    for path, kind in cases:
        with pytest.raises(NotRegularFile, match=kind):
            read_regular_file(path)


def test_links_are_followed_unless_told_not_to(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"data")
    (tmp_path / "link").symlink_to("f")
    assert read_regular_file(tmp_path / "link") == b"data"
    with pytest.raises(OSError) as raised:
        read_regular_file(tmp_path / "link", follow=False)
    assert raised.value.errno == errno.ELOOP


def test_a_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing")
