"""compiler/variants.py: each rule once, in tables; the golden corpus shows the words."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from compiler.load import Loaded, SourceFile
from compiler.validate import validate
from compiler.variants import check_variants, never_holds, semver_problem
from compiler.yamlsource import Parsed, parse
from core.model import Operators

HEAD = "description: d\nowner: o\n"
TYPED = HEAD + "type: string\nvariants: {a: x, b: y}\ndefault: a\noff: a\n"
BOOLEAN = HEAD + "enabled: false\n"


def findings(*files: str) -> list[tuple[str, str, int, int]]:
    """(file, code, line, column) of every finding over flags f0, f1, ..."""
    documents = []
    for index, text in enumerate(files):
        parsed = parse(textwrap.dedent(text), f"f{index}.yaml")
        assert isinstance(parsed, Parsed)
        documents.append(SourceFile(f"f{index}.yaml", parsed.data, parsed.source, f"f{index}", ""))
    validated = validate(Loaded(flags=documents))
    assert validated.diagnostics == []
    return sorted((d.file, d.code, d.line, d.column) for d in check_variants(validated.flags))


CASES = [
    ("clean typed flag", [TYPED + "applications: {web: b}\n"], []),
    ("unknown default", [TYPED.replace("default: a", "default: c") + "rules: [{serve: b}]\n"],
     [("f0.yaml", "unknown-variant", 5, 10)]),
    ("unknown environment value", [TYPED + "applications: {web: b}\nenvironments: {prod: c}\n"],
     [("f0.yaml", "unknown-variant", 8, 22)]),
    ("unknown rollout name, at its key", [TYPED + "rules: [{rollout: {b: 50, c: 50}}]\n"],
     [("f0.yaml", "unknown-variant", 7, 27)]),
    ("boolean serve", [BOOLEAN + "rules: [{serve: yes}]\n"],
     [("f0.yaml", "unknown-variant", 4, 17)]),
    ("missing off, with depends_on", [
        TYPED.replace("off: a\n", "") + "applications: {web: b}\ndepends_on: [f1]\n",
        BOOLEAN,
    ], [("f0.yaml", "missing-off", 7, 13)]),
    ("missing off, with a dependent", [
        TYPED.replace("off: a\n", "") + "applications: {web: b}\n",
        BOOLEAN + "depends_on: [f0]\n",
    ], [("f0.yaml", "missing-off", 3, 7)]),
    ("weights sum to 90", [BOOLEAN + "rules: [{rollout: {on: 10, off: 80}}]\n"],
     [("f0.yaml", "rollout-weights", 4, 19)]),
    ("bad semver", [BOOLEAN + "rules: [{when: {v: {semver: '>=2.x'}}, serve: on}]\n"],
     [("f0.yaml", "invalid-semver", 4, 29)]),
    ("a rule after one without when", [BOOLEAN + "rules: [{serve: on}, {serve: off}]\n"],
     [("f0.yaml", "unreachable-rule", 4, 22)]),
    ("a rollout hides nothing", [BOOLEAN + "rules: [{rollout: {on: 100}}, {serve: off}]\n"], []),
    ("same conditions, earlier", [
        BOOLEAN + "rules: [{when: {c: NL}, serve: on}, {when: {c: [NL], p: x}, serve: off}]\n"
    ], [("f0.yaml", "unreachable-rule", 4, 37)]),
    ("fewer conditions later", [
        BOOLEAN + "rules: [{when: {c: NL, p: x}, serve: on}, {when: {c: NL}, serve: off}]\n"
    ], []),
    ("a condition that never holds", [BOOLEAN + "rules: [{when: {c: {in: [a], not: [a]}}, "
                                                 "serve: on}]\n"],
     [("f0.yaml", "unreachable-rule", 4, 20)]),
    ("number then text", [BOOLEAN + "rules: [{when: {n: {gt: 1}}, serve: on}, "
                                    "{when: {n: ['2']}, serve: off}]\n"],
     [("f0.yaml", "attribute-type", 4, 53)]),
    ("across environments", [BOOLEAN + "rules: [{when: {n: [1]}, serve: on}]\n"
                                       "environments: {p: {rules: [{when: {n: {semver: '1'}}, "
                                       "serve: on}]}}\n"],
     [("f0.yaml", "attribute-type", 5, 39)]),
    ("unused variant", [TYPED],
     [("f0.yaml", "unused-variant", 4, 18)]),
    ("a zero weight serves nothing", [TYPED + "rules: [{rollout: {a: 100, b: 0}}]\n"],
     [("f0.yaml", "unused-variant", 4, 18)]),
]  # fmt: skip


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_findings(files: list[str], expected: list[tuple[str, str, int, int]]) -> None:
    assert findings(*files) == expected


def test_warnings_and_errors() -> None:
    flag = BOOLEAN + "rules: [{serve: on}, {serve: off}]\n"
    parsed = parse(flag, "f.yaml")
    assert isinstance(parsed, Parsed)
    validated = validate(Loaded(flags=[SourceFile("f.yaml", parsed.data, parsed.source, "f", "")]))
    [finding] = check_variants(validated.flags)
    assert (finding.code, finding.severity) == ("unreachable-rule", "warning")


# flag type, value, accepted
VALUES = [
    ("string", "", True),
    ("string", 1, False),
    ("string", None, False),
    ("integer", 2, True),
    ("integer", 2.0, False),  # served as written: 2.0 would be a float
    ("integer", True, False),
    ("integer", 2**63 - 1, True),
    ("integer", 2**63, False),
    ("float", 2, True),
    ("float", 2.5, True),
    ("float", False, False),
    ("float", float("nan"), False),
    ("object", {}, True),
    ("object", {"a": [1, {"b": float("inf")}]}, False),
    ("object", [1], False),
]


@pytest.mark.parametrize(("flag_type", "value", "accepted"), VALUES)
def test_variant_types(flag_type: str, value: object, accepted: bool) -> None:
    document: Any = {"description": "d", "owner": "o", "type": flag_type,
                "variants": {"v": value}, "default": "v"}  # fmt: skip
    parsed = parse("{}", "f.yaml")
    assert isinstance(parsed, Parsed)
    validated = validate(Loaded(flags=[SourceFile("f.yaml", document, parsed.source, "f", "")]))
    codes = [d.code for d in check_variants(validated.flags)]
    assert codes == ([] if accepted else ["variant-type"])


# (semver text, flagd's sem_ver reads it)
SEMVERS = [
    (">=2.3.0", True),
    ("2.3.0", True),
    ("= 2", True),
    ("^v2.3", True),
    ("~V1", True),
    ("<1.0.0-alpha.1+build.7", True),
    ("!=1.2.3-0", True),
    (">=2.x", False),
    ("=>2.3.0", False),
    (">=", False),
    ("", False),
    ("01.2.3", False),
    ("1.2.3.4", False),
    ("1.2.3-", False),
    ("1.2.3-01", False),
    ("1.2.3+", False),
    ("vv1", False),
    ("1.2.3 beta", False),
    ("\uff11.2.3", False),  # a full-width digit
]


@pytest.mark.parametrize(("text", "valid"), SEMVERS)
def test_semver(text: str, valid: bool) -> None:
    assert (semver_problem(text) is None) == valid


def test_a_mistyped_operator_is_named() -> None:
    assert "did you mean '>='?" in (semver_problem("=>2.3.0") or "")


def test_a_partial_version_is_padded_like_flagd() -> None:
    assert all(semver_problem(text) is None for text in ("1", "v1.2", ">=1-rc.1", "~V2"))


# (condition, words of why it never holds, or None)
CONDITIONS = [
    ({"in": ["a"], "not": ["a"]}, "also in its `not`"),
    ({"in": [1], "not": [1.0]}, "also in its `not`"),
    ({"in": [1], "not": [True]}, None),  # a number is not a boolean
    ({"gt": 10, "lt": 5}, "no number is greater than 10 and less than 5"),
    ({"gte": 5, "lt": 5}, "no number is at least 5 and less than 5"),
    ({"gte": 5, "lte": 5}, None),
    ({"gt": 5, "lt": 5.5}, None),
    ({"gt": 1, "starts_with": "1"}, "a number and text"),
    ({"in": [True], "not": [1]}, None),  # true is not 1
    ({"in": [0.0], "not": [0]}, "also in its `not`"),  # 0.0 is 0
    ({"semver": "1", "gt": 0}, "a number and a version"),  # a number is no version
    ({"in": [1], "semver": "1"}, "none of its `in` values"),
    ({"semver": "1", "ends_with": "x"}, None),
    ({"in": ["a", "b"], "starts_with": "c"}, "none of its `in` values"),
    ({"in": [3, "ab"], "ends_with": "b"}, None),
    ({"in": [3], "lte": 2}, "none of its `in` values"),
    ({"not": ["a"], "starts_with": "a"}, None),
]


@pytest.mark.parametrize(("condition", "words"), CONDITIONS)
def test_never_holds(condition: dict[str, object], words: str | None) -> None:
    reason = never_holds(Operators.model_validate(condition))
    assert (reason is None) == (words is None)
    assert words is None or words in (reason or "")


def test_a_list_is_in() -> None:
    assert never_holds(["a", "b"]) is None
