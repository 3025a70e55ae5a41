"""compiler.incremental's pure parts, against what a full build makes of the same data:
the new snapshot's flags joined from the previous snapshot's bytes (`Entries.joined`).
The builds themselves, step by step against full builds, are in test_build_incremental.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import emit
from compiler.incremental import Cache, Entries, Previous, Untrusted

KEYS = st.from_regex(r"[a-d][a-d0-9_-]{0,3}", fullmatch=True)  # KEY_PATTERN's, short
BEFORE = st.dictionaries(KEYS, st.integers(0, 9), max_size=12)


def entry(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "value": value, "text": '"},"' + key}  # quotes and braces inside


def canonical(flags: dict[str, dict[str, Any]]) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """The flags object's bytes and spans as a full build makes them."""
    parts, spans = emit.flags_of(flags)
    return b"".join(parts), spans


def previous_of(flags: dict[str, dict[str, Any]], spans: dict[str, Any] | None = None) -> Previous:
    """A previous build whose snapshot is just `flags` (its spans as written, or `spans`)."""
    data, written = canonical(flags)
    snapshot = {"spans": written if spans is None else spans, "edges": {}, "head": {}}
    cache = Cache("", "", "", {}, {}, {}, {}, {}, snapshot, {})
    return Previous(Path("out"), cache, data, {})


@settings(max_examples=300, deadline=None)
@given(before=BEFORE, data=st.data())
def test_joined_flags_are_those_one_serialization_gives(
    before: dict[str, int], data: st.DataObject
) -> None:
    """Whichever flags are kept, made again, removed or added: the same bytes and spans."""
    old = {key: entry(key, value) for key, value in before.items()}
    kept = data.draw(st.sets(st.sampled_from(sorted(old)))) if old else set()
    remade = data.draw(st.sets(st.sampled_from(sorted(kept)))) if kept else set()
    added = data.draw(st.dictionaries(KEYS.filter(lambda key: key not in old), st.integers(0, 9)))
    new = {key: old[key] for key in kept} | {key: entry(key, 10) for key in remade}
    new |= {key: entry(key, value) for key, value in added.items()}
    entries = Entries(previous_of(old), new)
    for key in remade | added.keys():
        entries.made[key] = new[key]
    parts, spans = entries.joined()
    assert (b"".join(parts), spans) == canonical(new)


def test_a_run_of_many_entries_is_taken_as_one_view() -> None:
    old = {f"k{number:03}": entry(f"k{number:03}", number) for number in range(100)}
    entries = Entries(previous_of(old), old)
    entries.made["k050"] = entry("k050", "changed")
    parts, _ = entries.joined()
    assert len(parts) == 9  # "{", a view, ",", the name, ":", the entry, ",", a view, "}"
    assert [len(part) > 1000 for part in parts].count(True) == 2


@pytest.mark.parametrize("damaged", ["a", "c", "e"])
def test_a_span_that_does_not_frame_a_runs_end_is_not_trusted(damaged: str) -> None:
    old = {key: entry(key, 1) for key in "abcde"}
    _, spans = canonical(old)
    start, end = spans[damaged]
    previous = previous_of(old, {**spans, damaged: (start + 1, end)})
    entries = Entries(previous, old)
    entries.made["b"] = entry("b", 2)
    entries.made["d"] = entry("d", 2)
    with pytest.raises(Untrusted):
        entries.joined()
