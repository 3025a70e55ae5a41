"""Run the Dockerfile's steps on the host, where no Docker engine runs, then smoke-test them.

    python scripts/dockerfile_steps.py [--without-git] [--keep] [--plan]

The steps are read from the Dockerfile itself, never copied here, so the two cannot drift:
every RUN step of every stage runs with `sh -c` (the Dockerfile's default shell) in a
temporary directory that stands for the image's file system, with each stage's ENV and
WORKDIR, and the context's files are copied as COPY copies them (.dockerignore applied).
Then the last stage's CMD starts (flagserve, with the runtime stage's environment), its
HEALTHCHECK command runs, one request each goes to /healthz and to a flat map, and the
server is stopped. A broken step fails here and not on a user's machine.

What cannot be the same on a host, and what stands in for it:

- Absolute paths of the image (IMAGE_PATHS) are placed under the temporary directory; any
  other absolute path in a step that runs stops the script, which must then learn it.
- RUN steps that set up the operating system (SYSTEM_STEPS: apt-get, users) are not run:
  the host must have git already, and the script runs as whoever runs it (USER is ignored).
- FLAGSERVE_BIND becomes a free loopback port, instead of 0.0.0.0:8000.
- The host keeps its pip cache (PIP_NO_CACHE_DIR is dropped) so that a rerun is quick.

Read-only root file system: after the smoke, nothing may have been written outside TMPDIR
(the image runs with --read-only and a tmpfs there). `--without-git` leaves .git out of the
context, as a context without it would: the build must still pass, with a content-hash
revision. `--plan` prints the steps and what happens to each, and runs nothing.

Exit status: 0 when every step and the smoke test pass, 1 when one fails (saying which), 2
for a Dockerfile or host this script cannot work with.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # python's image
IMAGE_PATHS = ("/opt/gitflags", "/srv/flags", "/build", "/src", "/tmp")
SYSTEM_STEPS = {
    "apt-get": "operating-system packages and users: the host has git, the script runs as you",
}
DROPPED_ENV = ("PIP_NO_CACHE_DIR",)
KNOWN = {"FROM", "RUN", "ENV", "WORKDIR", "COPY", "USER", "EXPOSE", "HEALTHCHECK", "CMD"}
_PATHS = re.compile(
    r"(?<![\w/.$}{-])(" + "|".join(re.escape(path) for path in IMAGE_PATHS) + r")(?=$|[/\s:'\"\]])"
)
_ABSOLUTE = re.compile(r"(?<![\w/.$}{:-])/[A-Za-z][\w.-]*(?:/[\w.-]+)*")
_FLAG = re.compile(r"(--\S+)\s+")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


class StepError(Exception):
    """A step of the Dockerfile, or the smoke test after them, failed (exit status 1)."""


class UsageError(Exception):
    """The Dockerfile or the host is not what this script can work with (exit status 2)."""


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined, with its stage."""

    line: int
    stage: str
    keyword: str
    flags: tuple[str, ...]
    arguments: str

    def command(self) -> list[str]:
        """The exec form (a JSON array) as it is, the shell form through `sh -c`."""
        text = self.arguments.strip()
        if self.keyword == "HEALTHCHECK":
            text = text.removeprefix("CMD").strip()
        if text.startswith("["):
            parsed: list[str] = json.loads(text)
            return parsed
        return ["/bin/sh", "-c", text]


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile: comments dropped (also inside continued lines, as
    Docker does), leading --flags separated, each tagged with its stage's name."""
    instructions: list[Instruction] = []
    stage, pending, start = "", "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip().startswith("#") or (not raw.strip() and not pending):
            continue
        if not pending:
            start = number
        pending += raw.rstrip().removesuffix("\\") + " "
        if raw.rstrip().endswith("\\"):
            continue
        keyword, _, rest = pending.strip().partition(" ")
        keyword = keyword.upper()
        flags: list[str] = []
        rest = rest.strip()
        while (found := _FLAG.match(rest)) is not None:
            flags.append(found[1])
            rest = rest[found.end() :]
        if keyword == "FROM":
            stage = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
        instructions.append(Instruction(start, stage, keyword, tuple(flags), rest))
        pending = ""
    return instructions


@dataclass
class Step:
    """What the script does with one instruction: run it, emulate it, or skip it (why)."""

    instruction: Instruction
    action: str  # "run", "copy", "env", "workdir", "cmd", "healthcheck" or "skip"
    reason: str = ""


def plan(instructions: Sequence[Instruction]) -> list[Step]:
    """Each instruction with its action; unknown instructions are refused, so that a new
    kind of step gets a decision here rather than being ignored."""
    steps = []
    for instruction in instructions:
        keyword = instruction.keyword
        if keyword not in KNOWN:
            raise UsageError(f"line {instruction.line}: {keyword} is not handled by this script")
        first = instruction.arguments.split(" ", 1)[0]
        if keyword == "RUN" and first in SYSTEM_STEPS:
            steps.append(Step(instruction, "skip", SYSTEM_STEPS[first]))
        elif keyword in {"FROM", "USER", "EXPOSE"}:
            steps.append(Step(instruction, "skip", "nothing to do on the host"))
        else:
            action = {"RUN": "run", "COPY": "copy", "ENV": "env", "WORKDIR": "workdir"}
            steps.append(Step(instruction, action.get(keyword, keyword.lower())))
    if not any(step.action == "cmd" for step in steps):
        raise UsageError("the Dockerfile has no CMD: there is nothing to start")
    return steps


def parse_env(arguments: str, env: dict[str, str]) -> dict[str, str]:
    """ENV KEY=VALUE ...: variables expanded with the values from before this instruction."""
    values = {}
    for word in shlex.split(arguments):
        key, separator, value = word.partition("=")
        if not separator:
            raise UsageError(f"ENV {arguments!r}: only the KEY=VALUE form is handled")
        values[key] = _VARIABLE.sub(lambda found: env.get(found[1] or found[2], ""), value)
    return values


@dataclass
class Image:
    """The image's file system under `root`, and the environment of the stage being run."""

    root: Path
    context: Path
    ignored: list[str]
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"

    def place(self, text: str) -> str:
        """`text` with the image's absolute paths moved under root; any other absolute
        path is refused, since it would touch the host."""
        for found in _ABSOLUTE.finditer(text):
            if not _is_image_path(found[0]) and found[0] != "/bin/sh":
                raise UsageError(
                    f"{found[0]} in {text!r} is not one of the image paths this script places "
                    f"on the host ({', '.join(IMAGE_PATHS)}); add it to IMAGE_PATHS"
                )
        return _PATHS.sub(lambda found: str(self.root) + found[1], text)

    def path(self, image_path: str) -> Path:
        return Path(self.place(image_path if image_path.startswith("/") else self.here(image_path)))

    def here(self, relative: str) -> str:
        return f"{self.workdir.rstrip('/')}/{relative}"

    def host_env(self) -> dict[str, str]:
        """The stage's environment (its ENV values were placed when they were read)."""
        return dict(self.env)


def _is_image_path(path: str) -> bool:
    return any(path == known or path.startswith(known + "/") for known in IMAGE_PATHS)


def base_env(bin_dir: Path) -> dict[str, str]:
    """The host's environment without anything that points at another Python environment or
    configures gitflags, and with the python image's PATH behind a bin holding `python`."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PROMETHEUS_MULTIPROC_DIR")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in dropped and not key.startswith(("FLAGSERVE_", "GIT_DIR", "GIT_WORK_TREE"))
    }
    env["PATH"] = f"{bin_dir}:{IMAGE_PATH}"
    return env


def host_bin(root: Path) -> Path:
    """A directory with `python` and `python3`: the interpreter running this script (its
    base, outside any virtual environment), as the python image has them on its PATH."""
    bin_dir = root / ".host-bin"
    bin_dir.mkdir(parents=True)
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    for name in ("python", "python3"):
        (bin_dir / name).symlink_to(base)
    return bin_dir


def ignored(pattern_lines: Iterator[str], without_git: bool) -> list[str]:
    """The .dockerignore patterns (as regular expressions over context-relative paths)."""
    patterns = [".git"] if without_git else []
    for raw in pattern_lines:
        line = raw.strip()
        if line and not line.startswith("#"):
            if line.startswith("!"):
                raise UsageError(".dockerignore exceptions (!) are not handled by this script")
            patterns.append(line.strip("/"))
    return [_regex(pattern) for pattern in patterns]


def _regex(pattern: str) -> str:
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return "".join(table.get(part, re.escape(part)) for part in parts)


def is_ignored(relative: str, patterns: Sequence[str]) -> bool:
    """Docker leaves out a path when a pattern matches it or one of its parent folders."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    return any(re.fullmatch(pattern, prefix) for pattern in patterns for prefix in prefixes)


def copy_from_context(image: Image, sources: Sequence[str], destination: Path) -> None:
    """COPY SRC... DEST from the context: a folder's contents go into DEST, a file into DEST/
    (or becomes DEST), each without what .dockerignore leaves out."""
    for source in sources:
        relative = os.path.normpath(source).removeprefix("./").strip("/")
        relative = "" if relative == "." else relative
        if relative and is_ignored(relative, image.ignored):
            raise StepError(f"COPY {source}: .dockerignore leaves it out of the context")
        origin = image.context / relative
        if origin.is_dir():
            _copy_tree(image, origin, relative, destination)
        elif origin.is_file():
            target = destination / origin.name if len(sources) > 1 else destination
            target = target / origin.name if target.is_dir() else target
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
        else:
            raise StepError(f"COPY {source}: not found in the context")


def _copy_tree(image: Image, origin: Path, relative: str, destination: Path) -> None:
    for folder, names, files in os.walk(origin):
        here = os.path.relpath(folder, image.context)
        keep = [n for n in names if not is_ignored(_join(here, n), image.ignored)]
        names[:] = keep
        target = destination / os.path.relpath(folder, origin)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            if not is_ignored(_join(here, name), image.ignored):
                shutil.copy2(Path(folder) / name, target / name, follow_symlinks=False)


def _join(folder: str, name: str) -> str:
    return name if folder == "." else f"{folder}/{name}"


def copy_step(image: Image, instruction: Instruction) -> None:
    words = shlex.split(instruction.arguments)
    *sources, destination = words
    from_stage = [flag for flag in instruction.flags if flag.startswith("--from=")]
    target = image.path(destination)
    if from_stage:  # the stages share one file system here: copy only what moves
        for source in sources:
            origin = image.path(source)
            if origin != target:
                shutil.copytree(origin, target, dirs_exist_ok=True, symlinks=True)
        return
    if destination.endswith("/") or len(sources) > 1:
        target.mkdir(parents=True, exist_ok=True)
    copy_from_context(image, sources, target)


def run_step(image: Image, instruction: Instruction) -> None:
    command = [image.place(part) for part in instruction.command()]
    cwd = image.path(image.workdir)
    cwd.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(command, cwd=cwd, env=image.host_env(), check=False)
    if result.returncode != 0:
        raise StepError(
            f"line {instruction.line}: RUN {instruction.arguments} exited {result.returncode}"
        )


def build(image: Image, steps: Sequence[Step], base: dict[str, str]) -> list[Step]:
    """Run every step up to the last stage's CMD and HEALTHCHECK, which are returned."""
    final: list[Step] = []
    for number, step in enumerate(steps, start=1):
        instruction = step.instruction
        text = " ".join([instruction.keyword, *instruction.flags, *instruction.arguments.split()])
        print(f"[{instruction.stage} {number}/{len(steps)}] {text}", flush=True)
        if instruction.keyword == "FROM":
            image.env, image.workdir = dict(base), "/"
        if step.action == "skip":
            print(f"    skipped: {step.reason}", flush=True)
        elif step.action == "env":
            image.env.update(parse_env(image.place(instruction.arguments), image.env))
            for key in DROPPED_ENV:
                image.env.pop(key, None)
        elif step.action == "workdir":
            image.workdir = instruction.arguments.strip()
        elif step.action == "copy":
            copy_step(image, instruction)
        elif step.action == "run":
            run_step(image, instruction)
        else:
            final.append(step)
    return final


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def files_outside(root: Path, tmp: Path) -> dict[str, tuple[int, int]]:
    """Every file under root but outside tmp, with its size and modification time."""
    found = {}
    for folder, names, files in os.walk(root):
        names[:] = [name for name in names if Path(folder, name) != tmp]
        for name in files:
            path = Path(folder, name)
            stat = path.lstat()
            found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return found


def start(image: Image, step: Step, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**image.host_env(), "FLAGSERVE_BIND": f"127.0.0.1:{port}"}
    Path(env.get("TMPDIR", str(image.root / "tmp"))).mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        return subprocess.Popen(
            [image.place(part) for part in step.instruction.command()],
            cwd=image.path(image.workdir),
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, object]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StepError(f"CMD exited {process.returncode}:\n{log.read_text()}")
        try:
            status, body = get(url + "/readyz")
            if status == 200:
                ready: dict[str, object] = json.loads(body)
                return ready
        except OSError:
            pass
        time.sleep(0.2)
    raise StepError(f"CMD did not get ready on {url} in 90 s:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def smoke(image: Image, final: Sequence[Step], without_git: bool) -> str:
    """Start CMD, run HEALTHCHECK, GET /healthz and a flat map; returns the revision."""
    commands = {step.action: step for step in final}
    port, log = free_port(), image.root / "cmd.log"
    url = f"http://127.0.0.1:{port}"
    tmp = Path(image.host_env().get("TMPDIR", str(image.root / "tmp")))
    before = files_outside(image.root, tmp)
    process = start(image, commands["cmd"], port, log)
    try:
        ready = wait_ready(url, process, log)
        if "healthcheck" in commands:
            check = [image.place(part) for part in commands["healthcheck"].instruction.command()]
            env = {**image.host_env(), "FLAGSERVE_BIND": f"127.0.0.1:{port}"}
            if subprocess.run(check, env=env, check=False, timeout=30).returncode != 0:
                raise StepError(f"HEALTHCHECK {check} failed")
        status, body = get(url + "/healthz")
        if status != 200 or json.loads(body) != {"status": "ok"}:
            raise StepError(f"GET /healthz: {status} {body!r}")
        snapshot = json.loads(get(url + "/api/v1/snapshot")[1])
        environment = snapshot["environments"][0]
        status, body = get(f"{url}/api/v1/environments/{environment}/flags")
        flags = json.loads(body).get("flags") if status == 200 else None
        if not flags or set(flags) != set(snapshot["flags"]):
            raise StepError(f"GET the flat map of {environment}: {status} {body[:200]!r}")
    finally:
        stop(process)
    written = sorted(set(files_outside(image.root, tmp).items()) - set(before.items()))
    if [name for name, _ in written if name != "cmd.log"]:
        raise StepError(f"the server wrote outside TMPDIR: {written}")
    return require_revision(str(ready["revision"]), without_git)


def require_revision(revision: str, without_git: bool) -> str:
    """The build's revision, which must be the repository's HEAD with .git in the context
    and a hash of the content without it (StepError otherwise)."""
    if without_git:
        expected = "content-"
    else:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        expected = head.stdout.strip()
    if not revision.startswith(expected):
        raise StepError(f"the build's revision is {revision}, expected {expected}...")
    return revision


def run(without_git: bool, keep: bool) -> str:
    if shutil.which("git") is None:
        raise UsageError("git is not on PATH: the image has it, the host must too")
    dockerfile = ROOT / "Dockerfile"
    steps = plan(parse(dockerfile.read_text(encoding="utf-8")))
    root = Path(tempfile.mkdtemp(prefix="dockerfile-steps-"))
    try:
        base = base_env(host_bin(root))
        if shutil.which("flagc", path=base["PATH"]) or shutil.which("flagserve", path=base["PATH"]):
            raise UsageError(f"flagc is already on {base['PATH']}: the smoke would prove nothing")
        dockerignore = ROOT / ".dockerignore"
        lines = (
            dockerignore.read_text(encoding="utf-8").splitlines() if dockerignore.exists() else []
        )
        image = Image(root, ROOT, ignored(iter(lines), without_git))
        final = build(image, steps, base)
        return smoke(image, final, without_git)
    finally:
        if keep:
            print(f"kept {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)


def describe(step: Step) -> str:
    """One line: the action, then the instruction as written (spaces folded), and why."""
    instruction = step.instruction
    text = " ".join([instruction.keyword, *instruction.flags, *instruction.arguments.split()])
    return f"{step.action:11} {text}" + (f"  ({step.reason})" if step.reason else "")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--without-git", action="store_true", help="leave .git out")
    parser.add_argument("--keep", action="store_true", help="keep the temporary image folder")
    parser.add_argument("--plan", action="store_true", help="print the steps, run nothing")
    args = parser.parse_args(argv)
    try:
        if args.plan:
            for step in plan(parse((ROOT / "Dockerfile").read_text(encoding="utf-8"))):
                print(describe(step))
            return 0
        revision = run(args.without_git, args.keep)
    except UsageError as exc:
        print(f"dockerfile_steps: error: {exc}", file=sys.stderr)
        return 2
    except StepError as exc:
        print(f"dockerfile_steps: failed: {exc}", file=sys.stderr)
        return 1
    print(f"dockerfile_steps: ok: built and served revision {revision}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
