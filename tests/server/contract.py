"""The served routes and the OpenAPI document, read the same way by every test that
compares them: the (template, method) pairs the app's router holds, the resource at a
template, and whether an answer conforms to what the document says of its operation."""

from __future__ import annotations

import re
from typing import Any

import falcon
import falcon.testing
import jsonschema

METHODS = ("get", "post", "put", "patch", "delete")  # HEAD is GET's twin, said once in info
EXAMPLES = {"environment": "production", "application": "web", "key": "new-checkout"}


def routes(
    app: falcon.App[falcon.Request, falcon.Response], *, pages: bool = False
) -> set[tuple[str, str]]:
    """(URI template, method) for every responder the app's router holds; the dashboard's
    HTML pages and assets (server.dashboard: not part of the API) only when `pages`."""
    found: set[tuple[str, str]] = set()
    nodes: list[Any] = list(app._router._roots)
    while nodes:
        node = nodes.pop()
        nodes.extend(node.children)
        page = type(node.resource).__module__.startswith("server.dashboard")
        if node.resource is not None and (pages or not page):
            found |= {
                (node.uri_template, method)
                for method in METHODS
                if hasattr(node.resource, f"on_{method}")
            }
    return found


def resource_at(app: falcon.App[falcon.Request, falcon.Response], template: str) -> object:
    """The resource routed at `template` (an AssertionError when none is)."""
    nodes: list[Any] = list(app._router._roots)
    while nodes:
        node = nodes.pop()
        if node.uri_template == template:
            resource: object = node.resource
            return resource
        nodes.extend(node.children)
    raise AssertionError(template)


def conforms(
    client: falcon.testing.TestClient,
    document: dict[str, Any],
    method: str,
    url: str,
    options: dict[str, Any],
    status: int,
) -> None:
    """Send the request; its answer must have `status`, which the document must list for
    the operation, with a schema the body is valid against."""
    path, _, query = url.partition("?")
    if "context" in options:
        options = {"json": options}
    result = client.simulate_request(method, path, query_string=query or None, **options)
    assert result.status_code == status, result.text
    operation = document["paths"][_template(document, path)][method.lower()]
    response = _resolve(document, operation["responses"][str(result.status_code)])
    media = result.headers["Content-Type"].split(";")[0]
    schema = response["content"][media]["schema"]
    _validator(document, schema).validate(result.json)


def _template(document: dict[str, Any], path: str) -> str:
    """The document's path that `path` matches (a literal one before one with parameters)."""
    templates: list[str] = sorted(document["paths"], key=lambda t: t.count("{"))
    for template in templates:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            return template
    raise AssertionError(f"{path} is not in the document")


def _resolve(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in item:
        *_, kind, name = item["$ref"].split("/")
        item = document["components"][kind][name]
    return item


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Validator:
    root = {**schema, "components": document["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


def api_parameters(client: falcon.testing.TestClient) -> list[tuple[str, str]]:
    """(concrete path, query parameter name) of every GET in the served document, its
    path parameters filled in from EXAMPLES (names that exist in the `built` fixture)."""
    document = client.simulate_get("/openapi.json").json
    shared = document["components"]["parameters"]
    found = []
    for template, item in document["paths"].items():
        for reference in item.get("get", {}).get("parameters", []):
            parameter = shared[reference["$ref"].rpartition("/")[2]]
            if parameter["in"] == "query":
                found.append((template.format_map(EXAMPLES), parameter["name"]))
    return sorted(found)
