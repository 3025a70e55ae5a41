"""Pages in a real browser: Playwright driving Debian's chromium (never a downloaded one),
and a page that evaluates flags with OpenFeature's web SDK and OFREP web provider, the
unmodified npm packages tests/js's lock installs (`make setup` runs `npm ci` there).

flagserve sends no CORS headers, so the provider must talk to it from its own origin: the
page and the packages' ES modules are served under flagserve's URL, at /__browser__/, by
Playwright's request routing, and never reach flagserve; everything else the page asks for
(OFREP's requests, its event stream) does. A test module takes the fixtures by name
(`browser = shared.browser`, after `from tests.server import browser as shared`): pytest
finds fixtures in a conftest.py or the test's own module, and this module is neither."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    Response,
    Route,
    sync_playwright,
)

from tests.server.conftest import ROOT, Live

# Debian's chromium; elsewhere (a GitHub runner has Google Chrome) GITFLAGS_CHROMIUM names it.
CHROMIUM = Path(os.environ.get("GITFLAGS_CHROMIUM", "/usr/bin/chromium"))
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
TIMEOUT_MS = 30_000  # a loaded 2-core machine

NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no {CHROMIUM}: apt-get install chromium, or set GITFLAGS_CHROMIUM to a Chromium "
    "or Chrome binary (CI's .ci/run installs chromium)",
)

NODE_MODULES = ROOT / "tests" / "js" / "node_modules"
# Each bare specifier the packages import, and its ES module entry (their package.json's
# `exports.import`, or `module` where `exports.import` is a CommonJS wrapper).
MODULES = {
    "@openfeature/core": "@openfeature/core/dist/esm/index.js",
    "@openfeature/web-sdk": "@openfeature/web-sdk/dist/esm/index.js",
    "@openfeature/ofrep-core": "@openfeature/ofrep-core/index.esm.js",
    "@openfeature/ofrep-web-provider": "@openfeature/ofrep-web-provider/index.esm.js",
}
NEEDS_NPM = pytest.mark.skipif(
    not all((NODE_MODULES / entry).is_file() for entry in MODULES.values()),
    reason=f"no OpenFeature web packages in {NODE_MODULES}: `make setup` installs them "
    "(npm ci in tests/js, which needs npm: apt-get install nodejs npm)",
)

ROUTED = "/__browser__/"  # below flagserve's origin, answered by Playwright
PAGE = ROUTED + "ofrep.html"
BULK = "/ofrep/v1/evaluate/flags"
EVENTS = "/ofrep/v1/events"

IMPORTS = "".join(
    f'\n      "{name}": "{ROUTED}modules/{entry}",' for name, entry in MODULES.items()
).rstrip(",")

# The query string names the context (environment, application, targetingKey) and the API
# key; the page reports its provider's start as `window.started` ("ready" or the error).
OFREP_PAGE = f"""<!doctype html>
<meta charset="utf-8">
<title>OFREP web provider</title>
<script type="importmap">
  {{"imports": {{{IMPORTS}
  }}}}
</script>
<script type="module">
  import {{ OpenFeature, ProviderEvents }} from "@openfeature/web-sdk";
  import {{ OFREPWebProvider }} from "@openfeature/ofrep-web-provider";

  const query = new URLSearchParams(location.search);
  const context = {{ targetingKey: query.get("targetingKey") }};
  for (const name of ["environment", "application"]) {{
    if (query.has(name)) context[name] = query.get(name);
  }}
  const headers = query.has("key") ? [["Authorization", `Bearer ${{query.get("key")}}`]] : [];
  const client = OpenFeature.getClient();
  window.changes = [];
  OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, (details) => {{
    window.changes.push({{ at: Date.now(), flags: details.flagsChanged ?? [] }});
  }});
  window.flagValue = (key) => client.getBooleanValue(key, false);
  window.flagDetails = (key) => {{
    const {{ flagKey, value, variant, reason, errorCode, flagMetadata }} =
      client.getBooleanDetails(key, false);
    return {{ flagKey, value, variant, reason, errorCode, flagMetadata }};
  }};
  try {{
    await OpenFeature.setContext(context);
    await OpenFeature.setProviderAndWait(
      new OFREPWebProvider({{ baseUrl: location.origin, headers }}));
    window.started = "ready";
  }} catch (error) {{
    window.started = `${{error.name}}: ${{error.message}}`;
  }}
</script>
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


def _answer(route: Route) -> None:
    """The page, or a package's file below node_modules; nothing else (a 404)."""
    path = urlsplit(route.request.url).path.removeprefix(ROUTED)
    if path == "ofrep.html":
        route.fulfill(body=OFREP_PAGE, content_type="text/html; charset=utf-8")
        return
    found = (NODE_MODULES / path.removeprefix("modules/")).resolve()
    if path.startswith("modules/") and found.is_relative_to(NODE_MODULES) and found.is_file():
        route.fulfill(path=found, content_type="text/javascript; charset=utf-8")
    else:
        route.fulfill(status=404, body="not routed")


@dataclass
class OfrepPage:
    """A page whose OpenFeature client evaluates with the OFREP web provider against a
    flagserve, and every request it sent there and answer it had (the routed files left out)."""

    page: Page
    sent: list[Request] = field(default_factory=list)
    answered: list[Response] = field(default_factory=list)

    @property
    def started(self) -> str:
        """ "ready", or the error that setting the provider ended with."""
        started: str = self.page.evaluate("window.started")
        return started

    def value(self, key: str) -> bool:
        value: bool = self.page.evaluate("key => window.flagValue(key)", key)
        return value

    def details(self, key: str) -> dict[str, Any]:
        """The client's evaluation details (an `undefined` field is left out)."""
        details: dict[str, Any] = self.page.evaluate("key => window.flagDetails(key)", key)
        return details

    def changes(self) -> list[dict[str, Any]]:
        """The PROVIDER_CONFIGURATION_CHANGED events so far: {at: ms since the epoch, flags}."""
        changes: list[dict[str, Any]] = self.page.evaluate("window.changes")
        return changes

    def bulk_requests(self) -> list[Request]:
        """Every bulk evaluation the provider asked for, in order."""
        return [r for r in self.sent if r.method == "POST" and urlsplit(r.url).path == BULK]

    def stream_requests(self) -> list[Request]:
        return [r for r in self.sent if urlsplit(r.url).path == EVENTS]

    def timeline(self, since: float) -> str:
        """Each request sent, a line each: when (ms after `since`, seconds since the epoch),
        its method and its path and query, for a failure's message."""
        return "\n".join(
            f"{r.timing['startTime'] - since * 1000:+8.0f} ms {r.method} "
            + urlsplit(r.url)._replace(scheme="", netloc="").geturl()
            for r in self.sent
        )

    def wait_for_stream(self) -> Response:
        """The event stream's answer, once flagserve has sent its headers (from then on a
        build is pushed to the page)."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not (found := [r for r in self.answered if urlsplit(r.url).path == EVENTS]):
            assert time.monotonic() < deadline, (
                f"no event stream was answered; the provider asked for {[r.url for r in self.sent]}"
            )
            self.page.wait_for_timeout(20)  # the sync API delivers events only while it waits
        return found[0]

    def _record(self, request: Request) -> None:
        if ROUTED not in request.url:
            self.sent.append(request)

    def _record_answer(self, response: Response) -> None:
        if ROUTED not in response.url:
            self.answered.append(response)


OpenOfrep = Callable[..., OfrepPage]


@pytest.fixture
def ofrep_pages(browser: Browser) -> Iterator[OpenOfrep]:
    """Opens OFREP pages: `open(live, environment, application=None, key=None,
    targeting_key="user-1")` returns one whose provider has started (or failed to), each in a
    browser context of its own (the provider caches flags in localStorage)."""
    contexts: list[BrowserContext] = []

    def open_page(
        live: Live,
        environment: str,
        application: str | None = None,
        key: str | None = None,
        targeting_key: str = "user-1",
    ) -> OfrepPage:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        opened = OfrepPage(page)
        page.route(f"{live.url}{ROUTED}**", _answer)
        page.on("request", opened._record)
        page.on("response", opened._record_answer)
        query = {"environment": environment, "targetingKey": targeting_key}
        query |= {"application": application} if application else {}
        query |= {"key": key} if key else {}
        page.goto(f"{live.url}{PAGE}?{urlencode(query)}")
        page.wait_for_function("() => window.started !== undefined")
        return opened

    yield open_page
    for context in contexts:
        context.close()
