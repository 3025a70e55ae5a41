"""What tests/core's differential tests share: format-2 flags built by `make_flag` (until
the compiler emits format 2), the oracle (the flagd evaluator the project pins,
openfeature-flagd-core over panzi-json-logic, loaded with core.flagd's definitions and asked
as a provider asks it), and hypothesis strategies of generated flag sets and contexts. Test
modules import these from here, never from one another."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext

from core import flagd

ENVIRONMENTS = ["staging", "production"]
APPLICATIONS = ["web", "ios"]
REVISION = "content-0123456789ab"
BOOLEAN = {"off": False, "on": True}

Cell = tuple[str, str]  # (variant, source)


def make_flag(
    *,
    variants: Mapping[str, Any] = BOOLEAN,
    off: str | None = "off",
    cell: Cell = ("off", "default"),
    rows: Mapping[str, Cell] | None = None,
    applications: Mapping[str, Mapping[str, Cell]] | None = None,
    rules: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    depends_on: Sequence[str] = (),
    kind: str = "boolean",
) -> dict[str, Any]:
    """A format-2 flag entry: `cell` in every environment unless `rows` says otherwise,
    each application's cell as its environment's unless `applications[env]` says so."""

    def resolved(value: Cell) -> dict[str, Any]:
        return {"variant": value[0], "value": variants[value[0]], "source": value[1]}

    def row(environment: str) -> dict[str, Any]:
        own = (rows or {}).get(environment, cell)
        apps = (applications or {}).get(environment, {})
        return {
            **resolved(own),
            "rules": list((rules or {}).get(environment, ())),
            "applications": {app: resolved(apps.get(app, own)) for app in APPLICATIONS},
        }

    return {
        "owner": "team-test",
        "type": kind,
        "variants": dict(variants),
        "off": off,
        "enabled": None if kind != "boolean" else cell[0] == "on",
        "depends_on": list(depends_on),
        "resolved": {environment: row(environment) for environment in ENVIRONMENTS},
    }


def make_document(flags: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": 2,
        "revision": REVISION,
        "environments": ENVIRONMENTS,
        "applications": APPLICATIONS,
        "flags": dict(flags),
    }


def when(attribute: str, operator: str, argument: Any, serve: str = "on") -> dict[str, Any]:
    return {"when": {attribute: {operator: argument}}, "serve": serve}


def rollout(
    weights: Sequence[tuple[str, int]], by: str = "targetingKey", seed: str = "seed", **when: Any
) -> dict[str, Any]:
    return {"when": when, "rollout": [list(w) for w in weights], "by": by, "seed": seed}


# The oracle --------------------------------------------------------------------------------

RESOLVE = {
    "boolean": ("resolve_boolean_value", False),
    "string": ("resolve_string_value", ""),
    "integer": ("resolve_integer_value", 0),
    "float": ("resolve_float_value", 0.0),
    "object": ("resolve_object_value", {}),
}


def oracle(document: Mapping[str, Any], environment: str) -> FlagdCore:
    core = FlagdCore()
    core.set_flags(flagd.definitions(document)[environment].decode())
    return core


def flagd_context(application: str | None, context: Mapping[str, Any]) -> EvaluationContext:
    attributes = {k: v for k, v in context.items() if k != "targetingKey"}
    return EvaluationContext(targeting_key=context.get("targetingKey"), attributes=attributes)


def ask_flagd(
    core: FlagdCore, kind: str, key: str, application: str | None, context: Mapping[str, Any]
) -> tuple[str | None, Any]:
    method, default = RESOLVE[kind]
    found = getattr(core, method)(key, default, flagd_context(application, context))
    return found.variant, found.value


def our_context(application: str | None, context: Mapping[str, Any]) -> dict[str, Any]:
    return {**context, "application": application} if application else dict(context)


# Generated flag sets and contexts ----------------------------------------------------------

ATTRIBUTES = ["country", "seats", "version", "account", "user.tier"]  # few: rules meet contexts
SCALARS = st.one_of(
    st.sampled_from(
        ["NL", "BE", "free", "pro", "gold", "a@example.com", "Ünïcødé", "true", "1", "2.3.0"]
    ),
    st.integers(-1, 3),
    st.sampled_from([0.0, 1.0, 2.5, 3.0, -1.5]),
    st.booleans(),
)
VERSIONS = st.sampled_from(
    ["2.3.0", "1.2.0", "2.3", "v2.4.1", "2.3.0-beta", "3.0.0+b1", "1", "junk", "10.0.0"]
)
CONTEXT_VALUES = st.one_of(
    SCALARS,
    st.sampled_from([True, False, 0, 1, 1.0, "True"]),
    VERSIONS,
    st.none(),
    st.text(max_size=6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.integers(-(2**70), 2**70),
    st.lists(st.sampled_from(["NL", 1, True]), max_size=2),
)


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for attribute in draw(st.lists(st.sampled_from(ATTRIBUTES), max_size=2, unique=True)):
        operator = draw(
            st.sampled_from(
                ["in", "not", "semver", "starts_with", "ends_with", "gt", "gte", "lt", "lte"]
            )
        )
        if operator in ("in", "not"):
            argument: Any = draw(st.lists(SCALARS, min_size=1, max_size=3))
        elif operator == "semver":
            argument = [
                draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "^", "~"])),
                draw(VERSIONS.filter(lambda v: v != "junk")),
            ]
        elif operator in ("starts_with", "ends_with"):
            argument = draw(st.sampled_from(["", "a", "N", "@example.com", "Ü", "2."]))
        else:
            argument = draw(st.integers(-2, 11) | st.sampled_from([0.5, 2.5, 10.0]))
        found[attribute] = {operator: argument}
    return found


def bucket_order(variants: Sequence[str], off: str | None) -> list[str]:
    return [v for v in variants if v != off] + ([off] if off is not None else [])


@st.composite
def weights(draw: st.DrawFn, names: Sequence[str]) -> list[tuple[str, int]]:
    cuts = sorted(
        draw(st.lists(st.integers(0, 100), min_size=len(names) - 1, max_size=len(names) - 1))
    )
    bounds = [0, *cuts, 100]
    return [(name, bounds[i + 1] - bounds[i]) for i, name in enumerate(names)]


@st.composite
def rules(draw: st.DrawFn, names: Sequence[str], off: str | None) -> list[dict[str, Any]]:
    found = []
    for _ in range(draw(st.integers(0, 3))):
        when_ = draw(conditions())
        if draw(st.booleans()):
            found.append({"when": when_, "serve": draw(st.sampled_from(names))})
        else:
            by = draw(st.sampled_from(["targetingKey", "account", "seats", "country"]))
            seed = draw(st.sampled_from(["s1", "checkout-2027", "ü:x"]))
            found.append(
                rollout(draw(weights(bucket_order(names, off))), by=by, seed=seed, **when_)
            )
    return found


KINDS = {
    "boolean": st.just(BOOLEAN),
    "string": st.lists(
        st.sampled_from(["red", "green", "blue"]), min_size=2, max_size=3, unique=True
    ).map(lambda names: {n: f"#{n}" for n in names}),
    "integer": st.lists(
        st.sampled_from(["low", "mid", "high"]), min_size=2, max_size=3, unique=True
    ).map(lambda names: {n: i * 10 for i, n in enumerate(names)}),
    "float": st.lists(
        st.sampled_from(["low", "mid", "high"]), min_size=2, max_size=3, unique=True
    ).map(lambda names: {n: i + 0.5 if i else 2.0 for i, n in enumerate(names)}),
    "object": st.lists(st.sampled_from(["a", "b", "c"]), min_size=2, max_size=3, unique=True).map(
        lambda names: {n: {"name": n, "items": [i]} for i, n in enumerate(names)}
    ),
}
SOURCES = st.sampled_from(["default", "environment", "application", "environment-application"])


@st.composite
def flag_sets(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    flags: dict[str, dict[str, Any]] = {}
    for index in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(sorted(KINDS)))
        variants = draw(KINDS[kind])
        names = list(variants)
        off = "off" if kind == "boolean" else draw(st.sampled_from([*names, None]))
        cells = st.tuples(st.sampled_from(names), SOURCES)
        flags[f"f{index}"] = make_flag(
            variants=variants,
            off=off,
            kind=kind,
            rows={e: draw(cells) for e in ENVIRONMENTS},
            applications={
                e: draw(st.dictionaries(st.sampled_from(APPLICATIONS), cells)) for e in ENVIRONMENTS
            },
            rules={e: draw(rules(names, off)) for e in ENVIRONMENTS},
            depends_on=draw(st.lists(st.sampled_from(sorted(flags)), unique=True)) if flags else [],
        )
    return flags


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if draw(st.booleans()):
        context["targetingKey"] = draw(
            st.text(max_size=10) | st.sampled_from(["user-1", "user-2", ""])
        )
    for attribute in ATTRIBUTES:
        if draw(st.integers(0, 3)) == 0:
            continue
        if attribute == "user.tier":
            context["user"] = draw(st.fixed_dictionaries({"tier": CONTEXT_VALUES}) | CONTEXT_VALUES)
        else:
            context[attribute] = draw(CONTEXT_VALUES)
    return context
