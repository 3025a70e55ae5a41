"""What evaluating rules per request costs the server, against answering a static flag.

    python bench/evaluate_bench.py [--flags 2000] [--ruled 500] [--seed 1] [--requests 300]

A synthetic tree of --flags flags (bench/gen_tree.py: 5 environments x 20 applications,
about three dependencies a flag) gets rules on --ruled of the flags that depend on nothing:
`country in NL, BE` and `plan not free and app_version >=2.3.0` serve on, and, for flags no
other flag depends on, a 30% rollout. It is built with `flagc build` and loaded as
flagserve loads a build (core.snapshot.load), then, in this one process, through the Falcon
app (falcon.testing, no sockets, so the figures are the server's CPU and nothing else):

- OFREP single: `POST /ofrep/v1/evaluate/flags/{key}` for a flag with two rules and a
  rollout, a different targetingKey each request, against the same for a flag with no
  rules (answered from a body made once): requests a second of each, and the ratio;
- OFREP bulk: every flag for one context, a different targetingKey each request: CPU
  milliseconds a request (time.process_time), against the bulk answer of a cell whose
  flags depend on no context.

Each figure is the best of three rounds of --requests requests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import falcon.testing

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_tree import add_rules, generate
from server.app import create_app
from server.store import Store


def rate(
    client: falcon.testing.TestClient,
    path: str,
    requests: int,
    body: Callable[[int], dict[str, Any]],
) -> float:
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for n in range(requests):
            result = client.simulate_post(path, json=body(n))
            assert result.status_code == 200, result.text
        best = max(best, requests / (time.perf_counter() - started))
    return best


def cpu_ms(
    client: falcon.testing.TestClient, requests: int, body: Callable[[int], dict[str, Any]]
) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for n in range(requests):
            result = client.simulate_post("/ofrep/v1/evaluate/flags", json=body(n))
            assert result.status_code == 200, result.text
        best = min(best, (time.process_time() - started) / requests * 1000)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=2000)
    parser.add_argument("--ruled", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=300)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "flags"
        generate(options.flags, tree, options.seed)
        ruled = add_rules(tree, options.ruled)
        out = Path(scratch) / "out"
        subprocess.run(
            [sys.executable, "-m", "compiler", "build", str(tree), "-o", str(out)], check=True
        )
        store = Store(out)
        store.start()
        snapshot = store.current
        client = falcon.testing.TestClient(create_app(store))
        environment = snapshot.environments[-1]
        static = next(key for key in snapshot.keys if key not in set(ruled))

        def context(n: int) -> dict[str, Any]:
            return {
                "context": {
                    "targetingKey": f"user-{n}",
                    "environment": environment,
                    "plan": "pro",
                    "app_version": "2.2.0",
                    "country": "DE",
                }
            }

        single = f"/ofrep/v1/evaluate/flags/{ruled[0]}"
        ruled_rate = rate(client, single, options.requests, context)
        static_rate = rate(client, f"/ofrep/v1/evaluate/flags/{static}", options.requests, context)
        targeted = len(snapshot.evaluator.targeted(environment, None))
        bulk = cpu_ms(client, options.requests // 10, context)
        print(
            f"{options.flags} flags, {len(ruled)} with rules "
            f"({targeted} depend on the context in {environment})"
        )
        print(f"OFREP single, ruled flag (2 rules + rollout): {ruled_rate:,.0f} req/s")
        print(f"OFREP single, static flag:                    {static_rate:,.0f} req/s")
        print(f"  ratio ruled/static: {ruled_rate / static_rate:.0%} (target: at least 80%)")
        print(
            f"OFREP bulk, one context over every flag: {bulk:.2f} ms CPU a request "
            "(target: at most 5 ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
