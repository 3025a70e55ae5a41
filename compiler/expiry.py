"""Stage 4, expiry: flags past their `expires` date (a warning, an error with --strict)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping

from compiler.diagnostics import Diagnostic, Severity
from compiler.validate import FlagFile


def check_expiry(
    flags: Mapping[str, FlagFile], today: datetime.date, *, strict: bool = False
) -> list[Diagnostic]:
    """One `expired` diagnostic per flag whose `expires` date is before `today`: a warning,
    or an error when `strict` (a CI that wants expired flags removed)."""
    return list(_expired(flags, today, Severity.ERROR if strict else Severity.WARNING))


def _expired(
    flags: Mapping[str, FlagFile], today: datetime.date, severity: Severity
) -> Iterator[Diagnostic]:
    for key, flag_file in flags.items():
        expires = flag_file.flag.expires
        if expires is not None:
            line, column = flag_file.document.source.locate(("expires",))
            found = expired(key, expires, (flag_file.document.file, line, column), today, severity)
            if found is not None:
                yield found


def expired(
    key: str, expires: str, where: tuple[str, int, int], today: datetime.date, severity: Severity
) -> Diagnostic | None:
    """The `expired` diagnostic of flag `key` whose `expires` stands at `where` (file,
    line, column), if that date is before `today` (an incremental build keeps `where`)."""
    if datetime.date.fromisoformat(expires) >= today:
        return None
    message = (
        f"{key} expired on {expires}; remove the flag and the code paths it guards, "
        "or set a later `expires` date"
    )
    return Diagnostic(*where, severity, "expired", message)
