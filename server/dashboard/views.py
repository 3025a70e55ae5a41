"""The dashboard's resources: read-only pages over the snapshot being served, each kept
with its snapshot and sent like the API's answers (ETag and 304, gzip, HEAD).

Access: pages show every environment and each flag's history, so when API keys are on
(`server.auth`) they need a key allowed every environment ('*'), like the whole snapshot and
the audit log; `access = PAGE` tells the access control to ask for one, and to accept it as
the password of HTTP Basic authentication, which a browser prompts for. Without keys the
dashboard is open, like the API.

Query parameters that do not parse are a 400 as an HTML page (never a 500): whole numbers are
ASCII digits only (`str.isdigit` also takes '²' and '①', which `int` refuses).
"""

from __future__ import annotations

import collections
import datetime as dt
import re
from collections.abc import Callable
from importlib import resources

import falcon

from core.bodies import Body, body
from core.paging import per_snapshot
from core.snapshot import Snapshot
from server.access import OPEN, PAGE
from server.dashboard import overview, pages
from server.dashboard.links import SourceLinks
from server.exchange import SECURITY_HEADERS
from server.send import send
from server.store import Store

# No inline script or style (flag data can never run), nothing from elsewhere.
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_WHOLE = re.compile(r"[0-9]{1,9}")  # ASCII digits: `int` takes no others; 9 keep it small
PAGE_HEADERS = tuple(
    (name, PAGE_POLICY if name == "Content-Security-Policy" else value)
    for name, value in SECURITY_HEADERS
)


class _Page:
    """What the pages share: the store, the links to the code host, and the day."""

    access = PAGE  # for server.auth: a '*' key when keys are on, also as Basic's password
    security_headers = PAGE_HEADERS  # for server.exchange.Exchange

    def __init__(self, store: Store, links: SourceLinks, today: Callable[[], dt.date]) -> None:
        self._store = store
        self._links = links
        self._today = today

    def _site(self) -> pages.Site:
        return pages.Site(self._links, self._today())

    def _send(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        key: tuple[object, ...],
        make: Callable[[Snapshot, pages.Site], Body],
        keep: bool = True,  # False for queries that name nothing that exists
    ) -> None:
        snapshot, site = self._store.current, self._site()
        if not keep:
            send(req, resp, make(snapshot, site))
            return
        memo_key = ("dashboard", site.today, *key)
        send(req, resp, snapshot.memo(memo_key, lambda: make(snapshot, site)))

    def _problem(
        self, req: falcon.Request, resp: falcon.Response, status: str, detail: str
    ) -> None:
        resp.status = status
        title = falcon.code_to_http_status(status).partition(" ")[2]
        send(req, resp, pages.problem_page(self._store.current, self._site(), title, detail))


def _text(req: falcon.Request, name: str) -> str:
    """A query parameter as text ("" when absent; the first when repeated: a page is
    forgiving where the API is strict)."""
    value = req.params.get(name, "")
    return (value[0] if isinstance(value, list) else value).strip()


def _whole(req: falcon.Request, name: str, least: int) -> int | None:
    """A whole-number query parameter (`least` when absent), None when it is not one."""
    value = _text(req, name)
    if not value:
        return least
    if not (_WHOLE.fullmatch(value) and int(value) >= least):
        return None
    return int(value)


class Overview(_Page):
    """`/?q=&tag=&owner=&environment=&sort=&page=`: every flag and its values, a page at a
    time."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        snapshot = self._store.current
        page = _whole(req, "page", 1)
        if page is None:
            self._problem(req, resp, falcon.HTTP_400, "page must be a whole number from 1.")
            return
        filters = overview.Filters(
            _text(req, "q"), _text(req, "tag"), _text(req, "owner"), _text(req, "environment"),
            _text(req, "sort") or "key", page,
        )  # fmt: skip
        if filters.environment and filters.environment not in snapshot.environments:
            self._problem(
                req, resp, falcon.HTTP_400, f"There is no environment {filters.environment!r}."
            )
            return
        if filters.sort not in overview.SORTS:
            self._problem(
                req, resp, falcon.HTTP_400, f"Sort by one of {', '.join(overview.SORTS)}."
            )
            return
        keep = (
            not filters.text
            and (not filters.tag or filters.tag in snapshot.tags)
            and (not filters.owner or filters.owner in snapshot.owners)
            and _within(snapshot, filters)
        )
        self._send(
            req,
            resp,
            ("overview", filters),
            lambda s, site: pages.overview_page(s, site, filters),
            keep,
        )

    on_head = on_get


def _within(snapshot: Snapshot, filters: overview.Filters) -> bool:
    """Whether the page asked for exists (page 1 always does), so that kept pages are only
    ever real ones: the memo holds at most the snapshot's pages per tag, owner, environment
    and sort, and `?page=123456789` is rendered (as the last page) but not kept. Asked only
    without a text filter (a page with one is never kept)."""
    if filters.page == 1:
        return True
    matching = _matching(snapshot)[filters.tag, filters.owner]
    return filters.page <= overview.last_page(matching)


@per_snapshot
def _matching(snapshot: Snapshot) -> collections.Counter[tuple[str, str]]:
    """How many flags `overview.matches` passes for each tag and owner filter ("" for
    none) with no text filter: counted once per snapshot, not on every request for a page
    past the first (a lookup instead of a pass over every flag)."""
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for flag in snapshot.flags.values():
        for tag in {"", *flag["tags"]}:
            for owner in {"", flag["owner"]}:
                counts[tag, owner] += 1
    return counts


class Flag(_Page):
    """`/flags/{key}`: one flag, its values, dependencies and history."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        if key not in self._store.current.flags:
            self._problem(req, resp, falcon.HTTP_404, f"There is no flag {key!r}.")
            return
        self._send(req, resp, ("flag", key), lambda s, site: pages.flag_page(s, site, key))

    on_head = on_get


class Audit(_Page):
    """`/audit?actor=&flag=&offset=`: every change, newest first."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        offset = _whole(req, "offset", 0)
        if offset is None:
            self._problem(req, resp, falcon.HTTP_400, "offset must be a whole number.")
            return
        query = pages.AuditQuery(_text(req, "actor"), _text(req, "flag"), offset)
        snapshot = self._store.current
        keep = query.offset < max(1, len(snapshot.entries)) and (
            not query.actor or query.actor in snapshot.actors
        )
        self._send(
            req, resp, ("audit", query), lambda s, site: pages.audit_page(s, site, query), keep
        )

    on_head = on_get


class Graph(_Page):
    """`/graph`: the whole dependency graph."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._send(req, resp, ("graph",), pages.graph_page)

    on_head = on_get


def _assets() -> dict[str, Body]:
    """The stylesheet and the script, read once from the package."""
    types = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
    found = {}
    for item in resources.files("server.dashboard").joinpath("static").iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if suffix in types:
            found[item.name] = body(item.read_bytes(), types[suffix])
    return found


class Static:
    """`/static/{name}`: the stylesheet and the script (open to all: they hold no data)."""

    access = OPEN
    security_headers = PAGE_HEADERS

    def __init__(self) -> None:
        self._assets = _assets()

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        asset = self._assets.get(name)
        if asset is None:
            raise falcon.HTTPNotFound()
        send(req, resp, asset)

    on_head = on_get
