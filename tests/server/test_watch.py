"""server.watch: a wait that ends when a build lands in the directory (inotify, on a real
folder), or after its interval; following the directory when it is replaced."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler import publish
from server import watch as watch_module
from server.watch import Watch

LONG = 30.0  # an interval no test waits out: a wait that returns True was woken by a change


def woken(watch: Watch, change: Callable[[], object]) -> bool:
    """What `watch.wait(LONG)` returns when `change` happens while it waits."""
    returned: list[bool] = []
    waiting = threading.Thread(target=lambda: returned.append(watch.wait(LONG)))
    waiting.start()
    change()
    waiting.join(LONG + 5)
    return returned == [True]


def land(out: Path, number: int) -> None:
    """A build published into `out` as flagc publishes one (swapped in whole)."""
    with publish.locked(out):
        publish.publish(out, b'{"n": %d}\n' % number, b"{}\n", {"production": b"{}\n"})


def test_a_build_landing_ends_the_wait(tmp_path: Path) -> None:
    out = tmp_path / "out"
    land(out, 1)
    watch = Watch(out)
    assert watch.notifying
    assert woken(watch, lambda: land(out, 2))
    while watch.wait(0.1):  # what else that build did
        pass
    assert woken(watch, lambda: land(out, 3))  # and the next one


def test_a_file_written_in_place_ends_the_wait(tmp_path: Path) -> None:
    watch = Watch(tmp_path)
    assert woken(watch, lambda: (tmp_path / "snapshot.json").write_bytes(b"{}"))


def test_with_nothing_changing_the_wait_lasts_the_interval(tmp_path: Path) -> None:
    assert Watch(tmp_path).wait(0.05) is False


def test_off_it_only_ever_waits_for_the_interval(tmp_path: Path) -> None:
    watch = Watch(tmp_path, notify=False)
    assert not watch.notifying
    assert watch.wait(0.05) is False


def test_without_inotify_it_polls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused() -> None:  # as when the user's inotify instances are used up
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(watch_module, "INotify", refused)
    watch = Watch(tmp_path)
    assert not watch.notifying
    assert watch.wait(0.05) is False


def test_a_directory_reached_through_a_link_is_followed_when_the_link_moves(
    tmp_path: Path,
) -> None:
    first, second, link = tmp_path / "first", tmp_path / "second", tmp_path / "serving"
    first.mkdir()
    second.mkdir()
    link.symlink_to(first)
    watch = Watch(link)
    assert woken(watch, lambda: (first / "a").write_bytes(b"1"))
    (tmp_path / "next").symlink_to(second)
    (tmp_path / "next").replace(link)  # as Kubernetes swaps a volume's `..data` link
    assert watch.wait(0.05) is True  # watching the new folder from now: look at once
    assert woken(watch, lambda: (second / "b").write_bytes(b"2"))  # the new one is


def test_a_directory_removed_and_made_again_is_watched_again(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    watch = Watch(out)
    assert woken(watch, out.rmdir)
    assert watch.wait(0.05) is False  # nothing there to watch: polled
    out.mkdir()
    assert watch.wait(0.05) is True  # watched again from here: look at once
    assert woken(watch, lambda: (out / "snapshot.json").write_bytes(b"{}"))


def test_a_closed_watch_polls(tmp_path: Path) -> None:
    watch = Watch(tmp_path)
    watch.close()
    watch.close()  # twice is harmless
    assert not watch.notifying
    assert watch.wait(0.05) is False


def test_a_watch_closed_while_waited_on_ends_the_wait(tmp_path: Path) -> None:
    watch = Watch(tmp_path)
    returned: list[bool] = []
    waiting = threading.Thread(target=lambda: returned.append(watch.wait(LONG)))
    waiting.start()
    time.sleep(0.1)  # waiting in inotify's read
    watch.close()  # as Store.after_fork does, in a store whose watcher still runs
    (tmp_path / "woken").write_bytes(b"")  # a change the closed watch may not report
    waiting.join(LONG + 5)
    assert returned in ([False], [True])  # ended, not raised
    assert watch.wait(0.01) is False  # and polled from now on
