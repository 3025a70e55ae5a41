"""The OpenAPI 3.1 description of every endpoint, served at `/openapi.json`.

The shapes of the snapshot, its flags and the audit log are not written again here: they
are the JSON Schemas in `schemas/` (the contract the compiler writes against), lifted into
`components.schemas` with their `$defs` renamed. Everything else is what the resources
answer: problem details (RFC 9457) on `/api/`, OFREP's own error shapes on `/ofrep/`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from core.schemas import SCHEMA_DIR
from server import errors

Schema = dict[str, Any]

PROBLEM_JSON: Final = errors.PROBLEM_JSON
JSON: Final = "application/json"
METRICS: Final = "text/plain"  # Prometheus text format; its version is a parameter
OFREP_SECURITY: Final[list[dict[str, list[str]]]] = [{"BearerAuth": []}, {"ApiKeyAuth": []}]
NAME: Final = {"$ref": "#/components/schemas/SnapshotName"}
TAGS: Final = [
    {"name": "flags", "description": "The compiled flags: what is on where."},
    {"name": "audit", "description": "Who changed which flag, when and why (git history)."},
    {"name": "OFREP", "description": "OpenFeature Remote Evaluation Protocol 0.3."},
    {"name": "operations", "description": "Liveness, readiness, metrics, this document."},
]
DESCRIPTION: Final = """\
The read-only API of gitflags: flags declared in git, compiled by `flagc build` and served
as precomputed bytes. Every GET also answers HEAD. Answers that carry an `ETag` honour
`If-None-Match` with a 304 and are sent gzip-compressed when the client accepts it.

When the server runs with API keys (`FLAGSERVE_API_KEYS`), `/api/` and `/ofrep/` need one,
as `Authorization: Bearer <key>` (under `/ofrep/`, `X-API-Key: <key>` too), and a key may be
limited to some environments (403 outside them, whether the environment exists or not).
The whole snapshot and the audit log need a key allowed every environment (`*`), and only
such a key reads a flag's history: for others, `created_at`, `created_by`, `updated_at`,
`updated_by` and `updated_reason` are null. Without keys, everything is open. Health,
readiness, metrics and this document are always open; `/metrics` moves to a port of its own
with `FLAGSERVE_METRICS_BIND`.

Errors under `/api/` (and for unknown paths) are problem details (`application/problem+json`,
RFC 9457) whose `type` ends in a stable kind; a method a path does not have is a 405 with an
`Allow` header. Errors under `/ofrep/` have OFREP's shapes, which OpenFeature providers read.
"""


def spec() -> Schema:
    """The whole OpenAPI document (plain JSON data): the spec `/openapi.json` serves."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gitflags",
            "version": "1",
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"BearerAuth": []}],
        "tags": TAGS,
        "paths": {**_flag_paths(), **_audit_paths(), **_ofrep_paths(), **_operation_paths()},
        "components": components(),
    }


# Operations ------------------------------------------------------------------------------


def _get(
    operation_id: str,
    summary: str,
    tag: str,
    ok: Schema,
    *,
    parameters: Iterable[str] = (),
    errors: Iterable[int] = (),
    cached: bool = True,
) -> Schema:
    """A GET answered from a precomputed body: 200 (with an ETag and, when `cached`, a 304
    for If-None-Match), 401 without good credentials, and the problem statuses in `errors`
    (403 where a key limited to some environments is refused)."""
    names = [*parameters, "IfNoneMatch"] if cached else list(parameters)
    responses: Schema = {"200": _ok(ok, cached=cached)}
    if cached:
        responses["304"] = {"$ref": "#/components/responses/NotModified"}
    for status in sorted({401, *errors}):
        responses[str(status)] = {"$ref": f"#/components/responses/Problem{status}"}
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": [tag],
        "parameters": [{"$ref": f"#/components/parameters/{name}"} for name in names],
        "responses": responses,
    }


def _ok(schema: Schema, *, cached: bool = True, media: str = JSON) -> Schema:
    answer: Schema = {"description": "OK", "content": {media: {"schema": schema}}}
    if cached:
        answer["headers"] = {
            "ETag": {"$ref": "#/components/headers/ETag"},
            "Cache-Control": {"$ref": "#/components/headers/CacheControl"},
        }
    return answer


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _flag_paths() -> Schema:
    return {
        "/api/v1/flags": {
            "get": _get(
                "listFlags",
                "Flags, filtered and paginated, with their values per environment",
                "flags",
                _ref("FlagList"),
                parameters=("Tag", "Owner", "EnvironmentQuery", "Application", "Limit", "Offset"),
                errors=(400, 403),
            )
        },
        "/api/v1/flags/{key}": {
            "get": _get(
                "getFlag",
                "One flag as the snapshot has it (visible environments only), and a "
                "scheduled flag's timeline as of the moment served",
                "flags",
                _ref("FlagDetail"),
                parameters=("Key",),
                errors=(404,),
            )
        },
        "/api/v1/environments/{environment}/flags": {
            "get": _get(
                "getFlatMap",
                "Every flag's value in one environment (and application): the hot path",
                "flags",
                _ref("FlatMap"),
                parameters=("Environment", "Application"),
                errors=(400, 403, 404),
            )
        },
        "/api/v1/environments/{environment}/applications/{application}/flags": {
            "get": _get(
                "getApplicationFlatMap",
                "Every flag's value in one environment and application: the same answer as "
                "`.../environments/{environment}/flags?application=`, at a path a static "
                "export can hold (`flagc export`)",
                "flags",
                _ref("FlatMap"),
                parameters=("Environment", "ApplicationPath"),
                errors=(403, 404),
            )
        },
        "/api/v1/environments/{environment}/flagd.json": {
            "get": _get(
                "getFlagdDefinitions",
                "One environment's flags in flagd's flag-definition format (what flagc writes "
                "to OUT/flagd/<environment>.json), for flagd's HTTP sync; the evaluation "
                "context's `application` chooses per-application values",
                "flags",
                _ref("Flagd"),
                parameters=("Environment",),
                errors=(403, 404),
            )
        },
        "/api/v1/snapshot": {
            "get": _get(
                "getSnapshot",
                "The whole snapshot, byte for byte as flagc wrote it (credentials for every "
                "environment)",
                "flags",
                _ref("Snapshot"),
                errors=(403,),
            )
        },
    }


def _audit_paths() -> Schema:
    return {
        "/api/v1/audit": {
            "get": _get(
                "listAudit",
                "Every change to the flags, newest first, paginated",
                "audit",
                _ref("AuditPage"),
                parameters=("FlagQuery", "Since", "Actor", "Limit", "Offset"),
                errors=(400, 403),
            )
        },
        "/api/v1/flags/{key}/audit": {
            "get": _get(
                "getFlagAudit",
                "One flag's changes, newest first, paginated",
                "audit",
                _ref("AuditPage"),
                parameters=("Key", "Since", "Actor", "Limit", "Offset"),
                errors=(400, 403, 404),
            )
        },
    }


def _ofrep_paths() -> Schema:
    return {
        "/ofrep/v1/evaluate/flags/{key}": {
            "post": {
                "operationId": "evaluateFlag",
                "summary": "Evaluate one flag in the request's context (OFREP)",
                "tags": ["OFREP"],
                "security": OFREP_SECURITY,
                "parameters": [{"$ref": "#/components/parameters/OfrepKey"}],
                "requestBody": {"$ref": "#/components/requestBodies/Evaluation"},
                "responses": {
                    "200": _ok(_ref("OfrepEvaluation"), cached=False),
                    "400": _ofrep_error("OfrepFailure", "The body or its context is not valid."),
                    "401": _ofrep_error("OfrepBulkFailure", "Credentials are missing or wrong."),
                    "403": _ofrep_error("OfrepFailure", "The credentials may not read it."),
                    "404": _ofrep_error("OfrepFlagNotFound", "There is no such flag."),
                    "413": _ofrep_error("OfrepFailure", "The body is larger than 64 KiB."),
                },
            }
        },
        "/ofrep/v1/evaluate/flags": {
            "post": {
                "operationId": "evaluateFlagsBulk",
                "summary": "Evaluate every flag in the request's context (OFREP)",
                "tags": ["OFREP"],
                "security": OFREP_SECURITY,
                "parameters": [
                    {"$ref": "#/components/parameters/IfNoneMatch"},
                    {
                        "name": "flagConfigEtag",
                        "in": "query",
                        "description": "The `etag` of the stream event that prompted this "
                        "request: never answered 304 when the environment is tagged otherwise "
                        "here, and waits up to 2 s for this server to take in that build.",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "flagConfigLastModified",
                        "in": "query",
                        "description": "The event's `lastModified` (accepted, not needed).",
                        "schema": {"type": "string"},
                    },
                ],
                "requestBody": {"$ref": "#/components/requestBodies/Evaluation"},
                "responses": {
                    "200": _ok(_ref("OfrepBulkEvaluation")),
                    "304": {"$ref": "#/components/responses/NotModified"},
                    "400": _ofrep_error(
                        "OfrepBulkFailure", "The body or its context is not valid."
                    ),
                    "401": _ofrep_error("OfrepBulkFailure", "Credentials are missing or wrong."),
                    "403": _ofrep_error("OfrepBulkFailure", "The credentials may not read it."),
                    "413": _ofrep_error("OfrepBulkFailure", "The body is larger than 64 KiB."),
                },
            }
        },
        "/ofrep/v1/events": {
            "get": {
                "operationId": "ofrepEventStream",
                "summary": "An environment's OFREP event stream (server-sent events)",
                "description": "Sends `refetchEvaluation` (its `id` and `etag` the tag of "
                "what the environment serves) when a new build changes the environment, and a "
                "comment at least every FLAGSERVE_STREAM_KEEPALIVE seconds. Its URL comes from "
                "a bulk answer's `eventStreams`: with API keys, a signed `token` in place of "
                "the key (EventSource sends no headers). `Last-Event-ID` or `since` naming "
                "another tag: the event comes at once.",
                "tags": ["OFREP"],
                "security": [*OFREP_SECURITY, {"StreamToken": []}],
                "parameters": [
                    {"$ref": f"#/components/parameters/{name}"}
                    for name in (
                        "StreamEnvironment",
                        "StreamApplication",
                        "StreamSince",
                        "LastEventId",
                    )
                ],
                "responses": {
                    "200": {
                        "description": "The stream; it does not end.",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "400": _ofrep_error("OfrepBulkFailure", "No such environment."),
                    "401": _ofrep_error(
                        "OfrepBulkFailure", "Credentials or token missing, wrong or expired."
                    ),
                    "403": _ofrep_error("OfrepBulkFailure", "The credentials may not read it."),
                },
            }
        },
    }


def _ofrep_error(schema: str, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": _ref(schema)}}}


def _operation_paths() -> Schema:
    public: list[Schema] = []  # no credentials, whatever the server's settings
    return {
        "/healthz": {
            "get": {
                "operationId": "liveness",
                "summary": "The process is up",
                "tags": ["operations"],
                "security": public,
                "responses": {"200": _ok(_ref("Liveness"), cached=False)},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readiness",
                "summary": "A snapshot is loaded; which, since when, and how reloads fare",
                "tags": ["operations"],
                "security": public,
                "responses": {
                    "200": _ok(_ref("Readiness"), cached=False),
                    "503": {"$ref": "#/components/responses/Problem503"},
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics",
                "tags": ["operations"],
                "security": public,
                "responses": {"200": _ok({"type": "string"}, cached=False, media=METRICS)},
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "tags": ["operations"],
                "security": public,
                "parameters": [{"$ref": "#/components/parameters/IfNoneMatch"}],
                "responses": {
                    "200": _ok({"type": "object"}),
                    "304": {"$ref": "#/components/responses/NotModified"},
                },
            }
        },
    }


# Components ------------------------------------------------------------------------------


def components() -> Schema:
    return {
        "schemas": {**contract_schemas(), **_schemas(), **_ofrep_schemas()},
        "parameters": _parameters(),
        "headers": {
            "ETag": {
                "description": "A strong validator of this body: send it back in If-None-Match.",
                "schema": {"type": "string", "pattern": '^"[0-9a-f]{32}"$'},
            },
            "CacheControl": {
                "description": "`no-cache`: keep a copy, but revalidate it (a 304 is cheap).",
                "schema": {"type": "string"},
            },
        },
        "requestBodies": {
            "Evaluation": {
                "required": True,
                "content": {JSON: {"schema": _ref("OfrepRequest")}},
            }
        },
        "responses": _responses(),
        "securitySchemes": {
            "BearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer <API key>`.",
            },
            "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "StreamToken": {
                "type": "apiKey",
                "in": "query",
                "name": "token",
                "description": "A stream URL's signed token, from a bulk answer.",
            },
        },
    }


def _parameters() -> Schema:
    def query(name: str, description: str, schema: Schema) -> Schema:
        return {"name": name, "in": "query", "description": description, "schema": schema}

    def path(name: str, description: str, example: str) -> Schema:
        return {
            "name": name,
            "in": "path",
            "required": True,
            "description": description,
            "schema": NAME,
            "example": example,
        }

    return {
        "Key": path("key", "A flag's key.", "new-checkout"),
        "OfrepKey": {**path("key", "A flag's key.", "new-checkout"), "schema": {"type": "string"}},
        "Environment": path("environment", "An environment of the project.", "production"),
        "Application": {
            **query("application", "An application of the project: its values.", NAME),
            "example": "web",
        },
        "ApplicationPath": path("application", "An application of the project.", "web"),
        "EnvironmentQuery": query("environment", "Only this environment's values.", NAME),
        "Tag": query("tag", "Only flags with this tag.", {"type": "string"}),
        "Owner": query("owner", "Only flags with this owner.", {"type": "string"}),
        "FlagQuery": query("flag", "Only this flag's changes.", {"type": "string"}),
        "Actor": query(
            "actor", "Only changes by this author (name or email, any case).", {"type": "string"}
        ),
        "Since": query(
            "since",
            "Only changes at or after this ISO 8601 date or date-time (UTC without offset).",
            {"type": "string", "examples": ["2026-01-02", "2026-01-02T03:04:05+01:00"]},
        ),
        "Limit": query(
            "limit", "At most this many items.", {"type": "integer", "minimum": 1, "maximum": 1000}
        ),
        "Offset": query("offset", "Skip this many items.", {"type": "integer", "minimum": 0}),
        "IfNoneMatch": {
            "name": "If-None-Match",
            "in": "header",
            "description": "The ETag of the copy the client has: 304 if it is still current.",
            "schema": {"type": "string"},
        },
        "StreamEnvironment": query(
            "environment",
            "Without a token: the environment, as an OFREP context names it.",
            {"type": "string"},
        ),
        "StreamApplication": query(
            "application", "Without a token: the application, if any.", {"type": "string"}
        ),
        "StreamSince": query(
            "since",
            "The tag the client has (a bulk answer's stream URL gives it); another: told at once.",
            {"type": "string"},
        ),
        "LastEventId": {
            "name": "Last-Event-ID",
            "in": "header",
            "description": "The last event's id (a tag), sent by a reconnecting EventSource.",
            "schema": {"type": "string"},
        },
    }


def _responses() -> Schema:
    found: Schema = {
        "NotModified": {
            "description": "Not Modified: the client's copy (its If-None-Match) is current.",
            "headers": {"ETag": {"$ref": "#/components/headers/ETag"}},
        }
    }
    for status, description in PROBLEM_STATUSES.items():
        found[f"Problem{status}"] = {
            "description": description,
            "content": {PROBLEM_JSON: {"schema": _ref("Problem")}},
        }
    return found


PROBLEM_STATUSES: Final = {
    400: "Bad Request: a parameter is not valid (the problem's `detail` says which).",
    401: "Unauthorized: credentials are missing or wrong.",
    403: "Forbidden: the credentials may not read this (an environment outside the key's).",
    404: "Not Found: no such flag, environment or path.",
    405: "Method Not Allowed: the API is read-only (see the `Allow` header).",
    413: "Content Too Large.",
    503: "Service Unavailable: no snapshot loaded yet.",
}


FLAG_VALUE: Final = {"type": ["boolean", "string", "number", "object"]}


def _schemas() -> Schema:
    cell = _ref("SnapshotCell")
    nullable_name = {"oneOf": [NAME, {"type": "null"}]}
    return {
        "Problem": {
            "description": "Problem details (RFC 9457).",
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string", "description": f"{errors.PROBLEM_BASE}<kind>"},
                "title": {"type": "string"},
                "status": {"type": "integer", "minimum": 400, "maximum": 599},
                "detail": {"type": "string"},
            },
        },
        "FlatMap": {
            "type": "object",
            "additionalProperties": False,
            "required": ["environment", "application", "revision", "flags", "targeted"],
            "properties": {
                "environment": NAME,
                "application": nullable_name,
                "revision": {"type": "string"},
                "flags": {
                    "description": "Each flag's value: without context, the cell's value; "
                    "with context parameters, evaluated for that context.",
                    "type": "object",
                    "additionalProperties": FLAG_VALUE,
                },
                "targeted": {
                    "description": "The flags whose value here depends on the context "
                    "(their own rules, or a dependency's).",
                    "type": "array",
                    "items": NAME,
                },
            },
        },
        "FlagList": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                *("revision", "environment", "application"),
                *("total", "limit", "offset", "items"),
            ],
            "properties": {
                "revision": {"type": "string"},
                "environment": nullable_name,
                "application": nullable_name,
                "total": {"type": "integer", "minimum": 0},
                "limit": {"type": "integer", "minimum": 1},
                "offset": {"type": "integer", "minimum": 0},
                "items": {"type": "array", "items": _ref("FlagItem")},
            },
        },
        "FlagItem": _flag_item(cell),
        "AuditPage": {
            "type": "object",
            "additionalProperties": False,
            "required": ["revision", "complete", "total", "limit", "offset", "items"],
            "properties": {
                "revision": {"type": "string"},
                "complete": {
                    "type": "boolean",
                    "description": "False when the history was cut short (a shallow clone).",
                },
                "total": {"type": "integer", "minimum": 0},
                "limit": {"type": "integer", "minimum": 1},
                "offset": {"type": "integer", "minimum": 0},
                "items": {"type": "array", "items": _ref("AuditEntry")},
                "took_effect": {
                    "description": "Only in the log of one flag with a schedule: the steps "
                    "of it that have taken effect by the moment served, newest first, each "
                    "with the commit that scheduled it (the same on every page, whatever the "
                    "filters).",
                    "type": "array",
                    "items": _ref("StepTaken"),
                },
            },
        },
        "StepTaken": _step_taken(),
        "FlagDetail": _flag_detail(),
        "TimelineMoment": _timeline_moment(cell),
        "Liveness": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        "Readiness": {
            "type": "object",
            "required": ["status", "revision"],
            "properties": {
                "status": {"const": "ready"},
                "revision": {"type": "string"},
                "age_seconds": {"type": "number"},
                "reload_failures": {"type": "integer", "minimum": 0},
                "last_error": {"type": ["string", "null"]},
                "moment": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "The moment the flags served stand at (every scheduled "
                    "step up to it applied), UTC; null for a build without steps.",
                },
                "next_step": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    "description": "When a scheduled step next changes what is served "
                    "(no new build needed), UTC; null when none is ahead.",
                },
            },
        },
    }


ITEM_FIELDS: Final = (
    *("key", "description", "owner", "tags", "expires", "file"),
    *("created_at", "created_by", "updated_at", "updated_by", "updated_reason"),
)


def _flag_item(cell: Schema) -> Schema:
    flag = _snapshot_flag_properties()
    fields = ITEM_FIELDS
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [*fields, "values"],
        "properties": {
            **{name: flag[name] for name in fields},
            "values": {
                "description": "The value in each visible environment (for the application).",
                "type": "object",
                "propertyNames": NAME,
                "additionalProperties": cell,
            },
        },
    }


def _flag_detail() -> Schema:
    """The snapshot's flag (its environments limited to the visible ones) and, with a
    schedule, its timeline (core.flag_bodies.timeline)."""
    flag = _rewrite(_contract("snapshot")["$defs"]["flag"], "Snapshot")
    properties = {
        **flag["properties"],
        "timeline": {
            "description": "Only in a flag with a schedule: each moment at which a visible "
            "environment's value changes, oldest first, marked against the moment served.",
            "type": "array",
            "items": _ref("TimelineMoment"),
        },
    }
    return {**flag, "properties": properties}


def _timeline_moment(cell: Schema) -> Schema:
    shift = {
        "type": "object",
        "additionalProperties": False,
        "required": ["from", "to"],
        "properties": {"from": cell, "to": cell},
    }
    change = {
        "type": "object",
        "additionalProperties": False,
        "required": ["environment", "from", "to", "applications", "rules", "ramp"],
        "properties": {
            "environment": NAME,
            "from": cell,
            "to": cell,
            "applications": {
                "description": "The applications whose cells before and after are not "
                "the environment's.",
                "type": "object",
                "propertyNames": NAME,
                "additionalProperties": shift,
            },
            "rules": {
                "description": "The rules from then on, when they change; else null.",
                "oneOf": [{"type": "array", "items": _ref("SnapshotRule")}, {"type": "null"}],
            },
            "ramp": {
                "description": "When a ramp's share changes then: its variant and share (%).",
                "oneOf": [
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["variant", "share"],
                        "properties": {
                            "variant": NAME,
                            "share": {"type": "integer", "minimum": 0, "maximum": 100},
                        },
                    },
                    {"type": "null"},
                ],
            },
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["at", "state", "changes"],
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "state": {
                "description": "`current`: the last at or before the moment served; `past`: "
                "before it; `next`: the first after it; `later`: the rest.",
                "enum": ["past", "current", "next", "later"],
            },
            "changes": {"type": "array", "minItems": 1, "items": change},
        },
    }


def _step_taken() -> Schema:
    return {
        "description": "A step of a flag's schedule that has taken effect.",
        "type": "object",
        "additionalProperties": False,
        "required": [
            "at",
            "environments",
            "step",
            "share",
            "commit",
            "attribution",
            "scheduled_for",
        ],
        "properties": {
            "at": {
                "description": "When it took effect, UTC: its `scheduled_for`, or when the "
                "commit that scheduled it was committed (merged) if that came later.",
                "type": "string",
                "format": "date-time",
            },
            "scheduled_for": {
                "description": "The step's own moment (a ramp: its `from`), UTC.",
                "type": "string",
                "format": "date-time",
            },
            "environments": {"type": "array", "items": NAME},
            "step": {"description": "The step as the file declares it.", "type": "object"},
            "share": {
                "description": "A ramp's share (%) at the moment served; else null.",
                "type": ["integer", "null"],
            },
            "commit": {
                "description": "The commit that scheduled it; null when unknown.",
                "type": ["string", "null"],
            },
            "attribution": {
                "description": "`added`: the commit that put the step in the file as it "
                "stands; `last-change`: the log does not show it arriving (a history cut "
                "short), so the flag's last change at or before the step's moment; `none`: "
                "no such change.",
                "enum": ["added", "last-change", "none"],
            },
        },
    }


def _ofrep_schemas() -> Schema:
    code = {"type": "string", "description": "An OpenFeature error code."}
    details = {"type": "string"}
    return {
        "OfrepRequest": {
            "type": "object",
            "properties": {
                "context": {
                    "type": "object",
                    "description": "`environment` (unless the server or the key implies one) "
                    "and `application` choose the value; other attributes are ignored.",
                    "properties": {
                        "targetingKey": {"type": "string"},
                        "environment": {"type": "string"},
                        "application": {"type": "string"},
                    },
                    "additionalProperties": True,
                }
            },
        },
        "OfrepEvaluation": {
            "type": "object",
            "required": ["key", "value", "variant", "reason", "metadata"],
            "properties": {
                "key": {"type": "string"},
                "value": FLAG_VALUE,
                "variant": NAME,
                "reason": {"enum": ["STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED"]},
                "metadata": {
                    "type": "object",
                    "required": ["revision", "source"],
                    "properties": {
                        "revision": {"type": "string"},
                        "source": _snapshot_source(),
                        "gatedBy": {
                            "description": "The first direct dependency that is off for "
                            "this context (the flag then serves its off variant).",
                            "type": "string",
                        },
                    },
                },
            },
        },
        "OfrepBulkEvaluation": {
            "type": "object",
            "required": ["flags", "metadata"],
            "properties": {
                "eventStreams": {
                    "description": "Where to hear of changes (OFREP 0.3): an SSE endpoint.",
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "endpoint"],
                        "properties": {
                            "type": {"type": "string", "enum": ["sse"]},
                            "endpoint": {
                                "type": "object",
                                "required": ["requestUri"],
                                "properties": {"requestUri": {"type": "string"}},
                            },
                            "inactivityDelaySec": {"type": "integer", "minimum": 1},
                        },
                    },
                },
                "flags": {"type": "array", "items": _ref("OfrepEvaluation")},
                "metadata": {
                    "type": "object",
                    "required": ["revision"],
                    "properties": {"revision": {"type": "string"}},
                },
            },
        },
        "OfrepFailure": {
            "type": "object",
            "required": ["key", "errorCode", "errorDetails"],
            "properties": {
                "key": {"type": "string"},
                "errorCode": {**code, "enum": ["PARSE_ERROR", "INVALID_CONTEXT", "GENERAL"]},
                "errorDetails": details,
            },
        },
        "OfrepFlagNotFound": {
            "type": "object",
            "required": ["key", "errorCode", "errorDetails"],
            "properties": {
                "key": {"type": "string"},
                "errorCode": {"const": "FLAG_NOT_FOUND"},
                "errorDetails": details,
            },
        },
        "OfrepBulkFailure": {
            "type": "object",
            "required": ["errorCode", "errorDetails"],
            "properties": {
                "errorCode": {**code, "enum": ["PARSE_ERROR", "INVALID_CONTEXT", "GENERAL"]},
                "errorDetails": details,
            },
        },
    }


# The contract's schemas ------------------------------------------------------------------

CONTRACTS: Final = {"snapshot": "Snapshot", "audit": "AuditLog", "flagd": "Flagd"}  # file: name


@functools.cache
def _contract(name: str) -> Schema:
    loaded: Schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    return loaded


def contract_schemas() -> Schema:
    """schemas/snapshot.schema.json, audit.schema.json and flagd.schema.json as components:
    each file as one component and each of its `$defs` as another, prefixed (`flag` in the
    snapshot's is `SnapshotFlag`), every reference rewritten to match."""
    found: Schema = {}
    for file, component in CONTRACTS.items():
        schema = dict(_contract(file))
        prefix = component.removesuffix("Log")
        definitions = schema.pop("$defs", {})
        for key in ("$schema", "$id", "$comment"):
            schema.pop(key, None)
        found[component] = _rewrite(schema, prefix)
        for name, definition in definitions.items():
            found[prefix + name.title()] = _rewrite(definition, prefix)
    return found


def _rewrite(schema: Any, prefix: str) -> Any:
    if isinstance(schema, Mapping):
        return {
            key: (
                f"#/components/schemas/{prefix}{value.removeprefix('#/$defs/').title()}"
                if key == "$ref" and isinstance(value, str)
                else _rewrite(value, prefix)
            )
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_rewrite(item, prefix) for item in schema]
    return schema


def _snapshot_flag_properties() -> Schema:
    properties: Schema = _rewrite(_contract("snapshot")["$defs"]["flag"]["properties"], "Snapshot")
    return properties


def _snapshot_source() -> Schema:
    source: Schema = _contract("snapshot")["$defs"]["cell"]["properties"]["source"]
    return dict(source)
