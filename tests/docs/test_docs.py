"""README and docs/ hold together: every relative link resolves (the file exists, and an
#anchor names a heading of it by GitHub's rules), README opens with the two commands a
newcomer needs, and the five-minute tour runs, command by command, with the output it shows.

The tour runs in a clone of this repository, with this environment's tools on PATH, on a free
port instead of README's 8000."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import GIT_ENV
from tests.server.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
TOUR_ADDRESS = "127.0.0.1:8000"
FENCE = re.compile(r"^```.*?^```[ \t]*$", re.MULTILINE | re.DOTALL)
# A code span ends at the next run of as many backticks, on this line or a later one.
INLINE_CODE = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # link text may span lines
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def prose(markdown: str) -> str:
    """The text outside fenced code blocks: a `#` line or a `[x](y)` inside code is code."""
    return FENCE.sub("", markdown)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, every character but letters, digits, `_`,
    `-` and spaces dropped (backticks, colons, quotes...), each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every anchor a page has: its headings' slugs, a repeated one numbered as GitHub does
    (`name`, `name-1`, `name-2`)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(prose(markdown)):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(markdown: str) -> list[str]:
    """The targets of the page's links that stay in this repository (no scheme, no `//`)."""
    text = INLINE_CODE.sub("", prose(markdown))
    return [
        target
        for target in LINK.findall(text)
        if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//", target)
    ]


def broken(page: Path, target: str) -> str | None:
    """Why a link from `page` does not resolve, or None when it does."""
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    if not file.exists():
        return f"{page.relative_to(ROOT)}: {target}: no such file"
    if anchor and file.suffix == ".md" and anchor not in anchors(file.read_text("utf-8")):
        return f"{page.relative_to(ROOT)}: {target}: no heading #{anchor} in {file.name}"
    return None


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    links = relative_links(page.read_text("utf-8"))
    assert [reason for target in links if (reason := broken(page, target))] == []


def test_the_readme_links_every_docs_page() -> None:
    """The contents reach every page: none is written and then lost."""
    linked = {target.partition("#")[0] for target in relative_links(README.read_text("utf-8"))}
    assert [page.name for page in PAGES[1:] if f"docs/{page.name}" not in linked] == []


def test_the_readme_opens_with_the_two_commands() -> None:
    """CI and the team's guide rely on README's first block being `make run` and `make test`."""
    first = BLOCK.search(README.read_text("utf-8"))
    assert first is not None and first[1] == "sh"
    assert [line.split("#")[0].strip() for line in first[2].splitlines()] == [
        "make run",
        "make test",
    ]


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Diagnostic codes", "diagnostic-codes"),
        ("`flagc check`: diagnostics and codes", "flagc-check-diagnostics-and-codes"),
        (
            "Reload: only a whole, consistent build is served",
            "reload-only-a-whole-consistent-build-is-served",
        ),
        ('History needs a `"*"` key', "history-needs-a--key"),
        ("Owners: CODEOWNERS per folder of `flags/`", "owners-codeowners-per-folder-of-flags"),
        ("flagd and OpenFeature in-process", "flagd-and-openfeature-in-process"),
        ("snake_case stays", "snake_case-stays"),
    ],
)
def test_slugs_follow_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_repeated_heading_is_numbered() -> None:
    assert anchors("# A\n## B\n```sh\n# not a heading\n```\n## B\n") == {"a", "b", "b-1"}


@pytest.mark.parametrize(
    ("markdown", "targets"),
    [
        ("[a](docs/x.md) and [b](https://example.com) and [c](#top)", ["docs/x.md", "#top"]),
        ("`[not](a-link.md)` but [yes](y.md)", ["y.md"]),
        ("run (`flagc\ncheck`), the plan ([`flagc diff\n--x`](diff.md))", ["diff.md"]),
        (
            "[the audit\nlog](build.md#the-audit-log) and ``a ` [b](c.md)``",
            ["build.md#the-audit-log"],
        ),
        ("```md\n[in code](nope.md)\n```\n[after](after.md)\n", ["after.md"]),
        ("![picture](img.png) [mail](mailto:a@b.c) [proto](//cdn.example/x)", ["img.png"]),
    ],
)
def test_which_links_are_checked(markdown: str, targets: list[str]) -> None:
    assert relative_links(markdown) == targets


# The tour: its sh blocks, each run after the one before in one shell, and the text block that
# follows one is the output it shows.


@dataclass(frozen=True)
class Step:
    command: str
    shown: str | None  # the output README shows for it, if any


def tour(readme: str) -> list[Step]:
    """The tour's steps: each sh block between the tour markers, with the text block right
    after it (its output as README shows it)."""
    found = re.search(r"<!-- tour:begin -->(.*?)<!-- tour:end -->", readme, re.DOTALL)
    assert found, "README has no <!-- tour:begin --> ... <!-- tour:end --> markers"
    blocks = [(match[1], match[2]) for match in BLOCK.finditer(found[1])]
    steps = []
    for index, (language, body) in enumerate(blocks):
        if language == "sh":
            after = blocks[index + 1] if index + 1 < len(blocks) else None
            steps.append(Step(body, after[1] if after and after[0] == "text" else None))
    return steps


def shown_matches(shown: str, output: str) -> bool:
    """Whether output shows what README says: each line README shows is a whole line of the
    output, in order (other lines may come between), `...` standing for any text."""
    actual = iter(output.splitlines())
    for line in filter(None, (line.rstrip() for line in shown.splitlines())):
        # trailing white space of the output's line is not shown (README's lines have none)
        # in a run of more than three dots, the last three stand for the text left out
        parts = re.split(r"\.\.\.(?!\.)", line)
        pattern = re.compile(".*".join(map(re.escape, parts)) + r"\s*", re.DOTALL)
        if not any(pattern.fullmatch(candidate) for candidate in actual):
            return False
    return True


@st.composite
def output_and_shown(draw: st.DrawFn) -> tuple[str, str]:
    """An output, and what README could show of it: some lines, parts cut to `...`."""
    lines = draw(
        st.lists(
            st.text(st.characters(exclude_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")),
            max_size=8,
        )
    )
    shown = []
    for line in lines:
        keep = draw(st.sampled_from(["whole", "cut", "left out"]))
        if keep == "whole":
            shown.append(line)
        elif keep == "cut":
            cut = draw(st.integers(0, len(line)))
            shown.append(line[:cut] + "...")
    return "".join(f"{line}\n" for line in lines), "\n".join(shown)


@given(output_and_shown())
def test_what_the_output_holds_matches(case: tuple[str, str]) -> None:
    output, shown = case
    assert shown_matches(shown, output)


@pytest.mark.parametrize(
    ("shown", "output", "matches"),
    [
        ("a\nc", "a\nb\nc\n", True),
        ("c\na", "a\nb\nc\n", False),  # out of order
        ('{"v": ...}', '{"v": 1}', True),
        ("exit code 1", "exit code 12", False),  # a whole line, not a prefix
        ("...spring-sale on", "spring-sale off", False),
    ],
)
def test_shown_output_table(shown: str, output: str, matches: bool) -> None:
    assert shown_matches(shown, output) is matches


MARK = "@@tour-step@@"


def tour_script(steps: list[Step], port: int) -> str:
    """One bash script of every step, stopping at the first that fails, a mark printed after
    each so that the output can be cut per step; README's port becomes `port`."""
    body = "".join(f"{step.command}printf '\\n{MARK}\\n'\n" for step in steps)
    return "set -euo pipefail\n" + body.replace(TOUR_ADDRESS, f"127.0.0.1:{port}")


def run_tour(script: str, clone: Path) -> tuple[int, str]:
    """Run it in `clone`; whatever it started (flagserve) is stopped with it, even on failure."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        **GIT_ENV,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        # A terminal shows each line as it is written: unbuffered, stdout and stderr keep
        # the order a reader of the tour sees.
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=180)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it ended, and all it started
            os.killpg(process.pid, signal.SIGKILL)
    return process.wait(), output


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_tour_runs_and_shows_its_output(tmp_path: Path) -> None:
    steps = tour(README.read_text("utf-8"))
    assert len(steps) >= 5, "the tour declares, checks, builds, serves and evaluates a flag"
    clone = tmp_path / "gitflags"
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(clone)], check=True)
    # A reader is on a branch (the tour switches back to it), here at this HEAD even when
    # this checkout is detached.
    git_out(
        clone,
        "switch",
        "--quiet",
        "--force-create",
        "reader",
        git_out(ROOT, "rev-parse", "HEAD").strip(),
    )
    head = git_out(clone, "rev-parse", "HEAD")
    status, output = run_tour(tour_script(steps, free_port()), clone)
    outputs = output.split(f"\n{MARK}\n")
    assert status == 0, f"step {len(outputs)} of the tour failed:\n{output}"
    for step, printed in zip(steps, outputs, strict=False):
        if step.shown is not None:
            assert shown_matches(step.shown, printed), (step.command, step.shown, printed)
    # The reader's branch is left as it was: the flag was committed on the tour's branch.
    assert not (clone / "flags" / "growth" / "spring-sale.yaml").exists()
    assert git_out(clone, "status", "--porcelain") == ""
    assert git_out(clone, "branch", "--list", "tour") == ""
    assert git_out(clone, "rev-parse", "HEAD") == head


def git_out(repo: Path, *args: str) -> str:
    """What a git command prints in `repo`."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
