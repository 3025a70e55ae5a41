"""What each resource needs before it answers, declared by the resource itself.

Every resource class routed by `server.app` names its `access` (one of the values below);
`server.auth.AccessControl` reads that declaration of the resource the router picked, and
nothing else: never the request's path, which has many spellings (`//api/v1/snapshot`,
`/api%2Fv1/snapshot`) that all reach one resource. A resource without a declaration is
refused (fail closed).

When API keys are off, every resource is open and nothing here is consulted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Access:
    """One resource's need when API keys are on."""

    key: bool = True  # a known key must be presented (False: open to anyone)
    every_environment: bool = False  # only a key allowed every environment ('*')
    basic: bool = False  # the key may be Basic authentication's password (a browser prompts)
    ofrep: bool = False  # `X-API-Key` accepted, and refusals in OFREP's error shape


OPEN: Final = Access(key=False)
"""Health, readiness, metrics, the OpenAPI document, the dashboard's assets: hold no flags."""

SCOPED: Final = Access()
"""The API's per-environment answers: a known key; the resource answers 403 for an
environment outside the key's scope, and shows history only to '*' keys."""

EVERY: Final = Access(every_environment=True)
"""The whole snapshot and the audit log: they span every environment."""

OFREP: Final = Access(ofrep=True)
"""OFREP evaluation: a known key (Bearer or `X-API-Key`), refused in OFREP's shape."""

PAGE: Final = Access(every_environment=True, basic=True)
"""The dashboard's pages: they show every environment and its history."""


def declared(resource: object) -> Access | None:
    """The resource's declared need, or None when it declares none (to be refused)."""
    need = getattr(resource, "access", None)
    return need if isinstance(need, Access) else None
