"""Access control by API key (off unless FLAGSERVE_API_KEYS names a keys file).

The keys file is YAML, a list of keys, each stored as the SHA-256 of the secret (never the
secret itself: `flagserve hash-key` prints it) with the environments it may read:

    - name: checkout-web               # for people and logs; unique
      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
      environments: [staging, production]
    - name: ops
      sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752
      environments: ['*']              # every environment, and the whole snapshot

When it is set, each resource is answered as its class declares (`access`, server.access),
whatever spelling of its path the router accepted: the API's resources need
`Authorization: Bearer <key>` (OFREP's also take `X-API-Key: <key>`); without a known key,
401 (problem+json, or OFREP's `{errorCode, errorDetails}` for OFREP's resources). A path with
no route is a 404 for anyone, as the routes are public (/openapi.json). Health, readiness,
/metrics, /openapi.json and the dashboard's assets stay open. The whole snapshot, the audit
log and the dashboard's pages (which show every environment and its history) need a key
allowed '*', else 403; pages also accept it as the password of HTTP Basic authentication
(any user name), because that is what a browser can prompt for. A resource that declares
nothing is refused to everyone (fail closed).
A known key sets `req.context.environments` to the environments it may read, or None for
'*'; resources answer 403 from that for any environment outside it, before looking whether
it exists (so a key learns no names outside its scope), and show a flag's history (who
created and changed it, when and why) only when it is None. The presented key is hashed
and compared with every stored digest in constant time (`hmac.compare_digest`); neither it
nor its digest is logged.
The file is checked at start-up (a bad one stops the server) and read again on SIGHUP (a bad
one is then logged and the keys in use are kept).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

import falcon
import yaml

from server.access import Access, declared
from server.errors import Problem
from server.params import param
from server.resources.ofrep import GENERAL, OfrepError
from server.streams import Tokens

ALL: Final = "*"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIELDS: Final = frozenset(("name", "sha256", "environments"))
_CHALLENGE: Final = 'Bearer realm="flagserve"'
_PAGE_CHALLENGE: Final = 'Basic realm="flagserve dashboard", charset="UTF-8"'


class KeyFileError(ValueError):
    """A keys file that cannot be used: the message names the file, the entry and the fix."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: bytes  # SHA-256 of the secret
    environments: frozenset[str] | None  # None: every environment ('*')


def digest(secret: bytes) -> str:
    """What the keys file stores for `secret`: its SHA-256, in hex."""
    return hashlib.sha256(secret).hexdigest()


class KeyRing:
    """The keys of a keys file, looked up in constant time."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self._keys = tuple(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def named(self, name: str) -> ApiKey | None:
        """The key called `name` (a stream token names its key)."""
        return next((key for key in self._keys if key.name == name), None)

    def find(self, secret: str) -> ApiKey | None:
        """The key whose digest is the presented secret's. Every stored digest is compared
        (no early exit), so the time taken says nothing about which, if any, matched."""
        presented = hashlib.sha256(secret.encode("latin-1", "replace")).digest()
        found = None
        for key in self._keys:
            if hmac.compare_digest(presented, key.digest):
                found = key
        return found


def load_keys(path: Path) -> KeyRing:
    """Read and check a keys file; KeyFileError says what is wrong, and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFileError(f"{path}: the API keys file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path}: cannot read the API keys file: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KeyFileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, list) or not document:
        raise KeyFileError(
            f"{path}: must be a non-empty list of keys, each {{name, sha256, environments}}"
        )
    keys = [_key(path, number, entry) for number, entry in enumerate(document, start=1)]
    _unique(path, [key.name for key in keys], "name")
    _unique(path, [key.digest.hex() for key in keys], "sha256")
    return KeyRing(keys)


def _key(path: Path, number: int, entry: Any) -> ApiKey:
    where = f"{path}: key {number}"
    if not isinstance(entry, dict):
        raise KeyFileError(f"{where}: must be a mapping with name, sha256 and environments")
    if isinstance(entry.get("name"), str) and entry["name"].strip():
        where += f" ({entry['name']})"
    unknown = sorted(str(field) for field in entry.keys() - _FIELDS)
    missing = sorted(_FIELDS - entry.keys())
    if unknown or missing:
        problems = [f"lacks {', '.join(missing)}"] if missing else []
        problems += [f"has unknown fields {', '.join(unknown)}"] if unknown else []
        raise KeyFileError(f"{where}: {' and '.join(problems)}")
    name, secret_digest = entry["name"], entry["sha256"]
    if not isinstance(name, str) or not name.strip():
        raise KeyFileError(f"{where}: name must be a non-empty string")
    if not isinstance(secret_digest, str) or not _SHA256.fullmatch(secret_digest):
        raise KeyFileError(
            f"{where}: sha256 must be 64 lowercase hexadecimal digits, the SHA-256 of the key "
            "(`flagserve hash-key` prints it; the key itself never goes in this file)"
        )
    return ApiKey(name, bytes.fromhex(secret_digest), _environments(where, entry["environments"]))


def _environments(where: str, value: Any) -> frozenset[str] | None:
    names = value if isinstance(value, list) else None
    if not names or not all(isinstance(name, str) and name for name in names):
        raise KeyFileError(
            f"{where}: environments must be a non-empty list of environment names, "
            "or ['*'] for all (quote names YAML would read otherwise, such as 'on')"
        )
    if ALL in names:
        if len(names) > 1:
            raise KeyFileError(f"{where}: '*' already means every environment; list it alone")
        return None
    return frozenset(names)


def _unique(path: Path, values: list[str], field: str) -> None:
    seen: set[str] = set()
    for number, value in enumerate(values, start=1):
        if value in seen:
            shown = value if field == "name" else "the same key"
            raise KeyFileError(f"{path}: key {number}: {field} repeats an earlier one ({shown})")
        seen.add(value)


class AccessControl:
    """Falcon middleware: the API key check described above, decided by the `access` that
    the routed resource declares (server.access), never by the request's path. With `keys`
    None, access control is off: every request may read every environment."""

    def __init__(self, keys: KeyRing | None, tokens: Tokens | None = None) -> None:
        self._keys = keys
        self._tokens = tokens

    def use(self, keys: KeyRing) -> None:
        """Check requests against `keys` from now on (a re-read keys file)."""
        self._keys = keys

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.environments = None

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: object
    ) -> None:
        """After routing (so that metrics see the route of a 401), before the responder;
        Falcon calls it only when a route matched: a path with no route is a 404 for anyone."""
        if self._keys is None:
            return
        need = declared(resource)
        if need is None:  # fail closed: a resource that says nothing is answered to no one
            raise Problem("forbidden", "This resource declares no access rule; it is refused.")
        if not need.key:
            return
        token = param(req, "token") if need.token else None
        if token is not None:
            key = self._granted(req, resp, token, self._keys)
        else:
            secret = _presented(req, need)
            found = self._keys.find(secret) if secret else None
            if found is None:
                _deny(resp, _why(secret), need)
            key = found
        if need.every_environment and key.environments is not None:
            _forbid(req)
        req.context.environments = key.environments
        req.context.key_name = key.name

    def _granted(
        self, req: falcon.Request, resp: falcon.Response, token: str, keys: KeyRing
    ) -> ApiKey:
        """The key a stream token was issued to, as the keys file has it now (a key taken
        out of the file takes its tokens with it), with the token's grant in
        `req.context.grant`."""
        grant = self._tokens.check(token) if self._tokens is not None else None
        key = keys.named(grant.key) if grant is not None else None
        if grant is None or key is None:
            resp.set_header("WWW-Authenticate", _CHALLENGE)
            raise OfrepError(
                falcon.HTTP_401,
                GENERAL,
                "the stream token is not valid: it expired, or another server issued it; "
                "fetch the flags again for a new stream URL",
            )
        req.context.grant = grant
        return key


def _presented(req: falcon.Request, need: Access) -> str | None:
    """The key in `Authorization: Bearer <key>`, or where `need` allows it in `X-API-Key`
    (OFREP) or as the password of `Authorization: Basic` (pages)."""
    header = req.get_header("Authorization")
    if header is not None:
        scheme, _, credentials = header.strip().partition(" ")
        if need.basic and scheme.lower() == "basic":
            return _basic_password(credentials.strip())
        return bearer(header)
    if need.ofrep:
        return req.get_header("X-API-Key")
    return None


def bearer(authorization: str) -> str:
    """The key in an Authorization value `Bearer <key>` (HTTP's header, gRPC's metadata);
    "" for another scheme."""
    scheme, _, secret = authorization.strip().partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def _basic_password(credentials: str) -> str:
    """The password in Basic credentials (base64 of `user:password`); "" when malformed."""
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[2].strip()


def _why(secret: str | None) -> str:
    if secret is None:
        return "no API key was given"
    if not secret:
        return "the Authorization header is not Bearer <key>"
    return "the API key is not known"


def _deny(resp: falcon.Response, why: str, need: Access) -> NoReturn:
    """401, in the shape the resource's clients read."""
    if need.basic:
        resp.set_header("WWW-Authenticate", _PAGE_CHALLENGE)
        raise Problem("unauthorized", f"{why}: sign in with the API key as the password.")
    resp.set_header("WWW-Authenticate", _CHALLENGE)
    if need.ofrep:
        raise OfrepError(falcon.HTTP_401, GENERAL, f"{why}: send Authorization: Bearer <key>")
    raise Problem("unauthorized", f"{why}: send Authorization: Bearer <key>.")


def _forbid(req: falcon.Request) -> None:
    """403 for a known key that is not allowed every environment where that is needed (the
    route named as the router matched it, not as the client spelled it)."""
    raise Problem(
        "forbidden", f"{req.uri_template} needs credentials allowed every environment ('*')."
    )
