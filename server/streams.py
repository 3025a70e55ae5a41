"""OFREP event streams (OFREP 0.3, decision records 0008 and 0010): a client keeps a
server-sent events stream open per environment and is told to fetch its flags again when a
new build, or a scheduled step of the one served (server.store), changes what that
environment serves.

- What an environment serves is named by a tag (`Snapshot.definition_tags`): the same for
  two builds that serve it alike, on every replica. The `Hub` of a process knows each
  environment's current tag and, when a swapped-in build changes one, tells its subscribers
  (each worker's event loop, server.worker), which send that environment's streams the
  event. An event's `id` is the tag: a client that reconnects with `Last-Event-ID` naming
  another tag (it missed a change, maybe on another replica) is sent the event at once.
- The events resource (server.resources.events) checks the request and hands the server a
  `Held` through the WSGI environ's `HOLD` callable; the worker then keeps the connection
  in its event loop, with no thread, sending events and a keep-alive comment at least
  every `keepalive` seconds. Under a server without `HOLD` (a test client) the stream ends
  after its first bytes and the client reconnects after `RETRY_MS`.
- A browser's EventSource sends no headers, so the bulk answer's stream URL carries a
  short-lived signed token (`Tokens`) naming the API key, the environment and the
  application, instead of the key: the key never appears in a URL. The stream also takes
  the key's own header. The access log never shows a query string (server.logs).
"""

from __future__ import annotations

import base64
import binascii
import collections
import contextlib
import hashlib
import hmac
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import falcon
import orjson

from core.bodies import Body, body
from core.canonical import serialize
from core.regular import read_regular_file
from core.snapshot import Snapshot, SnapshotError
from server.store import Store

PATH: Final = "/ofrep/v1/events"
HOLD: Final = "gitflags.hold"  # WSGI environ: keep this connection open as `Held` says
RETRY_MS: Final = 1000  # how soon a client reconnects to a stream that ended
INACTIVITY_SECONDS: Final = 120  # OFREP's default: a hidden page closes its stream
TOKEN_SECONDS: Final = 600  # how long a stream URL's token stays good for connecting
SECRET_BYTES: Final = 32
PAST_TAGS: Final = 64  # tags an environment had before, known as old
CATCH_UP_SECONDS: Final = 2.0  # a bulk request naming an unknown tag waits this long
KEEPALIVE_SECONDS: Final = 15.0  # proxies commonly close a response idle for 30-60 s
KEEPALIVE: Final = b": keep-alive\n\n"  # a comment: proxies see traffic, clients nothing


def event(tag: str, last_modified: int | None) -> bytes:
    """OFREP's `refetchEvaluation` event for an environment now tagged `tag`."""
    data: dict[str, str | int] = {"type": "refetchEvaluation", "etag": tag}
    if last_modified is not None:
        data["lastModified"] = last_modified
    return b"id: %s\nevent: message\ndata: %s\n\n" % (tag.encode(), serialize(data))


# A stream's first bytes: how soon to reconnect, and a comment (some proxies hold a response
# back until its first bytes of content).
OPENING: Final = b"retry: %d\n: gitflags\n\n" % RETRY_MS


News = dict[str, tuple[str, bytes] | None]  # per environment: its new tag and event, or gone
Subscriber = Callable[[News], None]


class Hub:
    """Per process: each environment's current tag and event, and who to tell when a new
    build or a step changes them (a store listener, called in the store's reload thread or
    its step thread)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._subscribers: tuple[Subscriber, ...] = ()
        self._swaps = threading.Condition()  # a swap's news; guards the subscribers too
        self._waiting = threading.Lock()  # held by the one request that waits (catch_up)
        # Per environment, its tag and its event: one dict, replaced whole at each swap, so
        # that a reader in another thread sees a tag with its own event, never a mix.
        self._served: dict[str, tuple[str, bytes]] = {}
        self._past: collections.deque[str] = collections.deque(maxlen=PAST_TAGS)
        with contextlib.suppress(SnapshotError):  # none loaded yet: the first swap brings it
            self._take(store.current.definition_tags, store.current.last_modified)
        store.listeners.append(self._swapped)
        store.step_listeners.append(self._served_changed)  # a step changes tags as a build does

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber` with the `News` of each new build or step that changes some
        environment (in the store's reload or step thread)."""
        with self._swaps:
            if subscriber not in self._subscribers:
                self._subscribers = (*self._subscribers, subscriber)

    def news(self, environment: str) -> tuple[str, bytes] | None:
        """The environment's current tag and its event; None when it has none (no such
        environment in the build being served)."""
        return self._served.get(environment)

    def tag(self, environment: str) -> str | None:
        found = self._served.get(environment)
        return None if found is None else found[0]

    def _take(self, tags: dict[str, str], last_modified: int | None) -> News:
        """The new tags in; returns what changed."""
        old = self._served
        changed: News = {environment: None for environment in old if environment not in tags}
        served = {}
        for environment, tag in tags.items():
            kept = old.get(environment)
            served[environment] = (
                kept if kept and kept[0] == tag else (tag, event(tag, last_modified))
            )
            if served[environment] is not kept:
                changed[environment] = served[environment]
        self._past.extend(tag for tag, _ in old.values())
        self._served = served
        return changed

    def catch_up(self, environment: str, tag: str, timeout: float) -> None:
        """Wait, at most `timeout` seconds, until this process serves `environment` as
        `tag`: a client told of a change by one replica may ask another that has not taken
        in that build yet. A tag this process has served before is old news: no wait. One
        request of the process waits at a time, the others are answered at once: any client
        can name a tag that never comes, and each wait holds one of the few threads."""
        if not self._waiting.acquire(blocking=False):
            return
        try:
            deadline = time.monotonic() + timeout
            with self._swaps:
                while self.tag(environment) != tag and tag not in self._past:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    self._swaps.wait(left)
        finally:
            self._waiting.release()

    def _swapped(self, swapped: bool, error: str | None) -> None:
        if swapped:
            self._served_changed()

    def _served_changed(self) -> None:
        """A new build, or a step of the one served: tell of the environments it changes."""
        snapshot = self.store.current
        with self._swaps:
            changed = self._take(snapshot.definition_tags, snapshot.last_modified)
            self._swaps.notify_all()
        if changed:
            for subscriber in self._subscribers:
                subscriber(changed)


@dataclass(frozen=True)
class Held:
    """A stream the events resource asks its server to keep open: the environment it
    follows, the tag the client already has (None: unknown), and the hub to follow."""

    environment: str
    seen: str | None
    hub: Hub
    keepalive: float


@dataclass(frozen=True)
class Grant:
    """What a stream token allows: the API key's name, the environment and application."""

    key: str
    environment: str
    application: str | None


class Tokens:
    """Stream tokens: `<payload>.<HMAC-SHA256 of it>`, both base64url, the payload canonical
    JSON of the grant and its expiry. Every worker of a flagserve shares the secret (made in
    the master before it forks, or read from a file); replicas behind one load balancer
    share it through that file, or a token issued by one is refused by the others and the
    client fetches its flags again for a new one."""

    def __init__(
        self, secret: bytes, clock: Callable[[], float] = time.time, lifetime: int = TOKEN_SECONDS
    ) -> None:
        self._secret = secret
        self._clock = clock
        self._lifetime = lifetime

    @classmethod
    def from_file(cls, path: Path | None) -> Tokens:
        """With a secret file (at least 32 bytes), its bytes; without, a random secret."""
        if path is None:
            return cls(secrets.token_bytes(SECRET_BYTES))
        secret = read_regular_file(path, 4096).strip()
        if len(secret) < SECRET_BYTES:
            raise ValueError(f"{path} holds {len(secret)} bytes; a secret needs {SECRET_BYTES}")
        return cls(secret)

    def window(self) -> int:
        """Tokens issued in one window are the same bytes (so answers can be kept): a
        token is issued for the rest of the window and one more."""
        return int(self._clock()) // self._lifetime

    def issue(self, grant: Grant) -> str:
        expires = (self.window() + 2) * self._lifetime
        payload = serialize(
            {"a": grant.application, "e": grant.environment, "k": grant.key, "x": expires}
        )
        return f"{_encode(payload)}.{_encode(self._sign(payload))}"

    def check(self, token: str) -> Grant | None:
        """The grant of a good, unexpired token; None for any other string."""
        payload_part, _, signature_part = token.partition(".")
        payload, signature = _decode(payload_part), _decode(signature_part)
        if payload is None or signature is None:
            return None
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            found = orjson.loads(payload)
            grant = Grant(found["k"], found["e"], found["a"])
            expires = found["x"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        if not isinstance(expires, int) or expires <= self._clock():
            return None
        return grant

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes | None:
    if not text or len(text) > 1024:
        return None
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    # One spelling per token: base64's last character has bits decoding ignores, so other
    # spellings of the same bytes would pass too.
    return decoded if _encode(decoded) == text else None


class Offer:
    """What a bulk answer says about streams: OFREP's `eventStreams`, one SSE endpoint for
    the request's environment and application (a token URL when the request came with an
    API key), spliced into the flags' body. The bytes, and so the ETag, change with a new
    build that changes the environment and, with a key, with each window of tokens: a
    client that revalidates across windows gets the body again, not a 304, about once in
    ten minutes at most (the web provider revalidates only when told of a change)."""

    def __init__(self, hub: Hub, tokens: Tokens) -> None:
        self.hub = hub
        self.tokens = tokens

    def attach(
        self,
        req: falcon.Request,
        snapshot: Snapshot,
        cell: tuple[str, str | None],
        flags: Body,
        *,
        kept: bool,
        compress: bool,
    ) -> Body:
        """`flags` with `eventStreams`; made once per window of tokens when `kept` (`flags`
        is the same for every request in `cell`; gzipped too), else for this request
        alone (gzipped when it accepts gzip: `compress`)."""
        environment, application = cell
        key_name: str | None = getattr(req.context, "key_name", None)
        window = self.tokens.window() if key_name is not None else 0
        tag = snapshot.definition_tags[environment]

        def make() -> Body:
            if key_name is not None:
                grant = Grant(key_name, environment, application)
                query = {"token": self.tokens.issue(grant), "since": tag}
            else:
                named = {"environment": environment, "application": application}
                query = {**{k: v for k, v in named.items() if v is not None}, "since": tag}
            uri = f"{req.root_path}{PATH}?{urllib.parse.urlencode(query)}"
            stream = {
                "type": "sse",
                "endpoint": {"requestUri": uri},
                "inactivityDelaySec": INACTIVITY_SECONDS,
            }
            head = b'{"eventStreams":[' + serialize(stream) + b"],"
            return spliced(flags, head, compress=compress or kept)

        if not kept:
            return make()
        memo = ("ofrep-streams", environment, application, key_name, window, req.root_path)
        return snapshot.memo(memo, make)


def spliced(flags: Body, head: bytes, *, compress: bool) -> Body:
    """`flags` (a JSON object whose keys all sort after `eventStreams`) with `head` in
    front of its first key, so the document stays canonical; a body of its own (its ETag
    the hash of these bytes, as every ETag: the same for every request of a window)."""
    return body(head + flags.data[1:], flags.content_type, compress=compress)
