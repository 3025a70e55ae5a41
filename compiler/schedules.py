"""Stage 4, schedules: what the schema cannot see in a flag's schedules (docs/flags.md,
"Schedules").

Each finding is at the offending field, per schedule as the file writes it (a top-level
schedule once, whichever environments it applies in):

- `schedule-order` (error): a step that does not come after every step before it: an `at`
  not later than an earlier `at` (moments are whole seconds, a fraction rounded up, so two
  steps in one second are out of order too), or a step or ramp that starts inside an
  earlier ramp's window [from, to); and a ramp whose `to` is not after its `from`.
- `schedule-ramp` (error): a ramp in a typed flag without an `off` variant (nothing would
  say what the rest of the users get), or whose `variant` is the `off` variant.
- `schedule-past` (warning): a step, or a ramp whose `to`, at or before `now`: it is what
  is served now, which the base value no longer says; fold it into the base value.

A moment without its zone offset never gets here: validation refuses it (`schedule-zone`,
compiler/validate.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from compiler.diagnostics import Diagnostic, Severity
from compiler.validate import FlagFile
from compiler.variants import located
from core.model import Step
from core.schedule import Moment, declared, moment, short_text

Path = tuple[str | int, ...]


def check_schedules(flags: Mapping[str, FlagFile], now: Moment) -> list[Diagnostic]:
    """Every finding about the flags' schedules, judged `now` (seconds since the epoch)."""
    found: list[Diagnostic] = []
    for flag_file in flags.values():
        for where, steps in declared(flag_file.flag):
            for number, step in enumerate(steps):
                path: Path = (*where, number)
                found.extend(_ramp(flag_file, path, step))
                found.extend(_past(flag_file, path, step, now))
            found.extend(_order(flag_file, where, steps))
    return found


def _ramp(flag_file: FlagFile, path: Path, step: Step) -> Iterator[Diagnostic]:
    flag, ramp = flag_file.flag, step.ramp
    if ramp is None:
        return
    off = flag.off_variant
    if off is None:
        message = (
            f"{flag_file.key} has no `off` variant, so nothing says what the users outside "
            f"the ramp's share of {ramp.variant!r} get; add `off: VARIANT`, the variant that "
            "means off"
        )
        yield located(flag_file, (*path, "ramp"), "schedule-ramp", message, key=True)
    elif ramp.variant == off:
        message = (
            f"the ramp rolls out {off!r}, {flag_file.key}'s `off` variant, which the users "
            "outside its share get anyway; ramp another variant, its `start` above its `end` "
            "to turn it off step by step"
        )
        yield located(flag_file, (*path, "ramp", "variant"), "schedule-ramp", message)


def _past(flag_file: FlagFile, path: Path, step: Step, now: Moment) -> Iterator[Diagnostic]:
    if step.ramp is not None:
        ended = moment(step.ramp.to)
        if ended <= now:
            message = (
                f"the ramp has ended (at {short_text(ended)}): its end share, {step.ramp.end}% "
                f"{step.ramp.variant}, is what is served now; fold it into the base value (as "
                "rules) and remove the ramp"
            )
            yield _past_at(flag_file, (*path, "ramp", "to"), message)
    elif step.at is not None and moment(step.at) <= now:
        message = (
            f"the step has taken effect (at {short_text(moment(step.at))}): it is what is served "
            "now; fold its fields into the base value and remove the step"
        )
        yield _past_at(flag_file, (*path, "at"), message)


def _past_at(flag_file: FlagFile, path: Path, message: str) -> Diagnostic:
    return located(flag_file, path, "schedule-past", message, severity=Severity.WARNING)


@dataclass(frozen=True, slots=True)
class _Span:
    """A step's time: from `start`, `bound` the first moment a later step may start at (a
    step at t: t + 1 s; a ramp: its `to`, when that is after its `from`)."""

    start: Moment
    bound: Moment
    path: Path
    words: str  # how a message names it
    window: bool = False  # a ramp whose window [from, to) is not empty


def _span(path: Path, step: Step) -> _Span:
    if step.ramp is None:
        assert step.at is not None  # the model requires one of them
        at = moment(step.at)
        return _Span(at, at + 1, (*path, "at"), f"the step at {short_text(at)}")
    start, end = moment(step.ramp.from_), moment(step.ramp.to)
    words = f"the ramp from {short_text(start)} to {short_text(end)}"
    return _Span(start, max(end, start + 1), (*path, "ramp", "from"), words, end > start)


def _order(flag_file: FlagFile, where: Path, steps: list[Step]) -> Iterator[Diagnostic]:
    latest: _Span | None = None  # the earlier step that ends last
    for number, step in enumerate(steps):
        span = _span((*where, number), step)
        if step.ramp is not None and not span.window:
            message = (
                f"the ramp ends at {short_text(moment(step.ramp.to))}, not after it starts at "
                f"{short_text(span.start)}; make `to` later than `from`"
            )
            yield located(flag_file, (*where, number, "ramp", "to"), "schedule-order", message)
        if latest is not None and span.start < latest.bound:
            message = _order_message(flag_file, latest, span)
            yield located(flag_file, span.path, "schedule-order", message)
        if latest is None or span.bound > latest.bound:
            latest = span


def _order_message(flag_file: FlagFile, earlier: _Span, span: _Span) -> str:
    line = flag_file.document.source.locate(earlier.path)[0]
    this = span.words.replace("the ", "this ", 1)
    if earlier.window and span.start >= earlier.start:
        until = short_text(earlier.bound)
        return (
            f"{this} starts within {earlier.words} (line {line}), whose share sets the rules "
            f"until {until}; start it at {until} or later, or end the ramp earlier"
        )
    return (
        f"{this} is not after {earlier.words} (line {line}); list steps in time order, no "
        "two in the same second (a fraction of a second rounds up)"
    )
