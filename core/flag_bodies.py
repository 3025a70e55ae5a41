"""The bodies of `GET /api/v1/flags` (a filtered, paginated list) and `GET
/api/v1/flags/{key}` (one flag in full): plain data over a snapshot, kept with it.

Rules: each shows only the environments of the query (those the credentials may read), and
a flag's history (HISTORY_FIELDS: who created it and last changed it, when and why) only
when asked (credentials that may read every environment, as the audit log); otherwise
those fields are null, as from a build made without git history. The Falcon resources
(`server.resources.flags`) turn a request into a query; the static export
(`core.documents`) asks for what credentials for every environment see.
"""

from __future__ import annotations

import functools
from dataclasses import astuple, dataclass
from typing import Any

from core.bodies import Body, json_body
from core.paging import Page
from core.snapshot import Snapshot, cell

ITEM_FIELDS = (
    "key", "description", "owner", "tags", "expires", "file",
    "created_at", "created_by", "updated_at", "updated_by", "updated_reason",
)  # fmt: skip
HISTORY_FIELDS = ("created_at", "created_by", "updated_at", "updated_by", "updated_reason")


@dataclass(frozen=True)
class ListQuery:
    tag: str | None
    owner: str | None
    environment: str | None
    application: str | None
    environments: tuple[str, ...]  # whose values each item shows
    history: bool  # whether items show HISTORY_FIELDS (else null)
    limit: int
    offset: int

    def bounded(self, snapshot: Snapshot) -> bool:
        """Whether the answer is worth keeping: the filters name what exists and the page
        is not past the end (so that kept answers stay few however clients ask)."""
        return (
            (self.tag is None or self.tag in snapshot.tags)
            and (self.owner is None or self.owner in snapshot.owners)
            and self.offset < len(snapshot.keys)
        )


def unfiltered_page(snapshot: Snapshot, where: Page) -> Body:
    """`GET /api/v1/flags?limit=&offset=` with no filter, as answered to credentials that
    may read every environment: the pages a static export holds (`core.documents`)."""
    query = ListQuery(
        None, None, None, None, snapshot.environments, True, where.limit, where.offset
    )
    return list_answer(snapshot, query)


def list_answer(snapshot: Snapshot, query: ListQuery) -> Body:
    make = functools.partial(_list_body, snapshot, query)
    return snapshot.memo(("flags", *astuple(query)), make) if query.bounded(snapshot) else make()


def _list_body(snapshot: Snapshot, query: ListQuery) -> Body:
    flags = snapshot.flags
    keys = [
        key
        for key in snapshot.keys
        if (query.tag is None or query.tag in flags[key]["tags"])
        and (query.owner is None or flags[key]["owner"] == query.owner)
    ]
    where = Page(query.limit, query.offset)
    return json_body(
        {
            "revision": snapshot.revision,
            "environment": query.environment,
            "application": query.application,
            "total": len(keys),
            "limit": query.limit,
            "offset": query.offset,
            "items": [_item(flags[key], query) for key in where.cut(keys)],
        }
    )


def _item(flag: dict[str, Any], query: ListQuery) -> dict[str, Any]:
    item = {name: flag[name] for name in ITEM_FIELDS}
    if not query.history:
        item.update(dict.fromkeys(HISTORY_FIELDS))
    item["values"] = {
        environment: cell(flag, environment, query.application)
        for environment in query.environments
    }
    return item


def detail(snapshot: Snapshot, key: str, visible: tuple[str, ...], *, history: bool = True) -> Body:
    """The flag `key` as `GET /api/v1/flags/{key}` answers credentials that may read the
    `visible` environments, and its `history` or not (the static export asks for all)."""
    flag = snapshot.flags[key]
    return snapshot.memo(("flag", key, visible, history), lambda: _detail(flag, visible, history))


def _detail(flag: dict[str, Any], visible: tuple[str, ...], history: bool) -> Body:
    shown = dict(flag)
    if not history:
        shown.update(dict.fromkeys(HISTORY_FIELDS))
    shown["resolved"] = {env: flag["resolved"][env] for env in visible}
    shown["environments"] = {
        env: value for env, value in flag["environments"].items() if env in visible
    }
    return json_body(shown)
