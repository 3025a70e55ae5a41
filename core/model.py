"""The typed model of flag and project files.

The JSON Schemas in `schemas/` are the contract; these pydantic models mirror them for
typed access and as the fast path of validation (tests/compiler/test_model.py runs both
over the same fixtures so that they cannot drift apart).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

# The same patterns as the schemas. `(?!\n)$` because Python's `$` (used by jsonschema, and by
# pydantic with the python-re engine) also matches before a final newline, ECMA's does not.
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}(?!\n)$"
TAG_PATTERN = r"^[a-z0-9][a-z0-9_.:/-]{0,63}(?!\n)$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?!\n)$"
# RFC 3339 with its zone offset, each field within its range; the years 1970 to 2999, so that
# no offset carries a moment out of what datetime and the snapshot handle (year 9999 at
# -01:00 is in year 10000 in UTC). That the day exists (no Feb 30) is _real_moment's, and the
# schema's `format: date-time`.
MOMENT_PATTERN = (
    r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])(?!\n)$"
)
DURATION_PATTERN = r"^[1-9][0-9]{0,5}[mhd](?!\n)$"  # 30m, 1h, 1d: at least a minute
TEXT_PATTERN = r"\S"


def _unique(items: list[str]) -> list[str]:
    if len(set(items)) != len(items):
        raise ValueError("items must be unique")
    return items


def _real_date(text: str) -> str:
    datetime.date.fromisoformat(text)
    return text


def _real_moment(text: str) -> str:
    # The pattern holds the shape and each field's range; this, that the day exists (no Feb 30).
    datetime.datetime.fromisoformat(text)
    return text


def _integral(value: Any) -> Any:
    # JSON Schema counts a number with a zero fraction as an integer (`15.0` is 15); strict
    # pydantic would refuse the float, so it is made an int first.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Text = Annotated[str, Field(pattern=TEXT_PATTERN, max_length=4096)]
Tag = Annotated[str, Field(pattern=TAG_PATTERN)]
DateText = Annotated[str, Field(pattern=DATE_PATTERN), AfterValidator(_real_date)]
MomentText = Annotated[str, Field(pattern=MOMENT_PATTERN), AfterValidator(_real_moment)]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]
Names = Annotated[list[Name], AfterValidator(_unique)]
Tags = Annotated[list[Tag], AfterValidator(_unique)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, regex_engine="python-re")

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        # The schemas never allow null: an omitted field and `field: ~` are not the same.
        if isinstance(data, dict) and any(value is None for value in data.values()):
            raise ValueError("null is not an allowed value")
        return data


FlagType = Literal["boolean", "string", "integer", "float", "object"]
BOOLEAN_VARIANTS = {"on": True, "off": False}  # a boolean flag's variants, in bucket order

# What a context attribute may be compared with; bool first, as bool is an int in Python.
Scalar = StrictBool | StrictInt | StrictFloat | StrictStr
Number = Annotated[StrictInt | StrictFloat, Field()]
Attribute = Annotated[str, Field(pattern=TEXT_PATTERN, max_length=256)]
Scalars = Annotated[list[Scalar], Field(min_length=1)]


def _any_operator(operators: Operators) -> Operators:
    if not operators.model_fields_set:
        raise ValueError("a condition needs at least one operator")
    return operators


class Operators(_Strict):
    """A condition as a mapping of operators, all of which must hold."""

    model_config = ConfigDict(populate_by_name=False)

    in_: Scalars | None = Field(default=None, alias="in")
    not_: Scalars | None = Field(default=None, alias="not")
    semver: StrictStr | None = None
    starts_with: StrictStr | None = None
    ends_with: StrictStr | None = None
    gt: Number | None = None
    gte: Number | None = None
    lt: Number | None = None
    lte: Number | None = None


# A condition: one value, a list of values (the attribute equals one of them), or operators.
Condition = Scalar | Scalars | Annotated[Operators, AfterValidator(_any_operator)]
Weight = Annotated[StrictInt, BeforeValidator(_integral), Field(ge=0)]


class Rule(_Strict):
    """One targeting rule: `when` the context matches, `serve` a variant or a `rollout`."""

    when: Annotated[dict[Attribute, Condition], Field(min_length=1)] | None = None
    serve: Name | None = None
    rollout: Annotated[dict[Name, Weight], Field(min_length=1)] | None = None
    by: Attribute | None = None
    seed: Text | None = None

    @model_validator(mode="after")
    def _serves_one_way(self) -> Self:
        # The schema's oneOf and dependentRequired.
        if (self.serve is None) == (self.rollout is None):
            raise ValueError("a rule has either `serve` or `rollout`")
        if self.rollout is None and (self.by is not None or self.seed is not None):
            raise ValueError("`by` and `seed` belong to a rollout")
        return self


Rules = list[Rule]
# A value at some level: a boolean for boolean flags, a variant name for typed ones.
Value = StrictBool | Name
Percent = Annotated[StrictInt, BeforeValidator(_integral), Field(ge=0, le=100)]


class Ramp(_Strict):
    """A progressive rollout: from `from` to `to`, `variant`'s share of the users grows (or
    falls) linearly from `start` to `end` percent, changing at most every `every`; the rest
    get `off`. The share's rule is core/schedule.py's."""

    model_config = ConfigDict(populate_by_name=False)

    from_: MomentText = Field(alias="from")
    to: MomentText
    variant: Name
    start: Percent = 0
    end: Percent = 100
    every: Duration = "1h"
    by: Attribute | None = None
    seed: Text | None = None


class Step(_Strict):
    """One step of a schedule: `at` a moment, the value-level fields that change from then
    on; or a `ramp`, alone."""

    at: MomentText | None = None
    ramp: Ramp | None = None
    enabled: StrictBool | None = None
    default: Name | None = None
    applications: dict[Name, Value] = Field(default_factory=dict)
    rules: Rules | None = None

    @model_validator(mode="after")
    def _at_or_ramp(self) -> Self:
        # The schema's oneOf: a step at a moment changes something (an empty `applications`
        # changes nothing); a ramp is alone.
        if self.ramp is None:
            changes = self.model_fields_set - {
                "at",
                *(() if self.applications else ["applications"]),
            }
            if self.at is None or not changes:
                raise ValueError("a step has `at` and the fields that change then, or a `ramp`")
        elif self.model_fields_set != {"ramp"}:
            raise ValueError("a `ramp` step has no other fields")
        return self


Schedule = Annotated[list[Step], Field(min_length=1)]


class EnvironmentOverride(_Strict):
    enabled: StrictBool | None = None
    default: Name | None = None
    applications: dict[Name, Value] = Field(default_factory=dict)
    rules: Rules | None = None
    schedule: Schedule | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("an environment override needs `enabled` or `applications`")
        return self


_WRONG = object()


class Flag(_Strict):
    description: Text
    owner: Text
    type: FlagType = "boolean"
    enabled: StrictBool | None = None  # boolean flags (required there)
    variants: Annotated[dict[Name, Any], Field(min_length=1)] | None = None  # typed flags
    default: Name | None = None  # typed flags (required there)
    off: Name | None = None
    environments: dict[Name, Value | EnvironmentOverride] = Field(default_factory=dict)
    applications: dict[Name, Value] = Field(default_factory=dict)
    rules: Rules | None = None
    schedule: Schedule | None = None
    depends_on: Names = Field(default_factory=list)
    tags: Tags = Field(default_factory=list)
    expires: DateText | None = None

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> Self:
        # The schema's if/then/else: boolean flags have `enabled`, typed flags `variants`
        # and `default`; neither has the other's fields.
        boolean = self.type == "boolean"
        if boolean:
            if self.enabled is None or {"variants", "default", "off"} & self.model_fields_set:
                raise ValueError("a boolean flag has `enabled`, and no variants, default or off")
        elif self.variants is None or self.default is None or "enabled" in self.model_fields_set:
            raise ValueError("a typed flag has `variants` and `default`, and no `enabled`")
        if not all(self._of_its_type(value) for value in self._values()):
            raise ValueError("values are booleans in boolean flags, variant names in typed flags")
        return self

    def _of_its_type(self, value: object) -> bool:
        return isinstance(value, bool) == (self.type == "boolean") and value is not _WRONG

    def _values(self) -> Iterator[object]:
        """Every value of an environment or application, and _WRONG for a field of the
        other kind of flag (`default` in a boolean flag's environment, `enabled` in a typed
        flag's)."""
        yield from self.applications.values()
        other = "default" if self.type == "boolean" else "enabled"
        levels: list[EnvironmentOverride | Step] = list(self.schedule or ())
        for override in self.environments.values():
            if isinstance(override, EnvironmentOverride):
                levels += [override, *(override.schedule or ())]
            else:
                yield override
        for level in levels:
            yield from level.applications.values()
            if other in level.model_fields_set:
                yield _WRONG

    @property
    def variant_values(self) -> dict[str, Any]:
        """The variants by name, in bucket order for boolean flags (on, then off)."""
        return BOOLEAN_VARIANTS if self.variants is None else self.variants

    @property
    def off_variant(self) -> str | None:
        """The variant served when the flag is off: `off` for boolean flags."""
        return "off" if self.type == "boolean" else self.off

    @property
    def default_variant(self) -> str:
        if self.type == "boolean":
            return "on" if self.enabled else "off"
        assert self.default is not None  # checked by _fields_of_its_type
        return self.default


# Subjects that say nothing about why a flag changed.
DEFAULT_DENY = (
    "wip", "fix", "fixes", "fixed", "update", "updates", "updated", "change", "changes",
    "changed", "tweak", "test", "tmp", "temp", ".", "..", "...", "asdf", "misc", "stuff",
    "flag", "flags", "toggle",
)  # fmt: skip
DEFAULT_MIN_LENGTH = 10

MinLength = Annotated[int, BeforeValidator(_integral), Field(ge=0, le=200)]
DenyWord = Annotated[str, Field(pattern=TEXT_PATTERN, max_length=100)]
DenyWords = Annotated[list[DenyWord], AfterValidator(_unique)]


class ReasonPolicy(_Strict):
    """What the message of a commit that changes flags must give: a subject of at least
    `min_length` characters that is not one of `deny` (see compiler/reasons.py)."""

    min_length: MinLength = DEFAULT_MIN_LENGTH
    deny: DenyWords = Field(default_factory=lambda: list(DEFAULT_DENY))


class Project(_Strict):
    environments: Annotated[Names, Field(min_length=1)]
    applications: Names
    reasons: ReasonPolicy = Field(default_factory=ReasonPolicy)
