"""The typed model of flag and project files.

The JSON Schemas in `schemas/` are the contract; these pydantic models mirror them for
typed access and as the fast path of validation (tests/compiler/test_model.py runs both
over the same fixtures so that they cannot drift apart).
"""

from __future__ import annotations

import datetime
import re
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# The same patterns as the schemas. `(?!\n)$` because Python's `$` (used by jsonschema, and by
# pydantic with the python-re engine) also matches before a final newline, ECMA's does not.
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,63}(?!\n)$"
TAG_PATTERN = r"^[a-z0-9][a-z0-9_.:/-]{0,63}(?!\n)$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?!\n)$"
TEXT_PATTERN = r"\S"
# A flag key, or any name used as a path segment (the server's URLs, the export's files):
# NAME_PATTERN, compiled for fullmatch.
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def _unique(items: list[str]) -> list[str]:
    if len(set(items)) != len(items):
        raise ValueError("items must be unique")
    return items


def _real_date(text: str) -> str:
    datetime.date.fromisoformat(text)
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


class EnvironmentOverride(_Strict):
    enabled: bool | None = None
    applications: dict[Name, bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("an environment override needs `enabled` or `applications`")
        return self


class Flag(_Strict):
    description: Text
    owner: Text
    enabled: bool
    environments: dict[Name, bool | EnvironmentOverride] = Field(default_factory=dict)
    applications: dict[Name, bool] = Field(default_factory=dict)
    depends_on: Names = Field(default_factory=list)
    tags: Tags = Field(default_factory=list)
    expires: DateText | None = None


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
