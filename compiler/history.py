"""Git: the one module that talks to git (through GitPython)."""

from __future__ import annotations

import os
from pathlib import Path

# GitPython refuses to import without a git executable; without one we build unversioned.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import git


def revision(folder: Path) -> str | None:
    """The commit of HEAD for the work tree holding `folder`, with `-dirty` when a YAML file
    below it differs from HEAD (changed, untracked, or ignored yet read by the compiler);
    None outside a work tree or before the first commit."""
    try:
        repo = git.Repo(folder, search_parent_directories=True)
    except git.GitError:
        return None
    with repo:
        try:
            head = repo.head.commit.hexsha
            status = repo.git.status(
                "--porcelain", "-z", "--untracked-files=all", "--ignored", "--", folder.resolve()
            )
        except (git.GitError, ValueError):  # ValueError: no commit yet
            return None
    return f"{head}-dirty" if _touches_yaml(status) else head


def _touches_yaml(porcelain: str) -> bool:
    """Whether `git status --porcelain -z` names a YAML file (the only files compiled)."""
    return any(entry.lower().endswith((".yaml", ".yml")) for entry in porcelain.split("\0"))
