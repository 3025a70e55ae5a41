"""The dashboard's pages through Falcon's test client over a real Store of a real build:
cell values, filters, paging of the overview (and which pages are kept), escaping of flag
data and commit messages, the unknown flag page, the pages' CSP, links to the repository and
access control with API keys. (ETag, 304, gzip and HEAD: tests/server/test_send.py.)"""

from __future__ import annotations

import base64
import datetime as dt
import html as html_text
import re
from html.parser import HTMLParser

import falcon.testing
import pytest

from server import dashboard
from server.app import create_app
from server.auth import AccessControl, ApiKey, KeyRing, digest
from server.dashboard import overview, views
from server.settings import Settings, SettingsError
from server.store import Store
from tests.server.conftest import FLAGS, Built, is_kept
from tests.server.helpers import GATED, HOSTILE

HOSTILE_YAML = f'description: "{HOSTILE} & <b>bold</b>"\n'
REPO = "https://example.com/org/flags"


class _Matrix(HTMLParser):
    """The overview's table: {flag: [(class, title, text) per cell]} and the headers."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[tuple[str, str, str]]] = {}
        self.headers: list[str] = []
        self._key: str | None = None
        self._cell: list[str] | None = None
        self._in_thead = False
        self._in_key_link = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "thead":
            self._in_thead = True
        elif tag == "a" and (found.get("href") or "").startswith("/flags/") and self._key is None:
            self._key, self._in_key_link = found["href"].removeprefix("/flags/"), True  # type: ignore[union-attr]
        elif tag == "td" and self._key is not None and _state(found.get("class")):
            self._cell = [found.get("class") or "", found.get("title") or "", ""]
        elif tag == "th" and self._in_thead:
            self.headers.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "thead":
            self._in_thead = False
        elif tag == "td" and self._cell is not None and self._key is not None:
            self.rows.setdefault(self._key, []).append(
                (self._cell[0], self._cell[1], self._cell[2])
            )
            self._cell = None
        elif tag == "tr":
            self._key = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[2] += data
        elif self._in_thead and self.headers:
            self.headers[-1] += data.strip()


def _state(classes: str | None) -> bool:
    """Whether a cell's classes start with on or off (a targeted cell also has `targeted`)."""
    return (classes or "").split(" ")[0] in ("on", "off")


def matrix(html: str) -> _Matrix:
    parsed = _Matrix()
    parsed.feed(html.split('<table id="flags">', 1)[1])
    return parsed


# Columns of the 3 x 3 fixture: each environment, then its applications.
COLUMNS = [
    (environment, application)
    for environment in ("development", "staging", "production")
    for application in (None, "web", "ios", "android")
]


@pytest.mark.parametrize(
    ("key", "environment", "application", "value", "source"),
    [
        ("new-checkout", "development", None, "off", "default"),
        ("new-checkout", "development", "ios", "on", "application"),
        ("new-checkout", "staging", "android", "on", "environment"),
        ("new-checkout", "production", None, "off", "environment"),
        ("new-checkout", "production", "web", "on", "environment-application"),
        ("new-checkout", "production", "ios", "off", "environment"),
        ("banner", "development", "web", "on", "environment"),
        ("banner", "production", "web", "off", "default"),
        ("pricing-engine", "production", "android", "on", "default"),
    ],
)
def test_the_overview_shows_each_value_and_the_level_that_decided_it(
    client: falcon.testing.TestClient,
    key: str,
    environment: str,
    application: str | None,
    value: str,
    source: str,
) -> None:
    found = matrix(client.simulate_get("/").text)
    cls, title, text = found.rows[key][COLUMNS.index((environment, application))]
    assert (cls, text, title.split(":")[0]) == (value, value, source)


def test_the_overview_lists_every_flag_with_owner_tags_and_the_filters_choices(
    client: falcon.testing.TestClient,
) -> None:
    html = client.simulate_get("/").text
    assert sorted(matrix(html).rows) == ["banner", "new-checkout", "pricing-engine"]
    assert "3 of 3 flags" in html
    for choice in (
        "<option>checkout</option>",
        "<option>team-growth</option>",
        "<option>production</option>",
    ):
        assert choice in html
    assert '<span class="tag">q3</span>' in html


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("tag=checkout", ["new-checkout"]),
        ("owner=team-growth", ["banner"]),
        ("q=SHIPPING", ["banner"]),  # the description, any case
        ("q=platform", ["pricing-engine"]),  # a tag
        ("tag=nothing", []),
        ("tag=platform&owner=team-growth", []),
    ],
)
def test_filters_narrow_the_rows(
    client: falcon.testing.TestClient, query: str, keys: list[str]
) -> None:
    assert sorted(matrix(client.simulate_get("/", query_string=query).text).rows) == keys


def test_an_environment_narrows_the_columns(client: falcon.testing.TestClient) -> None:
    found = matrix(client.simulate_get("/", query_string="environment=production").text)
    assert found.headers[-5:] == ["production", "(none)", "web", "ios", "android"]
    assert [text for _, _, text in found.rows["new-checkout"]] == ["off", "on", "off", "off"]


def test_sorting_by_owner(client: falcon.testing.TestClient) -> None:
    html = client.simulate_get("/", query_string="sort=owner").text
    assert list(matrix(html).rows) == ["new-checkout", "banner", "pricing-engine"]


@pytest.mark.parametrize(
    ("path", "query", "detail"),
    [
        ("/", "environment=moon", "There is no environment &#39;moon&#39;."),
        ("/", "sort=colour", "Sort by one of key, owner, expires, updated."),
        ("/", "page=0", "page must be a whole number from 1."),
        ("/", "page=-1", "page must be a whole number from 1."),
        ("/", "page=two", "page must be a whole number from 1."),
        ("/", "page=1.5", "page must be a whole number from 1."),
        ("/", "page=12345678901", "page must be a whole number from 1."),
        ("/audit", "offset=-1", "offset must be a whole number."),
        ("/flags/nope", "", "There is no flag &#39;nope&#39;."),
    ],
)
def test_bad_requests_and_unknown_flags_are_pages(
    client: falcon.testing.TestClient, path: str, query: str, detail: str
) -> None:
    result = client.simulate_get(path, query_string=query)
    assert result.status_code in (400, 404)
    assert result.headers["content-type"] == "text/html; charset=utf-8"
    assert f'<p class="problem">{detail}</p>' in result.text


# Five more flags (eight in all) and two rows a page: four pages, by key
# banner flag-a | flag-b flag-c | flag-d flag-e | new-checkout pricing-engine.
BULK = {
    f"bulk/flag-{letter}.yaml": (
        f"description: Bulk {letter}\nowner: team-{'bulk' if letter != 'e' else 'zed'}\n"
        "enabled: true\ntags: [bulk]\n"
    )
    for letter in "abcde"
}


@pytest.fixture
def paged(built: Built, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, falcon.testing.TestClient]:
    """The fixture plus BULK, two rows a page."""
    built.commit("Add five bulk flags", dict(BULK))
    monkeypatch.setattr(overview, "ROWS_PER_PAGE", 2)
    store = Store(built.out)
    store.start()
    return store, falcon.testing.TestClient(create_app(store))


def _pager(page: str) -> dict[str, str]:
    """The page links under the table: {"prev"/"next"/page number: href}, "current": n."""
    if '<nav class="pages"' not in page:
        return {}
    nav = page.split('<nav class="pages"', 1)[1].split("</nav>", 1)[0]
    links = {
        name or number: html_text.unescape(href)
        for name, href, number in re.findall(r'<a (?:rel="(\w+)" )?href="([^"]*)">(\w+)</a>', nav)
    }
    current = re.search(r'<strong aria-current="page">(\d+)</strong>', nav)
    return {**links, "current": current.group(1) if current else ""}


def _count(page: str) -> str:
    found = re.search(r'<output id="count"[^>]*>([^<]*)</output>', page)
    assert found, "no count"
    return found.group(1)


@pytest.mark.parametrize(
    ("query", "keys", "count", "links"),
    [
        (
            "",
            ["banner", "flag-a"],
            "shown 1-2 of 8 flags",
            {"2": "?page=2", "3": "?page=3", "4": "?page=4", "next": "?page=2", "current": "1"},
        ),
        (
            "page=2",
            ["flag-b", "flag-c"],
            "shown 3-4 of 8 flags",
            {
                "prev": "?",
                "1": "?",
                "3": "?page=3",
                "4": "?page=4",
                "next": "?page=3",
                "current": "2",
            },
        ),
        (
            "page=4",
            ["new-checkout", "pricing-engine"],
            "shown 7-8 of 8 flags",
            {"prev": "?page=3", "1": "?", "2": "?page=2", "3": "?page=3", "current": "4"},
        ),
        (  # past the last page: the last page
            "page=9",
            ["new-checkout", "pricing-engine"],
            "shown 7-8 of 8 flags",
            {"prev": "?page=3", "1": "?", "2": "?page=2", "3": "?page=3", "current": "4"},
        ),
        (  # filters apply to every flag before paging, and the links keep them
            "tag=bulk&sort=owner&page=2",
            ["flag-c", "flag-d"],
            "shown 3-4 of 5 matching (of 8 flags)",
            {
                "prev": "?tag=bulk&sort=owner",
                "1": "?tag=bulk&sort=owner",
                "3": "?tag=bulk&sort=owner&page=3",
                "next": "?tag=bulk&sort=owner&page=3",
                "current": "2",
            },
        ),
        (
            "q=BULK&owner=team-bulk&environment=production&page=2",
            ["flag-c", "flag-d"],
            "shown 3-4 of 4 matching (of 8 flags)",
            {
                "prev": "?q=BULK&owner=team-bulk&environment=production",
                "1": "?q=BULK&owner=team-bulk&environment=production",
                "current": "2",
            },
        ),
        ("sort=owner&page=4", ["pricing-engine", "flag-e"], "shown 7-8 of 8 flags", None),
        ("tag=bulk&page=3", ["flag-e"], "shown 5-5 of 5 matching (of 8 flags)", None),
        ("owner=team-zed", ["flag-e"], "1 of 8 flags", {}),  # one page: no links
    ],
)
def test_the_overview_shows_a_page_of_the_matching_flags_with_links_to_the_others(
    paged: tuple[Store, falcon.testing.TestClient],
    query: str,
    keys: list[str],
    count: str,
    links: dict[str, str] | None,
) -> None:
    result = paged[1].simulate_get("/", query_string=query)
    assert result.status_code == 200
    assert list(matrix(result.text).rows) == keys
    assert _count(result.text) == count
    if links is not None:
        assert _pager(result.text) == links


def test_links_that_reorder_start_again_at_page_one_and_others_keep_the_page(
    paged: tuple[Store, falcon.testing.TestClient],
) -> None:
    page = html_text.unescape(paged[1].simulate_get("/", query_string="tag=bulk&page=2").text)
    assert '<a href="?tag=bulk&sort=owner">Owner</a>' in page
    assert '<a href="?tag=bulk&sort=updated">last change</a>' in page
    assert '<a href="?tag=bulk&environment=staging&page=2">staging</a>' in page
    assert 'name="page"' not in page  # submitting the form starts at page one


def test_pages_are_kept_and_answer_304_but_pages_past_the_last_are_not_kept(
    paged: tuple[Store, falcon.testing.TestClient],
) -> None:
    store, client = paged
    first = client.simulate_get("/", query_string="page=3")
    again = client.simulate_get(
        "/", query_string="page=3", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    past = client.simulate_get("/", query_string="page=9")
    assert past.status_code == 200 and "shown 7-8 of 8" in past.text

    def kept(page: int) -> bool:
        day = dt.datetime.now(dt.UTC).date()
        return is_kept(store.current, ("dashboard", day, "overview", overview.Filters(page=page)))

    assert kept(3) and not kept(9)


@pytest.mark.parametrize(
    ("current", "last", "numbers"),
    [
        (1, 1, [1]),
        (1, 4, [1, 2, 3, 4]),
        (4, 4, [1, 2, 3, 4]),
        (1, 10, [1, 2, 3, None, 10]),
        (5, 10, [1, 2, 3, 4, 5, 6, 7, None, 10]),
        (6, 10, [1, None, 4, 5, 6, 7, 8, 9, 10]),
        (10, 10, [1, None, 8, 9, 10]),
        (250, 500, [1, None, 248, 249, 250, 251, 252, None, 500]),
    ],
)
def test_page_numbers_link_the_ends_and_the_pages_around_the_current_one(
    current: int, last: int, numbers: list[int | None]
) -> None:
    assert overview.page_numbers(current, last) == numbers


@pytest.mark.parametrize(("matching", "pages"), [(0, 1), (1, 1), (200, 1), (201, 2), (2000, 10)])
def test_last_page(matching: int, pages: int) -> None:
    assert overview.ROWS_PER_PAGE == 200
    assert overview.last_page(matching) == pages


def test_the_flag_page_shows_declared_and_resolved_values_dependencies_and_history(
    client: falcon.testing.TestClient,
) -> None:
    html = client.simulate_get("/flags/new-checkout").text
    assert "Single-page checkout" in html and "team-checkout" in html
    assert "<code>checkout/new-checkout.yaml</code>" in html and "blob/" not in html  # no URL
    # production/web: resolved on, declared on at that level
    assert re.search(r'title="environment-application: [^"]*">on<small class="declared">on<', html)
    assert '<a href="/flags/pricing-engine">pricing-engine</a> (directly)' in html
    assert "<svg" in html and 'xlink:href="/flags/pricing-engine"' in html
    assert '<span class="actor" title="ada@example.com">Ada Lovelace</span>' in html
    assert "Launch the new checkout on web in production" in html
    assert "Approved in CHG-1234." in html
    assert "<code>production/web</code>: (absent) → on" in html


def test_the_needed_flag_lists_what_needs_it(client: falcon.testing.TestClient) -> None:
    html = client.simulate_get("/flags/pricing-engine").text
    assert '<a href="/flags/new-checkout">new-checkout</a> (directly)' in html


def test_links_to_the_repository_when_its_url_is_set(store: Store) -> None:
    client = falcon.testing.TestClient(
        create_app(store, links=dashboard.SourceLinks(REPO, "flags"))
    )
    revision = store.current.revision
    html = client.simulate_get("/flags/new-checkout").text
    assert f'href="{REPO}/blob/{revision}/flags/checkout/new-checkout.yaml"' in html
    commit = store.current.entries[0]["commit"]
    assert f'href="{REPO}/commit/{commit}"' in html
    assert f'href="{REPO}/commit/{revision}"' in client.simulate_get("/").text  # the footer


@pytest.mark.parametrize(
    ("revision", "file"),
    [
        ("a" * 40, f"{REPO}/blob/{'a' * 40}/flags/x/y.yaml"),
        ("a" * 40 + "-dirty", f"{REPO}/blob/{'a' * 40}/flags/x/y.yaml"),
        ("content-0123456789ab", None),  # built outside git: nothing to link to
    ],
)
def test_file_links(revision: str, file: str | None) -> None:
    assert dashboard.SourceLinks(REPO).file(revision, "x/y.yaml") == file
    assert dashboard.SourceLinks(None).file(revision, "x/y.yaml") is None


@pytest.mark.parametrize(
    ("value", "error"),
    [("ftp://example.com/r", "is not an http(s) URL"), ("https://", "is not an http(s) URL")],
)
def test_a_bad_repository_url_is_refused(value: str, error: str) -> None:
    with pytest.raises(
        SettingsError, match=re.escape(f"FLAGSERVE_REPOSITORY_URL: {value!r} {error}")
    ):
        Settings.from_env({"FLAGSERVE_REPOSITORY_URL": value})
    assert Settings.from_env({"FLAGSERVE_REPOSITORY_URL": REPO + "/"}).repository_url == REPO


def test_the_audit_page_lists_changes_newest_first_and_filters(built: Built) -> None:
    banner = FLAGS["growth/banner.yaml"] + "  staging: true\n"
    built.commit("Banner on in staging", {"growth/banner.yaml": banner})
    store = Store(built.out)
    store.start()
    client = falcon.testing.TestClient(create_app(store))
    html = client.simulate_get("/audit").text
    assert html.index("Banner on in staging") < html.index("Launch the new checkout")
    only = client.simulate_get("/audit", query_string="flag=banner").text
    assert "Banner on in staging" in only and "Launch the new checkout" not in only
    assert (
        "Banner on in staging"
        not in client.simulate_get("/audit", query_string="actor=Nobody").text
    )
    assert (
        "Banner on in staging"
        in client.simulate_get("/audit", query_string="actor=Ada Lovelace").text
    )


def test_the_graph_page_draws_linked_flags_and_lists_the_others(
    client: falcon.testing.TestClient,
) -> None:
    html = client.simulate_get("/graph").text
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert 'xlink:href="/flags/new-checkout"' in svg and 'xlink:href="/flags/pricing-engine"' in svg
    assert "banner" not in svg
    assert '<ul class="alone"><li><a href="/flags/banner">banner</a></li></ul>' in html


def test_user_text_renders_as_text_everywhere(built: Built) -> None:
    built.commit(
        f"{HOSTILE} <img src=x onerror=alert(1)>\n\n<iframe src=//evil>",
        {"growth/banner.yaml": HOSTILE_YAML + "owner: <i>growth</i>\nenabled: false\n"},
    )
    store = Store(built.out)
    store.start()
    client = falcon.testing.TestClient(create_app(store))
    for path in ("/", "/flags/banner", "/audit", "/graph", "/?q=%3Cscript%3E"):
        html = client.simulate_get(path).text
        assert "<script>document" not in html and "<img src=x" not in html, path
        assert "<iframe" not in html and "<b>" not in html and "<i>" not in html, path
    flag_page = client.simulate_get("/flags/banner").text
    assert (
        "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt; &amp; &lt;b&gt;" in flag_page
    )
    assert "&lt;iframe src=//evil&gt;" in flag_page
    assert "&lt;img src=x onerror=alert(1)&gt;" in client.simulate_get("/audit").text
    assert len(re.findall(r"<script", flag_page)) == 1  # the page's own, from /static/


def test_pages_forbid_inline_script_and_style_and_the_api_keeps_its_policy(
    client: falcon.testing.TestClient,
) -> None:
    for path in (
        "/",
        "/flags/new-checkout",
        "/flags/nope",
        "/audit",
        "/graph",
        "/static/dashboard.js",
    ):
        assert client.simulate_get(path).headers["content-security-policy"] == views.PAGE_POLICY
    assert "'unsafe-inline'" not in views.PAGE_POLICY and "script-src 'self'" in views.PAGE_POLICY
    api = client.simulate_get("/api/v1/flags").headers["content-security-policy"]
    assert api == "default-src 'none'; frame-ancestors 'none'"
    html = client.simulate_get("/").text
    assert (
        " style=" not in html
        and "<style" not in html
        and re.findall(r"<script[^>]*>", html) == ['<script src="/static/dashboard.js" defer>']
    )


def test_unknown_assets_are_404(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/static/nope.js").status_code == 404
    assert (
        client.simulate_get("/static/dashboard.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )


EVERYWHERE = "every-secret"
STAGING = "staging-secret"


@pytest.fixture
def guarded(store: Store) -> falcon.testing.TestClient:
    ring = KeyRing(
        [
            ApiKey("ops", bytes.fromhex(digest(EVERYWHERE.encode())), None),
            ApiKey("web", bytes.fromhex(digest(STAGING.encode())), frozenset({"staging"})),
        ]
    )
    return falcon.testing.TestClient(create_app(store, middleware=[AccessControl(ring)]))


def _basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"anyone:{password}".encode()).decode()}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (_basic("wrong"), 401),
        ({"Authorization": "Basic !!!"}, 401),
        (_basic(STAGING), 403),  # a key limited to some environments may not see them all
        ({"Authorization": f"Bearer {STAGING}"}, 403),
        (_basic(EVERYWHERE), 200),
        ({"Authorization": f"Bearer {EVERYWHERE}"}, 200),
    ],
)
@pytest.mark.parametrize("path", ["/", "/flags/new-checkout", "/flags/nope", "/audit", "/graph"])
def test_with_api_keys_pages_need_a_key_for_every_environment(
    guarded: falcon.testing.TestClient, path: str, headers: dict[str, str], status: int
) -> None:
    result = guarded.simulate_get(path, headers=headers)
    expected = 404 if status == 200 and path == "/flags/nope" else status
    assert result.status_code == expected
    if status == 401:
        assert result.headers["www-authenticate"].startswith('Basic realm="flagserve dashboard"')


def test_with_api_keys_assets_stay_open_and_the_api_takes_no_basic(
    guarded: falcon.testing.TestClient,
) -> None:
    assert guarded.simulate_get("/static/dashboard.css").status_code == 200
    assert guarded.simulate_get("/api/v1/flags", headers=_basic(EVERYWHERE)).status_code == 401


TYPED_FLAGS = {
    "checkout/colour.yaml": """description: Button colour
owner: team-growth
type: string
variants: {blue: "#1f6feb", green: "#2da44e"}
default: blue
off: blue
environments:
  production:
    rules:
      - when: {country: [NL, BE], app_version: {semver: ">=2.3.0"}}
        serve: green
      - rollout: {green: 10, blue: 90}
""",
}


def test_typed_flags_show_variants_rules_and_rollouts(built: Built) -> None:
    built.commit("Add a typed flag with rules", TYPED_FLAGS)
    store = Store(built.out)
    store.start()
    client = falcon.testing.TestClient(create_app(store))
    cells = matrix(client.simulate_get("/?expand=1").text).rows["colour"]
    production = COLUMNS.index(("production", "web"))
    assert cells[COLUMNS.index(("staging", "web"))] == ("off", "default", "blue")
    state, title, text = cells[production]
    assert (state, text) == ("off targeted", "blue*")
    assert overview.TARGETED in title
    page = client.simulate_get("/flags/colour")
    assert page.status_code == 200
    assert '<code class="variant">green: "#2da44e"</code>' in page.text
    assert "app_version &gt;=2.3.0 and country in NL, BE" in page.text
    assert "green 10%, blue 90%" in page.text
    assert '<rect x="0" y="0" width="10" height="4" class="on">' in page.text
    assert '<rect x="10" y="0" width="90" height="4" class="off">' in page.text


@pytest.fixture
def gated(built: Built) -> tuple[Store, falcon.testing.TestClient]:
    built.commit("Add search ranking and results", dict(GATED))
    store = Store(built.out)
    store.start()
    return store, falcon.testing.TestClient(create_app(store))


def _values(html: str) -> list[tuple[str, str, str]]:
    """The flag page's cells (class, title, text before the declared value), in COLUMNS
    order."""
    table = html.split('<table class="values">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<td class="([^"]*)" title="([^"]*)">([^<]*)<small', table)


def test_cells_that_depend_on_the_context_through_a_dependency_are_marked(
    gated: tuple[Store, falcon.testing.TestClient],
) -> None:
    _, client = gated
    overview_cells = matrix(client.simulate_get("/").text).rows["search-results"]
    flag_cells = _values(client.simulate_get("/flags/search-results").text)
    for cells in (overview_cells, flag_cells):
        web = cells[COLUMNS.index(("production", "web"))]
        assert (web[0], web[2]) == ("on targeted", "on*")
        assert html_text.unescape(web[1]).endswith(
            f"; {overview.TARGETED}: through dependency search-ranking"
        )
        assert cells[COLUMNS.index(("production", "ios"))][0] == "off"  # off whatever it needs
        assert cells[COLUMNS.index(("staging", "web"))][0] == "on"
        assert cells[COLUMNS.index(("production", None))][0] == "on targeted"
    own = _values(client.simulate_get("/flags/search-ranking").text)
    assert own[COLUMNS.index(("production", "ios"))][1].endswith(": its own rules")
    assert own[COLUMNS.index(("development", "ios"))][0] == "on"


def test_the_pages_mark_exactly_the_cells_the_evaluator_reports(
    gated: tuple[Store, falcon.testing.TestClient],
) -> None:
    store, client = gated
    snapshot = store.current
    rows = matrix(client.simulate_get("/").text).rows
    for key in snapshot.flags:
        marked = [
            "targeted" in cls for cls, _, _ in _values(client.simulate_get(f"/flags/{key}").text)
        ]
        expected = [key in snapshot.evaluator.targeted(*column) for column in COLUMNS]
        assert [" targeted" in cls for cls, _, _ in rows[key]] == expected, key
        assert marked == expected, key
    assert sum(len(snapshot.evaluator.targeted(*column)) for column in COLUMNS) == 7  # 4 + 3


def test_a_folded_environment_is_marked_as_its_cell_without_application(
    gated: tuple[Store, falcon.testing.TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = gated
    monkeypatch.setattr(overview, "EXPAND_ALL_UP_TO", 0)  # one column an environment
    cells = matrix(client.simulate_get("/").text).rows["search-results"]
    development, _, production = cells
    assert development == ("on mixed", "default; 1 of 3 applications off", "on 2/3")
    assert production[0] == "on mixed targeted" and production[2] == "on* 2/3"
    assert production[1].endswith("through dependency search-ranking")
