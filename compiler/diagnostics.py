"""The one value type every stage reports problems with."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


# Every code and what it means. Codes are part of the interface: they never change meaning.
CODES: dict[str, str] = {
    "io-error": "a file or folder could not be read, or is not a regular file",
    "file-outside-tree": "a link in the flags folder leads out of it",
    "yaml-syntax": "the file is not well-formed YAML",
    "yaml-duplicate-key": "a mapping names the same key twice",
    "yaml-alias": "anchors, aliases and custom tags are not allowed",
    "file-too-large": "the file is larger than 64 KiB",
    "file-encoding": "the file is not UTF-8",
    "schema": "the document does not follow its JSON Schema",
    "invalid-key": "the file name is not a valid flag key",
    "duplicate-flag": "two files declare the same flag key",
    "project-config": "_project.yaml is missing or invalid",
    "unknown-environment": "an environment that _project.yaml does not declare",
    "unknown-application": "an application that _project.yaml does not declare",
    "unknown-dependency": "depends_on names a flag that does not exist",
    "dependency-cycle": "flags depend on each other in a cycle",
    "dependency-disabled": "a flag is on where one of its dependencies is off",
    "dependency-partial": "a flag can be on for contexts where a dependency may be off",
    "unknown-variant": "a value, rule or rollout names a variant the flag does not have",
    "missing-off": "a typed flag with dependencies or dependents has no `off` variant",
    "variant-type": "a variant's value does not match the flag's `type`",
    "rollout-weights": "rollout weights are not whole percentages summing to 100",
    "invalid-semver": "a `semver` condition is not an operator and a version",
    "invalid-rule": "a rule is malformed: its serve or rollout, `when`, or a condition",
    "unreachable-rule": "a rule can never apply",
    "attribute-type": "an attribute is compared as a number in one place, as a string in another",
    "unused-variant": "a variant that nothing serves",
    "schedule-order": "schedule steps are not in time order, or overlap a ramp's window",
    "schedule-zone": "a schedule's moment does not name its zone offset",
    "schedule-past": "a schedule step already took effect: fold it into the base value",
    "schedule-ramp": "a ramp that cannot roll out: no `off` variant, or it ramps `off` itself",
    "expired": "the flag is past its expiry date",
    "missing-reason": "a commit that changes flags does not say why in its message",
}


@dataclass(frozen=True, slots=True, order=True)
class Diagnostic:
    file: str
    line: int
    column: int
    severity: Severity
    code: str
    message: str

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown diagnostic code {self.code!r}")


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity is Severity.ERROR for d in diagnostics)


# Codes that mean the run could not read its input, rather than found a problem in it.
UNREADABLE = frozenset({"io-error"})


def unreadable(diagnostics: list[Diagnostic]) -> bool:
    """Whether some input could not be read: the command then exits 2, not 1."""
    return any(d.code in UNREADABLE for d in diagnostics)
