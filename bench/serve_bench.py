"""How fast flagserve answers, against nginx serving the same bytes and a bare Falcon app.

    python bench/serve_bench.py [--flags 2000] [--seed 1] [--duration 6] [--rounds 9]
                                [--connections 64] [--threads 2] [--warmup 2]
                                [--cache bench/out]

A synthetic tree of --flags flags (bench/gen_tree.py, 5 environments x 20 applications) is
generated and committed once (cached under bench/out/, as build_bench.py does) and built
with `flagc build`. Then, in one run, on loopback:

- flagserve: `python -m server OUT`, gunicorn with flagserve's worker class (gthread that
  shares connections out evenly, server.worker) and default workers and threads (2 x 4),
  keep-alive;
- nginx: the same bytes flagserve answered, as static files (2 workers, a temporary
  configuration with its own pid, logs and temporary folders, on a free port);
- bare: bench/bare_app.py, a Falcon app that returns the flat map's bytes with no
  middleware and no lookup, under the same gunicorn settings: the floor Python sets.

Each scenario is one wrk run (--threads threads, --connections connections, --duration
seconds, after a --warmup run that is not counted; the flat map --rounds times for
flagserve and the bare app, taking turns): the flat map
`GET /api/v1/environments/production/flags?application=web`, one flag
`GET /api/v1/flags/{key}`, a revalidation of the flat map with If-None-Match (a 304), and
an OFREP single evaluation (`POST /ofrep/v1/evaluate/flags/{key}`, from a wrk Lua script).
wrk sends no Accept-Encoding, so every body goes out uncompressed.

Needs wrk and nginx (Debian packages `wrk` and `nginx`): installed with apt-get when
running as root, otherwise the script says what is missing and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from build_bench import tree_for

from server.settings import DEFAULTS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ENVIRONMENT, APPLICATION = "production", "web"  # both declared by bench/gen_tree.py
WORKERS, THREADS = DEFAULTS.workers, DEFAULTS.threads  # flagserve's own defaults
TOOLS = {"wrk": "wrk", "nginx": "nginx"}  # command: Debian package
TARGET_THROUGHPUT, TARGET_P99 = 0.85, 1.2  # flagserve against the bare app, on the flat map


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    path: str
    body: bytes = b""
    revalidate: bool = False  # send If-None-Match with the server's own ETag: expect 304
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Measure:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: str  # non-2xx/3xx responses and socket errors, as wrk reports them; "" when none
    requests: int = 0
    cpu_us: float = 0.0  # the server's processes' CPU time (user + system) per request


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    group: int  # its process group: CPU time is summed over it


def require_tools(tools: Sequence[str] = tuple(TOOLS)) -> None:
    """`tools` (of TOOLS: by default wrk and nginx) on PATH: installed with apt-get when
    root, else exit 2 naming them."""
    missing = sorted(name for name in tools if shutil.which(name) is None)
    if not missing:
        return
    packages = [TOOLS[name] for name in missing]
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {' '.join(packages)} with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True)
        missing = sorted(name for name in tools if shutil.which(name) is None)
    if missing:
        raise SystemExit(
            f"{Path(sys.argv[0]).stem or 'serve_bench'}: missing {', '.join(missing)}; "
            "install the Debian packages "
            f"{' '.join(TOOLS[name] for name in missing)} (as root: apt-get update && "
            f"apt-get install -y {' '.join(TOOLS[name] for name in missing)})"
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def build(tree: Path, out: Path) -> None:
    command = [sys.executable, "-m", "compiler", "build", str(tree), "-o", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"flagc build failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@contextmanager
def process(
    command: Sequence[str], env: dict[str, str], log: Path, cwd: Path = ROOT
) -> Iterator[int]:
    """A server in its own process group (yielded), stopped (the group, by its id) on the
    way out."""
    with log.open("wb") as output:
        child = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield child.pid
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def wait_for(url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:  # refused, reset, or slow to answer while a large build loads
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-2000:]}")


def gunicorn_env(port: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FLAGSERVE_BIND": f"127.0.0.1:{port}",
        "FLAGSERVE_WORKERS": str(WORKERS),
        "FLAGSERVE_THREADS": str(THREADS),
        **extra,
    }


def fetch(server: Server, scenario: Scenario, etag: str | None = None) -> tuple[int, bytes, str]:
    """One request as wrk will send it: status, body and ETag."""
    headers = {"Content-Type": "application/json", **scenario.headers} if scenario.body else {}
    if etag is not None:
        headers["If-None-Match"] = etag
    request = urllib.request.Request(
        server.url + scenario.path,
        data=scenario.body or None,
        method=scenario.method,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read(), answer.headers.get("ETag", "")
    except urllib.error.HTTPError as exc:  # 304 and errors land here
        return exc.code, exc.read(), exc.headers.get("ETag", "")


def nginx_config(prefix: Path, port: int, files: dict[str, Path], posted: set[str]) -> str:
    """Static files at flagserve's paths. A POST to a static file is a 405 in nginx: the
    error_page turns it into the file itself, as a GET, the cheapest way to answer it."""
    locations = []
    for path, file in files.items():
        extra = " error_page 405 =200 $uri;" if path in posted else ""
        locations.append(f"    location = {path} {{ alias {file};{extra} }}")
    temp = "\n".join(
        f"  {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""worker_processes {WORKERS};
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
{temp}
  types {{ }}
  default_type application/json;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
{chr(10).join(locations)}
  }}
}}
"""


LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
TOTAL = re.compile(r"^\s+(\d+) requests in ", re.MULTILINE)
ERRORS = re.compile(r"^\s+(Non-2xx or 3xx responses: \d+|Socket errors: .*)$", re.MULTILINE)
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> Measure:
    latency = {m[1]: float(m[2]) * UNIT_MS[m[3]] for m in LATENCY.finditer(output)}
    rate, total = RATE.search(output), TOTAL.search(output)
    if rate is None or total is None or set(latency) != {"50", "99"}:
        raise SystemExit(f"cannot read wrk's output:\n{output}")
    errors = "; ".join(m[1] for m in ERRORS.finditer(output))
    return Measure(float(rate[1]), latency["50"], latency["99"], errors, int(total[1]))


def cpu_seconds(group: int) -> float:
    """User and system time of every live process in a process group (threads included),
    from /proc: what the server spent, whatever else runs on the machine."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group:  # pgrp; utime and stime follow at 11 and 12
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def lua_script(scenario: Scenario, etag: str | None) -> str:
    """The request wrk sends, as a Lua script (long brackets need no escaping)."""
    lines = [f'wrk.method = "{scenario.method}"']
    if scenario.body:
        lines.append(f"wrk.body = [==[{scenario.body.decode()}]==]")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    if etag is not None:
        lines.append(f'wrk.headers["If-None-Match"] = [==[{etag}]==]')
    return "\n".join(lines) + "\n"


def run_wrk(url: str, script: Path, args: argparse.Namespace, duration: int) -> Measure:
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stdout}{done.stderr}")
    return parse_wrk(done.stdout)


def measure(
    server: Server, scenario: Scenario, work: Path, args: argparse.Namespace
) -> tuple[Measure, int]:
    """Check the answer once, warm up, then measure; the measure and the answer's size."""
    status, data, etag = fetch(server, scenario)
    if status != 200:
        raise SystemExit(f"{server.name} {scenario.name}: {status} {data[:300]!r}")
    wanted_etag = etag if scenario.revalidate else None
    if wanted_etag is not None:
        status, data, _ = fetch(server, scenario, wanted_etag)
        if status != 304:
            raise SystemExit(f"{server.name} {scenario.name}: {status} instead of 304")
    script = work / f"{server.name}-{scenario.name.replace(' ', '-')}.lua"
    script.write_text(lua_script(scenario, wanted_etag), encoding="utf-8")
    url = server.url + scenario.path
    if args.warmup > 0:
        run_wrk(url, script, args, args.warmup)
    before = cpu_seconds(server.group)
    measured = run_wrk(url, script, args, args.duration)
    spent = cpu_seconds(server.group) - before
    return replace(measured, cpu_us=spent * 1e6 / max(measured.requests, 1)), len(data)


def scenarios(snapshot: dict[str, object]) -> list[Scenario]:
    flags = snapshot["flags"]
    assert isinstance(flags, dict)
    key = sorted(flags)[len(flags) // 2]
    flat = f"/api/v1/environments/{ENVIRONMENT}/flags?application={APPLICATION}"
    context = {"targetingKey": "user-1", "environment": ENVIRONMENT, "application": APPLICATION}
    return [
        Scenario("flat map", "GET", flat),
        Scenario("one flag", "GET", f"/api/v1/flags/{key}"),
        Scenario("304 flat map", "GET", flat, revalidate=True),
        Scenario(
            "OFREP one flag",
            "POST",
            f"/ofrep/v1/evaluate/flags/{key}",
            body=json.dumps({"context": context}, separators=(",", ":")).encode(),
        ),
    ]


def static_copies(flagserve: Server, plan: list[Scenario], root: Path) -> dict[str, Path]:
    """What flagserve answers for each path, saved as the files nginx will serve."""
    files: dict[str, Path] = {}
    for number, scenario in enumerate(plan):
        path = scenario.path.split("?")[0]
        if path in files:
            continue
        status, data, _ = fetch(flagserve, scenario)
        if status != 200:
            raise SystemExit(f"flagserve {scenario.name}: {status} {data[:300]!r}")
        files[path] = root / f"{number}.json"
        files[path].write_bytes(data)
        files[path].chmod(0o644)
    return files


@dataclass
class Row:
    scenario: str
    server: str
    measure: Measure
    size: int


def prepare(args: argparse.Namespace, work: Path) -> tuple[Path, list[Scenario]]:
    """The tree of --flags flags built into `work`/out, and the scenarios of that build."""
    out = work / "out"
    build(tree_for(args.flags, args.seed, args.cache), out)
    return out, scenarios(json.loads((out / "snapshot.json").read_bytes()))


def run(args: argparse.Namespace, work: Path) -> tuple[list[Row], list[tuple[Measure, Measure]]]:
    out, plan = prepare(args, work)
    work.chmod(0o755)  # nginx's workers run as nobody and read the files below
    static = work / "static"
    static.mkdir(mode=0o755)
    rows: list[Row] = []
    with ExitStack() as stack:
        flagserve = start_flagserve(stack, out, work)
        files = static_copies(flagserve, plan, static)
        nginx = start_nginx(stack, work, files, {s.path for s in plan if s.method == "POST"})
        bare = start_bare(stack, files[plan[0].path.split("?")[0]], work)
        flat, *others = plan
        medians, pairs = compare(flat, [flagserve, bare], work, args)
        rows += medians
        rows += [_row(nginx, flat, work, args)]
        for scenario in others:
            rows += [_row(server, scenario, work, args) for server in (nginx, flagserve)]
    return rows, pairs


def run_against(args: argparse.Namespace, work: Path) -> list[tuple[str, list[Row]]]:
    """--against: this checkout's flagserve and the other checkout's take turns on every
    scenario (--rounds each), serving the same build (made by this checkout's flagc)."""
    out, plan = prepare(args, work)
    results: list[tuple[str, list[Row]]] = []
    with ExitStack() as stack:
        this = start_flagserve(stack, out, work)
        other = start_flagserve(stack, out, work, root=args.against.resolve(), name="against")
        for scenario in plan:
            runs: list[Row] = []
            for number in range(args.rounds):
                pair = (this, other) if number % 2 == 0 else (other, this)
                runs += [_row(server, scenario, work, args) for server in pair]
            results.append((scenario.name, runs))
    return results


def report_against(results: list[tuple[str, list[Row]]], args: argparse.Namespace) -> str:
    """Per scenario: each server's median run, and the medians of this checkout's figures
    as ratios of the other's within each round."""
    lines = [
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.flags} flags; "
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s; {args.rounds} rounds; "
        f"this checkout against {args.against}; load average before {args.load:.2f}",
        "",
        f"{'scenario':<15} {'req/s this':>10} {'req/s other':>11} {'req/s ratio':>11} "
        f"{'p99 ratio':>9} {'CPU ratio':>9}",
    ]
    for name, runs in results:
        this = [row.measure for row in runs if row.server == "flagserve"]
        other = [row.measure for row in runs if row.server == "against"]
        pairs = list(zip(this, other, strict=True))
        ratio = statistics.median(a.requests_per_second / b.requests_per_second for a, b in pairs)
        p99 = statistics.median(a.p99_ms / b.p99_ms for a, b in pairs)
        cpu = statistics.median(a.cpu_us / b.cpu_us for a, b in pairs)
        lines.append(
            f"{name:<15} {statistics.median(m.requests_per_second for m in this):>10.0f} "
            f"{statistics.median(m.requests_per_second for m in other):>11.0f} {ratio:>11.1%} "
            f"{p99:>8.2f}x {cpu:>8.2f}x"
        )
    lines += [
        "",
        "ratios: this checkout's figure over the other's, within each round (the two take "
        "turns), median over the rounds",
        f"load average after {os.getloadavg()[0]:.2f}",
    ]
    return "\n".join(lines)


def _row(server: Server, scenario: Scenario, work: Path, args: argparse.Namespace) -> Row:
    measured, size = measure(server, scenario, work, args)
    print(f"measured {server.name}: {scenario.name}", file=sys.stderr)
    return Row(scenario.name, server.name, measured, size)


def compare(
    scenario: Scenario, servers: list[Server], work: Path, args: argparse.Namespace
) -> tuple[list[Row], list[tuple[Measure, Measure]]]:
    """--rounds runs of each of two servers, taking turns (who goes first alternates) so
    that each pair shares the machine's conditions of the moment. Returns each server's
    median run (by requests per second) and the pairs, round by round: on a shared
    machine one run can be twice as slow as the next, and a ratio within a pair, taken
    at the median over the rounds, is what such noise moves least."""
    runs: dict[str, list[Row]] = {server.name: [] for server in servers}
    for number in range(args.rounds):
        for server in servers if number % 2 == 0 else servers[::-1]:
            runs[server.name].append(_row(server, scenario, work, args))
    first, second = (runs[server.name] for server in servers)
    pairs = [(a.measure, b.measure) for a, b in zip(first, second, strict=True)]
    return [_median_run(found) for found in runs.values()], pairs


def _median_run(rows: list[Row]) -> Row:
    ranked = sorted(rows, key=lambda row: row.measure.requests_per_second)
    return ranked[(len(ranked) - 1) // 2]


def start_flagserve(
    stack: ExitStack, out: Path, work: Path, root: Path = ROOT, name: str = "flagserve"
) -> Server:
    """flagserve serving `out`, run from the checkout `root` (this one unless --against)."""
    port, log = free_port(), work / f"{name}.log"
    command = [sys.executable, "-m", "server", str(out)]
    env = gunicorn_env(port, PYTHONPATH=str(root)) if root != ROOT else gunicorn_env(port)
    group = stack.enter_context(process(command, env, log, cwd=root))
    server = Server(name, f"http://127.0.0.1:{port}", group)
    wait_for(server.url + "/readyz", log)
    return server


def start_bare(stack: ExitStack, body: Path, work: Path) -> Server:
    port, log = free_port(), work / "bare.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:server.gunicorn_conf",
        "--pythonpath",
        str(HERE),
        "bare_app:app",
    ]
    group = stack.enter_context(process(command, gunicorn_env(port, BARE_BODY=str(body)), log))
    server = Server("bare falcon", f"http://127.0.0.1:{port}", group)
    wait_for(server.url + "/", log)
    return server


def start_nginx(stack: ExitStack, work: Path, files: dict[str, Path], posted: set[str]) -> Server:
    prefix = work / "nginx"
    prefix.mkdir()
    port, log = free_port(), prefix / "stdout.log"
    config = prefix / "nginx.conf"
    config.write_text(nginx_config(prefix, port, files, posted), encoding="utf-8")
    command = ["nginx", "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(config)]
    group = stack.enter_context(process(command, dict(os.environ), log))
    server = Server("nginx", f"http://127.0.0.1:{port}", group)
    wait_for(server.url + next(iter(files)), prefix / "error.log")
    return server


def report(rows: list[Row], pairs: list[tuple[Measure, Measure]], args: argparse.Namespace) -> str:
    nginx = {row.scenario: row.measure for row in rows if row.server == "nginx"}
    lines = [
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.flags} flags; "
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s; gunicorn balanced gthread "
        f"{WORKERS} workers x {THREADS} threads, keep-alive; nginx {WORKERS} workers; "
        f"load average before {args.load:.2f}",
        "",
        f"{'scenario':<15} {'server':<12} {'bytes':>7} {'req/s':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'vs nginx':>8} {'CPU us/req':>10}",
    ]
    scenarios = list(dict.fromkeys(row.scenario for row in rows))
    servers = ["nginx", "flagserve", "bare falcon"]
    for row in sorted(rows, key=lambda r: (scenarios.index(r.scenario), servers.index(r.server))):
        m = row.measure
        ratio = m.requests_per_second / nginx[row.scenario].requests_per_second
        lines.append(
            f"{row.scenario:<15} {row.server:<12} {row.size:>7} {m.requests_per_second:>9.0f} "
            f"{m.p50_ms:>8.2f} {m.p99_ms:>8.2f} {ratio:>8.2f} {m.cpu_us:>10.0f}"
            + (f"  ({m.errors})" if m.errors else "")
        )
    lines += [
        "",
        "vs nginx: requests per second against nginx's; CPU us/req: the server's processes' "
        "CPU time per request",
        f"flat map: flagserve and the bare app took {args.rounds} turns; each one's median "
        "run is shown",
        f"load average after {os.getloadavg()[0]:.2f}",
        *verdict(pairs),
    ]
    return "\n".join(lines)


def verdict(pairs: list[tuple[Measure, Measure]]) -> list[str]:
    """flagserve against the bare app on the flat map: the median over the rounds of the
    ratios within each round."""
    throughput = [served.requests_per_second / bare.requests_per_second for served, bare in pairs]
    p99 = [served.p99_ms / bare.p99_ms for served, bare in pairs]
    cpu = [served.cpu_us / bare.cpu_us for served, bare in pairs]
    middle = statistics.median(throughput), statistics.median(p99), statistics.median(cpu)
    met = middle[0] >= TARGET_THROUGHPUT and middle[1] <= TARGET_P99
    return [
        "flat map, flagserve against the bare app, round by round: req/s "
        + " ".join(f"{ratio:.0%}" for ratio in throughput)
        + "; p99 "
        + " ".join(f"{ratio:.2f}x" for ratio in p99)
        + "; CPU per request "
        + " ".join(f"{ratio:.2f}x" for ratio in cpu),
        f"flat map, median of those: {middle[0]:.0%} of the bare app's req/s (target >= "
        f"{TARGET_THROUGHPUT:.0%}), p99 {middle[1]:.2f}x (target <= {TARGET_P99}x), CPU per "
        f"request {middle[2]:.2f}x: " + ("meets the target" if met else "MISSES the target"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each run (0: none)")
    parser.add_argument(
        "--rounds", type=int, default=9, help="turns of flagserve and the bare app (flat map)"
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=HERE / "out", help="default: bench/out")
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout (e.g. `git worktree add ../before <commit>`): its flagserve and "
        "this one's take turns on every scenario, and the figures are given as ratios",
    )
    args = parser.parse_args(argv)
    require_tools()
    args.load = os.getloadavg()[0]  # other work on the machine skews every figure
    os.environ["GIT_OPTIONAL_LOCKS"] = "0"
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as work:
        if args.against is not None:
            print(report_against(run_against(args, Path(work)), args))
            return 0
        rows, pairs = run(args, Path(work))
    print(report(rows, pairs, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
