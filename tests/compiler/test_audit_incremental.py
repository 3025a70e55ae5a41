"""The audit log continued from an earlier one (compiler.audit.extract with `previous`): it
equals a full extraction whatever the history did since (new commits, a rewrite, a merged
branch, a broken project), a log of another shape is read again from scratch, and a shallow
clone's log says it is incomplete."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compiler.scripted import (
    BANNER,
    BANNER_FIELDS,
    CELLS,
    CHECKOUT,
    CHECKOUT_FIELDS,
    GRACE,
    ZOE,
    Made,
    Scripted,
    Story,
    appeared,
    cells,
    created_fields,
    entry,
    merge_branch,
    project_created,
)
from tests.conftest import PROJECT

# Incremental extraction


def test_incremental_extraction_equals_the_full_one(story: Story) -> None:
    full = story.scripted.extract()
    differ = [
        index
        for index, previous in enumerate(story.documents)
        if story.scripted.extract(previous) != full
    ]
    assert differ == []


def test_incremental_extraction_after_additions_only(scripted: Scripted) -> None:
    """When the newer commits only add flags or change other files, the incremental log
    already equals the full one, and the older entries are the previous document's."""
    scripted.commit("Add the banner", {"_project.yaml": PROJECT, "banner.yaml": BANNER})
    scripted.commit("Banner on", {"banner.yaml": BANNER.replace("false", "true")}, author=GRACE)
    previous = scripted.extract()
    scripted.commit("Add the checkout", {"checkout.yaml": CHECKOUT}, author=ZOE)
    scripted.commit("README", outside={"README.md": "hello\n"})
    scripted.commit(
        "Add dark mode", {"web/dark-mode.yaml": BANNER.replace("Free shipping banner", "Dark")}
    )
    full = scripted.extract()
    assert scripted.extract(previous) == full
    assert full["entries"][2:] == previous["entries"]
    # Only the newer commits are read: the older entries come from `previous` as they are.
    marked = {
        **previous,
        "entries": [{**e, "reason": "from previous"} for e in previous["entries"]],
    }
    incremental = scripted.extract(marked)
    assert incremental["entries"][:2] == full["entries"][:2]
    assert incremental["entries"][2:] == marked["entries"]
    assert scripted.extract(full) == full  # nothing new at all


def test_previous_no_longer_an_ancestor_falls_back_to_a_full_extraction(story: Story) -> None:
    scripted = story.scripted
    previous = scripted.extract()
    scripted.git("reset", "--quiet", "--hard", story.made[6].sha)
    rewritten = [
        scripted.commit("Banner back, rewritten", {"marketing/banner.yaml": BANNER}, author=GRACE),
        scripted.commit(
            "Checkout renamed, rewritten",
            moves=[("checkout/v2/new-checkout.yaml", "checkout/v2/checkout.yaml")],
        ),
    ]
    full = scripted.extract()
    assert scripted.extract(previous) == full
    assert [e["commit"] for e in full["entries"][:3]] == [
        rewritten[1].sha,
        rewritten[1].sha,
        rewritten[0].sha,
    ]
    gone = {m.sha for m in story.made[7:]}
    assert not gone & {e["commit"] for e in full["entries"]}


_GONE = object()  # a key left out of the previous log


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"format": 2}, id="newer-format"),
        pytest.param({"format": "1"}, id="format-as-text"),
        pytest.param({"format": None}, id="no-format"),
        pytest.param({"head": None}, id="no-head"),
        pytest.param({"head": "0123456789" * 4}, id="unknown-head"),
        pytest.param({"entries": _GONE}, id="no-entries"),
        pytest.param({"entries": {}}, id="entries-not-a-list"),
        pytest.param({"entries": [1]}, id="entries-not-objects"),
        pytest.param({"complete": _GONE}, id="no-complete"),
    ],
)
def test_unusable_previous_is_ignored(scripted: Scripted, change: dict[str, Any]) -> None:
    """A previous log of another shape is read from scratch, not continued (`usable`)."""
    scripted.commit("Add the banner", {"_project.yaml": PROJECT, "banner.yaml": BANNER})
    previous = scripted.extract()
    scripted.commit("Banner on", {"banner.yaml": BANNER.replace("false", "true")})
    full = scripted.extract()
    changed = {**previous, "entries": [{"made": "up"}], **change}
    bogus = {key: value for key, value in changed.items() if value is not _GONE}
    assert scripted.extract(bogus) == full


def test_incremental_from_an_incomplete_log_stays_incomplete(scripted: Scripted) -> None:
    scripted.commit("Add the banner", {"_project.yaml": PROJECT, "banner.yaml": BANNER})
    previous = {**scripted.extract(), "complete": False}
    scripted.commit("Add the checkout", {"checkout.yaml": CHECKOUT})
    document = scripted.extract(previous)
    assert document["complete"] is False
    assert document["entries"] == scripted.extract()["entries"]


def test_incremental_when_the_project_was_broken_at_the_previous_head(
    scripted: Scripted,
) -> None:
    scripted.commit("Add the banner", {"_project.yaml": PROJECT, "banner.yaml": BANNER})
    scripted.commit("Break the project", {"_project.yaml": "environments: [development\n"})
    previous = scripted.extract()
    on = scripted.commit("Banner on", {"banner.yaml": BANNER.replace("false", "true")})
    full = scripted.extract()
    every_cell = [(cell, False, True) for cell in CELLS]
    assert full["entries"][0] == entry(
        on, "modified", "banner", "banner.yaml", [("enabled", False, True)], every_cell
    )
    assert scripted.extract(previous) == full


def test_incremental_from_a_log_built_on_a_merged_branch(scripted: Scripted) -> None:
    """CI built the pull request's branch, then main merged it: the merge is one change."""
    first = scripted.commit("Add the banner", {"_project.yaml": PROJECT, "banner.yaml": BANNER})
    scripted.git("checkout", "--quiet", "-b", "feature")
    scripted.commit("Add the checkout", {"checkout.yaml": CHECKOUT}, author=GRACE)
    scripted.commit("Banner on", {"banner.yaml": BANNER.replace("false", "true")}, author=GRACE)
    previous = scripted.extract()
    scripted.git("checkout", "--quiet", "main")
    main_change = scripted.commit("Add dark mode", {"dark-mode.yaml": BANNER})
    merge = merge_branch(scripted, "feature", "Merge feature", ZOE, "2026-05-01T00:00:00+02:00")
    full = scripted.extract()
    assert [e["commit"] for e in full["entries"]] == [
        merge.sha,
        merge.sha,
        main_change.sha,
        first.sha,
        first.sha,
    ]
    assert scripted.extract(previous) == full


# Shallow clones


def test_shallow_clone_is_marked_incomplete(shallow: tuple[Scripted, Made]) -> None:
    clone, last = shallow
    assert clone.git("rev-parse", "--is-shallow-repository").strip() == "true"
    assert clone.extract() == {
        "format": 1,
        "head": last.sha,
        "complete": False,
        "entries": [
            entry(
                last,
                "created",
                "banner",
                "growth/banner.yaml",
                created_fields([BANNER_FIELDS[0], ("enabled", True), BANNER_FIELDS[2]]),
                appeared(cells(True)),
            ),
            entry(
                last,
                "created",
                "new-checkout",
                "checkout/new-checkout.yaml",
                created_fields(CHECKOUT_FIELDS),
                appeared(cells(True)),
            ),
            project_created(last),
        ],
    }
