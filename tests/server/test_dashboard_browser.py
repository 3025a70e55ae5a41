"""The dashboard in a real browser: Playwright driving Debian's chromium (never a
downloaded one) against a real flagserve process serving a real build. A screenshot of
each page is saved under the test's temporary directory."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.dashboard import overview
from tests.server.conftest import Built, Live, start_server, stop_server
from tests.server.helpers import HOSTILE

# Debian's chromium; elsewhere (a GitHub runner has Google Chrome) GITFLAGS_CHROMIUM names it.
CHROMIUM = Path(os.environ.get("GITFLAGS_CHROMIUM", "/usr/bin/chromium"))
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no {CHROMIUM}: apt-get install chromium, or set GITFLAGS_CHROMIUM to a Chromium "
    "or Chrome binary (CI's .ci/run installs chromium)",
)

if CHROMIUM.exists():
    from playwright.sync_api import Browser, Page, sync_playwright
    from playwright.sync_api import expect as page_expect

TIMEOUT_MS = 30_000  # a loaded 2-core machine


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def hostile(built: Built, tmp_path: Path) -> Iterator[Live]:
    """flagserve serving the fixture plus a flag whose description and commit message are
    script, which must stay text."""
    built.commit(
        f"Add the hostile flag {HOSTILE}\n\n<img src=x onerror=\"document.title='img'\">",
        {
            "growth/hostile.yaml": (
                f'description: "{HOSTILE}<img src=x onerror=alert(1)>"\n'
                "owner: team-growth\nenabled: true\n"
            )
        },
    )
    server = start_server(built.out, tmp_path / "flagserve.log")
    yield server
    stop_server(server)


@pytest.fixture
def many(built: Built, tmp_path: Path) -> Iterator[Live]:
    """flagserve serving the fixture's 3 flags plus 202 more: two pages of the overview,
    the second holding bulk-199, bulk-200, bulk-201, new-checkout and pricing-engine."""
    assert overview.ROWS_PER_PAGE == 200
    built.commit(
        "Add 202 bulk flags",
        {
            f"bulk/bulk-{number:03}.yaml": (
                f"description: Bulk flag {number}\nowner: team-bulk\nenabled: true\ntags: [bulk]\n"
            )
            for number in range(202)
        },
    )
    server = start_server(built.out, tmp_path / "flagserve.log")
    yield server
    stop_server(server)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    assert dialogs == [], f"a script ran and opened dialogs: {dialogs}"
    context.close()


def _cell(page: Page, key: str, column: int) -> str:
    row = page.locator("#flags tbody tr", has=page.locator(f'a[href="/flags/{key}"]'))
    return row.locator("td.on, td.off").nth(column).inner_text()


def test_the_overview_shows_values_and_filters_as_you_type(
    page: Page, hostile: Live, tmp_path: Path
) -> None:
    page.goto(hostile.url + "/")
    # columns: development (none, web, ios, android), staging (...), production (...)
    assert _cell(page, "new-checkout", 2) == "on"  # development/ios: applications.ios
    assert _cell(page, "new-checkout", 8) == "off"  # production, no application
    assert _cell(page, "new-checkout", 9) == "on"  # production/web
    production_web = page.locator(
        "#flags tbody tr", has=page.locator('a[href="/flags/new-checkout"]')
    )
    assert production_web.locator("td.on, td.off").nth(9).get_attribute(
        "title", timeout=TIMEOUT_MS
    ) == ("environment-application")
    page.screenshot(path=tmp_path / "overview.png", full_page=True)
    rows = page.locator("#flags tbody tr:not(.hidden)")
    page_expect(rows).to_have_count(4)
    page.fill("#q", "shipping")
    page_expect(rows).to_have_count(1)
    assert rows.first.locator("th.key a").inner_text() == "banner"
    page_expect(page.locator("#count")).to_have_text("1 of 4 flags")
    page.fill("#q", "")
    page.select_option("#tag", "checkout")
    page_expect(rows).to_have_count(1)
    assert rows.first.locator("th.key a").inner_text() == "new-checkout"
    page.screenshot(path=tmp_path / "overview-filtered.png", full_page=True)
    assert (tmp_path / "overview.png").stat().st_size > 0


def test_the_flag_page_shows_history_with_actor_and_reason(
    page: Page, hostile: Live, tmp_path: Path
) -> None:
    page.goto(hostile.url + "/flags/new-checkout")
    entry = page.locator("li.entry").first
    page_expect(entry.locator(".actor")).to_have_text("Ada Lovelace")
    page_expect(entry.locator(".reason")).to_have_text(
        "Launch the new checkout on web in production"
    )
    assert page.locator("figure.graph svg").count() == 1
    page.screenshot(path=tmp_path / "flag.png", full_page=True)
    page.goto(hostile.url + "/audit")
    page_expect(page.locator("li.entry")).to_have_count(5)  # 4 files, 3 commits
    page.screenshot(path=tmp_path / "audit.png", full_page=True)
    page.goto(hostile.url + "/graph")
    page.locator("figure.graph svg g.node", has_text="pricing-engine").click()
    page.wait_for_url("**/flags/pricing-engine")
    page.screenshot(path=tmp_path / "graph-click.png", full_page=True)
    page.goto(hostile.url + "/graph")
    page.screenshot(path=tmp_path / "graph.png", full_page=True)
    for name in ("flag", "audit", "graph"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0


def test_script_in_descriptions_and_messages_does_not_run(
    page: Page, hostile: Live, tmp_path: Path
) -> None:
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    for path in ("/", "/flags/hostile", "/audit"):
        page.goto(hostile.url + path)
        page.wait_for_load_state("load")
        assert page.title() != "pwned" and page.title() != "img", path
        assert page.evaluate("document.querySelectorAll('main script, main img').length") == 0
    page_expect(page.locator("li.entry .reason").first).to_contain_text("<script>document.title")
    page.goto(hostile.url + "/flags/hostile")
    page_expect(page.locator("p.description")).to_contain_text(HOSTILE)
    page.screenshot(path=tmp_path / "hostile.png", full_page=True)


def test_the_overview_pages_its_rows_and_the_form_searches_every_page(
    page: Page, many: Live, tmp_path: Path
) -> None:
    page.goto(many.url + "/")
    rows = page.locator("#flags tbody tr:not(.hidden)")
    count = page.locator("#count")
    page_expect(rows).to_have_count(200)
    page_expect(count).to_have_text("shown 1-200 of 205 flags")
    page.screenshot(path=tmp_path / "overview-page-1.png")
    # typing filters this page only, and says so; Enter asks the server about every flag
    page.fill("#q", "pricing")
    page_expect(rows).to_have_count(0)
    page_expect(count).to_have_text(
        "0 of the 200 flags on this page match; press Enter to search every page"
    )
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"/\?q=pricing&"))  # the form's empty fields too
    page_expect(rows).to_have_count(1)
    assert rows.first.locator("th.key a").inner_text() == "pricing-engine"
    page_expect(count).to_have_text("1 of 205 flags")
    # the next page keeps the sort; a tag chosen on a paged overview asks the server
    page.goto(many.url + "/?sort=expires")
    page.locator("nav.pages a[rel=next]").click()
    page.wait_for_url("**/?sort=expires&page=2")
    page_expect(rows).to_have_count(5)
    page_expect(count).to_have_text("shown 201-205 of 205 flags")
    page.select_option("#tag", "checkout")
    page.wait_for_url(re.compile(r"/\?q=&tag=checkout&.*sort=expires$"))
    page_expect(rows).to_have_count(1)
    assert rows.first.locator("th.key a").inner_text() == "new-checkout"
    assert (tmp_path / "overview-page-1.png").stat().st_size > 0
