"""What each resource needs before it answers, declared by the resource itself.

Every resource class routed by `server.app` names its `access` (one of the values below);
`server.auth.AccessControl` reads that declaration of the resource the router picked, and
nothing else: never the request's path, which has many spellings (`//api/v1/snapshot`,
`/api%2Fv1/snapshot`) that all reach one resource. A resource without a declaration is
refused (fail closed).

When API keys are off, every resource is open and nothing here is consulted.

Below the declarations, access as a resource sees it once the request is let in: which
environments the credentials may read (`allowed_environments`), a 403 for one outside them
(`require_environment`), and whether they may read history (`reads_history`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import falcon

from server.errors import Problem


@dataclass(frozen=True)
class Access:
    """One resource's need when API keys are on."""

    key: bool = True  # a known key must be presented (False: open to anyone)
    every_environment: bool = False  # only a key allowed every environment ('*')
    basic: bool = False  # the key may be Basic authentication's password (a browser prompts)
    ofrep: bool = False  # `X-API-Key` accepted, and refusals in OFREP's error shape
    token: bool = False  # a stream token in `?token=` accepted instead (server.streams)


OPEN: Final = Access(key=False)
"""Health, readiness, metrics, the OpenAPI document, the dashboard's assets: hold no flags."""

SCOPED: Final = Access()
"""The API's per-environment answers: a known key; the resource answers 403 for an
environment outside the key's scope, and shows history only to '*' keys."""

EVERY: Final = Access(every_environment=True)
"""The whole snapshot and the audit log: they span every environment."""

OFREP: Final = Access(ofrep=True)
"""OFREP evaluation: a known key (Bearer or `X-API-Key`), refused in OFREP's shape."""

STREAM: Final = Access(ofrep=True, token=True)
"""OFREP's event stream: as OFREP, or a token from a bulk answer, since a browser's
EventSource cannot send headers."""

PAGE: Final = Access(every_environment=True, basic=True)
"""The dashboard's pages: they show every environment and its history."""


def declared(resource: object) -> Access | None:
    """The resource's declared need, or None when it declares none (to be refused)."""
    need = getattr(resource, "access", None)
    return need if isinstance(need, Access) else None


def allowed_environments(req: falcon.Request) -> frozenset[str] | None:
    """The environments these credentials may read, or None for all (or no access control):
    set by the authentication middleware as `req.context.environments`."""
    allowed: frozenset[str] | None = getattr(req.context, "environments", None)
    return allowed


def require_environment(req: falcon.Request, environment: str) -> None:
    """A 403 when these credentials may not read `environment`, whether it exists or not
    (a 404 for a name outside the scope would tell which names exist)."""
    allowed = allowed_environments(req)
    if allowed is not None and environment not in allowed:
        raise Problem("forbidden", f"These credentials may not read environment {environment!r}.")


def reads_history(req: falcon.Request) -> bool:
    """Whether these credentials may read history (the audit log, and who changed a flag,
    when and why): only those allowed every environment, as a change may concern any."""
    return allowed_environments(req) is None
