"""The audit log (compiler.audit) from real git repositories: scripted authors, dates and
messages in, the exact entries out (extract and flag_metadata; continuing an earlier log
is test_audit_incremental.py).

Each test writes a small history (tests/compiler/scripted.py) and asserts whole entries,
newest first. `entry` builds an expected entry from what the test gave git, so that what is
compared is always the complete dictionary. What `flagc build` writes of it is tested in
test_build.py, and `flagc audit` in test_audit_command.py.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler import audit, history
from compiler.cli import main
from compiler.git_repository import GitRepository
from compiler.pipeline import compile_flags
from core import audit_format
from core import snapshot as store
from core.canonical import serialize
from core.model import Flag
from core.resolve import Grid, resolve
from tests.compiler.scripted import (
    ADA,
    APPLICATIONS,
    BANNER,
    BANNER_FIELDS,
    BOT,
    CELLS,
    CHECKOUT,
    CHECKOUT_FIELDS,
    DWAYNE,
    ENVIRONMENTS,
    GRACE,
    LONG_BANNER,
    LONG_BANNER_FIELDS,
    MARYAM,
    ZOE,
    Change,
    Matches,
    Person,
    Scripted,
    appeared,
    cells,
    created_fields,
    deleted_fields,
    entry,
    merge_branch,
    project_created,
    vanished,
)
from tests.conftest import PROJECT, Git, git_in, write_tree


@pytest.fixture(autouse=True)
def _whole_is_what_compact_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every history of these tests, read whole: the file a build writes from the entries
    (`audit.extract_whole`) has the bytes `compact` makes of the log in memory, and the
    same metadata and number of entries; and so has it when it takes the versions of the
    files the work tree compiles to (`compiler.history.known_versions`: not read from git,
    their cells as the compile resolved them), as a first build does."""
    extract = audit.extract

    def checked(repository: GitRepository, previous: Any = None) -> dict[str, Any]:
        found = extract(repository, previous)
        if previous is None:
            whole = audit.extract_whole(repository, shallow=repository.is_shallow())
            assert serialize(whole.document) == serialize(audit_format.compact(found))
            assert whole.metadata == audit.flag_metadata(found)
            assert whole.entries == len(found["entries"])
            folder = repository.root / repository.prefix
            known = history.known_versions(compile_flags(folder)) if folder.is_dir() else {}
            told = audit.extract_whole(repository, shallow=repository.is_shallow(), known=known)
            assert serialize(told.document) == serialize(whole.document)
            assert told.metadata == whole.metadata
        return found

    monkeypatch.setattr(audit, "extract", checked)


# Created, modified, deleted


def test_created(scripted: Scripted) -> None:
    """A new flag: every declared field from null, and every cell of the grid from null."""
    flag = (
        "description: The redesigned checkout\n"
        "owner: checkout\n"
        "enabled: false\n"
        "environments:\n"
        "  development: true\n"
        "  staging:\n"
        "    applications:\n"
        "      ios: true\n"
        "tags: [payments, web]\n"
        "expires: 2099-12-31\n"
    )
    made = scripted.commit(
        "Add the project and the new checkout",
        {"_project.yaml": PROJECT, "checkout/new-checkout.yaml": flag},
        author=GRACE,
        date="2026-01-05T09:15:00+02:00",
        committer=ADA,
        committed="2026-01-05T18:00:00-05:00",
    )
    fields = [
        ("description", None, "The redesigned checkout"),
        ("enabled", None, False),
        ("environments.development", None, True),
        ("environments.staging.applications.ios", None, True),
        ("expires", None, "2099-12-31"),
        ("owner", None, "checkout"),
        ("tags", None, ["payments", "web"]),
    ]
    values = [
        ("development", None, True),
        ("development/web", None, True),
        ("development/ios", None, True),
        ("development/android", None, True),
        ("staging", None, False),
        ("staging/web", None, False),
        ("staging/ios", None, True),
        ("staging/android", None, False),
        ("production", None, False),
        ("production/web", None, False),
        ("production/ios", None, False),
        ("production/android", None, False),
    ]
    assert scripted.extract() == {
        "format": 1,
        "head": made.sha,
        "complete": True,
        "entries": [
            entry(made, "created", "new-checkout", "checkout/new-checkout.yaml", fields, values),
            project_created(made),
        ],
    }
    created = scripted.entries()[0]
    assert created["timestamp"] == "2026-01-05T09:15:00+02:00"
    assert created["committed_at"] == "2026-01-05T18:00:00-05:00"
    assert created["author"] == {"name": "Grace Hopper", "email": "grace@example.com"}
    assert created["committer"] == {"name": "Ada Lovelace", "email": "ada@example.com"}


def test_modified_lists_only_what_changed(scripted: Scripted) -> None:
    first = scripted.commit(
        "Add the banner", {"_project.yaml": PROJECT, "growth/banner.yaml": BANNER}
    )
    web_on = BANNER + "environments:\n  production:\n    applications:\n      web: true\n"
    on = scripted.commit("Show the banner on the web in production", {"growth/banner.yaml": web_on})
    renamed = web_on.replace("Free shipping", "Free delivery").replace("growth", "marketing")
    words = scripted.commit("Reword the banner, marketing owns it", {"growth/banner.yaml": renamed})
    off = scripted.commit(
        "Hide the banner on the web again",
        {"growth/banner.yaml": renamed.replace("web: true", "web: false")},
    )
    path = "growth/banner.yaml"
    web = "environments.production.applications.web"
    assert scripted.entries() == [
        entry(
            off, "modified", "banner", path, [(web, True, False)], [("production/web", True, False)]
        ),
        entry(
            words,
            "modified",
            "banner",
            path,
            [
                ("description", "Free shipping banner", "Free delivery banner"),
                ("owner", "growth", "marketing"),
            ],
        ),
        entry(
            on, "modified", "banner", path, [(web, None, True)], [("production/web", False, True)]
        ),
        entry(
            first, "created", "banner", path, created_fields(BANNER_FIELDS), appeared(cells(False))
        ),
        project_created(first),
    ]


def test_kill_switch_changes_every_cell_of_the_environment(scripted: Scripted) -> None:
    on = "description: Search v2\nowner: search\nenabled: true\n"
    first = scripted.commit("Search v2 everywhere", {"_project.yaml": PROJECT, "search.yaml": on})
    killed = on + "environments:\n  production: false\n"
    kill = scripted.commit("Kill switch: search v2 off in production", {"search.yaml": killed})
    android = killed + "applications:\n  android: false\n"
    no_android = scripted.commit("Search v2 off on android", {"search.yaml": android})
    back = android.replace("production: false", "production:\n    enabled: true")
    revive = scripted.commit("Search v2 back in production", {"search.yaml": back})
    production = ["production", "production/web", "production/ios", "production/android"]
    assert scripted.entries() == [
        entry(
            revive,
            "modified",
            "search",
            "search.yaml",
            [
                ("environments.production", False, None),
                ("environments.production.enabled", None, True),
            ],
            [(cell, False, True) for cell in production],
        ),
        entry(
            no_android,
            "modified",
            "search",
            "search.yaml",
            [("applications.android", None, False)],
            [("development/android", True, False), ("staging/android", True, False)],
        ),
        entry(
            kill,
            "modified",
            "search",
            "search.yaml",
            [("environments.production", None, False)],
            [(cell, True, False) for cell in production],
        ),
        entry(
            first,
            "created",
            "search",
            "search.yaml",
            [
                ("description", None, "Search v2"),
                ("enabled", None, True),
                ("owner", None, "search"),
            ],
            appeared(cells(True)),
        ),
        project_created(first),
    ]


def test_moved_between_folders(scripted: Scripted) -> None:
    """git's rename detection: a move keeps the key (change "moved", previous_file set),
    with or without a change of content."""
    first = scripted.commit(
        "Add the banner", {"_project.yaml": PROJECT, "growth/banner.yaml": LONG_BANNER}
    )
    moved = scripted.commit(
        "Marketing owns the banner now", moves=[("growth/banner.yaml", "marketing/banner.yaml")]
    )
    changed = LONG_BANNER.replace("enabled: false", "enabled: true")
    both = scripted.commit(
        "Move the banner to the web folder and turn it on",
        {"marketing/banner.yaml": None, "marketing/web/banner.yaml": changed},
    )
    fields = LONG_BANNER_FIELDS
    assert scripted.entries() == [
        entry(
            both,
            "moved",
            "banner",
            "marketing/web/banner.yaml",
            [("enabled", False, True)],
            [(cell, False, True) for cell in CELLS],
            previous_file="marketing/banner.yaml",
        ),
        entry(
            moved, "moved", "banner", "marketing/banner.yaml", previous_file="growth/banner.yaml"
        ),
        entry(
            first,
            "created",
            "banner",
            "growth/banner.yaml",
            created_fields(fields),
            appeared(cells(False)),
        ),
        project_created(first),
    ]


def test_renamed_to_a_new_key_is_deleted_and_created(scripted: Scripted) -> None:
    first = scripted.commit(
        "Add the banner", {"_project.yaml": PROJECT, "growth/banner.yaml": LONG_BANNER}
    )
    renamed = scripted.commit(
        "Rename banner to shipping-banner",
        moves=[("growth/banner.yaml", "growth/shipping-banner.yaml")],
    )
    fields = LONG_BANNER_FIELDS
    off = cells(False)
    assert scripted.entries() == [
        entry(
            renamed,
            "created",
            "shipping-banner",
            "growth/shipping-banner.yaml",
            created_fields(fields),
            appeared(off),
        ),
        entry(
            renamed,
            "deleted",
            "banner",
            "growth/banner.yaml",
            deleted_fields(fields),
            vanished(off),
        ),
        entry(
            first, "created", "banner", "growth/banner.yaml", created_fields(fields), appeared(off)
        ),
        project_created(first),
    ]
    assert audit.flag_metadata(scripted.extract()) == {
        "shipping-banner": {
            "created_at": renamed.date,
            "created_by": "Ada Lovelace",
            "updated_at": renamed.date,
            "updated_by": "Ada Lovelace",
            "updated_reason": "Rename banner to shipping-banner",
        }
    }


REWRITTEN = (
    "description: Completely different text here now\n"
    "owner: someone-else-entirely\n"
    "enabled: true\n"
    "tags: [a, b, c, d]\n"
)
REWRITTEN_FIELDS = [
    ("description", "Completely different text here now"),
    ("enabled", True),
    ("owner", "someone-else-entirely"),
    ("tags", ["a", "b", "c", "d"]),
]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("alpha/banner.yaml", "zeta/banner.yaml", id="to-a-later-path"),
        pytest.param("zeta/banner.yaml", "alpha/banner.yaml", id="to-an-earlier-path"),
    ],
)
def test_moved_and_rewritten_beyond_rename_detection(
    scripted: Scripted, old: str, new: str
) -> None:
    """git pairs no rename (the content changed too much), but the same key deleted at one
    path and added at another in one commit is still one move, whichever way the paths
    sort; the flag lives on at its new path, with its history."""
    added = scripted.commit("Add the banner", {"_project.yaml": PROJECT, old: BANNER})
    moved = scripted.commit("Rewrite the banner in its new home", {old: None, new: REWRITTEN})
    fields = [
        ("description", "Free shipping banner", "Completely different text here now"),
        ("enabled", False, True),
        ("owner", "growth", "someone-else-entirely"),
        ("tags", None, ["a", "b", "c", "d"]),
    ]
    values = [(c, False, True) for c in CELLS]
    move = [entry(moved, "moved", "banner", new, fields, values, previous_file=old)]
    assert scripted.entries()[:1] == move
    assert audit.flag_metadata(scripted.extract()) == {
        "banner": {
            "created_at": added.date,
            "created_by": "Ada Lovelace",
            "updated_at": moved.date,
            "updated_by": "Ada Lovelace",
            "updated_reason": "Rewrite the banner in its new home",
        }
    }
    off = scripted.commit("Banner off", {new: REWRITTEN.replace("true", "false")})
    assert scripted.entries()[:2] == [
        entry(
            off,
            "modified",
            "banner",
            new,
            [("enabled", True, False)],
            [(c, True, False) for c in CELLS],
        ),
        *move,
    ]


def test_deleted(scripted: Scripted) -> None:
    flag = BANNER + "environments:\n  staging: true\n"
    first = scripted.commit(
        "Add the banner", {"_project.yaml": PROJECT, "growth/banner.yaml": flag}
    )
    gone = scripted.commit(
        "Retire the banner\n\nThe campaign is over.", {"growth/banner.yaml": None}, author=GRACE
    )
    fields = [*BANNER_FIELDS, ("environments.staging", True)]
    values = cells(False, dict.fromkeys(CELLS[4:8], True))
    assert scripted.entries() == [
        entry(
            gone,
            "deleted",
            "banner",
            "growth/banner.yaml",
            deleted_fields(fields),
            vanished(values),
        ),
        entry(
            first,
            "created",
            "banner",
            "growth/banner.yaml",
            created_fields(fields),
            appeared(values),
        ),
        project_created(first),
    ]
    assert audit.flag_metadata(scripted.extract()) == {}


def test_deleted_and_created_again(scripted: Scripted) -> None:
    """The flag's creation is its latest one; a flag deleted for good has no metadata."""
    old = "description: Old experiment\nowner: labs\nenabled: true\n"
    first = scripted.commit(
        "Add the banner and an experiment",
        {"_project.yaml": PROJECT, "growth/banner.yaml": BANNER, "labs/old.yaml": old},
        date="2026-01-01T09:00:00+01:00",
    )
    on = BANNER.replace("enabled: false", "enabled: true")
    changed = scripted.commit(
        "Banner on", {"growth/banner.yaml": on}, author=GRACE, date="2026-01-02T09:00:00-05:00"
    )
    gone = scripted.commit(
        "Retire the banner and the experiment",
        {"growth/banner.yaml": None, "labs/old.yaml": None},
        date="2026-01-03T09:00:00+01:00",
    )
    again = scripted.commit(
        "Bring the banner back for the winter sale",
        {"marketing/banner.yaml": BANNER},
        author=ZOE,
        date="2026-01-04T09:00:00+05:30",
    )
    web = BANNER + "applications:\n  web: true\n"
    last = scripted.commit(
        "Banner on the web\n\nOnly the web shop runs the sale.",
        {"marketing/banner.yaml": web},
        author=MARYAM,
        date="2026-01-05T09:00:00-03:00",
    )
    old_fields = [("description", "Old experiment"), ("enabled", True), ("owner", "labs")]
    web_cells = [f"{env}/web" for env in ENVIRONMENTS]
    assert scripted.entries() == [
        entry(
            last,
            "modified",
            "banner",
            "marketing/banner.yaml",
            [("applications.web", None, True)],
            [(cell, False, True) for cell in web_cells],
        ),
        entry(
            again,
            "created",
            "banner",
            "marketing/banner.yaml",
            created_fields(BANNER_FIELDS),
            appeared(cells(False)),
        ),
        entry(
            gone,
            "deleted",
            "old",
            "labs/old.yaml",
            deleted_fields(old_fields),
            vanished(cells(True)),
        ),
        entry(
            gone,
            "deleted",
            "banner",
            "growth/banner.yaml",
            deleted_fields([*BANNER_FIELDS[:1], ("enabled", True), *BANNER_FIELDS[2:]]),
            vanished(cells(True)),
        ),
        entry(
            changed,
            "modified",
            "banner",
            "growth/banner.yaml",
            [("enabled", False, True)],
            [(cell, False, True) for cell in CELLS],
        ),
        entry(
            first,
            "created",
            "old",
            "labs/old.yaml",
            created_fields(old_fields),
            appeared(cells(True)),
        ),
        entry(
            first,
            "created",
            "banner",
            "growth/banner.yaml",
            created_fields(BANNER_FIELDS),
            appeared(cells(False)),
        ),
        project_created(first),
    ]
    assert audit.flag_metadata(scripted.extract()) == {
        "banner": {
            "created_at": "2026-01-04T09:00:00+05:30",
            "created_by": "Zoë Çelik 🚀",
            "updated_at": "2026-01-05T09:00:00-03:00",
            "updated_by": "مريم الأحمد",
            "updated_reason": "Banner on the web\n\nOnly the web shop runs the sale.",
        }
    }


# Broken versions


def test_invalid_versions_are_skipped_when_diffing(scripted: Scripted) -> None:
    """A commit where the file is not valid YAML, or not valid against the schema, gets an
    entry with `invalid` and nothing else; the next valid version is compared with the last
    valid one."""
    first = scripted.commit(
        "Add the banner", {"_project.yaml": PROJECT, "growth/banner.yaml": BANNER}
    )
    syntax = scripted.commit(
        "Try a list", {"growth/banner.yaml": BANNER.replace("enabled: false", "enabled: [true")}
    )
    schema = scripted.commit(
        "Fix the list", {"growth/banner.yaml": BANNER.replace("enabled: false", "enabeld: true")}
    )
    typed = scripted.commit(
        "Quote it", {"growth/banner.yaml": BANNER.replace("enabled: false", 'enabled: "yes"')}
    )
    fixed = scripted.commit(
        "Turn the banner on, properly",
        {"growth/banner.yaml": BANNER.replace("enabled: false", "enabled: true")},
    )
    path = "growth/banner.yaml"
    assert scripted.entries() == [
        entry(
            fixed,
            "modified",
            "banner",
            path,
            [("enabled", False, True)],
            [(cell, False, True) for cell in CELLS],
        ),
        entry(typed, "modified", "banner", path, invalid=Matches(r"3:10: .*enabled.*")),
        entry(schema, "modified", "banner", path, invalid=Matches(r"3:1: .*enabeld.*")),
        entry(syntax, "modified", "banner", path, invalid=Matches(r"3:10: .+")),
        entry(
            first, "created", "banner", path, created_fields(BANNER_FIELDS), appeared(cells(False))
        ),
        project_created(first),
    ]


def test_invalid_from_the_start_then_fixed_then_deleted(scripted: Scripted) -> None:
    first = scripted.commit(
        "Add a broken flag",
        {"_project.yaml": PROJECT, "broken.yaml": BANNER.replace("owner: growth\n", "")},
    )
    fixed = scripted.commit("Give it an owner", {"broken.yaml": BANNER})
    (scripted.flags / "broken.yaml").write_bytes(b"description: Caf\xe9\nowner: x\nenabled: true\n")
    latin = scripted.commit("Latin-1 by mistake")
    gone = scripted.commit("Remove it", {"broken.yaml": None})
    assert scripted.entries() == [
        entry(
            gone,
            "deleted",
            "broken",
            "broken.yaml",
            deleted_fields(BANNER_FIELDS),
            vanished(cells(False)),
        ),
        entry(latin, "modified", "broken", "broken.yaml", invalid=Matches(".*UTF-8.*")),
        entry(
            fixed,
            "modified",
            "broken",
            "broken.yaml",
            created_fields(BANNER_FIELDS),
            appeared(cells(False)),
        ),
        entry(first, "created", "broken", "broken.yaml", invalid=Matches(r"1:1: .*owner.*")),
        project_created(first),
    ]


# The project


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        pytest.param(
            PROJECT.replace("android]", "android, tv]"),
            [("applications", [*APPLICATIONS], [*APPLICATIONS, "tv"])],
            id="application-added",
        ),
        pytest.param(
            "environments:\n- development\n- staging\n- production\n"
            "applications:\n- web\n- ios\n- android\n",
            [],
            id="only-reformatted",
        ),
        pytest.param(
            PROJECT + "reasons:\n  min_length: 20\n",
            [("reasons.min_length", None, 20)],
            id="reason-policy-added",
        ),
    ],
)
def test_project_change_lists_the_fields_that_changed(
    scripted: Scripted, text: str, fields: list[Change]
) -> None:
    first = scripted.commit("Add the project", {"_project.yaml": PROJECT})
    change = scripted.commit("Change the project", {"_project.yaml": text})
    assert scripted.entries() == [
        entry(change, "project", None, "_project.yaml", fields),
        project_created(first),
    ]


def test_a_flag_changed_with_the_project_resolves_with_the_new_project(
    scripted: Scripted,
) -> None:
    first = scripted.commit(
        "Add the banner and the checkout",
        {"_project.yaml": PROJECT, "banner.yaml": BANNER, "checkout.yaml": CHECKOUT},
    )
    tv = scripted.commit(
        "Add the tv application, with the banner on it",
        {
            "_project.yaml": PROJECT.replace("android]", "android, tv]"),
            "banner.yaml": BANNER + "applications:\n  tv: true\n",
        },
    )
    kill = scripted.commit(
        "Kill switch: checkout off in production",
        {"checkout.yaml": CHECKOUT + "environments:\n  production: false\n"},
    )
    production = ["production", *(f"production/{a}" for a in (*APPLICATIONS, "tv"))]
    flags = [e for e in scripted.entries() if e["flag"] is not None]
    assert flags == [
        entry(
            kill,
            "modified",
            "checkout",
            "checkout.yaml",
            [("environments.production", None, False)],
            [(cell, True, False) for cell in production],
        ),
        entry(
            tv,
            "modified",
            "banner",
            "banner.yaml",
            [("applications.tv", None, True)],
            [(f"{env}/tv", None, True) for env in ENVIRONMENTS],
        ),
        entry(
            first,
            "created",
            "checkout",
            "checkout.yaml",
            created_fields(CHECKOUT_FIELDS),
            appeared(cells(True)),
        ),
        entry(
            first,
            "created",
            "banner",
            "banner.yaml",
            created_fields(BANNER_FIELDS),
            appeared(cells(False)),
        ),
    ]
    assert [(e["commit"], e["change"]) for e in scripted.entries() if e["flag"] is None] == [
        (tv.sha, "project"),
        (first.sha, "project"),
    ]


def test_an_invalid_project_keeps_the_last_valid_grid(scripted: Scripted) -> None:
    first = scripted.commit("Add the banner", {"_project.yaml": PROJECT, "banner.yaml": BANNER})
    broken = scripted.commit(
        "Break the project and turn the banner on in staging",
        {
            "_project.yaml": "environments: [development, staging, production\n",
            "banner.yaml": BANNER + "environments:\n  staging: true\n",
        },
    )
    staging = ["staging", "staging/web", "staging/ios", "staging/android"]
    assert scripted.entries() == [
        entry(
            broken,
            "modified",
            "banner",
            "banner.yaml",
            [("environments.staging", None, True)],
            [(cell, False, True) for cell in staging],
        ),
        entry(broken, "project", None, "_project.yaml", invalid=Matches(r"\d+:\d+: .+")),
        entry(
            first,
            "created",
            "banner",
            "banner.yaml",
            created_fields(BANNER_FIELDS),
            appeared(cells(False)),
        ),
        project_created(first),
    ]


# Merges


def test_merged_pull_request_is_one_entry_per_flag(scripted: Scripted) -> None:
    """First-parent history: a pull request merged with --no-ff is one change, with the
    merge commit's author, date and message; the branch's own commits do not appear."""
    first = scripted.commit(
        "Add the banner and the checkout",
        {"_project.yaml": PROJECT, "growth/banner.yaml": BANNER, "checkout.yaml": CHECKOUT},
    )
    scripted.git("checkout", "--quiet", "-b", "dark-mode")
    dark = "description: Dark mode\nowner: web\nenabled: false\n"
    scripted.commit("Add dark mode", {"web/dark-mode.yaml": dark}, author=GRACE)
    scripted.commit(
        "Dark mode on in dev",
        {"web/dark-mode.yaml": dark + "environments:\n  development: true\n"},
        author=GRACE,
    )
    scripted.commit(
        "Banner on the web",
        {"growth/banner.yaml": BANNER + "applications:\n  web: true\n"},
        author=GRACE,
    )
    scripted.git("checkout", "--quiet", "main")
    main_change = scripted.commit(
        "Checkout off in staging", {"checkout.yaml": CHECKOUT + "environments:\n  staging: false\n"}
    )
    merge = merge_branch(
        scripted,
        "dark-mode",
        "Merge pull request #42 from grace/dark-mode\n\nDark mode, and the banner on the web.",
        DWAYNE,
        "2026-03-01T12:00:00-08:00",
    )
    staging = ["staging", "staging/web", "staging/ios", "staging/android"]
    assert scripted.entries() == [
        entry(
            merge,
            "created",
            "dark-mode",
            "web/dark-mode.yaml",
            [
                ("description", None, "Dark mode"),
                ("enabled", None, False),
                ("environments.development", None, True),
                ("owner", None, "web"),
            ],
            appeared(cells(False, dict.fromkeys(CELLS[:4], True))),
        ),
        entry(
            merge,
            "modified",
            "banner",
            "growth/banner.yaml",
            [("applications.web", None, True)],
            [(f"{env}/web", False, True) for env in ENVIRONMENTS],
        ),
        entry(
            main_change,
            "modified",
            "checkout",
            "checkout.yaml",
            [("environments.staging", None, False)],
            [(cell, True, False) for cell in staging],
        ),
        entry(
            first,
            "created",
            "banner",
            "growth/banner.yaml",
            created_fields(BANNER_FIELDS),
            appeared(cells(False)),
        ),
        entry(
            first,
            "created",
            "checkout",
            "checkout.yaml",
            created_fields(CHECKOUT_FIELDS),
            appeared(cells(True)),
        ),
        project_created(first),
    ]
    assert merge.message.startswith("Merge pull request #42")
    assert {e["subject"] for e in scripted.entries()[:2]} == {
        "Merge pull request #42 from grace/dark-mode"
    }


def test_fast_forward_merge_keeps_each_commit(scripted: Scripted) -> None:
    first = scripted.commit("Add the banner", {"_project.yaml": PROJECT, "banner.yaml": BANNER})
    scripted.git("checkout", "--quiet", "-b", "feature")
    one = scripted.commit(
        "Banner on in staging",
        {"banner.yaml": BANNER + "environments:\n  staging: true\n"},
        author=GRACE,
    )
    two = scripted.commit(
        "Banner owned by marketing",
        {"banner.yaml": BANNER.replace("growth", "marketing") + "environments:\n  staging: true\n"},
        author=ZOE,
    )
    scripted.git("checkout", "--quiet", "main")
    scripted.git("merge", "--quiet", "--ff-only", "feature")
    assert scripted.head() == two.sha
    staging = ["staging", "staging/web", "staging/ios", "staging/android"]
    assert scripted.entries() == [
        entry(two, "modified", "banner", "banner.yaml", [("owner", "growth", "marketing")]),
        entry(
            one,
            "modified",
            "banner",
            "banner.yaml",
            [("environments.staging", None, True)],
            [(cell, False, True) for cell in staging],
        ),
        entry(
            first,
            "created",
            "banner",
            "banner.yaml",
            created_fields(BANNER_FIELDS),
            appeared(cells(False)),
        ),
        project_created(first),
    ]


# People, dates and messages


def test_people_dates_and_messages_as_committed(scripted: Scripted) -> None:
    first = scripted.commit(
        "Add the banner",
        {"_project.yaml": PROJECT, "banner.yaml": BANNER},
        author=ZOE,
        date="2026-04-01T23:30:00+02:00",
    )
    versions = [BANNER.replace("Free shipping", f"Free shipping {n}") for n in range(1, 6)]
    made = [
        scripted.commit(
            "", {"banner.yaml": versions[0]}, author=MARYAM, date="2026-04-02T01:00:00-05:00"
        ),
        scripted.commit(
            "Reword the banner\n\nLegal asked for it.\n\nTicket: LEGAL-7\nCo-authored-by: Ada",
            {"banner.yaml": versions[1]},
            author=DWAYNE,
            date="2026-04-03T00:00:00+05:30",
            committer=BOT,
            committed="2026-04-03T00:10:00+00:00",
        ),
        scripted.commit(
            "Ünïcödé subject — with “quotes” and 'apostrophes' 🚀",
            {"banner.yaml": versions[2]},
            author=Person('Ted "Teddy" O\'Brien, Jr', "ted@example.com"),
            date="2026-04-04T12:00:00-11:00",
        ),
        scripted.commit(
            "   indented first line\nsecond line of the subject paragraph",
            {"banner.yaml": versions[3]},
            date="2026-04-06T12:00:00+14:00",
        ),
    ]
    entries = scripted.entries()
    descriptions = ["Free shipping banner", *(v.split("\n")[0][13:] for v in versions[:4])]
    expected = [
        entry(m, "modified", "banner", "banner.yaml", [("description", old, new)])
        for m, old, new in zip(made, descriptions[:-1], descriptions[1:], strict=True)
    ][::-1]
    expected[0]["subject"] = "indented first line"
    assert entries == [
        *expected,
        entry(
            first,
            "created",
            "banner",
            "banner.yaml",
            created_fields(BANNER_FIELDS),
            appeared(cells(False)),
        ),
        project_created(first),
    ]
    # Spelled out, what the helper above assumed:
    empty, paragraphs, unicode, indented = entries[3], entries[2], entries[1], entries[0]
    assert (empty["subject"], empty["reason"]) == ("", "")
    assert empty["author"] == {"name": "مريم الأحمد", "email": ""}
    assert paragraphs["subject"] == "Reword the banner"
    assert paragraphs["reason"] == (
        "Reword the banner\n\nLegal asked for it.\n\nTicket: LEGAL-7\nCo-authored-by: Ada"
    )
    assert paragraphs["author"] == {"name": DWAYNE.name, "email": "dwayne+flags@example.com"}
    assert paragraphs["committer"] == {"name": "release-bot[bot]", "email": "bot@example.com"}
    assert (paragraphs["timestamp"], paragraphs["committed_at"]) == (
        "2026-04-03T00:00:00+05:30",
        "2026-04-03T00:10:00+00:00",
    )
    assert unicode["subject"] == "Ünïcödé subject — with “quotes” and 'apostrophes' 🚀"
    assert unicode["author"]["name"] == 'Ted "Teddy" O\'Brien, Jr'
    assert indented["reason"] == ("   indented first line\nsecond line of the subject paragraph")
    moments = [datetime.datetime.fromisoformat(e["timestamp"]) for e in entries]
    assert moments == sorted(moments, reverse=True)  # newest first, across offsets
    assert [e["timestamp"] for e in entries[:4]] == [
        "2026-04-06T12:00:00+14:00",
        "2026-04-04T12:00:00-11:00",
        "2026-04-03T00:00:00+05:30",
        "2026-04-02T01:00:00-05:00",
    ]


def test_messages_with_git_separators_in_a_long_log(scripted: Scripted) -> None:
    """A message may hold any byte but NUL, the separators of git's output among them, and
    a log longer than a pipe's buffer is read whole."""
    first = scripted.commit("Add the banner", {"_project.yaml": PROJECT, "banner.yaml": BANNER})
    raw = f":100644 100644 {'0' * 40} {'1' * 40} M"
    filler = "\n".join(f"line {n}: \x1e{raw}\x1e banner.yaml" for n in range(1000))
    made, previous = [], "Free shipping banner"
    expected = []
    for n in range(3):
        description = f"Free shipping banner, take {n}"
        made.append(
            scripted.commit(
                f"Take \x1e {n}\n\n{filler}",
                {"banner.yaml": BANNER.replace("Free shipping banner", description)},
            )
        )
        expected.append(
            entry(
                made[-1],
                "modified",
                "banner",
                "banner.yaml",
                [("description", previous, description)],
            )
        )
        previous = description
    assert len(made[0].message) > 90_000  # the log is several times what a pipe holds
    assert scripted.entries() == [
        *expected[::-1],
        entry(
            first,
            "created",
            "banner",
            "banner.yaml",
            created_fields(BANNER_FIELDS),
            appeared(cells(False)),
        ),
        project_created(first),
    ]


def test_newest_first_follows_history_not_dates(scripted: Scripted) -> None:
    """Entries follow the commits (newest on top), even when author dates go backwards."""
    first = scripted.commit(
        "Add the banner",
        {"_project.yaml": PROJECT, "banner.yaml": BANNER},
        date="2026-06-01T00:00:00+00:00",
    )
    older = scripted.commit(
        "Rebased from an old branch",
        {"banner.yaml": BANNER.replace("growth", "web")},
        date="2025-01-01T00:00:00+00:00",
    )
    assert [e["commit"] for e in scripted.entries()] == [older.sha, first.sha, first.sha]


# The flags folder inside a bigger repository


def test_flags_folder_in_a_subfolder(git_repo: tuple[Path, Git]) -> None:
    """Only changes below config/flags count, with paths relative to it; a file moved in
    from elsewhere is created, one moved out is deleted."""
    scripted = Scripted(*git_repo, folder="config/flags")
    first = scripted.commit(
        "Add the service and its flags",
        {"_project.yaml": PROJECT, "banner.yaml": BANNER},
        outside={"README.md": "# shop\n", "src/app.py": "print('hi')\n"},
    )
    scripted.commit("Document the service", outside={"README.md": "# shop\n\nIt sells.\n"})
    scripted.commit(
        "Old flags folder and a look-alike",
        outside={
            "config/flags-old/banner.yaml": BANNER.replace("false", "true"),
            "config/flagsx": "not a flag\n",
            "config/other.yaml": "x: 1\n",
        },
    )
    both = scripted.commit(
        "Banner on in production, and the code that reads it",
        {"banner.yaml": BANNER + "environments:\n  production: true\n"},
        outside={"src/app.py": "print('banner')\n"},
    )
    moved_in = scripted.commit(
        "Adopt the old folder's banner as legacy-banner",
        outside={"config/flags-old/banner.yaml": None},
        files={"legacy-banner.yaml": BANNER.replace("false", "true")},
    )
    moved_out = scripted.commit(
        "Archive the banner",
        outside={"config/archive/banner.yaml": BANNER + "environments:\n  production: true\n"},
        files={"banner.yaml": None},
    )
    production = ["production", "production/web", "production/ios", "production/android"]
    assert scripted.entries() == [
        entry(
            moved_out,
            "deleted",
            "banner",
            "banner.yaml",
            deleted_fields([*BANNER_FIELDS, ("environments.production", True)]),
            vanished(cells(False, dict.fromkeys(production, True))),
        ),
        entry(
            moved_in,
            "created",
            "legacy-banner",
            "legacy-banner.yaml",
            created_fields([BANNER_FIELDS[0], ("enabled", True), BANNER_FIELDS[2]]),
            appeared(cells(True)),
        ),
        entry(
            both,
            "modified",
            "banner",
            "banner.yaml",
            [("environments.production", None, True)],
            [(c, False, True) for c in production],
        ),
        entry(
            first,
            "created",
            "banner",
            "banner.yaml",
            created_fields(BANNER_FIELDS),
            appeared(cells(False)),
        ),
        project_created(first),
    ]


# Many flags, and outside git


def test_one_commit_with_thousands_of_flags(git_repo: tuple[Path, Git]) -> None:
    """Far more blob content than a pipe holds, asked for at once: no deadlock."""
    repo, git = git_repo
    files = {"flags/_project.yaml": PROJECT}
    for index in range(3000):
        files[f"flags/group{index // 500}/flag-{index}.yaml"] = (
            f"description: Flag number {index}, with a description long enough to matter\n"
            "owner: team-bulk\nenabled: false\n"
        )
    write_tree(repo, files)
    git("add", "--all")
    git("commit", "--quiet", "--message", "Import every flag")
    with GitRepository.open(repo / "flags") as repository:
        document = audit.extract(repository)
    assert len(document["entries"]) == 3001
    assert {entry["change"] for entry in document["entries"]} == {"created", "project"}


def test_a_build_outside_git_is_served_and_continued(tmp_path: Path) -> None:
    """Outside git the log has no head (null, as the schema allows): the server must take
    it (a container image built without .git serves it), and a later build in git must
    read the whole history rather than continue from that log."""
    assert audit.usable(audit.empty())
    write_tree(tmp_path / "flags", {"_project.yaml": PROJECT})
    assert main(["build", str(tmp_path / "flags"), "-o", str(tmp_path / "out")]) == 0
    assert store.load(tmp_path / "out").revision.startswith("content-")
    git = git_in(tmp_path)
    git("init", "--quiet", "--initial-branch=main")
    git("add", "--all")
    git("commit", "--quiet", "--message", "Declare the environments")
    with GitRepository.open(tmp_path / "flags") as repository:
        assert audit.extract(repository, audit.empty()) == audit.extract(repository)


# Reading one version: most are read without source positions (yamlsource.read_plain), the
# others with them; either way the Version is the one the positions' reading gives.

VALID_FLAG = "description: A banner\nowner: team-growth\nenabled: false\n"
VERSIONS: list[tuple[str, str]] = [
    ("a.yaml", VALID_FLAG),
    ("a.yaml", VALID_FLAG + "environments:\n  production:\n    applications:\n      web: true\n"),
    ("a.yaml", VALID_FLAG + "tags: [a, b]\nexpires: 2027-06-30\ndepends_on:\n- b\n"),
    ("a.yaml", VALID_FLAG + "expires: 2027-13-45\n"),
    ("a.yaml", VALID_FLAG + "expires: '2027-06-30'\n"),
    ("a.yaml", VALID_FLAG.replace("false", "yes")),
    ("a.yaml", VALID_FLAG.replace("false", "on")),
    ("a.yaml", VALID_FLAG.replace("false", "1")),
    ("a.yaml", VALID_FLAG.replace("A banner", "0o7")),
    ("a.yaml", VALID_FLAG.replace("A banner", "2026-01-01")),
    ("a.yaml", VALID_FLAG.replace("A banner", "'yes'")),
    ("a.yaml", VALID_FLAG.replace("owner: team-growth\n", "")),
    ("a.yaml", VALID_FLAG + "colour: blue\n"),
    ("a.yaml", VALID_FLAG + "enabled: true\n"),
    ("a.yaml", VALID_FLAG + "environments:\n  production: maybe\n"),
    ("a.yaml", VALID_FLAG + "environments:\n\tproduction: true\n"),
    ("a.yaml", VALID_FLAG + "tags: [a, b\n"),
    ("a.yaml", "\ufeff" + VALID_FLAG),
    ("a.yaml", VALID_FLAG + "tags: &t [a]\n"),
    ("a.yaml", "- a\n"),
    ("a.yaml", ""),
    (
        "a.yaml",
        "description: Colour\nowner: growth\ntype: string\nvariants:\n  blue: '#1f6feb'\n"
        '  green: "#2da44e"\ndefault: blue\noff: blue\nenvironments:\n  production: green\n',
    ),
    ("_project.yaml", "environments: [development, production]\napplications: [web, ios]\n"),
    ("_project.yaml", "environments:\n- production\napplications: []\n"),
    ("_project.yaml", "environments: [Production]\napplications: [web]\n"),
    ("_project.yaml", "environments: [a, a]\napplications: [web]\n"),
    ("_project.yaml", "environments: [a]\n"),
]


@pytest.mark.parametrize(("path", "text"), VERSIONS)
def test_read_version_is_the_reading_with_positions(path: str, text: str) -> None:
    assert audit.read_version(text.encode(), path) == audit._read_checked(
        text.removeprefix("\ufeff"), path
    )


def test_read_version_reads_most_files_without_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    read = []
    monkeypatch.setattr(audit, "_read_checked", lambda *args: read.append(args))
    audit.read_version(VERSIONS[1][1].encode(), "a.yaml")
    audit.read_version(VERSIONS[-4][1].encode(), "_project.yaml")
    assert read == []


# The replay resolves a flag's cells once per grid and what decides them (audit's
# _cell_inputs): the fields it leaves out must not change any cell.
RULED_FLAG = {
    "description": "Colour",
    "owner": "growth",
    "type": "string",
    "variants": {"blue": "#1f6feb", "green": "#2da44e"},
    "default": "blue",
    "off": "blue",
    "applications": {"ios": "green"},
    "environments": {"production": {"default": "green", "applications": {"web": "blue"}}},
    "rules": [{"when": {"plan": ["pro"]}, "serve": "green"}],
}
NOT_CELL_INPUTS = [
    ("description", "Another colour"),
    ("owner", "checkout"),
    ("tags", ["ui"]),
    ("expires", "2027-06-30"),
    ("depends_on", ["pricing"]),
    ("rules", [{"rollout": {"green": 10, "blue": 90}}]),
]


@pytest.mark.parametrize(("name", "value"), NOT_CELL_INPUTS)
def test_cells_do_not_depend_on_what_the_replay_leaves_out(name: str, value: object) -> None:
    grid = Grid(("staging", "production"), ("web", "ios"))
    before = Flag.model_validate(RULED_FLAG)
    after = Flag.model_validate({**RULED_FLAG, name: value})
    assert resolve(grid, {"a": before})["a"].cells == resolve(grid, {"a": after})["a"].cells
    assert name in audit._NOT_CELL_INPUTS
    assert audit._cell_inputs(RULED_FLAG) == audit._cell_inputs({**RULED_FLAG, name: value})


CELL_NAMES = st.lists(
    st.tuples(st.sampled_from(["dev", "prod"]), st.none() | st.sampled_from(["web", "api"])),
    unique=True,
    max_size=6,
)


@given(data=st.data(), names=CELL_NAMES)
def test_a_grids_cells_are_the_mapping_of_its_cells_to_their_values(
    data: st.DataObject, names: list[tuple[str, str | None]]
) -> None:
    """A version's cells (`_GridCells`, made a dict only when looked up) compare, look up,
    list and iterate as the dict of the same cells and values does."""
    values = st.booleans() | st.sampled_from(["on", "off"])
    listed = tuple(data.draw(st.lists(values, min_size=len(names), max_size=len(names))))
    other = tuple(data.draw(st.lists(values, min_size=len(names), max_size=len(names))))
    cells = audit._GridCells(tuple(names), listed)
    expected = dict(zip(names, listed, strict=True))
    assert (cells == expected, expected == cells, cells != expected) == (True, True, False)
    assert list(cells) == names and len(cells) == len(names)
    assert [cells.get(name) for name in names] == list(listed)
    assert audit.listed(cells) == listed and audit.listed(expected) == list(listed)
    same_cells = audit._GridCells(tuple(names), other)
    assert (cells == same_cells) == (listed == other) == (expected == dict(same_cells.items()))
    assert (cells == {}) == (not names)
    assert cells.get(("staging", None)) is None
