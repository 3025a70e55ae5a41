"""compiler.git_log.parse_log: git's `log --raw -z --no-abbrev --format=LOG_FORMAT` output
parsed without a repository; and `parse_status`, what `git STATUS` lists.

The byte strings are built by `serialize`, which writes what git writes; the first test
checks that against a real `git log` of a scripted repository, so that the table and the
round-trip property below speak git's exact dialect.
"""

from __future__ import annotations

import datetime
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.git_log import LOG_FORMAT, Change, Commit, parse_log, parse_status
from tests.conftest import Git, write_tree

ZERO = "0" * 40
SHA_A, SHA_B, SHA_C, SHA_D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)
BLOB_1, BLOB_2, BLOB_3 = ("1" * 40, "2" * 40, "3" * 40)


@dataclass(frozen=True)
class Raw:
    """One line of `--raw` output: what git prints for one changed file."""

    status: str  # A, M, D, T, R100, R087, C075...
    paths: tuple[bytes, ...]  # one, or (old, new) for R and C
    old_blob: str = ZERO
    new_blob: str = ZERO
    new_mode: str = "100644"

    def serialize(self) -> bytes:
        old_mode = "000000" if self.status == "A" else "100644"
        new_mode = "000000" if self.status == "D" else self.new_mode
        meta = f":{old_mode} {new_mode} {self.old_blob} {self.new_blob} {self.status}"
        return meta.encode() + b"\0" + b"".join(path + b"\0" for path in self.paths)


@dataclass(frozen=True)
class Record:
    """One commit as `git log --format=LOG_FORMAT --raw -z` prints it."""

    sha: str
    parents: tuple[str, ...] = ()
    author: tuple[bytes, bytes] = (b"Ada Lovelace", b"ada@example.com")
    authored_at: str = "2026-01-02T03:04:05+02:00"
    committer: tuple[bytes, bytes] = (b"Ada Lovelace", b"ada@example.com")
    committed_at: str = "2026-01-02T03:04:05-05:00"
    message: bytes = b"Subject\n"  # %B: git ends a non-empty message with a newline
    raw: tuple[Raw, ...] = ()

    def serialize(self) -> bytes:
        fields = [
            self.sha.encode(),
            " ".join(self.parents).encode(),
            *self.author,
            self.authored_at.encode(),
            *self.committer,
            self.committed_at.encode(),
            self.message,
        ]
        header = b"\x1e" + b"\0".join(fields) + b"\0"
        if not self.raw:
            return header
        return header + b"\n" + b"".join(line.serialize() for line in self.raw)


def serialize(records: list[Record]) -> bytes:
    return b"".join(record.serialize() for record in records)


def commit(
    sha: str,
    changes: tuple[Change, ...] = (),
    *,
    parents: tuple[str, ...] = (),
    message: str = "Subject",
    author: tuple[str, str] = ("Ada Lovelace", "ada@example.com"),
    committer: tuple[str, str] = ("Ada Lovelace", "ada@example.com"),
    authored_at: str = "2026-01-02T03:04:05+02:00",
    committed_at: str = "2026-01-02T03:04:05-05:00",
) -> Commit:
    return Commit(sha, parents, *author, authored_at, *committer, committed_at, message, changes)


# What git writes


def test_serialize_writes_what_git_writes(git_repo: tuple[Path, Git]) -> None:
    """Added, modified, renamed (R100 and R0xx), deleted, moved in from outside and out,
    an empty message, a multi-paragraph one and a merge: `serialize` of the expected records
    is byte for byte what `git log` prints."""
    repo, git = git_repo
    lines = "".join(f"line {n} of a file long enough for rename detection\n" for n in range(9))

    def commit_all(message: str, date: str) -> str:
        git("add", "--all")
        env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        git("commit", "--quiet", "--allow-empty-message", "--message", message, env=env)
        return git("rev-parse", "HEAD").strip()

    def blob(revision: str, path: str) -> str:
        return git("rev-parse", f"{revision}:{path}").strip()

    def move(old: str, new: str) -> None:
        (repo / new).parent.mkdir(parents=True, exist_ok=True)
        (repo / old).rename(repo / new)

    write_tree(repo, {"flags/a.yaml": lines, "flags/b.yaml": "b\n", "src/c.yaml": "moved in\n"})
    first = commit_all("Add a and b\n\nBecause.\nReally.\n\nThe end.", "2026-01-02T03:04:05+02:00")
    move("flags/a.yaml", "flags/team-a.yaml")
    write_tree(repo, {"flags/b.yaml": "b2\n"})
    second = commit_all("", "2026-02-03T04:05:06-05:00")
    write_tree(repo, {"flags/team-a.yaml": lines + "one more line\n"})
    move("flags/team-a.yaml", "flags/x/a.yaml")
    move("src/c.yaml", "flags/c.yaml")
    move("flags/b.yaml", "attic.yaml")
    third = commit_all("Move things", "2026-03-04T05:06:07Z")
    git("checkout", "--quiet", "-b", "side", first)
    write_tree(repo, {"flags/d.yaml": "d\n"})
    side = commit_all("Side", "2026-03-05T00:00:00+00:00")
    git("checkout", "--quiet", "main")
    env = {
        "GIT_AUTHOR_DATE": "2026-03-06T00:00:00+01:00",
        "GIT_COMMITTER_DATE": "2026-03-06T00:00:00+01:00",
    }
    git("merge", "--quiet", "--no-ff", "--message", "Merge side", "side", env=env)
    merge = git("rev-parse", "HEAD").strip()

    output = subprocess.run(
        [
            "git",
            "log",
            "--first-parent",
            "--diff-merges=first-parent",
            "--raw",
            "-z",
            "--no-abbrev",
            "-M",
            "--root",
            f"--format={LOG_FORMAT}",
            "HEAD",
            "--",
            "flags/",
        ],
        cwd=repo,
        capture_output=True,
        check=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull},
    ).stdout
    ada = (b"Ada Lovelace", b"ada@example.com")
    records = [
        Record(
            merge,
            (third, side),
            ada,
            "2026-03-06T00:00:00+01:00",
            ada,
            "2026-03-06T00:00:00+01:00",
            b"Merge side\n",
            (Raw("A", (b"flags/d.yaml",), new_blob=blob(merge, "flags/d.yaml")),),
        ),
        Record(
            third,
            (second,),
            ada,
            "2026-03-04T05:06:07+00:00",
            ada,
            "2026-03-04T05:06:07+00:00",
            b"Move things\n",
            (
                Raw("D", (b"flags/b.yaml",), old_blob=blob(second, "flags/b.yaml")),
                Raw("A", (b"flags/c.yaml",), new_blob=blob(third, "flags/c.yaml")),
                Raw(
                    "R096",
                    (b"flags/team-a.yaml", b"flags/x/a.yaml"),
                    blob(second, "flags/team-a.yaml"),
                    blob(third, "flags/x/a.yaml"),
                ),
            ),
        ),
        Record(
            second,
            (first,),
            ada,
            "2026-02-03T04:05:06-05:00",
            ada,
            "2026-02-03T04:05:06-05:00",
            b"",
            (
                Raw(
                    "M",
                    (b"flags/b.yaml",),
                    blob(first, "flags/b.yaml"),
                    blob(second, "flags/b.yaml"),
                ),
                Raw(
                    "R100",
                    (b"flags/a.yaml", b"flags/team-a.yaml"),
                    blob(first, "flags/a.yaml"),
                    blob(first, "flags/a.yaml"),
                ),
            ),
        ),
        Record(
            first,
            (),
            ada,
            "2026-01-02T03:04:05+02:00",
            ada,
            "2026-01-02T03:04:05+02:00",
            b"Add a and b\n\nBecause.\nReally.\n\nThe end.\n",
            (
                Raw("A", (b"flags/a.yaml",), new_blob=blob(first, "flags/a.yaml")),
                Raw("A", (b"flags/b.yaml",), new_blob=blob(first, "flags/b.yaml")),
            ),
        ),
    ]

    assert output == serialize(records)
    parsed = parse_log(output, "flags/")
    assert [c.sha for c in parsed] == [merge, third, second, first]
    assert parsed[0].parents == (third, side)
    assert parsed[2].message == ""
    assert parsed[2].changes == (
        Change("M", "b.yaml", "b.yaml", blob(first, "flags/b.yaml"), blob(second, "flags/b.yaml")),
        Change(
            "R", "a.yaml", "team-a.yaml", blob(first, "flags/a.yaml"), blob(first, "flags/a.yaml")
        ),
    )
    assert parsed[1].changes == (
        Change("D", "b.yaml", None, blob(second, "flags/b.yaml"), None),
        Change("A", None, "c.yaml", None, blob(third, "flags/c.yaml")),
        Change(
            "R",
            "team-a.yaml",
            "x/a.yaml",
            blob(second, "flags/team-a.yaml"),
            blob(third, "flags/x/a.yaml"),
        ),
    )


# The table


def _case(
    name: str, records: list[Record], expected: list[Commit], prefix: str = "flags/"
) -> object:
    return pytest.param(serialize(records), prefix, expected, id=name)


ONE = [Record(SHA_A, raw=(Raw("A", (b"flags/a.yaml",), new_blob=BLOB_1),))]

CASES = [
    _case("nothing", [], []),
    _case("added", ONE, [commit(SHA_A, (Change("A", None, "a.yaml", None, BLOB_1),))]),
    _case(
        "modified",
        [Record(SHA_A, (SHA_B,), raw=(Raw("M", (b"flags/team/a.yaml",), BLOB_1, BLOB_2),))],
        [
            commit(
                SHA_A,
                (Change("M", "team/a.yaml", "team/a.yaml", BLOB_1, BLOB_2),),
                parents=(SHA_B,),
            )
        ],
    ),
    _case(
        "deleted",
        [Record(SHA_A, (SHA_B,), raw=(Raw("D", (b"flags/a.yaml",), old_blob=BLOB_1),))],
        [commit(SHA_A, (Change("D", "a.yaml", None, BLOB_1, None),), parents=(SHA_B,))],
    ),
    _case(
        "renamed-r100",
        [Record(SHA_A, raw=(Raw("R100", (b"flags/a.yaml", b"flags/b/a.yaml"), BLOB_1, BLOB_1),))],
        [commit(SHA_A, (Change("R", "a.yaml", "b/a.yaml", BLOB_1, BLOB_1),))],
    ),
    _case(
        "renamed-r087",
        [Record(SHA_A, raw=(Raw("R087", (b"flags/a.yaml", b"flags/new-a.yaml"), BLOB_1, BLOB_2),))],
        [commit(SHA_A, (Change("R", "a.yaml", "new-a.yaml", BLOB_1, BLOB_2),))],
    ),
    _case(
        "moved-in-from-outside-is-added",
        [Record(SHA_A, raw=(Raw("R100", (b"src/a.yaml", b"flags/a.yaml"), BLOB_1, BLOB_1),))],
        [commit(SHA_A, (Change("A", None, "a.yaml", None, BLOB_1),))],
    ),
    _case(
        "moved-out-is-deleted",
        [Record(SHA_A, raw=(Raw("R096", (b"flags/a.yaml", b"attic/a.yaml"), BLOB_1, BLOB_2),))],
        [commit(SHA_A, (Change("D", "a.yaml", None, BLOB_1, None),))],
    ),
    _case(
        "a-folder-that-starts-like-the-prefix-is-outside",
        [Record(SHA_A, raw=(Raw("M", (b"flags-old/a.yaml",), BLOB_1, BLOB_2),))],
        [commit(SHA_A, (Change("M", None, None, None, None),))],
    ),
    _case(
        "deeper-prefix",
        [
            Record(
                SHA_A,
                raw=(
                    Raw("R100", (b"config/flags/a.yaml", b"config/flags/x/a.yaml"), BLOB_1, BLOB_1),
                ),
            )
        ],
        [commit(SHA_A, (Change("R", "a.yaml", "x/a.yaml", BLOB_1, BLOB_1),))],
        prefix="config/flags/",
    ),
    _case(
        "empty-prefix-is-the-whole-repository",
        [
            Record(
                SHA_A,
                raw=(
                    Raw("A", (b"a.yaml",), new_blob=BLOB_1),
                    Raw("D", (b"x/b.yaml",), old_blob=BLOB_2),
                ),
            )
        ],
        [
            commit(
                SHA_A,
                (
                    Change("A", None, "a.yaml", None, BLOB_1),
                    Change("D", "x/b.yaml", None, BLOB_2, None),
                ),
            )
        ],
        prefix="",
    ),
    _case(
        "type-change-is-modified",
        [Record(SHA_A, raw=(Raw("T", (b"flags/a.yaml",), BLOB_1, BLOB_2, new_mode="120000"),))],
        [commit(SHA_A, (Change("M", "a.yaml", "a.yaml", BLOB_1, BLOB_2),))],
    ),
    _case(
        "copied-is-added",
        [Record(SHA_A, raw=(Raw("C075", (b"flags/a.yaml", b"flags/b.yaml"), BLOB_1, BLOB_2),))],
        [commit(SHA_A, (Change("A", None, "b.yaml", None, BLOB_2),))],
    ),
    _case(
        "empty-message",
        [Record(SHA_A, message=b"", raw=(Raw("A", (b"flags/a.yaml",), new_blob=BLOB_1),))],
        [commit(SHA_A, (Change("A", None, "a.yaml", None, BLOB_1),), message="")],
    ),
    _case(
        "multi-paragraph-message",
        [
            Record(
                SHA_A,
                message=b"Turn on X\n\nBecause of Y.\nSee Z.\n\nTicket: T-1\n",
                raw=ONE[0].raw,
            )
        ],
        [
            commit(
                SHA_A,
                (Change("A", None, "a.yaml", None, BLOB_1),),
                message="Turn on X\n\nBecause of Y.\nSee Z.\n\nTicket: T-1",
            )
        ],
    ),
    _case(
        "message-with-separators-inside",
        [Record(SHA_A, message=b"a \x1e record\n:100644 100644 not a change\n", raw=ONE[0].raw)],
        [
            commit(
                SHA_A,
                (Change("A", None, "a.yaml", None, BLOB_1),),
                message="a \x1e record\n:100644 100644 not a change",
            )
        ],
    ),
    _case(
        "unicode-people",
        [
            Record(
                SHA_A,
                author=('Zoë 🚀 "Z" O\'Brien'.encode(), b""),
                committer=("מרים כהן".encode(), "ü@exämple.com".encode()),
                raw=ONE[0].raw,
            )
        ],
        [
            commit(
                SHA_A,
                (Change("A", None, "a.yaml", None, BLOB_1),),
                author=('Zoë 🚀 "Z" O\'Brien', ""),
                committer=("מרים כהן", "ü@exämple.com"),
            )
        ],
    ),
    _case(
        "a-name-that-is-not-utf8-is-replaced",
        [Record(SHA_A, author=(b"Jos\xe9", b"jose@example.com"), raw=ONE[0].raw)],
        [
            commit(
                SHA_A,
                (Change("A", None, "a.yaml", None, BLOB_1),),
                author=("Jos\ufffd", "jose@example.com"),
            )
        ],
    ),
    _case(
        "merge-with-two-parents",
        [
            Record(
                SHA_A,
                (SHA_B, SHA_C),
                message=b"Merge pull request #7\n",
                raw=(Raw("M", (b"flags/a.yaml",), BLOB_1, BLOB_2),),
            )
        ],
        [
            commit(
                SHA_A,
                (Change("M", "a.yaml", "a.yaml", BLOB_1, BLOB_2),),
                parents=(SHA_B, SHA_C),
                message="Merge pull request #7",
            )
        ],
    ),
    _case(
        "several-commits-newest-first-one-without-changes",
        [
            Record(
                SHA_A,
                (SHA_B,),
                message=b"third\n",
                raw=(Raw("D", (b"flags/a.yaml",), old_blob=BLOB_2),),
            ),
            Record(SHA_B, (SHA_C,), message=b"second, no change in the folder\n"),
            Record(
                SHA_C,
                (SHA_D,),
                message=b"first\n",
                raw=(
                    Raw("M", (b"flags/a.yaml",), BLOB_1, BLOB_2),
                    Raw("A", (b"flags/b.yaml",), new_blob=BLOB_3),
                ),
            ),
            Record(SHA_D, message=b"", authored_at="2025-12-31T23:59:59-11:00"),
        ],
        [
            commit(
                SHA_A,
                (Change("D", "a.yaml", None, BLOB_2, None),),
                parents=(SHA_B,),
                message="third",
            ),
            commit(SHA_B, parents=(SHA_C,), message="second, no change in the folder"),
            commit(
                SHA_C,
                (
                    Change("M", "a.yaml", "a.yaml", BLOB_1, BLOB_2),
                    Change("A", None, "b.yaml", None, BLOB_3),
                ),
                parents=(SHA_D,),
                message="first",
            ),
            commit(SHA_D, message="", authored_at="2025-12-31T23:59:59-11:00"),
        ],
    ),
    _case(
        "path-that-is-not-utf8",
        [
            Record(
                SHA_A,
                raw=(
                    Raw(
                        "R100",
                        (b"flags/caf\xe9.yaml", b"flags/\xff/caf\xc3\xa9.yaml"),
                        BLOB_1,
                        BLOB_1,
                    ),
                ),
            )
        ],
        [commit(SHA_A, (Change("R", "caf\udce9.yaml", "\udcff/café.yaml", BLOB_1, BLOB_1),))],
    ),
    _case(
        "paths-with-spaces-newlines-and-quotes",
        [Record(SHA_A, raw=(Raw("A", (b'flags/a b\n"c".yaml',), new_blob=BLOB_1),))],
        [commit(SHA_A, (Change("A", None, 'a b\n"c".yaml', None, BLOB_1),))],
    ),
]


@pytest.mark.parametrize(("data", "prefix", "expected"), CASES)
def test_parse_log(data: bytes, prefix: str, expected: list[Commit]) -> None:
    assert parse_log(data, prefix) == expected


def test_subject_is_the_first_line() -> None:
    (parsed,) = parse_log(
        serialize([Record(SHA_A, message=b"  Turn on X  \nsecond line\n\nbody\n")])
    )
    assert parsed.message == "  Turn on X  \nsecond line\n\nbody"
    assert parsed.subject == "Turn on X"
    assert commit(SHA_A, message="").subject == ""


@pytest.mark.parametrize(
    "data",
    [
        b"not git log output",
        b"\x1eabc\0only two fields\0",
        serialize(ONE)[:-3],  # cut inside the last path
        serialize(ONE) + b"trailing",
    ],
    ids=["garbage", "truncated-header", "truncated-path", "trailing-bytes"],
)
def test_malformed_output_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match=r".+"):
        parse_log(data, "flags/")


# Round trip: random commits, serialized as git would, parse back to themselves

_HEX = st.text("0123456789abcdef", min_size=40, max_size=40)
_SEGMENT = st.binary(min_size=1, max_size=6).filter(lambda b: b"\0" not in b and b"/" not in b)
_RELATIVE = st.lists(_SEGMENT, min_size=1, max_size=3).map(b"/".join)
_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\0"))
_NAME = st.text(st.characters(codec="utf-8", exclude_characters="\0\n<>"), max_size=20)
_OFFSETS = [
    datetime.timezone(datetime.timedelta(minutes=minutes)) for minutes in (0, 120, -300, 330, 840)
]
_DATE = st.datetimes(timezones=st.sampled_from(_OFFSETS)).map(
    lambda moment: moment.replace(microsecond=0).isoformat()
)


@st.composite
def _raw_lines(draw: st.DrawFn, prefix: bytes) -> Raw:
    status = draw(st.sampled_from(["A", "M", "D", "T", "R"]))  # no -C: git reports no copies
    count = 2 if status == "R" else 1
    paths = tuple(
        (prefix if draw(st.booleans()) else b"elsewhere/") + draw(_RELATIVE) for _ in range(count)
    )
    if status == "R":
        status += f"{draw(st.integers(50, 100)):03d}"
    old = ZERO if status == "A" else draw(_HEX)
    new = ZERO if status == "D" else draw(_HEX)
    return Raw(status, paths, old, new)


def _expected_change(raw: Raw, prefix: bytes) -> Change:
    """What the docstrings promise: paths relative to the prefix, None outside it; moved in
    from outside is an addition, moved out a deletion, a type change a modification."""

    def inside(path: bytes) -> str | None:
        return os.fsdecode(path[len(prefix) :]) if path.startswith(prefix) else None

    kind = raw.status[0]
    old = None if kind == "A" else inside(raw.paths[0])
    new = None if kind == "D" else inside(raw.paths[-1])
    status = "M" if kind == "T" else kind
    if old is None and new is not None:
        status = "A"
    elif new is None and old is not None:
        status = "D"
    return Change(
        status,
        old,
        new,
        raw.old_blob if old is not None and raw.old_blob != ZERO else None,
        raw.new_blob if new is not None and raw.new_blob != ZERO else None,
    )


@st.composite
def _histories(draw: st.DrawFn) -> tuple[bytes, list[Record], list[Commit]]:
    prefix = draw(st.sampled_from([b"", b"flags/", b"config/flags/"]))
    records, commits = [], []
    for _ in range(draw(st.integers(0, 5))):
        sha = draw(_HEX)
        parents = tuple(draw(st.lists(_HEX, max_size=3)))
        people = [draw(_NAME) for _ in range(4)]
        dates = draw(_DATE), draw(_DATE)
        message = draw(_TEXT).rstrip("\n")
        raw = tuple(draw(st.lists(_raw_lines(prefix), max_size=5)))
        records.append(
            Record(
                sha,
                parents,
                (people[0].encode(), people[1].encode()),
                dates[0],
                (people[2].encode(), people[3].encode()),
                dates[1],
                (message + "\n").encode() if message else b"",
                raw,
            )
        )
        changes = tuple(_expected_change(line, prefix) for line in raw)
        commits.append(
            Commit(
                sha,
                parents,
                people[0],
                people[1],
                dates[0],
                people[2],
                people[3],
                dates[1],
                message,
                changes,
            )
        )
    return prefix, records, commits


@settings(max_examples=150, deadline=None)
@given(_histories())
def test_round_trip(history: tuple[bytes, list[Record], list[Commit]]) -> None:
    prefix, records, commits = history
    assert parse_log(serialize(records), os.fsdecode(prefix)) == commits


BLOB = "b" * 40
STATUS_OUTPUT = {  # what `git STATUS` writes -> (HEAD, paths listed)
    "nothing changed": (b"# branch.oid " + SHA_A.encode() + b"\0# branch.head main\0", (SHA_A, [])),
    "before the first commit": (
        b"# branch.oid (initial)\0# branch.head main\0? flags/a.yaml\0",
        (None, [b"flags/a.yaml"]),
    ),
    "changed, in a folder with a space": (
        b"1 .M N... 100644 100644 100644 %s %s flags/a b/c.yaml\0" % (BLOB.encode(), BLOB.encode()),
        (None, [b"flags/a b/c.yaml"]),
    ),
    "renamed: both paths": (
        b"2 R. N... 100644 100644 100644 %s %s R100 flags/new.yaml\0flags/old.yaml\0"
        % (BLOB.encode(), BLOB.encode()),
        (None, [b"flags/new.yaml", b"flags/old.yaml"]),
    ),
    "unmerged": (
        b"u UU N... 100644 100644 100644 100644 %s %s %s flags/c.yaml\0"
        % (BLOB.encode(), BLOB.encode(), BLOB.encode()),
        (None, [b"flags/c.yaml"]),
    ),
    "untracked and ignored": (
        b"? flags/u.yaml\0! flags/i.yaml\0",
        (None, [b"flags/u.yaml", b"flags/i.yaml"]),
    ),
    "detached, no branch": (
        b"# branch.oid " + SHA_A.encode() + b"\0# branch.head (detached)\0",
        (SHA_A, []),
    ),
}


@pytest.mark.parametrize("case", STATUS_OUTPUT)
def test_git_status_is_read_for_its_commit_and_paths(case: str) -> None:
    output, expected = STATUS_OUTPUT[case]
    assert parse_status(output) == expected
