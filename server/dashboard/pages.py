"""The dashboard's pages as bytes: Jinja2 templates (autoescaped: flag files and commit
messages are user input and render as text) over the snapshot being served.

Each page is a function of the snapshot, the query and the day (expiry is judged against
today), so pages are kept with the snapshot (`Snapshot.memo`) and sent with its ETag.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import jinja2

from core.audit_bodies import step_words, took_effect
from core.bodies import Body, body
from core.flag_bodies import timeline
from core.snapshot import Snapshot
from server.dashboard import graph, overview
from server.dashboard.links import SourceLinks

HTML = "text/html; charset=utf-8"
AUDIT_PAGE = 100  # entries a page of the audit feed shows
FLAG_HISTORY = 200  # entries the flag page shows (the audit page has the rest)

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("server.dashboard", "templates"),
    autoescape=True,  # every template: nothing from a flag file is ever markup
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _query(values: Mapping[str, object]) -> str:
    """`?name=value&...` of the non-empty values (a link's query string)."""
    kept = {name: value for name, value in values.items() if value not in ("", None, 0)}
    return "?" + urlencode(kept)


_TEMPLATES.filters["query"] = _query
_TEMPLATES.filters["number"] = "{:,}".format  # 2,000


@dataclass(frozen=True)
class Site:
    """What every page needs beside the snapshot: links to the code host, and today."""

    links: SourceLinks
    today: dt.date


def render(name: str, snapshot: Snapshot, site: Site, **context: Any) -> Body:
    """Template `name` with the footer's facts (revision, when the flags last changed)."""
    newest = snapshot.entries[0]["committed_at"] if snapshot.entries else None
    html = _TEMPLATES.get_template(name).render(
        revision=snapshot.revision,
        revision_link=site.links.commit(snapshot.revision),
        changed_at=newest,
        links=site.links,
        today=site.today.isoformat(),
        **context,
    )
    return body(html.encode("utf-8"), HTML)


def expired(flag: Mapping[str, Any], today: dt.date) -> bool:
    return flag["expires"] is not None and flag["expires"] < today.isoformat()


def overview_page(snapshot: Snapshot, site: Site, filters: overview.Filters) -> Body:
    """One page of the flags that match, in order (a page past the last shows the last)."""
    flags = [flag for flag in snapshot.flags.values() if overview.matches(flag, filters)]
    last = overview.last_page(len(flags))
    filters = replace(filters, page=min(filters.page, last))
    start = (filters.page - 1) * overview.ROWS_PER_PAGE
    shown, expanded = overview.columns(
        snapshot.environments, snapshot.applications, filters.environment
    )
    dependence = _dependence(
        snapshot, [(column.environment, column.application) for column in shown]
    )
    rows = [
        (flag, expired(flag, site.today), overview.row_cells(flag, shown, expanded, dependence))
        for flag in overview.ordered(flags, filters.sort)[start : start + overview.ROWS_PER_PAGE]
    ]
    return render(
        "overview.html",
        snapshot,
        site,
        rows=rows,
        start=start,
        matching=len(flags),
        last_page=last,
        page_numbers=overview.page_numbers(filters.page, last),
        total=len(snapshot.flags),
        columns=shown,
        expanded=expanded,
        applications=snapshot.applications,
        environments=snapshot.environments,
        filters=filters,
        sorts=overview.SORTS,
        levels=overview.LEVELS,
        tags=snapshot.tags,
        owners=snapshot.owners,
    )


def _dependence(snapshot: Snapshot, cells: Sequence[tuple[str, str | None]]) -> overview.Dependence:
    """What depends on the context in these (environment, application) cells: the
    evaluator's sets, made once a snapshot, looked up once a page."""
    targeted = {(env, app): snapshot.evaluator.targeted(env, app) for env, app in cells}
    return overview.Dependence(snapshot.flags, targeted)


def flag_page(snapshot: Snapshot, site: Site, key: str) -> Body:
    flag = snapshot.flags[key]
    cells = [(env, app) for env in snapshot.environments for app in (None, *snapshot.applications)]
    dependence = _dependence(snapshot, cells)
    needs, needed_by = graph.neighbourhood(snapshot.flags, key)
    history = [entry for entry in snapshot.entries if entry["flag"] == key]
    took = _took(snapshot, [key])
    shown = {entry["commit"] for entry in history[:FLAG_HISTORY]}
    picture, complete = graph.around(snapshot.flags, key) if needs or needed_by else ("", True)
    return render(
        "flag.html",
        snapshot,
        site,
        flag=flag,
        expired=expired(flag, site.today),
        file_link=site.links.file(snapshot.revision, flag["file"]),
        declared=_declared(flag, snapshot.environments, snapshot.applications),
        needs=needs,
        needed_by=needed_by,
        picture=picture,
        whole_neighbourhood=complete,
        history=history[:FLAG_HISTORY],
        more_history=max(0, len(history) - FLAG_HISTORY),
        schedule=timeline(snapshot, key, snapshot.environments) if "steps" in flag else [],
        took=took,
        unplaced=[item for items in took.values() for item in items if item["commit"] not in shown],
        environments=snapshot.environments,
        applications=list(snapshot.applications),  # flag.html adds it to a list
        levels=overview.LEVELS,
        shown=overview.shown_value,
        rules={
            env: overview.rule_lines(flag["resolved"][env]["rules"]) for env in flag["resolved"]
        },
        why={cell: dependence.why(flag, *cell) for cell in cells},
    )


def _declared(
    flag: Mapping[str, Any], environments: Sequence[str], applications: Sequence[str]
) -> dict[str, dict[str | None, bool | str | None]]:
    """What the file says per environment (None) and environment/application: the value
    written at that level, or None where the file is silent there."""
    table: dict[str, dict[str | None, bool | str | None]] = {}
    for environment in environments:
        written = flag["environments"].get(environment)
        if isinstance(written, dict):
            values = dict(written.get("applications", {}))
            level = written.get("enabled", written.get("default"))
            table[environment] = {None: level, **values}
        else:
            table[environment] = {None: written}
    return table


def _took(
    snapshot: Snapshot, keys: Iterable[str | None]
) -> dict[tuple[str | None, str], list[dict[str, Any]]]:
    """The steps of these flags that have taken effect, by (commit that scheduled them,
    flag), for the history to show each beside its commit; (None, flag): no commit known."""
    found: dict[tuple[str | None, str], list[dict[str, Any]]] = {}
    for key in sorted(key for key in keys if key is not None):
        for item in took_effect(snapshot, key):
            found.setdefault((item["commit"], key), []).append(item)
    return found


def _rules_words(rules: Sequence[Mapping[str, Any]]) -> str:
    """Rules in one line: `country in NL: serve on; everyone: on 30%, off 70%`."""
    parts = []
    for rule in overview.rule_lines(rules):
        if rule["serve"] is not None:
            parts.append(f"{rule['when']}: serve {rule['serve']}")
        else:
            shares = ", ".join(f"{part['variant']} {part['share']}%" for part in rule["rollout"])
            parts.append(f"{rule['when']}: {shares}")
    return "; ".join(parts) or "none"


_TEMPLATES.globals.update(rules_words=_rules_words, step_words=step_words)


@dataclass(frozen=True)
class AuditQuery:
    actor: str = ""
    flag: str = ""
    offset: int = 0


def audit_page(snapshot: Snapshot, site: Site, query: AuditQuery) -> Body:
    entries = [
        entry
        for entry in snapshot.entries
        if (not query.flag or entry["flag"] == query.flag)
        and (not query.actor or entry["author"]["name"] == query.actor)
    ]
    start = min(query.offset, max(0, len(entries) - 1))
    return render(
        "audit.html",
        snapshot,
        site,
        entries=entries[start : start + AUDIT_PAGE],
        count=len(entries),
        start=start,
        size=AUDIT_PAGE,
        query=query,
        took=_took(snapshot, {entry["flag"] for entry in entries[start : start + AUDIT_PAGE]}),
        actors=snapshot.actors,
        flags=sorted(snapshot.flags),
        complete=snapshot.audit_complete,
    )


def graph_page(snapshot: Snapshot, site: Site) -> Body:
    flags = snapshot.flags
    linked = graph.linked(flags)
    alone = sorted(flags.keys() - set(linked))
    return render(
        "graph.html",
        snapshot,
        site,
        picture=graph.whole(flags),
        linked=linked,
        most=graph.MOST_NODES,
        alone=alone,
    )


def problem_page(snapshot: Snapshot, site: Site, title: str, detail: str) -> Body:
    """A 404 or 400 as a page, with the footer and a way back."""
    return render("problem.html", snapshot, site, title=title, detail=detail)
