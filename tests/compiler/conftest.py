"""Fixtures of the compiler's tests: scripted git histories (tests/compiler/scripted.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compiler.scripted import (
    BANNER,
    CHECKOUT,
    GRACE,
    Made,
    Scripted,
    Story,
    clone,
    tell_story,
)
from tests.conftest import PROJECT, Git


@pytest.fixture
def scripted(git_repo: tuple[Path, Git]) -> Scripted:
    """A new repository to script commits in, its flags in `flags/`."""
    return Scripted(*git_repo)


@pytest.fixture
def story(scripted: Scripted) -> Story:
    """A history with every kind of change, and the audit log after each commit."""
    return tell_story(scripted)


@pytest.fixture
def shallow(scripted: Scripted, tmp_path: Path) -> tuple[Scripted, Made]:
    """A clone with only the last of three commits (--depth 1), and that commit."""
    scripted.commit("Add the banner", {"_project.yaml": PROJECT, "growth/banner.yaml": BANNER})
    scripted.commit("Banner on", {"growth/banner.yaml": BANNER.replace("false", "true")})
    last = scripted.commit(
        "Add the checkout", {"checkout/new-checkout.yaml": CHECKOUT}, author=GRACE
    )
    return clone(scripted.repo, tmp_path / "shallow", "--depth", "1"), last
