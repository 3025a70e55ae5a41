"""compiler.load.load_tree on real folders: which files are read, and what is reported."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from compiler.beside import can_fork
from compiler.load import MAX_FILE_BYTES, LaterSource, Loaded, ReadAhead, load_tree
from compiler.yamlsource import Parsed, parse, read_plain
from tests.conftest import PROJECT, write_tree

FLAG = "description: Test flag\nowner: team-a\nenabled: true\n"


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    return write_tree(tmp_path / "flags", {"_project.yaml": PROJECT, **files})


def codes(loaded: Loaded) -> list[tuple[str, int, int, str]]:
    return sorted((d.file, d.line, d.column, d.code) for d in loaded.diagnostics)


def load_with_mode_000(root: Path, locked: Path, mode: int) -> Loaded:
    """load_tree(root) while `locked` (a file or a folder) has mode 000, `mode` after; skipped
    where mode 000 does not stop this user (root)."""
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip(f"this user can read {locked.name}, though its mode is 000 (root)")
        return load_tree(root, ".")
    finally:
        locked.chmod(mode)


def test_reads_flags_in_sub_folders_and_skips_hidden_and_private_files(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "alpha.yaml": FLAG,
            "team/beta.yaml": FLAG,
            "team/deeper/gamma.yaml": FLAG,
            ".hidden/delta.yaml": "not: [valid",
            "team/.cache/epsilon.yaml": "not: [valid",
            ".zeta.yaml": "not: [valid",
            "_template.yaml": "not: [valid",
            "team/_notes.yaml": "not: [valid",
            "README.md": "not: [valid",
            "data.json": "{",
        },
    )
    loaded = load_tree(root, ".")
    assert loaded.diagnostics == []
    assert loaded.project is not None
    assert loaded.project.data == {
        "environments": ["development", "staging", "production"],
        "applications": ["web", "ios", "android"],
    }
    assert loaded.project.file == "_project.yaml"
    found = [(d.key, d.path, d.file) for d in loaded.flags]
    assert found == [
        ("alpha", "alpha.yaml", "alpha.yaml"),
        ("beta", "team/beta.yaml", "team/beta.yaml"),
        ("gamma", "team/deeper/gamma.yaml", "team/deeper/gamma.yaml"),
    ]
    assert loaded.flags[0].data == {"description": "Test flag", "owner": "team-a", "enabled": True}
    assert loaded.flags[1].source.locate(("enabled",)) == (3, 10)


def test_yml_suffix_is_an_invalid_key_and_not_read(tmp_path: Path) -> None:
    loaded = load_tree(tree(tmp_path, {"old.yml": FLAG, "new.yaml": FLAG}), ".")
    assert codes(loaded) == [("old.yml", 1, 1, "invalid-key")]
    assert "old.yaml" in loaded.diagnostics[0].message
    assert [d.key for d in loaded.flags] == ["new"]


@pytest.mark.parametrize(
    "stem",
    ["Upper", "1first", "has space", "dot.ted", "-dash", "é", "a" * 65, "bang!"],
)
def test_bad_stem_is_an_invalid_key(tmp_path: Path, stem: str) -> None:
    loaded = load_tree(tree(tmp_path, {f"{stem}.yaml": FLAG}), ".")
    assert codes(loaded) == [(f"{stem}.yaml", 1, 1, "invalid-key")]
    assert repr(stem) in loaded.diagnostics[0].message


@pytest.mark.parametrize("stem", ["a", "a" * 64, "new-checkout_v2", "x9"])
def test_good_stems(tmp_path: Path, stem: str) -> None:
    loaded = load_tree(tree(tmp_path, {f"{stem}.yaml": FLAG}), ".")
    assert loaded.diagnostics == []
    assert [d.key for d in loaded.flags] == [stem]


def test_size_limit(tmp_path: Path) -> None:
    padding = "#" * (MAX_FILE_BYTES - len(FLAG) - 1) + "\n"
    at_limit = FLAG + padding
    assert len(at_limit.encode()) == MAX_FILE_BYTES
    loaded = load_tree(tree(tmp_path, {"fits.yaml": at_limit, "big.yaml": at_limit + "\n"}), ".")
    assert codes(loaded) == [("big.yaml", 1, 1, "file-too-large")]
    assert [d.key for d in loaded.flags] == ["fits"]


def write_bytes(root: Path, name: str, raw: bytes) -> None:
    (root / name).write_bytes(raw)


def test_latin_1_is_a_file_encoding_error_at_the_bad_byte(tmp_path: Path) -> None:
    root = tree(tmp_path, {})
    write_bytes(
        root, "cafe.yaml", "description: ok\nowner: Café team\nenabled: true\n".encode("latin-1")
    )
    loaded = load_tree(root, ".")
    assert codes(loaded) == [("cafe.yaml", 2, 11, "file-encoding")]
    assert "0xe9" in loaded.diagnostics[0].message
    assert loaded.flags == []


def test_encoding_error_column_counts_characters(tmp_path: Path) -> None:
    root = tree(tmp_path, {})
    write_bytes(root, "mixed.yaml", b"description: ok\nowner: \xc3\xa9\xe9\nenabled: true\n")
    loaded = load_tree(root, ".")
    assert codes(loaded) == [("mixed.yaml", 2, 9, "file-encoding")]


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    root = tree(tmp_path, {})
    write_bytes(root, "bom.yaml", b"\xef\xbb\xbf" + FLAG.encode())
    loaded = load_tree(root, ".")
    assert loaded.diagnostics == []
    [document] = loaded.flags
    assert document.data == {"description": "Test flag", "owner": "team-a", "enabled": True}
    assert document.source.locate(("description",), key=True) == (1, 1)


def test_unreadable_file_is_an_io_error(tmp_path: Path) -> None:
    root = tree(tmp_path, {"locked.yaml": FLAG, "open.yaml": FLAG})
    loaded = load_with_mode_000(root, root / "locked.yaml", 0o644)
    assert codes(loaded) == [("locked.yaml", 1, 1, "io-error")]
    assert [d.key for d in loaded.flags] == ["open"]


def test_dangling_link_is_an_io_error(tmp_path: Path) -> None:
    """Unlike a mode-000 file, this cannot be read even by root."""
    root = tree(tmp_path, {"open.yaml": FLAG})
    (root / "gone.yaml").symlink_to(root / "nowhere.yaml")  # inside: a link out is refused
    loaded = load_tree(root, ".")
    assert codes(loaded) == [("gone.yaml", 1, 1, "io-error")]
    assert [d.key for d in loaded.flags] == ["open"]


def test_missing_project_file(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "flags", {"a.yaml": FLAG})
    loaded = load_tree(root, "flags")
    assert loaded.project is None
    assert codes(loaded) == [("flags/_project.yaml", 1, 1, "project-config")]
    assert [d.key for d in loaded.flags] == ["a"]


def test_yaml_problems_are_collected_per_file(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "broken.yaml": "description: [unclosed\n",
            "twice.yaml": FLAG + "enabled: false\n",
            "fine.yaml": FLAG,
        },
    )
    loaded = load_tree(root, ".")
    assert [(file, code) for file, _, _, code in codes(loaded)] == [
        ("broken.yaml", "yaml-syntax"),
        ("twice.yaml", "yaml-duplicate-key"),
    ]
    assert [d.key for d in loaded.flags] == ["fine", "twice"]  # kept for further checks


@pytest.mark.parametrize(
    ("display_root", "shown"),
    [
        (".", "{}"),
        ("", "{}"),
        ("flags", "flags/{}"),
        ("flags/", "flags/{}"),
        ("/srv/repo/flags", "/srv/repo/flags/{}"),
        ("/srv/repo/flags/", "/srv/repo/flags/{}"),
    ],
)
def test_display_root(tmp_path: Path, display_root: str, shown: str) -> None:
    root = tree(tmp_path, {"team/Bad.yaml": FLAG})
    loaded = load_tree(root, display_root)
    assert loaded.project is not None
    assert loaded.project.file == shown.format("_project.yaml")
    assert [d.file for d in loaded.diagnostics] == [shown.format("team/Bad.yaml")]
    assert [d.file for d in loaded.flags] == [shown.format("team/Bad.yaml")]
    assert [d.path for d in loaded.flags] == ["team/Bad.yaml"]


def test_display_root_defaults_to_the_folder_as_given(tmp_path: Path) -> None:
    root = tree(tmp_path, {"x.yml": FLAG})
    loaded = load_tree(root)
    assert [d.file for d in loaded.diagnostics] == [f"{root}/x.yml"]


def test_empty_folder(tmp_path: Path) -> None:
    root = tmp_path / "flags"
    root.mkdir()
    loaded = load_tree(root, ".")
    assert loaded.flags == []
    assert [d.code for d in loaded.diagnostics] == ["project-config"]


def test_unreadable_folder_is_an_io_error(tmp_path: Path) -> None:
    root = tree(tmp_path, {"team/locked.yaml": FLAG, "open.yaml": FLAG})
    loaded = load_with_mode_000(root, root / "team", 0o755)
    assert codes(loaded) == [("team", 1, 1, "io-error")]
    assert [d.key for d in loaded.flags] == ["open"]


# Where values stand in a file read without positions (compiler.load.LaterSource) ---------

LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-99, 99), st.sampled_from(["x", "on", "a b", "0o7"])
)
KEYS = st.sampled_from(["a", "b", "expires", "c-d", "1", "x.y"])
DOCUMENTS = st.dictionaries(
    KEYS,
    st.recursive(
        LEAVES,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
        max_leaves=8,
    ),
    min_size=1,
    max_size=5,
)


def paths(data: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path in `data`, and one below each that is not there."""
    found: list[tuple[str | int, ...]] = [prefix, (*prefix, "absent")]
    if isinstance(data, dict):
        for name, value in data.items():
            found += paths(value, (*prefix, name))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += paths(value, (*prefix, index))
    return found


@settings(max_examples=300, deadline=None)
@given(DOCUMENTS, st.sampled_from(["", "# a comment\n", "\n"]), st.integers(1, 3))
def test_a_file_read_without_positions_places_values_as_parse_does(
    data: dict[str, Any], before: str, spaces: int
) -> None:
    text = before + yaml.safe_dump(data, default_flow_style=False, sort_keys=False)
    text = text.replace(": ", ":" + " " * spaces)  # more blanks before a value
    plain = read_plain(text)
    assume(plain is not None)
    assert plain is not None
    parsed = parse(text, "f.yaml")
    assert isinstance(parsed, Parsed)
    later = LaterSource(text, "f.yaml")
    for path in paths(plain[0]):
        for key in (False, True):
            assert later.locate(path, key=key) == parsed.source.locate(path, key=key), path


def test_a_clean_file_is_not_parsed_with_positions_until_asked(tmp_path: Path) -> None:
    root = tree(tmp_path, {"alpha.yaml": FLAG + "expires: 2027-01-01\n"})
    document = load_tree(root, ".").flags[0]
    assert isinstance(document.source, LaterSource)
    assert document.source.locate(("expires",)) == (4, 10)
    assert document.source._map is None  # placed from the text
    assert document.source.locate(("owner",), key=True) == (2, 1)
    assert document.source.locate(("nothing", 0)) == (1, 1)
    assert document.source._map is not None


# Reading ahead: the files read in a forked process while this one goes on (ReadAhead).
# However far either process got, what is loaded is the same as reading alone.


def mixed_tree(tmp_path: Path) -> Path:
    """Flag files of every kind the loader meets: plain, parsed with positions, broken,
    not UTF-8, too large, links in and out of the folder, a FIFO, misnamed."""
    root = tree(
        tmp_path,
        {
            **{f"team-{n % 3}/flag-{n:02d}.yaml": FLAG for n in range(40)},
            "anchored.yaml": "owner: &o team-a\ndescription: x\nenabled: true\ncopy: *o\n",
            "escaped.yaml": 'description: "tab\\there"\nowner: team-a\nenabled: true\n',
            "broken.yaml": "not: [valid",
            "bom.yaml": "\ufeff" + FLAG,
            "large.yaml": FLAG + "# " + "x" * MAX_FILE_BYTES + "\n",
            "misnamed.yml": FLAG,
            "Bad-Key.yaml": FLAG,
        },
    )
    (root / "latin.yaml").write_bytes(b"description: caf\xe9\nowner: team-a\nenabled: true\n")
    (root / "inside.yaml").symlink_to(root / "team-0" / "flag-00.yaml")
    (tmp_path / "secret.yaml").write_text(FLAG, encoding="utf-8")
    (root / "outside.yaml").symlink_to(tmp_path / "secret.yaml")
    os.mkfifo(root / "fifo.yaml")
    return root


def loaded_as_seen(loaded: Loaded) -> tuple[Any, ...]:
    """Everything a later stage can see of `loaded`, positions included."""
    files = [loaded.project, *loaded.flags] if loaded.project is not None else loaded.flags
    seen = [(d.file, d.data, d.key, d.path, d.blob, d.source.locate(("owner",))) for d in files]
    return (loaded.diagnostics, loaded.unread, seen)


def _process(ahead: ReadAhead) -> Any:
    assert ahead._beside is not None and ahead._beside._process is not None
    return ahead._beside._process


def all_read_ahead(ahead: ReadAhead, root: Path) -> ReadAhead:
    """`ahead`, once its forked process has read and sent every file."""
    _process(ahead).join(10)
    assert _process(ahead).exitcode == 0, "the forked reader did not finish in 10 s"
    return ahead


def none_read_ahead(ahead: ReadAhead, root: Path) -> ReadAhead:
    """`ahead`, its forked process killed before it could send anything."""
    os.kill(_process(ahead).pid, signal.SIGKILL)
    _process(ahead).join(10)
    return ahead


def whatever_read_ahead(ahead: ReadAhead, root: Path) -> ReadAhead:
    return ahead


def changed_after_read_ahead(ahead: ReadAhead, root: Path) -> ReadAhead:
    """`ahead`, all sent, and then the folder changed: a file gone, one new (a file edited
    meanwhile is read as it was, as by any build that reads a folder being changed)."""
    all_read_ahead(ahead, root)
    (root / "team-0" / "flag-03.yaml").unlink()
    write_tree(root, {"added.yaml": FLAG})
    return ahead


@pytest.mark.skipif(not can_fork(), reason="reading ahead forks only with more than one CPU")
@pytest.mark.parametrize(
    "split", [all_read_ahead, none_read_ahead, whatever_read_ahead, changed_after_read_ahead]
)
def test_reading_ahead_loads_what_reading_alone_does(
    tmp_path: Path, split: Callable[[ReadAhead, Path], ReadAhead]
) -> None:
    root = mixed_tree(tmp_path)
    alone = loaded_as_seen(load_tree(root, "."))
    assert len(alone[2]) == 45 and len(alone[0]) == 9  # what the tree is made to hold
    ahead = split(ReadAhead(root), root)
    seen: list[str] = []
    read_ahead = load_tree(root, ".", ahead, lambda document: seen.append(document.path))
    ahead.cancel()
    if split is changed_after_read_ahead:
        alone = loaded_as_seen(load_tree(root, "."))
    assert loaded_as_seen(read_ahead) == alone
    assert seen == ["_project.yaml", *(document.path for document in read_ahead.flags)]


@pytest.mark.skipif(not can_fork(), reason="reading ahead forks only with more than one CPU")
def test_a_build_that_reads_ahead_loads_while_the_files_arrive(tmp_path: Path) -> None:
    """The forked process sends the files in batches as it reads them: more files than
    the pipe holds arrive whole, and in order, without this process taking any first."""
    root = tree(
        tmp_path, {f"flag-{n:05d}.yaml": FLAG + "# " + "x" * 2000 + "\n" for n in range(2000)}
    )
    ahead = ReadAhead(root)
    time.sleep(0.5)  # the other process reads meanwhile, and more than a pipe holds
    loaded = load_tree(root, ".", ahead)
    ahead.cancel()
    assert loaded_as_seen(loaded) == loaded_as_seen(load_tree(root, "."))


def test_a_read_ahead_that_is_cancelled_stops_its_process(tmp_path: Path) -> None:
    ahead = ReadAhead(tree(tmp_path, {f"flag-{n}.yaml": FLAG for n in range(200)}))
    beside = ahead._beside
    ahead.cancel()
    ahead.cancel()  # twice is harmless
    assert beside is not None and (beside._process is None or not beside._process.is_alive())
    assert load_tree(tmp_path / "flags", ".", ahead).flags  # and then reads alone
