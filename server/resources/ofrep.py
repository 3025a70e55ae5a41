"""OFREP, the OpenFeature Remote Evaluation Protocol: unmodified OpenFeature SDKs, with an
OFREP provider, evaluate flags here.

The evaluation context names the `environment` (required, unless the server has a default
environment or the API key may read exactly one) and optionally the `application`; its
other attributes, `targetingKey` among them, are what flags' rules and rollouts read
(`core.evaluate`). A flag whose value in that cell depends on no context is answered from a
body made once per snapshot.
Errors have OFREP's own JSON shapes (`errorCode`, `errorDetails`, and `key` for one flag),
not problem+json: OpenFeature providers read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import falcon
import orjson

from core.bodies import JSON, Body, json_body
from core.canonical import serialize
from core.evaluate import Evaluation
from core.snapshot import Snapshot, cell
from server.access import OFREP, allowed_environments
from server.params import param
from server.reading import MAX_BODY
from server.send import accepts_gzip, send
from server.store import Store
from server.streams import CATCH_UP_SECONDS, Offer

if TYPE_CHECKING:
    from falcon.typing import ReadableIO

PARSE_ERROR: Final = "PARSE_ERROR"
INVALID_CONTEXT: Final = "INVALID_CONTEXT"
FLAG_NOT_FOUND: Final = "FLAG_NOT_FOUND"
GENERAL: Final = "GENERAL"


class OfrepError(Exception):
    """An OFREP error response: its status, errorCode and errorDetails, and the flag's key
    when one flag was asked for."""

    def __init__(self, status: str, code: str, details: str, key: str | None = None) -> None:
        super().__init__(details)
        self.status = status
        self.code = code
        self.details = details
        self.key = key

    def document(self) -> dict[str, str]:
        found = {"errorCode": self.code, "errorDetails": self.details}
        return found if self.key is None else {"key": self.key, **found}

    @staticmethod
    def handle(
        req: falcon.Request, resp: falcon.Response, error: OfrepError, params: dict[str, Any]
    ) -> None:
        """The error handler for OfrepError (registered in app.py)."""
        resp.status = error.status
        resp.content_type = JSON
        resp.data = orjson.dumps(error.document())


def serialize_error(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """Falcon's own errors under /ofrep/ (no such route, a method other than POST, a 500, no
    build loaded yet) in OFREP's shape too: providers read errorCode and errorDetails."""
    resp.content_type = JSON
    details = error.description or error.title
    resp.data = orjson.dumps({"errorCode": GENERAL, "errorDetails": details})


class Single:
    """`POST /ofrep/v1/evaluate/flags/{key}`: one flag in the request's context."""

    access = OFREP

    def __init__(self, store: Store, default_environment: str | None = None) -> None:
        self._store = store
        self._default = default_environment

    def on_post(self, req: falcon.Request, resp: falcon.Response, key: str) -> None:
        snapshot = self._store.current
        environment, application, context = target(req, snapshot, self._default, key)
        if key not in snapshot.flags:
            raise OfrepError(falcon.HTTP_404, FLAG_NOT_FOUND, f"there is no flag {key!r}", key)
        if key in snapshot.evaluator.targeted(environment, application):
            found = json_body(evaluation(snapshot, key, environment, application, context))
        else:
            found = snapshot.memo(
                ("ofrep", key, environment, application),
                lambda: json_body(evaluation(snapshot, key, environment, application, {})),
            )
        resp.content_type = found.content_type
        resp.data = found.data


class Bulk:
    """`POST /ofrep/v1/evaluate/flags`: every flag in the request's context, with its event
    stream (server.streams.Offer); the same bytes (and ETag) for every request in one
    environment and application (and API key, within a window of stream tokens), until a
    new build."""

    access = OFREP

    def __init__(self, store: Store, default_environment: str | None, offer: Offer) -> None:
        self._store = store
        self._default = default_environment
        self._offer = offer

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        snapshot = self._store.current
        environment, application, context = target(req, snapshot, self._default, None)
        told = self._told_of_change(req, environment)
        if told:
            snapshot = self._store.current  # perhaps newer: what the client was told of
            if environment not in snapshot.environments:
                raise _unknown("environment", environment, snapshot.environments, None)
        targeted = bool(snapshot.evaluator.targeted(environment, application))
        # The flags' body is never sent alone: it is compressed once its stream is in.
        if targeted:
            found = bulk_body(snapshot, environment, application, context, compress=False)
        else:
            found = snapshot.memo(
                ("ofrep-bulk", environment, application),
                lambda: bulk_body(snapshot, environment, application, {}, compress=False),
            )
        compress = accepts_gzip(req.get_header("Accept-Encoding"))
        cell = (environment, application)
        found = self._offer.attach(req, snapshot, cell, found, kept=not targeted, compress=compress)
        send(req, resp, found, revalidate=not told)

    def _told_of_change(self, req: falcon.Request, environment: str) -> bool:
        """Whether the request follows a stream's event naming a tag (`flagConfigEtag`)
        other than the environment's here: then it waits a little for this process to take
        in that build (another replica may have sent the event) and is never a 304."""
        told = param(req, "flagConfigEtag")
        if told is None or self._offer.hub.tag(environment) == told:
            return False
        self._offer.hub.catch_up(environment, told, CATCH_UP_SECONDS)
        return True


def evaluation(
    snapshot: Snapshot,
    key: str,
    environment: str,
    application: str | None,
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """One flag's OFREP evaluation for `context`: its value and variant, how it was decided
    (`core.evaluate`'s reason) and, when a dependency is off for that context, which."""
    found = snapshot.evaluator.evaluate(key, environment, application, context)
    return _document(snapshot, key, environment, application, found)


def _document(
    snapshot: Snapshot, key: str, environment: str, application: str | None, found: Evaluation
) -> dict[str, Any]:
    source = cell(snapshot.flags[key], environment, application)["source"]
    metadata = {"revision": snapshot.revision, "source": source}
    if found.gated_by is not None:
        metadata["gatedBy"] = found.gated_by
    return {
        "key": key,
        "value": found.value,
        "variant": found.variant,
        "reason": found.reason,
        "metadata": metadata,
    }


def bulk_body(
    snapshot: Snapshot,
    environment: str,
    application: str | None,
    context: Mapping[str, Any],
    *,
    compress: bool = True,
) -> Body:
    """Every flag for `context`; the flags that do not depend on it are serialized once per
    snapshot and spliced in."""
    static = snapshot.per_cell(
        "ofrep-static",
        environment,
        application,
        lambda: _static_parts(snapshot, environment, application),
    )
    targeted = snapshot.evaluator.targeted(environment, application)
    found = snapshot.evaluator.evaluate_all(environment, application, context) if targeted else {}
    # What a targeted flag can serve is a few outcomes (variant, reason, gatedBy): each is
    # serialized once per cell and kept, bounded by flags x variants x reasons x dependencies.
    outcomes: dict[tuple[str, str, str, str | None], bytes] = snapshot.per_cell(
        "ofrep-outcomes", environment, application, dict
    )
    flags = []
    for index, key in enumerate(snapshot.keys):
        if key not in targeted:
            flags.append(orjson.Fragment(static[index]))
            continue
        outcome = found[key]
        known = (key, outcome.variant, outcome.reason, outcome.gated_by)
        data = outcomes.get(known)
        if data is None:
            data = serialize(_document(snapshot, key, environment, application, outcome))
            outcomes[known] = data
        flags.append(orjson.Fragment(data))
    return json_body(
        {"flags": flags, "metadata": {"revision": snapshot.revision}}, compress=compress
    )


def _static_parts(snapshot: Snapshot, environment: str, application: str | None) -> list[bytes]:
    """Each flag's evaluation with no context, serialized canonically, in key order: the
    parts of a bulk answer that no context changes."""
    found = snapshot.evaluator.evaluate_all(environment, application, {})
    return [
        serialize(_document(snapshot, key, environment, application, found[key]))
        for key in snapshot.keys
    ]


def target(
    req: falcon.Request, snapshot: Snapshot, default: str | None, key: str | None
) -> tuple[str, str | None, dict[str, Any]]:
    """The environment and application the request's context names, checked against the
    snapshot and against the environments the API key may read, and the context (with the
    environment it was given, or the one chosen for it)."""
    context = read_context(req, key)
    scope = allowed_environments(req)
    named = _name(context, "environment", key)
    environment = choose_environment(named, scope, default, snapshot, key)
    application = _name(context, "application", key)
    check_application(snapshot, application, key)
    return environment, application, {**context, "environment": environment}


def choose_environment(
    named: str | None,
    scope: frozenset[str] | None,
    default: str | None,
    snapshot: Snapshot,
    key: str | None,
) -> str:
    """The environment `named` (or, when None, the one chosen for the credentials),
    checked against the credentials' `scope` and then against the snapshot."""
    environment = named if named is not None else _default(scope, default)
    if environment is None:
        allowed = sorted(scope) if scope is not None else snapshot.environments
        raise OfrepError(
            falcon.HTTP_400,
            INVALID_CONTEXT,
            f"the context must name an environment, one of {', '.join(allowed)}",
            key,
        )
    if scope is not None and environment not in scope:
        raise OfrepError(
            falcon.HTTP_403,
            GENERAL,
            f"this API key may not read the environment {environment!r}",
            key,
        )
    if environment not in snapshot.environments:
        raise _unknown("environment", environment, snapshot.environments, key)
    return environment


def check_application(snapshot: Snapshot, application: str | None, key: str | None) -> None:
    """INVALID_CONTEXT for an application the snapshot does not have."""
    if application is not None and application not in snapshot.applications:
        raise _unknown("application", application, snapshot.applications, key)


def _default(scope: frozenset[str] | None, default: str | None) -> str | None:
    """A key that may read one environment reads that one; otherwise the server's default,
    if the key may read it."""
    if scope is not None and len(scope) == 1:
        return next(iter(scope))
    if scope is None or default in scope:
        return default
    return None


def _name(context: Mapping[str, Any], field: str, key: str | None) -> str | None:
    value = context.get(field)
    if value is None or isinstance(value, str):
        return value
    raise OfrepError(falcon.HTTP_400, INVALID_CONTEXT, f"context.{field} must be a string", key)


def _unknown(field: str, name: str, known: Sequence[str], key: str | None) -> OfrepError:
    return OfrepError(
        falcon.HTTP_400,
        INVALID_CONTEXT,
        f"there is no {field} {name!r}; there are {', '.join(known)}",
        key,
    )


def read_context(req: falcon.Request, key: str | None) -> dict[str, Any]:
    """The body's `context` (an absent one is empty): PARSE_ERROR unless the body is a JSON
    object whose context, if any, is an object."""
    try:
        document = orjson.loads(read_body(req, key))
    except orjson.JSONDecodeError as exc:
        raise OfrepError(
            falcon.HTTP_400, PARSE_ERROR, f"the body is not JSON: {exc}", key
        ) from None
    if not isinstance(document, dict):
        raise OfrepError(
            falcon.HTTP_400, PARSE_ERROR, 'the body must be an object: {"context": {...}}', key
        )
    context = document.get("context", {})
    if not isinstance(context, dict):
        raise OfrepError(falcon.HTTP_400, PARSE_ERROR, "context must be an object", key)
    return context


def read_body(req: falcon.Request, key: str | None) -> bytes:
    """At most MAX_BODY bytes: a longer Content-Length is refused unread, and a chunked body
    is read no further than one byte past the limit."""
    length = req.content_length
    if length is not None and length > MAX_BODY:
        raise _too_large(key)
    chunked = length is None and "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    stream: ReadableIO = req.stream if chunked else req.bounded_stream
    data = _read_at_most(stream, MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise _too_large(key)
    return data


def _read_at_most(stream: ReadableIO, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _too_large(key: str | None) -> OfrepError:
    return OfrepError(falcon.HTTP_413, GENERAL, f"the body is larger than {MAX_BODY} bytes", key)
