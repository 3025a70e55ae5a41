"""The GitHub workflows: valid against GitHub's workflow schema, with the steps that matter,
and the flags workflow's commands run for real on a real pull request (a base commit and a
pull-request commit in a git repository), the way the runner runs them: bash -eo pipefail,
the GitHub expressions replaced by the pull request's values, the job summary in a file."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from compiler.yamlsource import Parsed, parse
from core.schedule import moment, utc_text
from tests.conftest import PROJECT, Git, write_tree
from tests.delivery.helpers import make_rule

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.y*ml"))
BIN = Path(sys.executable).parent

Workflow = dict[str, Any]
Step = dict[str, Any]


def load(name: str) -> Workflow:
    """A workflow read as YAML 1.2 (as GitHub does: `on` is a key, not a boolean)."""
    parsed = parse((WORKFLOWS / name).read_text(encoding="utf-8"), name)
    assert isinstance(parsed, Parsed), parsed
    assert parsed.problems == []
    assert isinstance(parsed.data, dict)
    return parsed.data


def steps(workflow: Workflow) -> list[Step]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def running(workflow: Workflow, command: str) -> Step:
    """The one step whose script runs `command`."""
    found = [step for step in steps(workflow) if command in step.get("run", "")]
    assert len(found) == 1, f"{len(found)} steps run {command!r}"
    return found[0]


def using(workflow: Workflow, action: str) -> Step:
    """The one step that uses `action` (any version); a job's steps, or a workflow's."""
    candidates = workflow["steps"] if "steps" in workflow else steps(workflow)
    found = [step for step in candidates if step.get("uses", "").startswith(action + "@")]
    assert len(found) == 1, f"{len(found)} steps use {action}"
    return found[0]


def test_there_are_the_four_workflows() -> None:
    names = [path.name for path in WORKFLOW_FILES]
    assert names == ["ci.yml", "drift.yml", "flags.yml", "release.yml"]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_valid_against_githubs_workflow_schema(path: Path) -> None:
    result = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", path],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: path.name)
def test_actions_are_pinned(path: Path) -> None:
    """By major version or by commit: a moving branch could change what runs."""
    for step in steps(load(path.name)):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+|[0-9a-f]{40})", step["uses"]), step


def test_ci_runs_lint_types_and_the_tests_on_push_and_pull_request() -> None:
    workflow = load("ci.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    scripts = [step["run"] for step in steps(workflow) if "run" in step]
    assert {"make lint", "make types", "make pytest"} <= set(scripts)


def test_drift_tests_the_newest_and_the_oldest_versions_every_day() -> None:
    """Without the locks: `pip install` of the project's ranges, every day and on demand."""
    workflow = load("drift.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    assert workflow["on"]["schedule"][0]["cron"].endswith("* * *")
    job = workflow["jobs"]["test"]
    assert job["strategy"]["matrix"]["versions"] == ["newest", "oldest"]
    scripts = "\n".join(step["run"] for step in job["steps"] if "run" in step)
    assert ".lock" not in scripts
    assert "--resolution lowest-direct --no-deps" in scripts  # the floors of the direct ones
    tests = running(workflow, "pytest")
    assert tests["run"] == "python -m pytest"
    assert tests["env"]["GITFLAGS_UNLOCKED"] == "1"


def test_the_coverage_gate_holds_in_ci_and_locally() -> None:
    """CI and `make test` (what .ci/run runs) share the pytest target, and it has the gate."""
    assert make_rule("pytest")[1] == ["$(BIN)/pytest --cov --cov-report=term --cov-fail-under=90"]
    assert make_rule("test")[0] == ["lint", "types", "pytest"]
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_flags_runs_on_pull_requests_touching_flags() -> None:
    assert load("flags.yml")["on"] == {"pull_request": {"paths": ["flags/**"]}}


def test_flags_checks_out_the_whole_history() -> None:
    """--reasons reads the pull request's commits and build the whole log: no shallow clone."""
    assert using(load("flags.yml"), "actions/checkout")["with"]["fetch-depth"] == 0


def test_flags_steps_that_matter() -> None:
    workflow = load("flags.yml")
    env = workflow["jobs"]["flags"]["env"]
    assert env == {
        "BASE_SHA": "${{ github.event.pull_request.base.sha }}",
        "HEAD_SHA": "${{ github.event.pull_request.head.sha }}",
    }
    check = running(workflow, "flagc check")
    assert check["run"] == 'flagc check flags --format github --reasons "$BASE_SHA..$HEAD_SHA"'
    diff = running(workflow, "flagc diff")["run"]
    assert diff.endswith('--format markdown >> "$GITHUB_STEP_SUMMARY"')
    assert running(workflow, "flagc build")["run"] == (
        "flagc build flags -o build --summary --format github"
    )
    upload = using(workflow, "actions/upload-artifact")
    assert upload["uses"] == "actions/upload-artifact@v4"
    assert upload["with"]["path"] == "build/"
    assert upload["with"]["if-no-files-found"] == "error"


def test_release_on_a_tag_pushes_the_image() -> None:
    workflow = load("release.yml")
    assert workflow["on"]["push"] == {"tags": ["v*"]}
    image = workflow["jobs"]["image"]
    assert image["if"] == "github.event_name == 'push'"  # not on a schedule
    assert image["permissions"]["packages"] == "write"
    login = using(workflow, "docker/login-action")["with"]
    assert login["registry"] == "ghcr.io"
    assert login["password"] == "${{ secrets.GITHUB_TOKEN }}"
    using(workflow, "docker/setup-buildx-action")
    assert using(workflow, "docker/build-push-action")["with"]["push"] is True
    # The image's build stage compiles the flags with their history: the whole of it.
    assert using(image, "actions/checkout")["with"]["fetch-depth"] == 0


def test_release_publishes_the_static_export_on_pages() -> None:
    workflow = load("release.yml")
    pages = workflow["jobs"]["pages"]
    assert pages["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    scripts = [step["run"] for step in pages["steps"] if "run" in step]
    build = scripts.index("flagc build flags -o build")
    assert scripts[build + 1] == "flagc export site --from build"
    checkout = using(pages, "actions/checkout")["with"]
    assert checkout == {"ref": "${{ needs.release.outputs.tag }}", "fetch-depth": 0}
    assert using(workflow, "actions/upload-pages-artifact")["with"]["path"] == "site/"
    assert using(workflow, "actions/deploy-pages")["id"] == "deployment"


def test_release_exports_again_every_5_minutes_and_at_each_step() -> None:
    """Schedules change what a release serves without a new build: a run every 5 minutes
    exports the newest release again, waits for a step due before the next run, and
    deploys when the site changed; one deployment at a time."""
    workflow = load("release.yml")
    assert workflow["on"]["schedule"] == [{"cron": "*/5 * * * *"}]
    assert "workflow_dispatch" in workflow["on"]
    release, pages = workflow["jobs"]["release"], workflow["jobs"]["pages"]
    assert "if" not in release  # every run publishes the newest tag, a push's or a schedule's
    assert release["outputs"] == {"tag": "${{ steps.newest.outputs.tag }}"}
    assert (pages["needs"], pages["if"]) == ("release", "needs.release.outputs.tag != ''")
    assert pages["concurrency"] == {"group": "pages", "cancel-in-progress": False}
    names = [step.get("name", step.get("uses", "")) for step in pages["steps"]]
    export = names.index("Export every document the server serves, as static files")
    again = pages["steps"][export + 1]
    assert "valid_until" in again["run"]
    assert again["run"].count("flagc export site --from build") == 1
    changed = next(step for step in pages["steps"] if step.get("id") == "changed")
    assert changed["if"] == "github.event_name == 'schedule'"
    assert changed["env"] == {"SITE_URL": "${{ steps.pages.outputs.base_url }}"}
    assert using(pages, "actions/configure-pages")["id"] == "pages"
    for action in ("actions/upload-pages-artifact", "actions/deploy-pages"):
        assert using(pages, action)["if"] == "steps.changed.outputs.deploy != 'false'"


# The flags workflow, run for real.

BANNER = "description: Free shipping banner\nowner: team-growth\nenabled: false\n"
CHECKOUT = "description: Single-page checkout\nowner: team-checkout\nenabled: false\n"
BASE_TREE = {
    "flags/_project.yaml": PROJECT,
    "flags/growth/banner.yaml": BANNER,
    "flags/checkout/new-checkout.yaml": CHECKOUT,
}
# Line 5 (column 3) of new-checkout.yaml is the line the pull request adds or changes.
GOOD_CHANGE = CHECKOUT + "environments:\n  production: true\n"
BAD_CHANGE = CHECKOUT + "environments:\n  prod: true\n"


@dataclass(frozen=True)
class PullRequest:
    repo: Path
    base: str
    head: str
    number: str = "7"

    def expressions(self) -> dict[str, str]:
        """What GitHub puts in place of each expression the workflow uses."""
        return {
            "github.event.pull_request.base.sha": self.base,
            "github.event.pull_request.head.sha": self.head,
            "github.event.pull_request.number": self.number,
        }


def pull_request(git_repo: tuple[Path, Git], change: str, message: str) -> PullRequest:
    """A repository with a base commit on main and one pull-request commit on a branch."""
    repo, git = git_repo
    write_tree(repo, BASE_TREE)
    git("add", "--all")
    git("commit", "--quiet", "--message", "Add the checkout and the banner flags")
    base = git("rev-parse", "HEAD").strip()
    git("switch", "--quiet", "--create", "launch")
    write_tree(repo, {"flags/checkout/new-checkout.yaml": change})
    git("commit", "--quiet", "--all", "--message", message)
    return PullRequest(repo, base, git("rev-parse", "HEAD").strip())


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace each ${{ expression }}; one the test does not know fails it."""

    def value(match: re.Match[str]) -> str:
        assert match[1] in values, f"no value for the expression {match[1]!r}"
        return values[match[1]]

    return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", value, text)


@dataclass(frozen=True)
class Ran:
    outcome: str  # success, failure or skipped
    output: str


ALWAYS = {"${{ !cancelled() }}", "${{ always() }}"}


def run_job(
    job: dict[str, Any],
    repo: Path,
    expressions: dict[str, str],
    summary: Path,
    runner: dict[str, str] | None = None,
) -> dict[str, Ran]:
    """Each step's script, by step name, as the runner would: after a failure, only the
    steps marked to run anyway; `runner`, variables the runner sets (GITHUB_EVENT_NAME).
    The steps' outputs go to a file beside `summary` named `output`. Installing and the
    actions' steps are not run here (the project is installed in this interpreter's
    environment); of the steps' `if`s, only the failure's is taken into account."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_OUTPUT": str(summary.with_name("output")),
        **(runner or {}),
        **{name: substitute(value, expressions) for name, value in job.get("env", {}).items()},
    }
    results: dict[str, Ran] = {}
    failed = False
    for step in job["steps"]:
        if "run" not in step or "pip install" in step["run"]:
            continue
        name = step.get("name", step.get("id", ""))
        if failed and step.get("if") not in ALWAYS:
            results[name] = Ran("skipped", "")
            continue
        script = substitute(step["run"], expressions)
        step_env = {
            key: substitute(value, expressions) for key, value in step.get("env", {}).items()
        }
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            check=False,
            cwd=repo,
            env={**env, **step_env},
            capture_output=True,
            text=True,
            timeout=600,
        )
        failed = failed or done.returncode != 0
        outcome = "success" if done.returncode == 0 else "failure"
        results[name] = Ran(outcome, done.stdout + done.stderr)
    return results


def flags_job() -> dict[str, Any]:
    job: dict[str, Any] = load("flags.yml")["jobs"]["flags"]
    return job


CHECK = "Check the flags and the commit messages (reasons)"


def test_a_bad_pull_request_is_annotated_on_its_lines(
    git_repo: tuple[Path, Git], tmp_path: Path
) -> None:
    pr = pull_request(git_repo, BAD_CHANGE, "wip")
    summary = tmp_path / "summary.md"
    ran = run_job(flags_job(), pr.repo, pr.expressions(), summary)

    check = ran[CHECK]
    assert check.outcome == "failure"
    assert re.search(
        r"^::error file=flags/checkout/new-checkout\.yaml,line=5,col=3,"
        r"title=unknown-environment::environment 'prod' is not declared",
        check.output,
        re.MULTILINE,
    ), check.output
    assert re.search(
        r"^::error file=flags/checkout/new-checkout\.yaml,line=1,col=1,"
        rf"title=missing-reason::commit {pr.head[:7]} \"wip\"",
        check.output,
        re.MULTILINE,
    ), check.output
    plan = summary.read_text(encoding="utf-8")
    assert plan.startswith("### Flag plan:")
    assert "has 1 error" in plan
    assert ran["Build the snapshot"].outcome == "skipped"


def test_a_good_pull_request_gets_its_plan_and_its_build(
    git_repo: tuple[Path, Git], tmp_path: Path
) -> None:
    pr = pull_request(git_repo, GOOD_CHANGE, "Launch the new checkout in production")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier steps' summary\n", encoding="utf-8")
    ran = run_job(flags_job(), pr.repo, pr.expressions(), summary)

    assert {name: result.outcome for name, result in ran.items()} == {
        CHECK: "success",
        "Plan (job summary)": "success",
        "Build the snapshot": "success",
    }, ran
    assert "::" not in ran[CHECK].output
    plan = summary.read_text(encoding="utf-8")
    assert plan.startswith("earlier steps' summary\n### Flag plan:")  # appended, not replaced
    assert f"({pr.base[:12]})" in plan
    assert "<code>environments.production</code> | (absent) | true" in plan
    uploaded = pr.repo / using(load("flags.yml"), "actions/upload-artifact")["with"]["path"]
    assert sorted(path.name for path in uploaded.glob("*.json")) >= ["audit.json", "snapshot.json"]


# A line of a step's log that starts with `::` runs as a workflow command; the only ones the
# flags job may print are its own annotations, each property escaped.
ANNOTATION = re.compile(r"::(error|warning) file=[^,:\n]*,line=\d+,col=\d+,title=[a-z-]+::.*")
FORGED = "::error file=flags/README.md,line=1,title=forged::a workflow command"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (f"x\n{FORGED}.yaml", "wip"),  # a thin reason, and a file the loader refuses
        (f"ok\n{FORGED}\n.yaml", "Add a flag whose file name holds a workflow command"),
    ],
    ids=["reasons", "check"],
)
def test_a_file_name_cannot_run_a_workflow_command(
    git_repo: tuple[Path, Git], tmp_path: Path, name: str, message: str
) -> None:
    """A pull request adds a flag file whose name holds a newline and a workflow command:
    no step of the job prints a `::` line that is not one of its own escaped annotations."""
    repo, git = git_repo
    pr = pull_request(git_repo, GOOD_CHANGE, "Launch the new checkout in production")
    write_tree(repo, {f"flags/growth/{name}": BANNER})
    git("add", "--all")
    git("commit", "--quiet", "--message", message)
    head = git("rev-parse", "HEAD").strip()
    expressions = {**pr.expressions(), "github.event.pull_request.head.sha": head}
    ran = run_job(flags_job(), repo, expressions, tmp_path / "summary.md")

    assert "failure" in {result.outcome for result in ran.values()}  # the file is refused
    for step, result in ran.items():
        commands = [line for line in result.output.splitlines() if line.startswith("::")]
        assert all(ANNOTATION.fullmatch(line) for line in commands), (step, commands)


@pytest.fixture
def published(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A static host on a free loopback port, as GitHub Pages serves the published site:
    (the folder it serves, its base URL)."""
    folder = tmp_path / "published"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    host = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=host.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{host.server_address[1]}"
    finally:
        host.shutdown()
        host.server_close()
        thread.join()


def release_repo(git_repo: tuple[Path, Git], files: dict[str, str], tag: str = "v1.0.0") -> Path:
    """The flags committed and tagged, as the pages job checks them out."""
    repo, git = git_repo
    write_tree(repo, {**BASE_TREE, **files})
    git("add", "--all")
    git("commit", "--quiet", "--message", "Launch the new checkout in production")
    git("tag", tag)
    return repo


def pages_job() -> dict[str, Any]:
    job: dict[str, Any] = load("release.yml")["jobs"]["pages"]
    return job


def outputs(summary: Path) -> dict[str, str]:
    """What the steps wrote to GITHUB_OUTPUT."""
    found = summary.with_name("output")
    lines = found.read_text(encoding="utf-8").splitlines() if found.exists() else []
    return dict(line.split("=", 1) for line in lines)


def test_the_release_pages_commands_export_the_build(
    git_repo: tuple[Path, Git], tmp_path: Path, published: tuple[Path, str]
) -> None:
    """The pages job's commands on a tagged checkout: the site holds what the server serves;
    nothing published yet, so a scheduled run deploys it."""
    repo = release_repo(git_repo, {"flags/checkout/new-checkout.yaml": GOOD_CHANGE})
    summary = tmp_path / "summary.md"
    expressions = {"steps.pages.outputs.base_url": published[1]}
    ran = run_job(pages_job(), repo, expressions, summary, {"GITHUB_EVENT_NAME": "schedule"})

    assert {result.outcome for result in ran.values()} == {"success"}, ran
    site = repo / using(pages_job(), "actions/upload-pages-artifact")["with"]["path"]
    snapshot = (repo / "build" / "snapshot.json").read_bytes()
    assert (site / "api" / "v1" / "snapshot.json").read_bytes() == snapshot
    flat = json.loads((site / "api/v1/environments/production/flags.json").read_bytes())
    assert flat["flags"] == {"banner": False, "new-checkout": True}
    assert json.loads((site / "index.json").read_bytes())["valid_until"] is None
    assert outputs(summary) == {"deploy": "true"}


def test_a_scheduled_run_deploys_only_a_site_that_changed(
    git_repo: tuple[Path, Git], tmp_path: Path, published: tuple[Path, str]
) -> None:
    """The published index.json is the export's, byte for byte: nothing to deploy."""
    repo = release_repo(git_repo, {"flags/checkout/new-checkout.yaml": GOOD_CHANGE})
    expressions = {"steps.pages.outputs.base_url": published[1]}
    first, second = tmp_path / "first" / "summary.md", tmp_path / "second" / "summary.md"
    for summary in (first, second):
        summary.parent.mkdir()
        ran = run_job(pages_job(), repo, expressions, summary, {"GITHUB_EVENT_NAME": "schedule"})
        assert {result.outcome for result in ran.values()} == {"success"}, ran
        shutil.copytree(repo / "site", published[0], dirs_exist_ok=True)  # the deployment
    assert outputs(first) == {"deploy": "true"}
    assert outputs(second) == {"deploy": "false"}
    assert "nothing to deploy" in ran["On a schedule, deploy only a site that changed"].output


def test_a_step_due_before_the_next_run_is_waited_for_and_exported(
    git_repo: tuple[Path, Git], tmp_path: Path, published: tuple[Path, str]
) -> None:
    """Real time: production turns on 20 seconds after the job starts (its build and first
    export come before); the job waits for the step, exports again, and the site it leaves
    serves it, valid until the next step, an hour ahead, which it does not wait for."""
    now = int(time.time())
    soon, later = utc_text(now + 20), utc_text(now + 3600)
    launch = (
        f"{CHECKOUT}environments:\n  production:\n    enabled: false\n    schedule:\n"
        f"      - at: {soon}\n        enabled: true\n"
        f"      - at: {later}\n        applications:\n          ios: false\n"
    )
    repo = release_repo(git_repo, {"flags/checkout/new-checkout.yaml": launch})
    expressions = {"steps.pages.outputs.base_url": published[1]}
    ran = run_job(pages_job(), repo, expressions, tmp_path / "summary.md")

    assert {result.outcome for result in ran.values()} == {"success"}, ran
    assert time.time() >= moment(soon)
    first = ran["Export every document the server serves, as static files"].output
    assert f"(valid until {soon}, its next step)" in first  # built and exported before it
    again = ran["Export again at a step due before the next run"].output
    assert f"for the step at {soon}" in again
    assert f"(valid until {later}, its next step)" in again
    site = repo / "site"
    flat = json.loads((site / "api/v1/environments/production/flags.json").read_bytes())
    assert flat["flags"]["new-checkout"] is True
    assert json.loads((site / "index.json").read_bytes())["valid_until"] == later


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["v1.2.0", "v1.10.0", "v1.9.3", "other-2.0"], "v1.10.0"),  # by version, v* only
        (["v0.1.0"], "v0.1.0"),
        ([], ""),  # no release yet: the pages job does not run
    ],
)
def test_the_release_to_publish_is_the_newest_tag(
    git_repo: tuple[Path, Git], tmp_path: Path, tags: list[str], expected: str
) -> None:
    """The release job's script, asking a real remote (another repository) for its tags."""
    origin, git = git_repo
    write_tree(origin, BASE_TREE)
    git("add", "--all")
    git("commit", "--quiet", "--message", "Add the checkout and the banner flags")
    for tag in tags:
        git("tag", tag)
    clone = tmp_path / "clone"
    git("clone", "--quiet", "--depth", "1", f"file://{origin}", str(clone))
    summary = tmp_path / "summary.md"
    job = load("release.yml")["jobs"]["release"]
    ran = run_job(job, clone, {}, summary, {"GITHUB_EVENT_NAME": "schedule"})

    assert ran["The release to publish"].outcome == "success", ran
    assert outputs(summary) == {"tag": expected}
    assert (
        f"The release to publish: {expected or 'none yet'}" in ran["The release to publish"].output
    )
