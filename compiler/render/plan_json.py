"""A plan for programs: the JSON document described by schemas/plan.schema.json."""

from __future__ import annotations

import json
from typing import Any

from compiler.plan import KINDS, FlagChange, Plan, Side
from compiler.render.plan_words import step_line
from compiler.render.words import rule_change
from compiler.step_changes import ScheduledStep, StepChange
from core.schedule import utc_text

PLAN_FORMAT = 1


def to_json(plan: Plan) -> dict[str, Any]:
    """The JSON document, described by schemas/plan.schema.json."""
    return {
        "format": PLAN_FORMAT,
        "base": _side_json(plan.base),
        "head": _side_json(plan.head),
        "values_compared": plan.values_compared,
        "environments": list(plan.environments),
        "applications": list(plan.applications),
        "project": {
            "environments": {
                "added": list(plan.project.environments_added),
                "removed": list(plan.project.environments_removed),
            },
            "applications": {
                "added": list(plan.project.applications_added),
                "removed": list(plan.project.applications_removed),
            },
        },
        "summary": {
            **{kind: plan.count(kind) for kind in KINDS},
            "environments": [
                {
                    "environment": r.environment,
                    "changes": r.changes,
                    "on": r.on,
                    "off": r.off,
                    "rules": r.rules,
                    "steps": r.steps,
                }
                for r in plan.by_environment()
            ],
        },
        "flags": [_flag_json(change) for change in plan.flags],
        "unreadable": [
            {"key": item.key, "side": item.side, "file": item.file} for item in plan.unreadable
        ],
    }


def _side_json(side: Side) -> dict[str, Any]:
    return {
        "name": side.name,
        "commit": side.commit,
        "exists": side.exists,
        "flags": side.flags,
        "errors": side.errors,
        "project_valid": side.project_valid,
    }


def _flag_json(change: FlagChange) -> dict[str, Any]:
    return {
        "key": change.key,
        "kind": change.kind,
        "base_path": change.base_path,
        "head_path": change.head_path,
        "fields": [{"field": f.path, "from": f.before, "to": f.after} for f in change.fields],
        "values": [
            {
                "environment": v.environment,
                "application": v.application,
                "cell": v.cell,
                "from": v.before,
                "to": v.after,
            }
            for v in change.values
        ],
        "rules": [
            {
                "environment": r.environment,
                "change": r.kind,
                "rule": r.rule,
                "previous_rule": r.previous,
                "text": rule_change(r),
                "moves": r.moved_share,
                "rebucketed": r.rebucketed,
            }
            for r in change.rules
        ],
        "steps": [_step_json(step) for step in change.steps],
    }


def _step_json(change: StepChange) -> dict[str, Any]:
    step = change.step
    return {
        "environment": step.environment,
        "change": change.kind,
        **_timing(step),
        "was": None if change.was is None else _timing(change.was),
        "values": [
            {"application": v.application, "cell": v.cell, "from": v.before, "to": v.after}
            for v in step.values
        ],
        "rules": [rule_change(rule) for rule in step.rules],
        "ramp": None
        if step.rise is None
        else {
            "variant": step.rise.variant,
            "start": step.rise.start,
            "end": step.rise.end,
            "every": step.rise.every,
            "by": step.rise.by,
            "seed": step.rise.seed,
        },
        "text": step_line(change),
    }


def _timing(step: ScheduledStep) -> dict[str, str | None]:
    """`at` for a step at a moment; `from` and `to` for a ramp (the others null)."""
    if step.end is None:
        return {"at": _utc(step.start), "from": None, "to": None}
    return {"at": None, "from": _utc(step.start), "to": _utc(step.end)}


def _utc(at: int) -> str:
    """`2027-01-11T08:00:00Z`, as the snapshot writes a step's moment."""
    return utc_text(at)


def render(plan: Plan) -> str:
    """The document as `flagc diff --format json` prints it."""
    return json.dumps(to_json(plan), indent=2, ensure_ascii=False) + "\n"
