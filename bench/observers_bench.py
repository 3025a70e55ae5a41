"""What the access log and the metrics cost a flagserve worker per request, in-process.

    python bench/observers_bench.py [--observe both|log|metrics|none] [--format text|json]
                                    [--seconds 3] [--rounds 5]
    FLAGSERVE_TREE=/other/checkout python bench/observers_bench.py   # another version's code

A gthread worker's 4 request threads are simulated: each loops on about 150 us of Python
work (a request's share of the interpreter) and then calls `server.logs.note_access` (the
worker's access-log hand-off started, lines written to /dev/null) and
`server.metrics.note_request` (prometheus_client in multiprocess mode, flushed every
second as in a worker). Printed per round: requests a second, process CPU per request (all
threads: the request threads, the log's writer, the metrics' flusher) and voluntary context
switches per request (waits for the GIL or a lock), then the median of the rounds, with
both observers, one of them, or neither (`--observe`). Run it for two versions on the same
quiet machine, interleaved, and compare the medians; bench/serve_bench.py measures the
whole server.
"""

from __future__ import annotations

import argparse
import logging.config
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="observers-bench-")
sys.path.insert(0, os.environ.get("FLAGSERVE_TREE", str(Path(__file__).resolve().parents[1])))

import falcon
import falcon.testing

from server import logs, metrics

THREADS = 4
Observe = Callable[[falcon.Request, falcon.Response, float], None]
OBSERVERS: dict[str, list[Observe]] = {
    "both": [logs.note_access, metrics.note_request],
    "log": [logs.note_access],
    "metrics": [metrics.note_request],
    "none": [],
}


def work() -> int:
    """About 150 us of interpreter work (calibrated on a 2-core machine)."""
    return sum(i * i for i in range(3000))


def round_of(observers: list[Observe], seconds: float) -> tuple[float, float, float]:
    """(requests a second, CPU us a request, voluntary switches a request) of one round."""
    req = falcon.testing.create_req(path="/api/v1/environments/production/flags")
    req.context.request_id = "0123456789abcdef0123456789abcdef"
    req.uri_template = "/api/v1/environments/{environment}/flags"
    resp = falcon.Response()
    counts = [0] * THREADS
    stop = time.perf_counter() + seconds

    def loop(index: int) -> None:
        while time.perf_counter() < stop:
            work()
            for observe in observers:
                observe(req, resp, 0.000123)
            counts[index] += 1

    threads = [threading.Thread(target=loop, args=(index,)) for index in range(THREADS)]
    cpu, before = time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = sum(counts)
    cpu = (time.process_time() - cpu) / done * 1e6
    switches = (resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - before.ru_nvcsw) / done
    return done / seconds, cpu, switches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--observe", choices=tuple(OBSERVERS), default="both")
    args = parser.parse_args()
    logging.config.dictConfig(logs.config(args.format))
    sink = Path(os.devnull).open("w")  # noqa: SIM115 - open for the whole run
    for handler in logs.access_log.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)
    logs.hand_off_access_log()
    metrics.start_flushing()
    observers = OBSERVERS[args.observe]
    results = [round_of(observers, args.seconds) for _ in range(args.rounds)]
    for rate, cpu, switches in results:
        print(f"  {rate:8,.0f} req/s  {cpu:6.1f} us CPU/request  {switches:.2f} switches/request")
    rate, cpu, switches = (statistics.median(column) for column in zip(*results, strict=True))
    what = f"observe {args.observe} ({args.format})"
    print(f"{what}: median {rate:,.0f} req/s, {cpu:.1f} us CPU/request, {switches:.2f} switches")


if __name__ == "__main__":
    main()
