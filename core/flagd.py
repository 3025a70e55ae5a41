"""flagd's flag definitions from the snapshot, one per environment.

flagd is OpenFeature's flag daemon; its providers also evaluate in-process from a local
file, and flagd itself syncs definitions over HTTP. Given these files, a service already
on OpenFeature reads our compiled flags with no code of ours: offline, evaluated locally.

Each flag is boolean with variants `on`/`off`. Its default variant is the environment-wide
value (what a consumer naming no application gets); applications whose value differs are
listed in the targeting rule on the evaluation-context attribute `application`, which
returns the other variant for them and null (flagd: the default variant) for the rest. As
every cell of a row has one of two values, one rule is exact for every application.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from core.canonical import serialize

SCHEMA: Final = "https://flagd.dev/schema/v0/flags.json"
ATTRIBUTE: Final = "application"  # the evaluation-context attribute targeting reads
VARIANTS: Final = {"on": True, "off": False}


def definitions(document: Mapping[str, Any]) -> dict[str, bytes]:
    """Per environment, flagd's flag-definition bytes for the snapshot `document` (with its
    revision, as `compiler.emit.render` writes it): canonical JSON and a final newline, so
    the same snapshot always gives the same bytes."""
    revision: str = document["revision"]
    flags: Mapping[str, Mapping[str, Any]] = document["flags"]
    rules: dict[int, dict[str, Any]] = {}  # by row: emit.snapshot shares identical rows
    found = {}
    for environment in document["environments"]:
        definition = {
            key: {
                **_rule(flag["resolved"][environment], rules),
                # flagd's metadata values are strings, numbers or booleans: never null.
                "metadata": {"owner": flag["owner"], "revision": revision},
            }
            for key, flag in flags.items()
        }
        metadata = {"environment": environment, "revision": revision}
        found[environment] = (
            serialize({"$schema": SCHEMA, "metadata": metadata, "flags": definition}) + b"\n"
        )
    return found


def _rule(row: Mapping[str, Any], rules: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """A flag's state, variants, default and targeting in one environment (`row` of its
    `resolved`), computed once per row object: a large snapshot has few distinct rows."""
    known = rules.get(id(row))
    if known is not None:
        return known
    default: bool = row["value"]
    differing = [app for app, cell in row["applications"].items() if cell["value"] is not default]
    rule: dict[str, Any] = {
        "state": "ENABLED",
        "variants": VARIANTS,
        "defaultVariant": _variant(default),
    }
    if differing:
        differing.sort()
        # The explicit null makes "no match" portable across JsonLogic implementations.
        condition = {"in": [{"var": ATTRIBUTE}, differing]}
        rule["targeting"] = {"if": [condition, _variant(not default), None]}
    rules[id(row)] = rule
    return rule


def _variant(value: bool) -> str:
    return "on" if value else "off"
