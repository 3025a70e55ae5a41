"""How a service reads its flags: the OpenFeature SDK with its OFREP provider, pointed at
flagserve. Nothing in it is specific to gitflags but the URL and the two context
attributes, `environment` and `application`, that pick the resolved value.

    pip install openfeature-sdk openfeature-provider-ofrep
    FLAGS_URL=http://127.0.0.1:8000 FLAGS_ENVIRONMENT=production \\
        python examples/openfeature_ofrep.py new-checkout apple-pay

prints one line per flag: `new-checkout on (TARGETING_MATCH)`. Set FLAGS_API_KEY when the
server has API keys. A flag the server does not know, or a server that cannot be reached,
gives the default the code passes (here: off) and says why, so a service keeps running."""

from __future__ import annotations

import os
import sys

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

APPLICATION = "web"  # this service; the flags' `applications:` name it


def flags_client(url: str, environment: str, api_key: str | None) -> OpenFeatureClient:
    """Set up once at start-up: the provider, the environment for every evaluation, and a
    client for this application."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    api.set_provider(OFREPProvider(url, headers_factory=lambda: headers, timeout=2.0))
    api.set_evaluation_context(EvaluationContext(attributes={"environment": environment}))
    client = api.get_client(APPLICATION)
    client.context = EvaluationContext(attributes={"application": APPLICATION})
    return client


def describe(client: OpenFeatureClient, key: str, user: str) -> str:
    """One flag, as the code that branches on it sees it; off unless the server says on."""
    details = client.get_boolean_details(key, False, EvaluationContext(targeting_key=user))
    value = "on" if details.value else "off"
    if details.error_code is not None:
        return f"{key} {value} (default: {details.error_code.value}: {details.error_message})"
    return f"{key} {value} ({details.reason})"


def main(argv: list[str] | None = None) -> int:
    keys = sys.argv[1:] if argv is None else argv
    if not keys:
        print("usage: openfeature_ofrep.py FLAG [FLAG ...]", file=sys.stderr)
        return 2
    client = flags_client(
        os.environ.get("FLAGS_URL", "http://127.0.0.1:8000"),
        os.environ.get("FLAGS_ENVIRONMENT", "production"),
        os.environ.get("FLAGS_API_KEY"),
    )
    for key in keys:
        print(describe(client, key, user="user-42"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
