"""Links from the dashboard to the code host the flags live on (`SourceLinks`): a flag's file at the
revision being served, and a commit. Without a repository URL (FLAGSERVE_REPOSITORY_URL)
there are no links and the pages show paths and commits as text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

_COMMIT = re.compile(r"([0-9a-f]{40}|[0-9a-f]{64})(-dirty)?")


@dataclass(frozen=True)
class SourceLinks:
    """Where the flags are browsed: `url` such as https://github.com/org/repo (GitHub's and
    GitLab's `blob/` and `commit/` paths), `folder` the flags folder inside it."""

    url: str | None = None
    folder: str = "flags"

    def file(self, revision: str, path: str) -> str | None:
        """The flag file `path` (relative to the flags folder) at `revision`; None without a
        URL or without a commit (a build made outside git). A `-dirty` build links to the
        commit it started from: the closest thing the repository has."""
        found = _COMMIT.fullmatch(revision)
        if self.url is None or found is None:
            return None
        inside = "/".join(part for part in (self.folder.strip("/"), path) if part)
        return f"{self.url}/blob/{found[1]}/{quote(inside)}"

    def commit(self, sha: str) -> str | None:
        found = _COMMIT.fullmatch(sha)
        if self.url is None or found is None:
            return None
        return f"{self.url}/commit/{found[1]}"
