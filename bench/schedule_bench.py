"""What schedules cost a build, and how promptly flagserve serves a step.

    python bench/schedule_bench.py [--flags 10000] [--scheduled 0.05] [--runs 3] [--steps 8]
                                   [--gap 3] [--seed 1] [--cache bench/out]

- build: the generated tree (bench/gen_tree.py, cached as build_bench.py caches it) against
  a copy of it in which a share --scheduled of the flags of each kind has a schedule that
  keeps every dependency (`kinds`): the flags nothing depends on and that depend on nothing
  a step that turns them on, then a ramp of `on` from 0% to 100% over four days, every hour
  (100 share changes); those that depend on nothing a step that turns them on; those that
  nothing depends on a step that turns them off. `flagc build --full` as a process, best of
  --runs, with the ratio; and the size of snapshot.json and of the flagd files, which
  carry every step. Each scheduled flag's moments lie a minute after the previous one's,
  so that no two flags share a moment (every step is a moment of its own to check, serve
  and verify).
- load: what loading the build takes flagserve (`core.snapshot.load`: reading, verifying
  every step and dependency at every moment, the answers), best of 3, in this process.
- view: what flagserve does before each step (in this process, best of 3): the build at the
  step's moment (`Snapshot.at`) with the answers a request looks up made (flat maps,
  evaluator, definition tags), for the scheduled tree.
- step: a copy of the scheduled tree whose first scheduled flag also switches production on
  and off --steps times, --gap seconds apart, starting once flagserve is up. flagserve
  (`python -m server OUT`, the default workers and threads, a free loopback port) serves
  the build; a kept-alive connection asks the production flat map every 5 ms, and each
  step's delay is from its moment to the first answer that has it: p50, p99 and the
  slowest, in milliseconds. The target (issue 16): within 1 s.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import http.client
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from build_bench import HERE, _commit, best, flag_texts, subprocess_build, tree_for
from serve_bench import free_port, gunicorn_env, process, wait_for

from core.snapshot import load

RAMP = """\
schedule:
  - at: {at}
    enabled: true
  - ramp:
      from: {start}
      to: {end}
      variant: on
      every: 1h
"""
STEP = """\
schedule:
  - at: {at}
    enabled: {value}
"""
ENVIRONMENT = "production"
FLAT = f"/api/v1/environments/{ENVIRONMENT}/flags"


def kinds(tree: Path) -> dict[str, list[Path]]:
    """The flag files, in path order, by what a schedule may do to them and keep every
    dependency: `leaf` (no `depends_on`, and nothing depends on it: any schedule), `root`
    (no `depends_on`: a step may turn it on) and `end` (nothing depends on it: a step may
    turn it off). Flags with both are left alone."""
    texts, needed = flag_texts(tree)
    found: dict[str, list[Path]] = {"leaf": [], "root": [], "end": []}
    for path, text in texts.items():
        depends, depended = b"depends_on:" in text, path.stem.encode() in needed
        if not depends:
            found["root" if depended else "leaf"].append(path)
        elif not depended:
            found["end"].append(path)
    return found


def text(at: datetime.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


SWITCH = "step-switch"


def scheduled_copy(tree: Path, into: Path, share: float, switches: list[int] | None) -> list[str]:
    """A copy of `tree` with a schedule on a share `share` of its flags (its own git
    repository); with `switches` (Unix seconds), a flag of its own (SWITCH) switches
    production on and off at those moments. The keys scheduled."""
    shutil.copytree(tree, into, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    base = datetime.datetime(2030, 1, 6, 9, tzinfo=datetime.UTC)
    chosen = []
    for kind, paths in kinds(into).items():
        for number, path in enumerate(paths[: round(len(paths) * share)]):
            # each flag's moments a minute after the one before: no two share a moment
            start = base + datetime.timedelta(minutes=number)
            added = {
                "leaf": RAMP.format(
                    at=text(start),
                    start=text(start + datetime.timedelta(days=1)),
                    end=text(start + datetime.timedelta(days=5)),
                ),
                "root": STEP.format(at=text(start + datetime.timedelta(hours=1)), value="true"),
                "end": STEP.format(at=text(start + datetime.timedelta(hours=2)), value="false"),
            }[kind]
            path.write_text(path.read_text(encoding="utf-8") + added, encoding="utf-8")
            chosen.append(path)
    if switches is not None:
        steps = "".join(
            f"      - at: {text(datetime.datetime.fromtimestamp(at, datetime.UTC))}\n"
            f"        enabled: {'true' if index % 2 == 0 else 'false'}\n"
            for index, at in enumerate(switches)
        )
        (into / "bench").mkdir()
        (into / "bench" / f"{SWITCH}.yaml").write_text(
            "description: Switched on and off by its schedule\nowner: bench\nenabled: false\n"
            "environments:\n  production:\n    enabled: false\n    schedule:\n" + steps,
            encoding="utf-8",
        )
    _commit(into)
    return [path.stem for path in chosen]


def size(out: Path) -> tuple[int, int]:
    snapshot = (out / "snapshot.json").stat().st_size
    flagd = sum(path.stat().st_size for path in (out / "flagd").glob("*.json"))
    return snapshot, flagd


def load_seconds(out: Path) -> float:
    """What loading the build takes flagserve (reading, verifying, its answers)."""
    return best(3, functools.partial(load, out))[0]


def view_seconds(out: Path) -> float:
    snapshot = load(out)
    moment = snapshot.step_moments[len(snapshot.step_moments) // 2]

    def prepare() -> None:
        view = snapshot.at(moment)
        _ = view.evaluator, view.flat_maps, view.definition_tags

    return best(3, prepare)[0]


def step_delays(tree: Path, work: Path, share: float, steps: int, gap: float) -> list[float]:
    """Milliseconds from each step's moment to the flat map serving it."""
    started = time.time()
    first = int(started) + 60  # after the build and the server's start, at 10,000 flags
    switches = [first + round(index * gap) for index in range(steps)]
    timed = work / "timed"
    scheduled_copy(tree, timed, share, switches)
    key = SWITCH
    out = work / "timed-out"
    subprocess_build(timed, out, full=True)
    port = free_port()
    log = work / "flagserve.log"
    delays = []
    with process([sys.executable, "-m", "server", str(out)], gunicorn_env(port), log):
        wait_for(f"http://127.0.0.1:{port}/readyz", log, timeout=120)
        if time.time() > first - 1:
            raise SystemExit("flagserve took too long to start: no step is ahead any more")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for index, at in enumerate(switches):
            wanted = index % 2 == 0
            while True:
                connection.request("GET", FLAT)
                answer = connection.getresponse()
                value = orjson.loads(answer.read())["flags"][key]
                now = time.time()
                if value == wanted and now >= at:
                    delays.append((now - at) * 1000)
                    break
                if value == wanted and now < at - 0.05:
                    raise SystemExit(f"step {index} was served {at - now:.2f} s early")
                time.sleep(0.005)
        connection.close()
    return delays


def p99(timings: list[float]) -> float:
    ordered = sorted(timings)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=10000)
    parser.add_argument("--scheduled", type=float, default=0.05)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--gap", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=HERE / "out")
    args = parser.parse_args()
    tree = tree_for(args.flags, args.seed, args.cache)
    with tempfile.TemporaryDirectory(prefix="schedule-bench-") as temporary:
        work = Path(temporary)
        scheduled = work / "scheduled"
        count = len(scheduled_copy(tree, scheduled, args.scheduled, None))
        plain, plain_out = work / "plain", work / "plain-out"
        # a repository of its own, made as the scheduled copy's is (a copied index's stale
        # stat data would have `git status` hash every file again)
        shutil.copytree(tree, plain, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        _commit(plain)
        took = {}
        for name, source in (("plain", plain), ("scheduled", scheduled)):
            out = work / f"{name}-out"
            took[name] = best(args.runs, functools.partial(subprocess_build, source, out))[0]
        plain_size, scheduled_size = size(plain_out), size(work / "scheduled-out")
        view = view_seconds(work / "scheduled-out")
        loads = load_seconds(plain_out), load_seconds(work / "scheduled-out")
        moments = len(load(work / "scheduled-out").step_moments)
        delays = step_delays(tree, work, args.scheduled, args.steps, args.gap)
    print(f"{args.flags} flags, {count} with a schedule, {moments} distinct step moments")
    print(f"{'':<28}{'without':>10}{'with':>10}{'ratio':>8}")
    ratio = took["scheduled"] / took["plain"]
    before, after = took["plain"], took["scheduled"]
    print(f"{'flagc build --full, s':<28}{before:>10.2f}{after:>10.2f}{ratio:>8.2f}")
    for label, index in (("snapshot.json, MB", 0), ("flagd files, MB", 1)):
        before, after = plain_size[index] / 1e6, scheduled_size[index] / 1e6
        print(f"{label:<28}{before:>10.1f}{after:>10.1f}{after / before:>8.2f}")
    before, after = loads
    print(f"{'load (flagserve), s':<28}{before:>10.2f}{after:>10.2f}{after / before:>8.2f}")
    print(f"a view made ahead of a step: {view * 1000:.0f} ms")
    print(
        f"step -> served, ms ({len(delays)} steps): p50 {statistics.median(delays):.0f}, "
        f"p99 {p99(delays):.0f}, slowest {max(delays):.0f} (target 1000)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
