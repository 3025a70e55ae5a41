"""`flagc diff`: real git repositories, golden text and Markdown, JSON against its schema.
The renderers' own rules are tested in tests/compiler/render/."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.compiler.helpers import plan_validator, run
from tests.conftest import PROJECT, Git, write_tree

GOLDEN = Path(__file__).resolve().parent / "golden" / "diff"
FLAGS = "config/flags"  # a sub-folder, so that --dir and the repository root differ

BASE = {
    "_project.yaml": PROJECT,
    "checkout/new-checkout.yaml": (
        "description: One-page checkout\nowner: team-checkout\nenabled: false\n"
        "environments:\n  staging: true\n"
    ),
    "checkout/apple-pay.yaml": "description: Apple Pay\nowner: team-payments\nenabled: true\n",
    "growth/old-banner.yaml": (
        "description: Old banner\nowner: team-growth\nenabled: false\napplications:\n  web: true\n"
    ),
    "growth/hero.yaml": "description: Hero image\nowner: team-growth\nenabled: false\n",
}
HEAD = {  # what a pull request does to BASE
    "checkout/new-checkout.yaml": BASE["checkout/new-checkout.yaml"]
    + "  production:\n    applications:\n      web: true\n",
    "payments/apple-pay.yaml": BASE["checkout/apple-pay.yaml"],
    "growth/hero.yaml": BASE["growth/hero.yaml"].replace("Hero image", "Hero video"),
    "growth/beta-search.yaml": (
        "description: Search, rewritten\nowner: team-search\nenabled: false\n"
        "environments:\n  development: true\ntags: [search]\n"
    ),
}
GONE = ("checkout/apple-pay.yaml", "growth/old-banner.yaml")


def commit(git: Git, message: str) -> None:
    git("add", "--all")
    git("commit", "--quiet", "--allow-empty", "--message", message)


def change(folder: Path, files: dict[str, str], gone: tuple[str, ...] = ()) -> None:
    write_tree(folder, files)
    for relative in gone:
        (folder / relative).unlink()


@pytest.fixture
def repo(git_repo: tuple[Path, Git]) -> tuple[Path, Path, Git]:
    """BASE committed in config/flags, with a file outside it; (repository, folder, git)."""
    root, git = git_repo
    write_tree(root, {"README.md": "# service\n"})
    folder = write_tree(root / FLAGS, BASE)
    commit(git, "base")
    return root, folder, git


def check_golden(name: str, got: str, update_golden: bool) -> None:
    path = GOLDEN / name
    if update_golden:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8", newline="\n")
        return
    assert got == path.read_text(encoding="utf-8")


def plan_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    _, out, _ = run([*argv, "--format", "json"], capsys)
    document: dict[str, Any] = json.loads(out)
    plan_validator().validate(document)
    return document


# The plan of a pull request, against the working tree and between commits


def test_working_tree_text_and_markdown(
    repo: tuple[Path, Path, Git], capsys: pytest.CaptureFixture[str], update_golden: bool
) -> None:
    _, folder, _ = repo
    change(folder, HEAD, GONE)
    for form, suffix in (("text", "txt"), ("markdown", "md")):
        code, out, err = run(["diff", "HEAD", "--dir", str(folder), "--format", form], capsys)
        assert (code, err) == (0, "")
        check_golden(f"working-tree.{suffix}", out, update_golden)


def test_two_commits_give_the_same_plan_as_the_working_tree(
    repo: tuple[Path, Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    _, folder, git = repo
    change(folder, HEAD, GONE)
    _, before_commit, _ = run(["diff", "HEAD", "--dir", str(folder)], capsys)
    commit(git, "the pull request")
    code, between, _ = run(["diff", "HEAD~1", "HEAD", "--dir", str(folder)], capsys)
    assert code == 0
    base_commit, head_commit = git("rev-parse", "HEAD~1", "HEAD").split()
    assert between.splitlines()[0] == (
        f"flagc diff: HEAD~1 ({base_commit[:12]}) -> HEAD ({head_commit[:12]})"
    )
    assert between.splitlines()[1:] == before_commit.splitlines()[1:]
    code, nothing, _ = run(["diff", "HEAD", "--dir", str(folder)], capsys)
    assert code == 0
    assert "No changes." in nothing
    assert nothing.endswith("0 added, 0 removed, 0 moved, 0 changed; no values change\n")
    document = plan_json(["diff", "HEAD~1", "main", "--dir", str(folder)], capsys)
    assert [(flag["key"], flag["kind"]) for flag in document["flags"]] == [
        ("apple-pay", "moved"),
        ("beta-search", "added"),
        ("hero", "changed"),
        ("new-checkout", "changed"),
        ("old-banner", "removed"),
    ]
    assert document["head"]["commit"] == git("rev-parse", "HEAD").strip()


def test_relative_dir_from_inside_the_repository(
    repo: tuple[Path, Path, Git],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, folder, _ = repo
    change(folder, HEAD, GONE)
    _, absolute, _ = run(["diff", "HEAD", "--dir", str(folder)], capsys)
    monkeypatch.chdir(root / "config")
    code, relative, _ = run(["diff", "HEAD", "--dir", "flags"], capsys)
    assert code == 0
    assert relative == absolute


def test_whole_repository_as_flags_folder(
    git_repo: tuple[Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    root, git = git_repo
    write_tree(root, BASE)
    commit(git, "base")
    (root / "growth" / "hero.yaml").unlink()
    document = plan_json(["diff", "HEAD", "--dir", str(root)], capsys)
    assert [(flag["key"], flag["kind"]) for flag in document["flags"]] == [("hero", "removed")]


# Errors on either side, and usage problems


def test_errors_at_head_exit_1_and_the_plan_still_shows(
    repo: tuple[Path, Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    _, folder, _ = repo
    broken = {**HEAD, "growth/hero.yaml": "description: Hero\nowner: [x]\nenabled: true\n"}
    change(folder, broken, GONE)
    code, out, err = run(["diff", "HEAD", "--dir", str(folder)], capsys)
    assert code == 1
    assert "! HEAD (working tree) has 1 error: the plan compares only the flags that compile" in out
    assert f"? hero: not compared, {folder}/growth/hero.yaml has errors at HEAD" in out
    assert "+ beta-search  growth/beta-search.yaml" in out
    assert "- hero" not in out
    assert err == f"flagc: HEAD has 1 error; `flagc check {folder}` lists them\n"
    document = plan_json(["diff", "HEAD", "--dir", str(folder)], capsys)
    assert document["head"]["errors"] == 1
    assert document["unreadable"] == [
        {"key": "hero", "side": "head", "file": f"{folder}/growth/hero.yaml"}
    ]


def test_errors_at_base_exit_0(
    repo: tuple[Path, Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    _, folder, git = repo
    (folder / "_project.yaml").write_text("environments: []\n", encoding="utf-8")
    commit(git, "broken project")
    (folder / "_project.yaml").write_text(PROJECT, encoding="utf-8")
    code, out, err = run(["diff", "HEAD", "--dir", str(folder)], capsys)
    assert (code, err) == (0, "")
    assert "! BASE (HEAD " in out
    assert "has 2 errors" in out
    assert "! values not compared: the project file (_project.yaml) is invalid" in out
    assert out.endswith("0 added, 0 removed, 0 moved, 0 changed; values not compared\n")
    document = plan_json(["diff", "HEAD", "--dir", str(folder)], capsys)
    assert (document["values_compared"], document["base"]["project_valid"]) == (False, False)


def test_folder_missing_at_base_adds_everything(
    git_repo: tuple[Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    root, git = git_repo
    write_tree(root, {"README.md": "# service\n"})
    commit(git, "before the flags")
    folder = write_tree(root / FLAGS, BASE)
    code, out, _ = run(["diff", "HEAD", "--dir", str(folder)], capsys)
    assert code == 0
    assert "has no flags folder: every flag is added" in out
    assert "project:\n  + environment development\n" in out
    assert "4 added, 0 removed, 0 moved, 0 changed; " in out
    document = plan_json(["diff", "HEAD", "--dir", str(folder)], capsys)
    assert document["base"]["exists"] is False
    assert {flag["kind"] for flag in document["flags"]} == {"added"}


@pytest.mark.parametrize("revision", ["nope", "HEAD~5", "HEAD:config", "main..HEAD"])
def test_unknown_revision_exits_2(
    revision: str, repo: tuple[Path, Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    _, folder, _ = repo
    for argv in (["diff", revision], ["diff", "HEAD", revision]):
        code, out, err = run([*argv, "--dir", str(folder)], capsys)
        assert (code, out) == (2, "")
        assert err.startswith(f"flagc: error: {revision!r} names no commit in ")


def test_folder_outside_git_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_tree(tmp_path / "flags", BASE)
    code, out, err = run(["diff", "HEAD", "--dir", str(folder)], capsys)
    assert (code, out) == (2, "")
    assert (
        err == f"flagc: error: {folder} is not in a git work tree; flagc diff compares revisions\n"
    )


def test_missing_folder_exits_2(
    repo: tuple[Path, Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _, _ = repo
    code, out, err = run(["diff", "HEAD", "--dir", str(root / "nowhere")], capsys)
    assert (code, out) == (2, "")
    assert "is not a folder of flag files" in err


@pytest.mark.parametrize(
    "argv", [["diff"], ["diff", "a", "b", "c"], ["diff", "HEAD", "--format", "xml"]]
)
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert (code, out) == (2, "")
    assert "usage: flagc" in err


def test_a_shallow_clone_says_why_the_base_is_missing(
    repo: tuple[Path, Path, Git], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, folder, git = repo
    change(folder, HEAD, GONE)
    commit(git, "the pull request")
    clone = tmp_path / "clone"
    git("clone", "--quiet", "--depth", "1", f"file://{root}", str(clone))
    code, _, err = run(["diff", "HEAD~1", "--dir", str(clone / FLAGS)], capsys)
    assert code == 2
    assert err.endswith("; this clone is shallow: fetch it first\n")


# Rules, rollouts and typed values

BUTTON = """description: Colour of the checkout button
owner: team-growth
type: string
variants:
  blue: "#1f6feb"
  green: "#2da44e"
default: blue
off: blue
environments:
  staging: green
  production:
    default: blue
    rules:
      - when:
          country: [NL, BE]
        serve: blue
      - rollout: {green: 10, blue: 90}
"""
BUTTON_HEAD = (
    BUTTON.replace("serve: blue", "serve: green").replace(
        "green: 10, blue: 90", "green: 25, blue: 75"
    )
    + "    applications:\n      web: green\n"
)


def test_rule_and_rollout_changes_text_and_markdown(
    git_repo: tuple[Path, Git], capsys: pytest.CaptureFixture[str], update_golden: bool
) -> None:
    root, git = git_repo
    folder = write_tree(root / FLAGS, {"_project.yaml": PROJECT, "growth/button.yaml": BUTTON})
    commit(git, "base")
    change(folder, {"growth/button.yaml": BUTTON_HEAD})
    commit(git, "the pull request")
    outputs = {}
    for form, suffix in (("text", "txt"), ("markdown", "md")):
        argv = ["diff", "HEAD~1", "HEAD", "--dir", str(folder), "--format", form]
        code, out, err = run(argv, capsys)
        assert (code, err) == (0, "")
        # The commits' SHAs differ from run to run.
        outputs[suffix] = out.split("\n", 1)[1]
        check_golden(f"rules.{suffix}", outputs[suffix], update_golden)
    assert (
        "    production: rule 1 (country in NL, BE) now serves green (was blue)\n"
        "    production: rollout of green 10% -> 25% (moves 15% of users)\n"
        "    production/web: blue -> green\n"
    ) in outputs["txt"]
    assert outputs["txt"].endswith(
        "0 added, 0 removed, 0 moved, 1 changed; 1 value changes in production; "
        "2 rule changes in production\n"
    )
    assert "| production | 1 | 1 | 0 | 2 |" in outputs["md"]
    document = plan_json(["diff", "HEAD~1", "HEAD", "--dir", str(folder)], capsys)
    (button,) = document["flags"]
    assert button["values"] == [
        {
            "environment": "production",
            "application": "web",
            "cell": "production/web",
            "from": "blue",
            "to": "green",
        }
    ]
    assert [(r["change"], r["rule"], r["moves"], r["rebucketed"]) for r in button["rules"]] == [
        ("serve", 1, 100, False),
        ("rollout", 2, 15, False),
    ]
    assert button["rules"][1]["text"] == "rollout of green 10% -> 25% (moves 15% of users)"


# Schedules: the steps a pull request adds, removes or moves

LAUNCH = """description: The new checkout, launched on a schedule
owner: team-checkout
enabled: false
environments:
  staging: true
  production:
    enabled: false
    schedule:
"""
RULES_STEP = """      - at: 2027-01-12T09:00:00Z
        rules:
          - rollout: {on: 50, off: 50}
"""
LAUNCH_HEAD = (
    LAUNCH
    + "      - at: 2027-01-11T09:00:00+01:00  # Monday, 09:00 in Amsterdam\n"
    + "        enabled: true\n"
    + RULES_STEP.replace("T09:00", "T12:00")
    + """      - ramp:
          from: 2027-01-13T09:00:00Z
          to: 2027-01-20T09:00:00Z
          variant: on
          every: 1h
"""
)
BANNER = """description: The winter banner
owner: team-growth
enabled: false
environments:
  staging:
    enabled: false
    schedule:
      - at: 2027-02-01T00:00:00Z
        enabled: true
"""


def test_schedule_steps_text_markdown_and_json(
    git_repo: tuple[Path, Git], capsys: pytest.CaptureFixture[str], update_golden: bool
) -> None:
    """One step added, one moved, a ramp added, and a flag's whole schedule removed."""
    root, git = git_repo
    files = {"_project.yaml": PROJECT, "launch.yaml": LAUNCH + RULES_STEP, "banner.yaml": BANNER}
    folder = write_tree(root / FLAGS, files)
    commit(git, "base")
    unscheduled = BANNER.split("    schedule", maxsplit=1)[0]
    change(folder, {"launch.yaml": LAUNCH_HEAD, "banner.yaml": unscheduled})
    commit(git, "the pull request")
    outputs = {}
    for form, suffix in (("text", "txt"), ("markdown", "md")):
        argv = ["diff", "HEAD~1", "HEAD", "--dir", str(folder), "--format", form]
        code, out, err = run(argv, capsys)
        assert (code, err) == (0, "")
        outputs[suffix] = out.split("\n", 1)[1]  # the commits' SHAs differ from run to run
        check_golden(f"schedules.{suffix}", outputs[suffix], update_golden)
    assert (
        "    + at 2027-01-11 08:00 UTC, production: off -> on\n"
        "    → at 2027-01-12 12:00 UTC (was 2027-01-12 09:00 UTC), production: new rule 1"
        " (everyone) rolls out on 50%, off 50%\n"
        "    + from 2027-01-13 09:00 to 2027-01-20 09:00 UTC, production: on rises 0% -> 100%,"
        " 1% more each 1 to 2 hours\n"
    ) in outputs["txt"]
    assert "    - at 2027-02-01 00:00 UTC, staging: off -> on\n" in outputs["txt"]
    assert outputs["txt"].endswith(
        "0 added, 0 removed, 0 moved, 2 changed; no values change; "
        "1 step change in staging, 3 step changes in production\n"
    )
    assert "| production | 0 | 0 | 0 | 3 |" in outputs["md"]
    document = plan_json(["diff", "HEAD~1", "HEAD", "--dir", str(folder)], capsys)
    banner, launch = document["flags"]
    assert [row["steps"] for row in document["summary"]["environments"]] == [0, 1, 3]
    assert banner["steps"] == [
        {
            "environment": "staging",
            "change": "removed",
            "at": "2027-02-01T00:00:00Z",
            "from": None,
            "to": None,
            "was": None,
            "values": [
                {"application": application, "cell": cell, "from": False, "to": True}
                for application, cell in [
                    (None, "staging"),
                    ("web", "staging/web"),
                    ("ios", "staging/ios"),
                    ("android", "staging/android"),
                ]
            ],
            "rules": [],
            "ramp": None,
            "text": "at 2027-02-01 00:00 UTC, staging: off -> on",
        }
    ]
    added, moved, ramp = launch["steps"]
    assert (added["change"], added["at"]) == ("added", "2027-01-11T08:00:00Z")
    assert (moved["change"], moved["at"], moved["was"]) == (
        "moved",
        "2027-01-12T12:00:00Z",
        {"at": "2027-01-12T09:00:00Z", "from": None, "to": None},
    )
    assert moved["rules"] == ["new rule 1 (everyone) rolls out on 50%, off 50%"]
    assert (ramp["at"], ramp["from"], ramp["to"]) == (
        None,
        "2027-01-13T09:00:00Z",
        "2027-01-20T09:00:00Z",
    )
    assert ramp["ramp"] == {
        "variant": "on",
        "start": 0,
        "end": 100,
        "every": 3600,
        "by": None,
        "seed": None,
    }


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda step: {**step, "change": "changed"}, id="unknown-change"),
        pytest.param(lambda step: {**step, "from": step["at"]}, id="at-and-from"),
        pytest.param(lambda step: {**step, "at": "2027-01-11 08:00"}, id="not-a-utc-moment"),
        pytest.param(lambda step: {**step, "was": {"at": None, "from": None}}, id="was-cut"),
        pytest.param(lambda step: {k: v for k, v in step.items() if k != "text"}, id="no-text"),
    ],
)
def test_the_plan_schema_holds_steps_to_their_shape(
    git_repo: tuple[Path, Git],
    capsys: pytest.CaptureFixture[str],
    broken: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    root, git = git_repo
    folder = write_tree(root / FLAGS, {"_project.yaml": PROJECT, "launch.yaml": LAUNCH_HEAD})
    commit(git, "base")
    change(folder, {"launch.yaml": LAUNCH + RULES_STEP})
    document = plan_json(["diff", "HEAD", "--dir", str(folder)], capsys)
    flag = document["flags"][0]
    step = flag["steps"][0]
    assert step["change"] == "removed"
    bad = {**document, "flags": [{**flag, "steps": [broken(step)]}]}
    assert not plan_validator().is_valid(bad)
