"""What a change does to the rules in force in each environment, compared in the snapshot's
normalized form (core.rules): rules added, removed, moved, their conditions changed, what
they serve changed, and for a rollout the share of users whose variant changes.

Pure: normalized rules in, `RuleChange`s out; the words are compiler/render/words.py's.

Rules are paired by their conditions (the longest common subsequence of `when`s, so that a
rule added in front of the others does not make every later rule "changed"); rules whose
conditions changed in place are paired by position; a rule removed at one position and
added unchanged at another has moved.

A rollout lays its buckets out in order, as contiguous ranges of whole percents: a user in
bucket b (0 <= b < 100) gets the variant whose range holds b. While `by` and `seed` stay,
every user keeps their bucket, and the users whose variant changes are the buckets whose
range changed hands (`moved_share`). A new `by` or `seed` hashes every user anew.
A `serve` is a rollout of one variant at 100%, whatever the bucket.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from itertools import accumulate, pairwise
from typing import Any, Literal, NamedTuple

from core.model import EnvironmentOverride, Flag
from core.rules import normalized, rules_in

NormalizedRule = Mapping[str, Any]  # {"when": ..., "serve": v} or {"when", "rollout", "by", "seed"}
RuleChangeKind = Literal["added", "removed", "moved", "conditions", "serve", "rollout", "cleared"]
BUCKETS = 100


@dataclass(frozen=True, slots=True)
class RuleChange:
    """One change to the rules in force in `environment`.

    kind: `added` (rule `rule` of HEAD is new), `removed` (rule `previous` of BASE is gone),
    `moved` (unchanged, from `previous` to `rule`), `conditions` (its `when` changed),
    `serve` (it now serves a variant), `rollout` (it now rolls out, or its rollout changed),
    `cleared` (the environment has no rules any more). Numbers count from 1.
    `moved_share`: the percent of the users the rule matches whose variant changes (None
    where not computed: a rule added or removed, or `rebucketed`); `rebucketed`: a rollout
    whose `by` or `seed` changed, which buckets every user anew (up to 100% move).
    """

    environment: str
    kind: RuleChangeKind
    rule: int | None  # HEAD's number
    previous: int | None  # BASE's number
    before: NormalizedRule | None
    after: NormalizedRule | None
    moved_share: int | None = None
    rebucketed: bool = False
    off: str | None = None  # the flag's `off` variant (HEAD's, else BASE's), if it has one


class FlagAt(NamedTuple):
    """One side of a flag's change: its key, the flag (None where absent), and the
    environments of that side's project (the rules in force elsewhere are none)."""

    key: str
    flag: Flag | None
    environments: Collection[str]

    def rules(self, environment: str) -> list[dict[str, Any]]:
        """The normalized rules in force in `environment`."""
        if self.flag is None or environment not in self.environments:
            return []
        return normalized(self.key, self.flag, rules_in(self.flag, environment))


def has_rules(flag: Flag | None) -> bool:
    """Whether the flag declares rules anywhere (most flags do not: no comparison then)."""
    return flag is not None and (
        bool(flag.rules)
        or any(
            isinstance(override, EnvironmentOverride) and override.rules
            for override in flag.environments.values()
        )
    )


def flag_rule_changes(
    environments: Iterable[str], before: FlagAt, after: FlagAt
) -> tuple[RuleChange, ...]:
    """The rule changes of one flag from BASE to HEAD, in the order of `environments`."""
    if not (has_rules(before.flag) or has_rules(after.flag)):
        return ()
    either = after.flag if after.flag is not None else before.flag
    off = either.off_variant if either is not None else None
    return tuple(
        replace(change, off=off)
        for env in environments
        for change in changed_rules(env, before.rules(env), after.rules(env))
    )


def changed_rules(
    environment: str, before: Sequence[NormalizedRule], after: Sequence[NormalizedRule]
) -> list[RuleChange]:
    """How the rules in force in `environment` changed from `before` to `after`."""
    if list(map(_key, before)) == list(map(_key, after)):
        return []
    if not after:
        return [RuleChange(environment, "cleared", None, None, None, None)]
    pairs, removed, added = _aligned(before, after)
    changes: list[tuple[int, RuleChange]] = []
    for i in list(removed):
        j = next((j for j in added if _key(after[j]) == _key(before[i])), None)
        if j is not None:
            removed.remove(i)
            added.remove(j)
            changes.append((j, RuleChange(environment, "moved", j + 1, i + 1, before[i], after[j])))
    found = [RuleChange(environment, "removed", None, i + 1, before[i], None) for i in removed]
    changes += [(j, RuleChange(environment, "added", j + 1, None, None, after[j])) for j in added]
    changes += [
        (j, change) for i, j in pairs for change in _paired(environment, i, j, before, after)
    ]
    found += [change for _, change in sorted(changes, key=lambda item: item[0])]
    return found


def _aligned(
    before: Sequence[NormalizedRule], after: Sequence[NormalizedRule]
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """(pairs of BASE and HEAD indexes, BASE indexes removed, HEAD indexes added)."""
    matcher = SequenceMatcher(
        None, [_conditions_key(r) for r in before], [_conditions_key(r) for r in after], False
    )
    pairs: list[tuple[int, int]] = []
    removed: list[int] = []
    added: list[int] = []
    for _, i1, i2, j1, j2 in matcher.get_opcodes():
        common = min(i2 - i1, j2 - j1)  # equal, or changed in place: paired by position
        pairs += zip(range(i1, i1 + common), range(j1, j1 + common), strict=True)
        removed += range(i1 + common, i2)
        added += range(j1 + common, j2)
    return pairs, removed, added


def _conditions_key(rule: NormalizedRule) -> str:
    return _key(rule["when"])


def _key(value: Any) -> str:
    """What rules and conditions are compared by: their JSON, so that `true` is not `1`
    (Python's == holds them equal; flagd and core.evaluate do not)."""
    return json.dumps(value, sort_keys=True)


def _paired(
    environment: str,
    i: int,
    j: int,
    before: Sequence[NormalizedRule],
    after: Sequence[NormalizedRule],
) -> list[RuleChange]:
    old, new = before[i], after[j]
    found: list[RuleChange] = []
    if _key(old["when"]) != _key(new["when"]):
        found.append(RuleChange(environment, "conditions", j + 1, i + 1, old, new))
    if _key(_result(old)) != _key(_result(new)):
        kind: RuleChangeKind = "serve" if "serve" in new else "rollout"
        share, rebucketed = _moves(old, new)
        found.append(RuleChange(environment, kind, j + 1, i + 1, old, new, share, rebucketed))
    return found


def _result(rule: NormalizedRule) -> tuple[Any, ...]:
    if "serve" in rule:
        return ("serve", rule["serve"])
    return ("rollout", rule["rollout"], rule["by"], rule["seed"])


def _moves(old: NormalizedRule, new: NormalizedRule) -> tuple[int | None, bool]:
    """(the moved share, whether every user is re-bucketed)."""
    both_rollouts = "rollout" in old and "rollout" in new
    if both_rollouts and (old["by"], old["seed"]) != (new["by"], new["seed"]):
        return None, True
    return moved_share(weights(old), weights(new)), False


def weights(rule: NormalizedRule) -> list[tuple[str, int]]:
    """A rule's buckets in order, (variant, percent); a `serve` is one variant at 100%."""
    if "serve" in rule:
        return [(str(rule["serve"]), BUCKETS)]
    return [(str(name), int(weight)) for name, weight in rule["rollout"]]


def moved_share(before: Sequence[tuple[str, int]], after: Sequence[tuple[str, int]]) -> int:
    """The percent of buckets whose variant differs between two layouts of the same
    buckets, computed over the ranges' boundaries (weights sum to 100 on each side)."""
    old_ends, new_ends = _ends(before), _ends(after)
    cuts = sorted({0, *old_ends, *new_ends} & set(range(BUCKETS + 1)))
    moved = 0
    for start, end in pairwise(cuts):
        if _variant_at(before, old_ends, start) != _variant_at(after, new_ends, start):
            moved += end - start
    return moved


def _ends(layout: Sequence[tuple[str, int]]) -> list[int]:
    return list(accumulate(weight for _, weight in layout))


def _variant_at(layout: Sequence[tuple[str, int]], ends: list[int], bucket: int) -> str | None:
    for (name, _), end in zip(layout, ends, strict=True):
        if bucket < end:
            return name
    return None
