"""Shared fixtures: real git repositories in temporary folders, and golden-file updating."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the expected output of golden-file tests from what the code gives now",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_SYSTEM": os.devnull,
    "GIT_AUTHOR_NAME": "Ada Lovelace",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Lovelace",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_AUTHOR_DATE": "2026-01-02T03:04:05+01:00",
    "GIT_COMMITTER_DATE": "2026-01-02T03:04:05+01:00",
}

Git = Callable[..., str]


def git_in(repo: Path) -> Git:
    """A function that runs git in `repo` with the scripted identity and dates."""

    def git(*args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run(
            ["git", *args],
            cwd=repo,
            env={**os.environ, **GIT_ENV, **(env or {})},
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    return git


def new_repository(root: Path) -> tuple[Path, Git]:
    """A fresh real git repository at root/repo, on branch main, and its git."""
    repo = root / "repo"
    repo.mkdir()
    git = git_in(repo)
    git("init", "--quiet", "--initial-branch=main")
    return repo, git


@pytest.fixture
def git_repo(tmp_path: Path) -> tuple[Path, Git]:
    """A fresh real git repository in tmp_path/repo, and a function that runs git in it."""
    return new_repository(tmp_path)


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write {relative path: text} below root; returns root."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


PROJECT = "environments: [development, staging, production]\napplications: [web, ios, android]\n"
