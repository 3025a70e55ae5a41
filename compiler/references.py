"""References between files: environments, applications (a schedule step's too) and
dependencies must exist."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from compiler.diagnostics import Diagnostic, Severity
from compiler.validate import FlagFile, did_you_mean
from core.model import EnvironmentOverride, Project
from core.schedule import declared


def check_references(
    project: Project | None, flags: Mapping[str, FlagFile], known_keys: set[str]
) -> list[Diagnostic]:
    """Unknown environments, applications and dependencies, each with a close name if any.

    `known_keys` holds every flag file's key, valid or not, so that a dependency on a flag
    whose own file has errors is not also reported as unknown.
    """
    found: list[Diagnostic] = []
    keys = sorted(known_keys)
    for flag_file in flags.values():
        if project is not None:
            found.extend(_names(flag_file, project))
        for position, dependency in enumerate(flag_file.flag.depends_on):
            if dependency not in known_keys:
                message = (
                    f"{flag_file.key} depends on {dependency!r}, which no flag file declares"
                    f"{did_you_mean(dependency, keys)}; fix the name or add {dependency}.yaml"
                )
                found.append(
                    _at(flag_file, ("depends_on", position), "unknown-dependency", message)
                )
    return found


def _names(flag_file: FlagFile, project: Project) -> Iterator[Diagnostic]:
    flag = flag_file.flag
    for environment, override in flag.environments.items():
        if environment not in project.environments:
            yield _unknown(
                flag_file, ("environments", environment), "environment", project.environments
            )
        if isinstance(override, EnvironmentOverride):
            for application in override.applications:
                path = ("environments", environment, "applications", application)
                yield from _application(flag_file, path, project)
    for application in flag.applications:
        yield from _application(flag_file, ("applications", application), project)
    for where, steps in declared(flag):
        for number, step in enumerate(steps):
            for application in step.applications:
                step_path: tuple[str | int, ...] = (*where, number, "applications", application)
                yield from _application(flag_file, step_path, project)


def _application(
    flag_file: FlagFile, path: tuple[str | int, ...], project: Project
) -> Iterator[Diagnostic]:
    if path[-1] not in project.applications:
        yield _unknown(flag_file, path, "application", project.applications)


def _unknown(
    flag_file: FlagFile, path: tuple[str | int, ...], kind: str, names: list[str]
) -> Diagnostic:
    name = str(path[-1])
    message = (
        f"{kind} {name!r} is not declared in _project.yaml{did_you_mean(name, names)}; "
        f"declared {kind}s: {', '.join(names) or 'none'}"
    )
    return _at(flag_file, path, f"unknown-{kind}", message, key=True)


def _at(
    flag_file: FlagFile, path: tuple[Any, ...], code: str, message: str, *, key: bool = False
) -> Diagnostic:
    line, column = flag_file.document.source.locate(path, key=key)
    return Diagnostic(flag_file.document.file, line, column, Severity.ERROR, code, message)
