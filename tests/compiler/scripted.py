"""Scripted git histories for the audit log's tests: people with awkward names, commits
made with chosen authors, dates and messages (`Scripted`), the expected entries built from
what a test gave git (`entry`, `cells`, `appeared`...), a history with every kind of change
(`tell_story`), and the judge of an audit.json's bytes (`check_audit`)."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from compiler import audit
from compiler.git_repository import GitRepository
from core import audit_format
from tests.compiler.snapshot_checks import canonical
from tests.conftest import GIT_ENV, PROJECT, Git

AUDIT_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "audit.schema.json"
ENVIRONMENTS = ("development", "staging", "production")
APPLICATIONS = ("web", "ios", "android")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")


# Every cell of PROJECT's grid, in the order entries list them
CELLS = [n for e in ENVIRONMENTS for n in (e, *(f"{e}/{a}" for a in APPLICATIONS))]


# People, commits and entries


@dataclass(frozen=True)
class Person:
    name: str
    email: str


ADA = Person("Ada Lovelace", "ada@example.com")
GRACE = Person("Grace Hopper", "grace@example.com")
ZOE = Person("Zoë Çelik 🚀", "zoe@example.com")
MARYAM = Person("مريم الأحمد", "")  # right to left, and no email at all
DWAYNE = Person('Dwayne "The Rock" O\'Neil', "dwayne+flags@example.com")
BOT = Person("release-bot[bot]", "bot@example.com")


@dataclass(frozen=True)
class Made:
    """A commit as the test made it."""

    sha: str
    message: str
    author: Person
    committer: Person
    date: str  # the author date given to git, ISO 8601 with its offset
    committed: str


class Scripted:
    """A real repository with the flags in `folder`, and commits made with scripted authors,
    dates and messages. Paths in `files` are inside the flags folder (None deletes),
    those in `outside` relative to the repository."""

    def __init__(self, repo: Path, git: Git, folder: str = "flags") -> None:
        self.repo, self.git, self.folder = repo, git, folder
        self.day = 0

    @property
    def flags(self) -> Path:
        return self.repo / self.folder

    def commit(
        self,
        message: str,
        files: Mapping[str, str | None] | None = None,
        *,
        moves: Iterable[tuple[str, str]] = (),
        outside: Mapping[str, str | None] | None = None,
        author: Person = ADA,
        committer: Person | None = None,
        date: str | None = None,
        committed: str | None = None,
    ) -> Made:
        for old, new in moves:
            (self.flags / new).parent.mkdir(parents=True, exist_ok=True)
            (self.flags / old).rename(self.flags / new)
        for root, changes in ((self.flags, files), (self.repo, outside)):
            for relative, text in (changes or {}).items():
                path = root / relative
                if text is None:
                    path.unlink()
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
        self.day += 1
        date = date or f"2026-02-{self.day:02d}T10:00:00+01:00"
        committer = committer or author
        committed = committed or date
        self.git("add", "--all")
        self.git(
            "commit",
            "--quiet",
            "--allow-empty",
            "--allow-empty-message",
            "--message",
            message,
            env=_people(author, date, committer, committed),
        )
        return Made(self.head(), message, author, committer, date, committed)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def check_out(self, into: Path) -> Path:
        """HEAD checked out as git-sync does, into a work tree of its own: `into`/<commit>."""
        tree = into / self.head()
        self.git("worktree", "add", "--quiet", "--detach", str(tree))
        return tree

    def extract(self, previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
        repository = GitRepository.open(self.flags)
        assert repository is not None
        with repository:
            return audit.extract(repository, previous)

    def entries(self) -> list[dict[str, Any]]:
        document = self.extract()
        assert document["head"] == self.head()
        assert document["complete"] is True
        return list(document["entries"])


def _people(author: Person, date: str, committer: Person, committed: str) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": committer.name,
        "GIT_COMMITTER_EMAIL": committer.email,
        "GIT_COMMITTER_DATE": committed,
    }


Change = tuple[str, Any, Any]  # (field or cell, from, to)


def entry(
    made: Made,
    change: str,
    flag: str | None,
    file: str | None,
    fields: Iterable[Change] = (),
    values: Iterable[Change] = (),
    *,
    previous_file: str | None = None,
    invalid: object = None,
) -> dict[str, Any]:
    return {
        "commit": made.sha,
        "author": {"name": made.author.name, "email": made.author.email},
        "committer": {"name": made.committer.name, "email": made.committer.email},
        "timestamp": made.date,
        "committed_at": made.committed,
        "subject": made.message.split("\n", 1)[0],
        "reason": made.message,
        "change": change,
        "flag": flag,
        "file": file,
        "previous_file": previous_file,
        "fields": [{"field": name, "from": old, "to": new} for name, old, new in fields],
        "values": [{"cell": name, "from": old, "to": new} for name, old, new in values],
        "invalid": invalid,
    }


def cells(default: bool, overrides: Mapping[str, bool] | None = None) -> dict[str, bool]:
    """Every cell of the project, in grid order, at `default` unless overridden."""
    return {name: (overrides or {}).get(name, default) for name in CELLS}


def appeared(values: Mapping[str, bool]) -> list[Change]:
    return [(name, None, value) for name, value in values.items()]


def vanished(values: Mapping[str, bool]) -> list[Change]:
    return [(name, value, None) for name, value in values.items()]


def project_created(made: Made) -> dict[str, Any]:
    """The entry of the first commit of PROJECT."""
    fields = [("applications", None, [*APPLICATIONS]), ("environments", None, [*ENVIRONMENTS])]
    return entry(made, "project", None, "_project.yaml", fields)


class Matches:
    """Equal to a string matching `pattern`: for messages that other modules word."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern, re.DOTALL)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.pattern.fullmatch(other) is not None

    def __hash__(self) -> int:
        return hash(self.pattern.pattern)

    def __repr__(self) -> str:
        return f"Matches({self.pattern.pattern!r})"


BANNER = "description: Free shipping banner\nowner: growth\nenabled: false\n"
BANNER_FIELDS = [
    ("description", "Free shipping banner"),
    ("enabled", False),
    ("owner", "growth"),
]
CHECKOUT = (
    "description: The redesigned checkout\n"
    "owner: checkout\n"
    "enabled: true\n"
    "tags: [payments, web]\n"
    "expires: 2099-12-31\n"
)
CHECKOUT_FIELDS = [
    ("description", "The redesigned checkout"),
    ("enabled", True),
    ("expires", "2099-12-31"),
    ("owner", "checkout"),
    ("tags", ["payments", "web"]),
]


def created_fields(fields: Iterable[tuple[str, Any]]) -> list[Change]:
    """Every field from null, sorted by name as entries list them."""
    return [(name, None, value) for name, value in sorted(fields)]


def deleted_fields(fields: Iterable[tuple[str, Any]]) -> list[Change]:
    return [(name, value, None) for name, value in sorted(fields)]


LONG_BANNER = (
    "description: Free shipping banner on every page of the shop\n"
    "owner: growth\n"
    "enabled: false\n"
    "tags: [marketing, shipping, banner]\n"
    "expires: 2099-12-31\n"
)
LONG_BANNER_FIELDS = [
    ("description", "Free shipping banner on every page of the shop"),
    ("enabled", False),
    ("expires", "2099-12-31"),
    ("owner", "growth"),
    ("tags", ["marketing", "shipping", "banner"]),
]


def merge_branch(scripted: Scripted, branch: str, message: str, author: Person, date: str) -> Made:
    """Merge `branch` into the checked-out branch with --no-ff, as `author` at `date`."""
    env = _people(author, date, author, date)
    scripted.git("merge", "--quiet", "--no-ff", "--message", message, branch, env=env)
    return Made(scripted.head(), message, author, author, date, date)


@dataclass
class Story:
    scripted: Scripted
    made: list[Made]
    documents: list[dict[str, Any]]  # extract() right after each commit of `made`


def tell_story(scripted: Scripted) -> Story:
    """A history with every kind of change, by several people, with a merged pull request;
    the audit document is taken after each commit on main, as a build would have."""
    story = Story(scripted, [], [])

    def commit(message: str, files: Mapping[str, str | None] | None = None, **options: Any) -> None:
        story.made.append(scripted.commit(message, files, **options))
        story.documents.append(scripted.extract())

    commit(
        "Add the project and the first flags",
        {
            "_project.yaml": PROJECT,
            "growth/banner.yaml": LONG_BANNER,
            "checkout/new-checkout.yaml": CHECKOUT,
        },
        date="2026-01-05T09:00:00+01:00",
    )
    commit(
        "Show the banner on the web in production\n\nMarketing asked for it: GROW-12.",
        {
            "growth/banner.yaml": LONG_BANNER
            + "environments:\n  production:\n    applications:\n      web: true\n"
        },
        author=GRACE,
        date="2026-01-06T10:30:00-05:00",
    )
    commit("Document the service", outside={"README.md": "# shop\n"}, author=ZOE)
    commit(
        "Move the checkout flag to the v2 folder",
        moves=[("checkout/new-checkout.yaml", "checkout/v2/new-checkout.yaml")],
        author=ZOE,
        date="2026-01-07T08:00:00+05:30",
    )
    commit(
        "Kill switch: checkout off in production",
        {"checkout/v2/new-checkout.yaml": CHECKOUT + "environments:\n  production: false\n"},
        author=GRACE,
    )
    commit(
        "Add the tv application, with the banner on it",
        {
            "_project.yaml": PROJECT.replace("android]", "android, tv]"),
            "growth/banner.yaml": LONG_BANNER + "applications:\n  tv: true\n",
        },
    )
    commit("Retire the banner", {"growth/banner.yaml": None}, author=MARYAM)
    commit("Bring the banner back", {"marketing/banner.yaml": BANNER}, author=DWAYNE)
    commit("WIP", {"checkout/v2/new-checkout.yaml": "description: [\n"})
    commit(
        "Fix the checkout flag",
        {"checkout/v2/new-checkout.yaml": CHECKOUT.replace("redesigned", "new")},
    )
    scripted.git("checkout", "--quiet", "-b", "dark-mode")
    dark = "description: Dark mode\nowner: web\nenabled: false\n"
    scripted.commit("Add dark mode", {"web/dark-mode.yaml": dark}, author=GRACE)
    scripted.commit("Dark mode in dev", {"web/dark-mode.yaml": dark.replace("false", "true")})
    scripted.git("checkout", "--quiet", "main")
    story.made.append(
        merge_branch(
            scripted, "dark-mode", "Merge pull request #7: dark mode", ADA, "2026-03-01T00:00:00Z"
        )
    )
    story.documents.append(scripted.extract())
    commit(
        "Rename the checkout flag",
        moves=[("checkout/v2/new-checkout.yaml", "checkout/v2/checkout.yaml")],
    )
    return story


def clone(source: Path, destination: Path, *options: str) -> Scripted:
    """`git clone` of `source` with `options` (e.g. --depth 1), scripted like the source."""
    env = {**os.environ, **GIT_ENV}
    subprocess.run(
        ["git", "clone", "--quiet", *options, f"file://{source}", str(destination)],
        check=True,
        capture_output=True,
        env=env,
    )

    def git(*args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=destination,
            env={**os.environ, **GIT_ENV, **(env or {})},
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    return Scripted(destination, git)


def check_audit(data: bytes) -> dict[str, Any]:
    """Judge the bytes of an audit.json: canonical JSON, valid against the schema, exactly
    what `compact` writes for the log it holds; returns that log (as served)."""
    document: dict[str, Any] = json.loads(data)
    assert data == canonical(document), "not canonical JSON (sorted keys, no white space)"
    schema = json.loads(AUDIT_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, errors
    for commit in document["commits"]:  # date-time is only checked with rfc3339-validator
        for moment in (commit["timestamp"], commit.get("committed_at", commit["timestamp"])):
            assert TIMESTAMP.match(moment), moment
            datetime.datetime.fromisoformat(moment)
    log = audit_format.expand(document)
    assert audit_format.compact(log) == document
    return log


def swap_link(link: Path, tree: Path) -> None:
    """`link` made to lead to `tree` by one rename, as git-sync swaps its link."""
    swapping = link.with_name(f"{link.name}.swapping")
    swapping.symlink_to(tree)
    swapping.rename(link)
