"""README's adopter's guide, run: the OpenFeature snippet, `examples/openfeature_ofrep.py`
and the curl commands with ETag revalidation, exactly as README and the example have them,
against a live flagserve serving this repository's own flags (built in a git repository)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compiler.cli import main as flagc
from tests.conftest import Git
from tests.server.conftest import Live, start_server, stop_server, wait_until_served

ROOT = Path(__file__).resolve().parents[2]
README_URL = "http://127.0.0.1:8000"
FLAT_MAP = "/api/v1/environments/production/flags?application=web"


@dataclass(frozen=True)
class Served:
    live: Live
    repo: Path
    out: Path
    git: Git

    def snapshot(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.out / "snapshot.json").read_bytes())
        return document

    def value(self, key: str, environment: str, application: str) -> bool:
        resolved = self.snapshot()["flags"][key]["resolved"][environment]
        # snapshot.json lists the applications whose value is not the environment's
        return bool(resolved["applications"].get(application, resolved)["value"])


def built_example(repo: Path, git: Git, tmp_path: Path) -> Path:
    """This repository's flags/, committed in `repo` and built: the build directory."""
    shutil.copytree(ROOT / "flags", repo / "flags")
    git("add", "--all")
    git("commit", "--quiet", "--message", "The example flags, as README shows them")
    out = tmp_path / "out"
    assert flagc(["build", str(repo / "flags"), "-o", str(out)]) == 0
    return out


@pytest.fixture
def served(git_repo: tuple[Path, Git], tmp_path: Path) -> Iterator[Served]:
    """This repository's flags/, committed in a fresh repository, built and served."""
    repo, git = git_repo
    out = built_example(repo, git, tmp_path)
    live = start_server(out, tmp_path / "flagserve.log")
    yield Served(live, repo, out, git)
    stop_server(live)


def readme_between(marker: str) -> list[str]:
    """The code blocks of README between <!-- MARKER:begin --> and <!-- MARKER:end -->."""
    readme = (ROOT / "docs" / "consuming.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker}:begin -->(.*?)<!-- {marker}:end -->", readme, re.DOTALL)
    assert found, f"README has no {marker} markers"
    return re.findall(r"```\w*\n(.*?)```", found[1], re.DOTALL)


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, stdin: str = "") -> str:
    """The command's output; it must succeed."""
    done = subprocess.run(
        command,
        check=False,
        input=stdin,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_readme_openfeature_snippet(served: Served, tmp_path: Path) -> None:
    (snippet,) = readme_between("openfeature-example")
    program = (
        'user_id = "user-42"\n'
        + snippet.replace(README_URL, served.live.url)
        + 'print(client.get_boolean_value("new-checkout", False, '
        "EvaluationContext(targeting_key=user_id)))\n"
    )
    output = run([sys.executable, "-c", program], tmp_path)
    assert output == f"{served.value('new-checkout', 'production', 'web')}\n"
    assert output == "True\n"  # what README says it is


def test_the_example_program(served: Served, tmp_path: Path) -> None:
    output = run(
        [
            sys.executable,
            str(ROOT / "examples" / "openfeature_ofrep.py"),
            "new-checkout",
            "free-shipping-banner",
            "no-such-flag",
        ],
        tmp_path,
        {"FLAGS_URL": served.live.url, "FLAGS_ENVIRONMENT": "production"},
    )
    assert output.splitlines() == [
        "new-checkout on (TARGETING_MATCH)",
        "free-shipping-banner off (STATIC)",
        "no-such-flag off (default: FLAG_NOT_FOUND: there is no flag 'no-such-flag')",
    ]


def test_the_example_program_with_an_api_key(git_repo: tuple[Path, Git], tmp_path: Path) -> None:
    """A key scoped to staging: staging's values, and production refused, not a crash."""
    out = built_example(*git_repo, tmp_path)
    key = "s3cret-key-of-the-web-service"
    digest = run([str(Path(sys.executable).parent / "flagserve"), "hash-key"], tmp_path, stdin=key)
    keys = tmp_path / "keys.yaml"
    keys.write_text(
        f"- name: web\n  sha256: {digest.strip()}\n  environments: [staging]\n", "utf-8"
    )
    live = start_server(out, tmp_path / "flagserve.log", {"FLAGSERVE_API_KEYS": str(keys)})
    try:
        for environment, expected in [
            ("staging", "new-checkout on (TARGETING_MATCH)"),
            ("production", "new-checkout off (default: "),
        ]:
            output = run(
                [sys.executable, str(ROOT / "examples" / "openfeature_ofrep.py"), "new-checkout"],
                tmp_path,
                {"FLAGS_URL": live.url, "FLAGS_ENVIRONMENT": environment, "FLAGS_API_KEY": key},
            )
            assert output.startswith(expected), output
    finally:
        stop_server(live)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_commands_revalidate_with_the_etag(served: Served, tmp_path: Path) -> None:
    first, poll = (
        block.replace(README_URL, served.live.url) for block in readme_between("curl-etag")
    )
    url_line = first.splitlines()[0]
    assert url_line.startswith("url=")
    served_now = served.live.get(FLAT_MAP)

    assert run(["bash", "-euo", "pipefail", "-c", first + poll], tmp_path) == "304\n"
    assert (tmp_path / "flags.json").read_bytes() == served_now.content
    assert (tmp_path / "flags.etag").read_text() == served_now.headers["ETag"] + "\n"

    turn_off_in_production(served)
    assert run(["bash", "-euo", "pipefail", "-c", url_line + "\n" + poll], tmp_path) == "200\n"
    served_then = served.live.get(FLAT_MAP)
    assert served_then.headers["ETag"] != served_now.headers["ETag"]
    assert (tmp_path / "flags.json").read_bytes() == served_then.content
    assert json.loads(served_then.content)["flags"]["new-checkout"] is False
    assert (tmp_path / "flags.etag").read_text() == served_then.headers["ETag"] + "\n"
    assert run(["bash", "-euo", "pipefail", "-c", url_line + "\n" + poll], tmp_path) == "304\n"


def turn_off_in_production(served: Served) -> None:
    """Commit a change, rebuild, and wait until the server serves it."""
    path = served.repo / "flags" / "checkout" / "new-checkout.yaml"
    path.write_text(
        path.read_text("utf-8").replace(
            "      web: true\ndepends_on", "      web: false\ndepends_on"
        ),
        "utf-8",
    )
    served.git("commit", "--quiet", "--all", "--message", "Turn the new checkout off on the web")
    assert flagc(["build", str(served.repo / "flags"), "-o", str(served.out)]) == 0
    revision = served.snapshot()["revision"]
    wait_until_served(served.live, revision)
