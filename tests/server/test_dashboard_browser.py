"""The dashboard in a real browser: Playwright driving Debian's chromium (never a
downloaded one) against a real flagserve process serving a real build. A screenshot of
each page is saved under the test's temporary directory."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from playwright.sync_api import expect as page_expect

from server.dashboard import overview
from tests.server import browser as shared
from tests.server.browser import NEEDS_CHROMIUM, TIMEOUT_MS
from tests.server.conftest import ROOT, Built, Live, built_in_git, start_server, stop_server
from tests.server.helpers import GATED, HOSTILE

pytestmark = NEEDS_CHROMIUM
browser = shared.browser  # the fixture, found here by name

CSP = "Content Security Policy"  # in chromium's console message for each violation


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


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Live]:
    """flagserve serving the project's example tree (typed flags, rules, rollouts) plus
    GATED (a flag that depends on the context only through its dependency)."""
    tree = ROOT / "flags"
    files = {
        str(path.relative_to(tree)): path.read_text(encoding="utf-8")
        for path in tree.rglob("*.yaml")
    }
    server = start_server(built_in_git(tmp_path, {**files, **GATED}), tmp_path / "flagserve.log")
    yield server
    stop_server(server)


def _console(page: Page) -> list[str]:
    """The console's messages from now on (chromium reports each CSP violation there)."""
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    return messages


def _fact(page: Page, name: str) -> str:
    return page.locator(f'dl.facts dt:text-is("{name}") + dd').inner_text()


def _row(page: Page, environment: str) -> list[tuple[str, str]]:
    """The flag page's cells in `environment`: (classes, value shown), the application-less
    cell first."""
    row = page.locator("table.values tbody tr", has=page.locator(f'th:text-is("{environment}")'))
    return [
        (cell.get_attribute("class") or "", cell.evaluate("td => td.firstChild.textContent"))
        for cell in row.locator("td").all()
    ]


def test_a_typed_flags_page_shows_variants_rules_and_rollout_bars_within_the_csp(
    page: Page, example: Live, tmp_path: Path
) -> None:
    console = _console(page)
    page.goto(example.url + "/flags/checkout-button-colour")
    assert _fact(page, "Type") == "string"
    page_expect(page.locator("code.variant")).to_have_text(['blue: "#1f6feb"', 'green: "#2da44e"'])
    rules = page.locator("ol.rules li")
    page_expect(rules).to_contain_text(  # the second also holds its bar's titles
        [
            "app_version >=2.3.0 and country in NL, BE and plan not in free: serve green",
            "everyone: rollout by targetingKey blue 90%, green 10%",
        ]
    )
    bar = rules.nth(1).locator("svg.rollout")
    page_expect(bar).to_be_visible()
    box = bar.bounding_box()
    widths = [rect.bounding_box()["width"] for rect in bar.locator("rect").all()]  # type: ignore[index]
    assert box is not None and len(widths) == 2
    assert widths[0] / sum(widths) == pytest.approx(0.9, abs=0.01)  # blue, then green
    assert sum(widths) == pytest.approx(box["width"] - 2, abs=1)  # the bar, within its border
    fills = {
        rect.evaluate("rect => getComputedStyle(rect).fill") for rect in bar.locator("rect").all()
    }
    assert len(fills) == 2  # neither is `off`, yet each share shows
    assert _row(page, "development") == [("on", "green")] * 4
    assert _row(page, "production") == [("on targeted", "blue*")] * 4
    page.screenshot(path=tmp_path / "typed-flag.png", full_page=True)
    page.goto(example.url + "/flags/search-page-size")
    assert _fact(page, "Type") == "integer"
    page_expect(page.locator("code.variant")).to_have_text(["large: 50", "standard: 20"])
    assert "standard: 20 (default)" in _fact(page, "Variants")
    page_expect(page.locator("ol.rules li").first).to_have_text(
        "email ends with @example.com: serve large"
    )
    assert _row(page, "staging") == [("on targeted", "standard*")] * 4
    assert [message for message in console if CSP in message] == []
    # the check sees a violation: an inline style, which the policy refuses
    with page.expect_console_message(lambda message: CSP in message.text):
        page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">')")


def test_rollout_bars_show_on_and_off_in_their_colours(page: Page, example: Live) -> None:
    console = _console(page)
    page.goto(example.url + "/flags/new-search")
    assert _fact(page, "Default") == "off (enabled: false)"
    rects = page.locator("svg.rollout rect")
    page_expect(rects).to_have_count(2)
    assert [rect.get_attribute("width") for rect in rects.all()] == ["25", "75"]
    on, off = (rect.evaluate("rect => getComputedStyle(rect).fill") for rect in rects.all())
    assert on == "rgb(26, 127, 55)" and off == "rgb(243, 244, 246)"  # the stylesheet applies
    on_width, off_width = (rect.bounding_box()["width"] for rect in rects.all())  # type: ignore[index]
    assert on_width / (on_width + off_width) == pytest.approx(0.25, abs=0.01)
    assert _row(page, "production") == [("off targeted", "off*")] * 4
    assert _row(page, "development") == [("on", "on")] * 4
    assert [message for message in console if CSP in message] == []


ENVIRONMENTS = ("development", "staging", "production")  # flags/_project.yaml
APPLICATIONS = (None, "web", "ios", "android")


def test_the_overview_marks_exactly_the_cells_the_flat_maps_call_targeted(
    page: Page, example: Live, tmp_path: Path
) -> None:
    console = _console(page)
    targeted = {
        (environment, application): set(
            example.get(
                f"/api/v1/environments/{environment}/flags",
                params={"application": application} if application else {},
            ).json()["targeted"]
        )
        for environment in ENVIRONMENTS
        for application in APPLICATIONS
    }
    page.goto(example.url + "/")
    marked = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#flags tbody tr')].map(
            row => [row.querySelector('th.key a').textContent,
                    [...row.querySelectorAll('td.on, td.off')].map(
                        cell => cell.classList.contains('targeted'))]))"""
    )
    columns = list(targeted)
    assert len(marked) == 23  # 21 example flags and GATED's 2
    for key, cells in marked.items():
        assert cells == [key in targeted[column] for column in columns], key
    assert "search-results" in targeted["production", "web"]
    assert "search-results" not in targeted["production", "ios"]  # off, whatever it needs
    results = page.locator("#flags tbody tr", has=page.locator('a[href="/flags/search-results"]'))
    web = results.locator("td.on, td.off").nth(columns.index(("production", "web")))
    page_expect(web).to_have_text("on*")
    page_expect(web).to_have_attribute(
        "title", f"default; {overview.TARGETED}: through dependency search-ranking"
    )
    page.screenshot(path=tmp_path / "overview-targeted.png", full_page=True)
    assert [message for message in console if CSP in message] == []
