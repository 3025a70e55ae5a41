"""How heavy the dashboard's pages are at scale: `python bench/dashboard_bench.py [--flags N]
[--ruled R]`.

A synthetic tree (bench/gen_tree.py: N flags, 5 environments x 20 applications, about three
dependencies a flag; with --ruled R, rules on R of them) is built with flagc, then each page
is rendered in-process (Falcon's test client over the real Store: the first, cold render,
then a kept one) and its size measured raw and gzipped; then, when /usr/bin/chromium
exists, a real flagserve serves it and headless chromium (Playwright) loads each page,
timing navigation to the `load` event.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import falcon.testing
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from gen_tree import add_rules, generate  # noqa: E402

from compiler.cli import main as flagc  # noqa: E402
from server.app import create_app  # noqa: E402
from server.store import Store  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")


def pages(store: Store) -> list[str]:
    keys = sorted(store.current.flags)
    busiest = max(keys, key=lambda key: len(store.current.flags[key]["dependents"]))
    return ["/", "/?environment=production", f"/flags/{busiest}", "/audit", "/graph"]


def in_process(store: Store) -> None:
    client = falcon.testing.TestClient(create_app(store))
    print(f"{'page':<40} {'cold ms':>8} {'kept ms':>8} {'bytes':>10} {'gzip':>8}")
    for path in pages(store):
        path_only, _, query = path.partition("?")
        timings = []
        for _ in range(2):
            started = time.perf_counter()
            plain = client.simulate_get(path_only, query_string=query)
            timings.append((time.perf_counter() - started) * 1000)
        zipped = client.simulate_get(
            path_only, query_string=query, headers={"Accept-Encoding": "gzip"}
        )
        print(
            f"{path[:40]:<40} {timings[0]:8.0f} {timings[1]:8.1f} "
            f"{len(plain.content):10,} {len(zipped.content):8,}"
        )


def in_browser(out: Path, store: Store) -> None:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (only with chromium)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FLAGSERVE_BIND": f"127.0.0.1:{port}", "FLAGSERVE_WORKERS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "server", str(out)], cwd=ROOT, env=env)
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/readyz", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        for path in pages(store):  # warm: the server keeps each page once rendered
            requests.get(url + path, timeout=120)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            print(f"\n{'page in chromium':<40} {'load ms':>8} {'rows':>6} {'cells':>8}")
            for path in pages(store):
                started = time.perf_counter()
                page.goto(url + path, wait_until="load", timeout=120_000)
                elapsed = (time.perf_counter() - started) * 1000
                rows = page.locator("tbody tr").count()
                cells = page.locator("td.on, td.off").count()
                print(f"{path[:40]:<40} {elapsed:8.0f} {rows:6} {cells:8,}")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=2000)
    parser.add_argument(
        "--ruled", type=int, default=0, help="flags given rules (gen_tree.add_rules; default 0)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tree, out = Path(scratch) / "flags", Path(scratch) / "out"
        generate(args.flags, tree)
        add_rules(tree, args.ruled)
        if flagc(["build", str(tree), "-o", str(out)]) != 0:
            return 1
        store = Store(out)
        store.start()
        in_process(store)
        if CHROMIUM.exists():
            in_browser(out, store)
        else:
            print("no /usr/bin/chromium (apt-get install chromium): browser timings skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
