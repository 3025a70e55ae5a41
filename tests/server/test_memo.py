"""Snapshot.memo: bodies kept per snapshot, bounded in number and in bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import snapshot as store
from core.bodies import Body
from core.snapshot import Snapshot
from tests.server.conftest import is_kept


def _snapshot() -> Snapshot:
    return Snapshot({}, b"", [], True, 0.0)  # memo needs no build


def _body(size: int, gzipped: int | None = None) -> Body:
    return Body(b"x" * size, '"etag"', None if gzipped is None else b"z" * gzipped)


def _kept(snapshot: Snapshot, key: str) -> bool:
    return is_kept(snapshot, (key,))


def test_a_body_is_made_once_and_kept() -> None:
    snapshot, made = _snapshot(), []

    def make() -> Body:
        made.append(1)
        return _body(10)

    first = snapshot.memo(("a",), make)
    assert snapshot.memo(("a",), make) is first
    assert made == [1]


def test_the_least_recently_used_go_first_past_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "MEMO_SIZE", 2)
    snapshot = _snapshot()
    snapshot.memo(("a",), lambda: _body(1))
    snapshot.memo(("b",), lambda: _body(1))
    snapshot.memo(("a",), lambda: _body(1))  # used again: b is now the oldest
    snapshot.memo(("c",), lambda: _body(1))
    assert [_kept(snapshot, key) for key in "ac"] == [True, True]
    assert not _kept(snapshot, "b")


def test_the_least_recently_used_go_first_past_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "MEMO_BYTES", 100)
    snapshot = _snapshot()
    snapshot.memo(("a",), lambda: _body(30, gzipped=10))  # 40 bytes, both variants count
    snapshot.memo(("b",), lambda: _body(40))
    snapshot.memo(("c",), lambda: _body(30))  # 110 bytes: a goes
    assert not _kept(snapshot, "a")
    assert _kept(snapshot, "b") and _kept(snapshot, "c")


def test_a_body_bigger_than_the_bound_is_answered_but_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store, "MEMO_BYTES", 100)
    snapshot = _snapshot()
    snapshot.memo(("small",), lambda: _body(10))
    big = _body(101)
    assert snapshot.memo(("big",), lambda: big) is big
    assert not _kept(snapshot, "big")
    assert _kept(snapshot, "small")  # and nothing was pushed out for it


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 60)), max_size=60))
def test_the_bounds_always_hold(uses: list[tuple[int, int]]) -> None:
    with pytest.MonkeyPatch.context() as patch:  # not the fixture: one patch per example
        patch.setattr(store, "MEMO_SIZE", 4)
        patch.setattr(store, "MEMO_BYTES", 100)
        snapshot = _snapshot()
        for key, size in uses:
            answered = snapshot.memo((key,), lambda size=size: _body(size))
            kept = snapshot._kept
            assert kept.size == sum(len(b.data) for b in kept.bodies.values())
            assert kept.size <= 100 and len(kept.bodies) <= 4
            assert (kept.bodies.get((key,)) is answered) == (len(answered.data) <= 100)
