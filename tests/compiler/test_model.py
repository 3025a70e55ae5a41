"""The pydantic models and the JSON Schemas accept exactly the same documents.

Fixtures under fixtures/{flag,project}/{valid,invalid}/ are read as flag files are read, then
given to both; hypothesis then mixes valid and invalid values for every field.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.diagnostics import Diagnostic
from compiler.load import Loaded, SourceFile
from compiler.validate import validate
from compiler.yamlsource import Data, Parsed, parse
from core.model import Flag, Project, ReasonPolicy

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
SCHEMAS = HERE.parents[1] / "schemas"
MODELS: dict[str, type[pydantic.BaseModel]] = {"flag": Flag, "project": Project}


def validator(kind: str) -> jsonschema.Draft202012Validator:
    with (SCHEMAS / f"{kind}.schema.json").open(encoding="utf-8") as stream:
        schema = json.load(stream)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


VALIDATORS = {kind: validator(kind) for kind in MODELS}


def model_accepts(kind: str, data: Any) -> bool:
    try:
        MODELS[kind].model_validate(data)
    except pydantic.ValidationError:
        return False
    return True


def schema_accepts(kind: str, data: Any) -> bool:
    return VALIDATORS[kind].is_valid(data)


def read(path: Path) -> Parsed:
    parsed = parse(path.read_text(encoding="utf-8"), path.name)
    assert isinstance(parsed, Parsed), parsed
    assert parsed.problems == []
    return parsed


def fixtures() -> list[Any]:
    """(kind, valid, path) for every fixture file."""
    return [
        pytest.param(
            path.parent.parent.name,
            path.parent.name == "valid",
            path,
            id=path.relative_to(FIXTURES).as_posix(),
        )
        for path in sorted(FIXTURES.glob("*/*/*.yaml"))
    ]


def test_fixture_folders_are_well_stocked() -> None:
    def count(kind: str, folder: str) -> int:
        return len(list((FIXTURES / kind / folder).glob("*.yaml")))

    assert count("flag", "valid") >= 5
    assert count("flag", "invalid") >= 12
    assert count("project", "valid") >= 3
    assert count("project", "invalid") >= 5
    assert len(list((FIXTURES / "project" / "valid").glob("reasons-*.yaml"))) >= 3
    assert len(list((FIXTURES / "project" / "invalid").glob("reasons-*.yaml"))) >= 8


@pytest.mark.parametrize(("kind", "valid", "path"), fixtures())
def test_model_and_schema_agree_on_fixture(kind: str, valid: bool, path: Path) -> None:
    data = read(path).data
    assert (model_accepts(kind, data), schema_accepts(kind, data)) == (valid, valid)


def schema_keywords(node: Any) -> set[str]:
    """The validation keywords a schema uses (annotations such as `description` excluded)."""
    keywords = {
        "type", "required", "additionalProperties", "propertyNames", "pattern", "maxLength",
        "minLength", "uniqueItems", "minItems", "minProperties", "format", "minimum", "maximum",
    }  # fmt: skip
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keywords and not (key == "additionalProperties" and value is not False):
                found.add(key)
            if key != "properties" or not isinstance(value, dict):
                found |= schema_keywords(value)
            else:
                for child in value.values():
                    found |= schema_keywords(child)
    elif isinstance(node, list):
        for child in node:
            found |= schema_keywords(child)
    return found


@pytest.mark.parametrize("kind", ["flag", "project"])
def test_invalid_fixtures_exercise_every_schema_keyword(kind: str) -> None:
    failed: set[str] = set()
    for path in (FIXTURES / kind / "invalid").glob("*.yaml"):
        for error in VALIDATORS[kind].iter_errors(read(path).data):
            failed.add(str(error.validator))
            if "propertyNames" in error.relative_schema_path:
                failed.add("propertyNames")
    used = schema_keywords(VALIDATORS[kind].schema)
    assert "pattern" in used
    assert used <= failed, used - failed


def document_of(path: Path) -> SourceFile:
    parsed = read(path)
    return SourceFile(path.name, parsed.data, parsed.source, path.stem, path.name)


def validate_fixture(kind: str, path: Path) -> list[Diagnostic]:
    document = document_of(path)
    if kind == "project":
        return validate(Loaded(project=document)).diagnostics
    validated = validate(Loaded(flags=[document]))
    assert (document.key in validated.flags) == (not validated.diagnostics)
    return validated.diagnostics


@pytest.mark.parametrize(("kind", "valid", "path"), fixtures())
def test_validate_accepts_exactly_the_valid_fixtures(kind: str, valid: bool, path: Path) -> None:
    diagnostics = validate_fixture(kind, path)
    codes = FLAG_CODES if kind == "flag" else {"project-config"}
    assert [d.code for d in diagnostics if d.code not in codes] == []
    assert (diagnostics == []) == valid


# What the schema finds in a flag file: `schema`, the code of the rule check it is, or
# `schedule-zone` for a moment without its zone offset.
FLAG_CODES = {"schema", "invalid-rule", "rollout-weights", "invalid-semver", "schedule-zone"}


# (fixture, line, column, words of the message), the message starting with the dotted path
POSITIONS = [
    ("missing-owner", 1, 1, "'owner'"),  # at the document
    ("unknown-field", 4, 1, "colour: unknown field"),  # at the key
    ("override-unknown-field", 6, 5, "environments.production.enable: "),
    ("enabled-quoted-string", 3, 10, "enabled: "),  # at the value
    ("enabled-yes", 3, 10, "enabled: "),
    ("description-number", 1, 14, "description: "),
    ("environment-name-uppercase", 5, 3, "environments.Production: "),
    ("override-application-name-space", 7, 7, "environments.production.applications.my app: "),
    ("tag-uppercase", 4, 14, "tags[1]: "),
    ("duplicate-depends-on", 7, 5, "depends_on[2]: "),  # at the second occurrence
    ("empty-override", 5, 15, "environments.production: "),
    ("expires-impossible-date", 4, 10, "expires: "),
    ("expires-compact-date", 4, 10, "expires: "),
    ("blank-description", 1, 14, "description: "),
    ("description-too-long", 1, 14, "description: "),
    ("tag-trailing-newline", 4, 8, "tags[0]: "),
    ("top-level-list", 1, 1, "mapping"),
    ("schedule-ramp-end-above-100", 9, 12, "schedule[0].ramp.end: 101 is too large"),
    ("schedule-ramp-unknown-field", 9, 7, "schedule[0].ramp.step: unknown field"),
    ("schedule-step-enabled-number", 8, 18, "environments.production.schedule[0].enabled: "),
]


@pytest.mark.parametrize(("name", "line", "column", "words"), POSITIONS)
def test_schema_diagnostics_point_at_the_problem(
    name: str, line: int, column: int, words: str
) -> None:
    diagnostics = validate_fixture("flag", FIXTURES / "flag" / "invalid" / f"{name}.yaml")
    assert [(d.code, d.line, d.column) for d in diagnostics] == [("schema", line, column)]
    assert words in diagnostics[0].message


def test_every_missing_field_is_reported() -> None:
    path = FIXTURES / "flag" / "invalid" / "missing-all-required.yaml"
    diagnostics = validate_fixture("flag", path)
    assert {(d.line, d.column) for d in diagnostics} == {(1, 1)}
    messages = " ".join(d.message for d in diagnostics)
    for field in ("description", "owner", "enabled"):
        assert f"'{field}'" in messages


# Random documents: every field is either absent, valid or (often) invalid in some way.
CHARACTERS = st.characters(exclude_categories=["Cs"])
OTHER = st.sampled_from([None, 0, 1, 1.5, "", "x", [], {}, True, ["a"], {"a": True}])
NAME = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
ANY_NAME = NAME | st.sampled_from(
    ["", "A", "1a", "a b", "a" * 64, "a" * 65, "é", "a.b", "-a", "_a", "aB", "a\tb", "a\n", "\na"]
)
TAG = st.from_regex(r"[a-z0-9][a-z0-9_.:/-]{0,10}", fullmatch=True)
ANY_TAG = TAG | st.sampled_from(
    ["", "A", "-a", ".a", "_a", "a" * 64, "a" * 65, "a b", "a\\b", "a\n"]
)
TEXT = st.text(CHARACTERS, min_size=1, max_size=12)
BLANKS = ["", " ", "\t\n ", "\xa0", "\u3000", "\x85", "\x1c", "\x1f\x1e"]
ANY_TEXT = TEXT | st.sampled_from([*BLANKS, "x" * 4096, "x" * 4097, "é" * 4097, "\ufeff", " a"])
DATE = st.dates().map(lambda day: f"{day.year:04d}-{day.month:02d}-{day.day:02d}")
BAD_DATES = ["20260101", "2026-02-30", "2026-1-01", "0000-01-01", "2026-01-01T00:00:00"]
ANY_DATE = (
    DATE
    | st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True)
    | st.sampled_from([*BAD_DATES, "\uff12026-01-01", "2026-01-01\n"])
)
ANY_BOOL = st.booleans() | st.sampled_from([0, 1, "true", "yes", None, 1.0])
# Schedules: moments in the years 1970 to 2999 with their offset; then any digits in their
# shape (days, hours and offsets that do not exist), the ends of the years, no offset.
MOMENT = st.builds(
    lambda at, fraction, zone: at.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone,
    st.datetimes(datetime.datetime(1970, 1, 1), datetime.datetime(2999, 12, 31, 23, 59, 59)),
    st.sampled_from(["", ".5", ".123456789"]),
    st.sampled_from(["Z", "+01:00", "-05:30", "+23:59", "-00:00"]),
)
MOMENT_SHAPE = st.from_regex(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?",
    fullmatch=True,
)
ANY_MOMENT = MOMENT | MOMENT_SHAPE | st.sampled_from(
    ["2027-01-11", "2027-01-11 09:00:00Z", "2027-01-11T09:00:00Z\n", "2027-01-11T09:00Z",
     "2027-01-11T09:00:00.Z", "2027-01-11T09:00:00.1234567890Z", "", 5, "2027-01-11T09:00:00",
     "2027-02-30T09:00:00Z", "2027-02-29T09:00:00Z", "2028-02-29T09:00:00Z",
     "2027-01-11T24:00:00Z", "2027-01-11T23:59:60Z", "2027-01-11T09:00:00+24:00",
     "2027-01-11T09:00:00+12:60", "2027-01-11t09:00:00z", "1969-12-31T23:59:59+01:00",
     "1969-12-31T23:59:59Z", "1970-01-01T00:00:00+23:59", "2999-12-31T23:59:59-23:59",
     "3000-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00", "0005-01-01T00:00:00Z"]
)  # fmt: skip
PERCENT = st.integers(-2, 102) | st.sampled_from([15.0, 12.5, 100.0, True, "5", None])
EVERY = st.sampled_from(["1m", "30m", "1h", "1d", "999999d", "0m", "1s", "1w", "h", "1h\n", 60])
VALID_RAMP = st.fixed_dictionaries(
    {"from": MOMENT, "to": MOMENT, "variant": st.just("on")},
    optional={"start": st.integers(0, 100), "end": st.integers(0, 100), "every": EVERY},
).filter(lambda ramp: ramp.get("every", "1h") in ("1m", "30m", "1h", "1d", "999999d"))
RAMP = st.fixed_dictionaries(
    {},
    optional={
        "from": ANY_MOMENT, "to": ANY_MOMENT, "variant": ANY_NAME, "start": PERCENT,
        "end": PERCENT, "every": EVERY, "by": ANY_TEXT, "seed": ANY_TEXT, "step": st.just(5),
    },
)  # fmt: skip
RULES = st.sampled_from(
    [[], [{"serve": "on"}], [{"rollout": {"on": 5, "off": 95}}], [{"serve": "on", "rollout": {}}]]
)
# A boolean flag's steps: values of a typed one ("yes", "green", `default`) among them.
STEP_APPS = st.dictionaries(
    ANY_NAME, st.booleans() | st.sampled_from([0, None, 1.0, "Yes", "yes", "green"])
)
STEP = st.fixed_dictionaries(
    {},
    optional={
        "at": ANY_MOMENT, "enabled": ANY_BOOL, "default": ANY_NAME | OTHER,
        "applications": STEP_APPS | OTHER, "rules": RULES | OTHER, "ramp": RAMP | OTHER,
        "note": st.just(1),
    },
)  # fmt: skip
VALID_STEP = st.fixed_dictionaries({"at": MOMENT, "enabled": st.booleans()}) | st.builds(
    lambda ramp: {"ramp": ramp}, VALID_RAMP
)
# A step that is valid but for one thing, which only one of schema and model might see.
ODD_STEP = st.fixed_dictionaries(
    {"at": ANY_MOMENT, "enabled": st.booleans()},
    optional={"default": ANY_NAME, "applications": STEP_APPS},
)
VALID_SCHEDULE = st.lists(VALID_STEP, min_size=1, max_size=3)
ANY_SCHEDULE = st.lists(VALID_STEP | ODD_STEP | STEP | OTHER, max_size=3) | OTHER
APP_VALUES = st.dictionaries(ANY_NAME, ANY_BOOL, max_size=3)
OVERRIDE = st.fixed_dictionaries(
    {},
    optional={
        "enabled": ANY_BOOL,
        "applications": APP_VALUES | OTHER,
        "enable": st.booleans(),
        "schedule": ANY_SCHEDULE,
    },
)
VALID_OVERRIDE = st.fixed_dictionaries(
    {},
    optional={
        "enabled": st.booleans(),
        "applications": st.dictionaries(NAME, st.booleans()),
        "schedule": VALID_SCHEDULE,
    },
).filter(bool)
# field: (a valid value, any value at all: valid, subtly invalid or of the wrong type)
FIELDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "description": (st.just("Some words"), ANY_TEXT | OTHER),
    "owner": (TEXT.filter(lambda text: not text.isspace()), ANY_TEXT | OTHER),
    "enabled": (st.booleans(), ANY_BOOL),
    "environments": (
        st.dictionaries(NAME, st.booleans() | VALID_OVERRIDE, max_size=3),
        st.dictionaries(ANY_NAME, st.booleans() | OVERRIDE | OTHER, max_size=3) | OTHER,
    ),
    "applications": (st.dictionaries(NAME, st.booleans(), max_size=3), APP_VALUES | OTHER),
    "depends_on": (
        st.lists(NAME, max_size=4, unique=True),
        st.lists(ANY_NAME, max_size=4) | OTHER,
    ),
    "tags": (st.lists(TAG, max_size=4, unique=True), st.lists(ANY_TAG, max_size=4) | OTHER),
    "schedule": (VALID_SCHEDULE, ANY_SCHEDULE),
    "expires": (DATE, ANY_DATE | OTHER),
    "colour": (st.nothing(), st.just("blue")),
}
REQUIRED = ("description", "owner", "enabled")


@st.composite
def flag_documents(draw: st.DrawFn) -> Any:
    """Mostly one field drawn from anything, the others valid; sometimes not a mapping."""
    if draw(st.integers(0, 19)) == 0:
        return draw(OTHER | st.lists(OTHER, max_size=2))
    names = list(FIELDS)
    broken = draw(st.sampled_from([*names, "nothing", "nothing", "several"]))
    document = {}
    for field, (valid, anything) in FIELDS.items():
        chance = 19 if field in REQUIRED else 0 if field == "colour" else 8  # in twenty
        if field == broken or draw(st.integers(0, 19)) < chance:
            several = broken == "several" and draw(st.booleans())
            document[field] = draw(anything if field == broken or several else valid)
    return document


@settings(max_examples=600, deadline=None)
@given(flag_documents())
def test_model_and_schema_agree_on_random_flags(document: Data) -> None:
    assert model_accepts("flag", document) == schema_accepts("flag", document)


PROJECT_NAMES = st.lists(ANY_NAME | OTHER, max_size=4) | st.lists(NAME, max_size=3) | OTHER
# min_length: integers around both bounds, floats with and without a fraction, booleans.
MIN_LENGTH = (
    st.integers(-3, 203)
    | st.sampled_from([0, 200, -1, 201, 10**30, 12.0, 12.5, -0.0, 200.0, 201.0, 1e300])
    | st.sampled_from([float("inf"), float("nan"), "10", True, False])
    | OTHER
)
DENY_WORD = TEXT | st.sampled_from([*BLANKS, "wip", "WIP", "x" * 100, "x" * 101, "…" * 101])
DENY = st.lists(DENY_WORD | OTHER, max_size=4) | st.lists(TEXT, max_size=3, unique=True) | OTHER
REASONS = (
    st.fixed_dictionaries(
        {}, optional={"min_length": MIN_LENGTH, "deny": DENY, "min_lenght": st.just(15)}
    )
    | OTHER
)


@settings(max_examples=500, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "environments": PROJECT_NAMES,
            "applications": PROJECT_NAMES,
            "reasons": REASONS,
            "flags": st.just([]),
        },
    )
)
def test_model_and_schema_agree_on_random_projects(document: dict[str, Any]) -> None:
    assert model_accepts("project", document) == schema_accepts("project", document)


@settings(max_examples=300, deadline=None)
@given(REASONS)
def test_model_and_schema_agree_on_random_reason_policies(reasons: Any) -> None:
    """With valid names around it, so that only `reasons` decides."""
    document = {"environments": ["prod"], "applications": [], "reasons": reasons}
    assert model_accepts("project", document) == schema_accepts("project", document)


def test_reason_policy_defaults() -> None:
    project = Project.model_validate({"environments": ["prod"], "applications": []})
    assert project.reasons == ReasonPolicy()
    assert project.reasons.min_length == 10
    assert project.reasons.deny == [
        "wip", "fix", "fixes", "fixed", "update", "updates", "updated", "change", "changes",
        "changed", "tweak", "test", "tmp", "temp", ".", "..", "...", "asdf", "misc", "stuff",
        "flag", "flags", "toggle",
    ]  # fmt: skip
    with (SCHEMAS / "project.schema.json").open(encoding="utf-8") as stream:
        schema = json.load(stream)["properties"]["reasons"]["properties"]
    assert schema["min_length"]["default"] == project.reasons.min_length
    assert schema["deny"]["default"] == project.reasons.deny


def test_reason_policy_takes_an_integral_float_as_its_integer() -> None:
    """JSON Schema counts 12.0 as an integer; the model agrees and keeps an int."""
    policy = ReasonPolicy.model_validate({"min_length": 12.0})
    assert policy.min_length == 12
    assert isinstance(policy.min_length, int)


MINIMAL = {"description": "d", "owner": "o", "enabled": True}


@pytest.mark.parametrize(
    ("kind", "document"),
    [
        ("flag", {**MINIMAL, "tags": ["beta\n"]}),
        ("flag", {**MINIMAL, "depends_on": ["a\n"]}),
        ("flag", {**MINIMAL, "applications": {"web\n": True}}),
        ("flag", {**MINIMAL, "environments": {"prod\n": True}}),
        ("flag", {**MINIMAL, "environments": {"prod": {"applications": {"web\n": True}}}}),
        ("flag", {**MINIMAL, "expires": "2026-01-01\n"}),
        ("project", {"environments": ["prod\n"], "applications": []}),
        ("project", {"environments": ["prod"], "applications": ["web\n"]}),
    ],
)
def test_names_ending_in_a_newline_are_refused_by_both(kind: str, document: dict[str, Any]) -> None:
    """Python's `$` also matches before a final newline; ECMA-262's, the schema's, does not."""
    assert (model_accepts(kind, document), schema_accepts(kind, document)) == (False, False)


@pytest.mark.parametrize("character", ["\x1c", "\x1d", "\x1e", "\x1f"])
def test_information_separators_in_text(character: str) -> None:
    """Python's and Rust's regular expressions disagree on whether these are white space."""
    for document in (
        {**MINIMAL, "description": character},
        {**MINIMAL, "owner": f"a{character}"},
    ):
        assert model_accepts("flag", document) == schema_accepts("flag", document)


TYPED = {"description": "d", "owner": "o", "type": "string", "variants": {"a": 1}, "default": "a"}
# A value at a step of either kind of flag: a boolean, a variant name, or neither.
STEP_VALUE = st.booleans() | NAME | st.sampled_from([0, None, "B", "a\n"])
EITHER_STEP = st.fixed_dictionaries(
    {"at": MOMENT},
    optional={
        "enabled": STEP_VALUE,
        "default": STEP_VALUE,
        "applications": st.dictionaries(NAME, STEP_VALUE, max_size=2),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([MINIMAL, TYPED]), st.lists(EITHER_STEP, max_size=3), st.booleans())
def test_model_and_schema_agree_on_steps_of_either_kind_of_flag(
    flag: dict[str, Any], steps: list[Any], in_an_environment: bool
) -> None:
    """The fields and values of the flag's kind, at a top-level step or an environment's."""
    schedule = {"schedule": steps}
    document = {**flag, **({"environments": {"prod": schedule}} if in_an_environment else schedule)}
    assert model_accepts("flag", document) == schema_accepts("flag", document)


@settings(max_examples=300, deadline=None)
@given(ANY_MOMENT, st.sampled_from(["at", "from", "to"]))
def test_model_and_schema_agree_on_random_moments(moment: Any, field: str) -> None:
    """A step's `at` or a ramp's `from` or `to`, all else valid: only the moment decides."""
    if field == "at":
        step = {"at": moment, "enabled": True}
    else:
        ramp = {"from": "2027-01-11T09:00:00Z", "to": "2027-01-12T09:00:00Z", "variant": "on"}
        step = {"ramp": {**ramp, field: moment}}
    document = {**MINIMAL, "schedule": [step]}
    assert model_accepts("flag", document) == schema_accepts("flag", document)
