"""The pre-commit hook other repositories use (`.pre-commit-hooks.yaml`), run by the real
pre-commit against a copy of this project committed in a temporary git repository (what
`repo:` and `rev:` point at), and this repository's own `.pre-commit-config.yaml`.

pre-commit installs the hook's environment with pip, once for this module: slow."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT, Git, git_in, write_tree

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

GOOD = {
    "flags/_project.yaml": PROJECT,
    "flags/checkout/new-checkout.yaml": (
        "description: Single-page checkout\nowner: team-checkout\nenabled: false\n"
    ),
}
BAD = {
    **GOOD,
    "flags/checkout/new-checkout.yaml": GOOD["flags/checkout/new-checkout.yaml"]
    + "environments:\n  prod: true\n",
}
DIAGNOSTIC = "flags/checkout/new-checkout.yaml:5:3: error[unknown-environment]"


def project_files() -> list[str]:
    """What a clone of this project would hold: its files, not what git ignores."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This project, with its uncommitted work, committed in a repository of its own."""
    copy = tmp_path_factory.mktemp("hooks") / "gitflags"
    for name in project_files():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    git = git_in(copy)
    git("init", "--quiet", "--initial-branch=main")
    git("add", "--all")
    git("commit", "--quiet", "--message", "gitflags, as released")
    return copy


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pre-commit's cache of hook environments, shared by this module's tests."""
    return tmp_path_factory.mktemp("pre-commit-home")


def flags_repository(git_repo: tuple[Path, Git], files: dict[str, str]) -> Path:
    repo, git = git_repo
    write_tree(repo, {"README.md": "Our flags\n", **files})
    git("add", "--all")
    git("commit", "--quiet", "--message", "Our flags, as they are")
    return repo


def pre_commit(repo: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "pre-commit", *args],
        check=False,
        cwd=repo,
        env={
            **os.environ,
            "PRE_COMMIT_HOME": str(home),
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
            "NO_COLOR": "1",
        },
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("files", "returncode", "shown"),
    [
        (GOOD, 0, r"^flagc check\.+Passed$"),
        (BAD, 1, r"^flagc check\.+Failed$(.|\n)*^" + re.escape(DIAGNOSTIC)),
        ({"docs/flags.md": "no\n"}, 0, r"^flagc check\.+\(no files to check\)Skipped$"),
    ],
    ids=["good", "bad", "no-flags"],
)
def test_the_hook_in_another_repository(
    git_repo: tuple[Path, Git],
    hook_repo: Path,
    pre_commit_home: Path,
    files: dict[str, str],
    returncode: int,
    shown: str,
) -> None:
    repo = flags_repository(git_repo, files)
    result = pre_commit(
        repo, pre_commit_home, "try-repo", str(hook_repo), "flagc-check", "--all-files"
    )
    output = result.stdout + result.stderr
    assert result.returncode == returncode, output
    assert re.search(shown, output, re.MULTILINE), output
    assert "Traceback" not in output


def test_the_manifest_and_the_config_are_valid(pre_commit_home: Path) -> None:
    result = pre_commit(
        ROOT,
        pre_commit_home,
        "validate-manifest",
        ".pre-commit-hooks.yaml",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    result = pre_commit(ROOT, pre_commit_home, "validate-config", ".pre-commit-config.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("files", "returncode", "shown"),
    [
        ({**GOOD, "app.py": "import os\n\nprint(os.sep)\n"}, 0, None),
        (BAD, 1, DIAGNOSTIC),
        ({**GOOD, "app.py": "import os\n"}, 1, "F401"),
        ({**GOOD, "app.py": "print( 1 )\n"}, 1, "1 file reformatted"),
    ],
    ids=["clean", "bad-flags", "lint", "format"],
)
def test_this_repositorys_own_hooks(
    git_repo: tuple[Path, Git],
    pre_commit_home: Path,
    files: dict[str, str],
    returncode: int,
    shown: str | None,
) -> None:
    """Its hooks use the tools in .venv, as `make lint` does."""
    config = (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    repo = flags_repository(git_repo, {**files, ".pre-commit-config.yaml": config})
    (repo / ".venv").symlink_to(ROOT / ".venv")
    result = pre_commit(repo, pre_commit_home, "run", "--all-files")
    output = result.stdout + result.stderr
    assert result.returncode == returncode, output
    if shown is not None:
        assert shown in output
