"""Generate a synthetic flag tree for benchmarks: `python bench/gen_tree.py N OUTDIR [--seed S]
[--ruled R]`.

N flags in sub-folders of about 500, 5 environments x 20 applications, about three
dependencies a flag (only on earlier flags, so the graph is acyclic), and a realistic mix
of environment, application and environment/application overrides, written as YAML the
way a person would write it. The same N and seed always give the same files.

Every tree it writes passes `flagc check` without errors: random values are chosen first,
then, flag by flag in index order, each flag's cells are resolved with core.resolve and
an explicit `false` is added wherever it would be on while a dependency is off.

With --ruled R, `add_rules` then gives R of the flags rules (conditions on country, plan and
app version, and a rollout on some), chosen so that every dependency stays proved.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.model import Flag
from core.resolve import Grid, resolve

ENVIRONMENTS = ("development", "testing", "staging", "canary", "production")
APPLICATIONS = (
    "web",
    "ios",
    "android",
    "admin",
    "api",
    "checkout",
    "search",
    "payments",
    "inventory",
    "shipping",
    "notifications",
    "accounts",
    "catalog",
    "pricing",
    "reviews",
    "support",
    "analytics",
    "partner-portal",
    "kiosk",
    "smart-tv",
)
FOLDER_SIZE = 500
TEAMS = (
    "platform",
    "checkout",
    "growth",
    "mobile",
    "search",
    "payments",
    "logistics",
    "identity",
    "data",
    "support",
)
ADJECTIVES = (
    "new",
    "fast",
    "smart",
    "quick",
    "guided",
    "unified",
    "instant",
    "simple",
    "dynamic",
    "secure",
    "modern",
    "lazy",
    "async",
    "adaptive",
    "personal",
)
NOUNS = (
    "checkout",
    "search",
    "cart",
    "login",
    "gallery",
    "banner",
    "pricing",
    "onboarding",
    "recommendations",
    "reviews",
    "invoice",
    "refunds",
    "wishlist",
    "shipping-estimate",
    "dashboard",
    "export",
    "sync",
    "cache",
    "event-bus",
    "rate-limiter",
)
AUDIENCES = (
    "returning customers",
    "new customers",
    "internal staff",
    "beta testers",
    "all users",
    "partners",
    "mobile users",
    "large accounts",
)
TAGS = ("experiment", "ops", "release", "kill-switch", "permission", "migration", "ui", "backend")
PEOPLE = ("ada", "grace", "alan", "edsger", "barbara", "donald", "frances", "ken", "radia")
BROAD_SHARE = 0.08  # flags with no dependencies, on almost everywhere: what others build on
TOO_MANY_EXCEPTIONS = 6  # more broken applications than this in one environment: turn it off


@dataclass(slots=True)
class FlagSpec:
    key: str
    folder: str
    description: str
    owner: str
    enabled: bool
    environments: dict[str, Any] = field(default_factory=dict)
    applications: dict[str, bool] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    expires: str | None = None

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "description": self.description,
            "owner": self.owner,
            "enabled": self.enabled,
        }
        if self.environments:
            data["environments"] = self.environments
        if self.applications:
            data["applications"] = self.applications
        if self.depends_on:
            data["depends_on"] = self.depends_on
        return data


class Generator:
    def __init__(self, count: int, seed: int) -> None:
        self.count = count
        self.rng = random.Random(seed)
        self.grid = Grid(ENVIRONMENTS, APPLICATIONS)
        self.cells = len(ENVIRONMENTS) * self.grid.width
        self.everywhere = (1 << self.cells) - 1
        self.width = max(5, len(str(count - 1)))
        self.keys: list[str] = []
        self.on: list[int] = []  # each flag's resolved cells that are on, as bits
        self.broad: list[int] = []  # indexes of the broad flags

    def flags(self) -> list[FlagSpec]:
        return [self._flag(index) for index in range(self.count)]

    def _flag(self, index: int) -> FlagSpec:
        rng = self.rng
        adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
        team = TEAMS[(index // FOLDER_SIZE) % len(TEAMS)]
        spec = FlagSpec(
            key=f"{adjective}-{noun}-{index:0{self.width}d}",
            folder=f"{team}-{index // FOLDER_SIZE:03d}",
            description=f"Enable the {adjective} {noun.replace('-', ' ')} for "
            f"{rng.choice(AUDIENCES)}",
            owner=f"{team}-team@example.com" if rng.random() < 0.7 else rng.choice(PEOPLE),
            enabled=False,
            tags=rng.sample(TAGS, rng.choice((0, 1, 1, 2, 3))),
            expires=(
                f"20{rng.randint(30, 35)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                if rng.random() < 0.2
                else None
            ),
        )
        if index < 5 or rng.random() < BROAD_SHARE:
            self._broad_values(spec)
            self.broad.append(index)
        else:
            dependencies = self._dependencies(index)
            spec.depends_on = [self.keys[d] for d in dependencies]
            self._rollout_values(spec)
            allowed = self.everywhere
            for dependency in dependencies:
                allowed &= self.on[dependency]
            self._respect_dependencies(spec, allowed)
        self.keys.append(spec.key)
        self.on.append(self._resolve(spec))
        return spec

    def _dependencies(self, index: int) -> list[int]:
        rng = self.rng
        wanted = min(index, rng.choice((1, 2, 3, 3, 3, 4, 5)))
        chosen: set[int] = set()
        while len(chosen) < wanted:
            if rng.random() < 0.6:
                chosen.add(rng.choice(self.broad))
            else:
                chosen.add(self._recent_live_flag(index))
        return sorted(chosen)

    def _recent_live_flag(self, index: int) -> int:
        """A recent flag, preferably one that is on somewhere: people build on live features."""
        candidate = self.rng.randrange(max(0, index - 300), index)
        for _ in range(5):
            if self.on[candidate]:
                break
            candidate = self.rng.randrange(max(0, index - 300), index)
        return candidate

    def _broad_values(self, spec: FlagSpec) -> None:
        """On by default, off in a few places: a platform capability."""
        rng = self.rng
        spec.enabled = True
        if rng.random() < 0.3:
            spec.applications = {app: False for app in sorted(rng.sample(APPLICATIONS, 1))}
        if rng.random() < 0.2:
            spec.environments["canary"] = {
                "applications": {app: False for app in sorted(rng.sample(APPLICATIONS, 2))}
            }

    def _rollout_values(self, spec: FlagSpec) -> None:
        """A feature on its way out: on in the first few environments, then exceptions."""
        rng = self.rng
        spec.enabled = rng.random() < 0.3
        reached = rng.choice((0, 1, 2, 2, 3, 3, 4, 5, 5))
        for position, environment in enumerate(ENVIRONMENTS):
            wanted = position < reached
            if wanted != spec.enabled and rng.random() < 0.9:
                spec.environments[environment] = wanted
        if rng.random() < 0.35:
            spec.applications = {
                app: rng.random() < 0.5 for app in rng.sample(APPLICATIONS, rng.randint(1, 4))
            }
        for environment in ENVIRONMENTS:
            if rng.random() < 0.2:
                self._environment_applications(spec, environment)

    def _environment_applications(self, spec: FlagSpec, environment: str) -> None:
        rng = self.rng
        values = {app: rng.random() < 0.6 for app in rng.sample(APPLICATIONS, rng.randint(1, 3))}
        current = spec.environments.get(environment)
        if current is None:
            spec.environments[environment] = {"applications": values}
        elif isinstance(current, bool):
            spec.environments[environment] = {"enabled": current, "applications": values}

    def _respect_dependencies(self, spec: FlagSpec, allowed: int) -> None:
        """Turn the flag off wherever a dependency is off, the way a person would."""
        broken = self._resolve(spec) & ~allowed
        if not broken:
            return
        width = self.grid.width
        for row, environment in enumerate(ENVIRONMENTS):
            base = row * width
            row_broken = (broken >> base) & ((1 << width) - 1)
            if not row_broken:
                continue
            apps = [APPLICATIONS[c] for c in range(len(APPLICATIONS)) if row_broken >> (c + 1) & 1]
            if row_broken & 1 or len(apps) > TOO_MANY_EXCEPTIONS:
                spec.environments[environment] = False
                continue
            current = spec.environments.get(environment)
            if current is None:
                current = spec.environments[environment] = {"applications": {}}
            elif isinstance(current, bool):
                current = spec.environments[environment] = {"enabled": current, "applications": {}}
            exceptions = current.setdefault("applications", {})
            exceptions.update(dict.fromkeys(apps, False))
        if self._resolve(spec) & ~allowed:
            raise AssertionError(f"{spec.key} is still on where a dependency is off")

    def _resolve(self, spec: FlagSpec) -> int:
        flag = Flag.model_validate(spec.data())
        return resolve(self.grid, {spec.key: flag})[spec.key].on


def _environment_yaml(environment: str, value: Any) -> list[str]:
    if isinstance(value, bool):
        return [f"  {environment}: {_bool(value)}"]
    lines = [f"  {environment}:"]
    if "enabled" in value:
        lines.append(f"    enabled: {_bool(value['enabled'])}")
    if value.get("applications"):
        lines.append("    applications:")
        lines.extend(
            f"      {app}: {_bool(on)}"
            for app, on in sorted(value["applications"].items(), key=_app_order)
        )
    return lines


def _app_order(item: tuple[str, bool]) -> int:
    return APPLICATIONS.index(item[0])


def _bool(value: bool) -> str:
    return "true" if value else "false"


def flag_yaml(spec: FlagSpec) -> str:
    lines = [
        f"description: {spec.description}",
        f"owner: {spec.owner}",
        f"enabled: {_bool(spec.enabled)}",
    ]
    if spec.tags:
        lines.append(f"tags: [{', '.join(spec.tags)}]")
    if spec.expires:
        lines.append(f"expires: {spec.expires}")
    if spec.depends_on:
        lines.append("depends_on:")
        lines.extend(f"  - {key}" for key in spec.depends_on)
    if spec.environments:
        lines.append("environments:")
        for environment in ENVIRONMENTS:
            if environment in spec.environments:
                lines.extend(_environment_yaml(environment, spec.environments[environment]))
    if spec.applications:
        lines.append("applications:")
        lines.extend(
            f"  {app}: {_bool(on)}" for app, on in sorted(spec.applications.items(), key=_app_order)
        )
    return "\n".join(lines) + "\n"


def project_yaml() -> str:
    return (
        "# Synthetic benchmark project: 5 environments x 20 applications.\n"
        f"environments: [{', '.join(ENVIRONMENTS)}]\n"
        "applications:\n" + "".join(f"  - {app}\n" for app in APPLICATIONS)
    )


def generate(count: int, out: Path, seed: int = 1) -> None:
    """Write a tree of `count` flags into `out`, which must not exist or be empty."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    (out / "_project.yaml").write_text(project_yaml(), encoding="utf-8")
    for spec in Generator(count, seed).flags():
        folder = out / spec.folder
        folder.mkdir(exist_ok=True)
        (folder / f"{spec.key}.yaml").write_text(flag_yaml(spec), encoding="utf-8")


RULES = """rules:
  - when:
      country: [NL, BE]
    serve: on
  - when:
      plan: {not: [free]}
      app_version: {semver: ">=2.3.0"}
    serve: on
"""
ROLLOUT = """  - rollout: {on: 30, off: 70}
"""
# Flags with dependencies that nothing depends on get rules that only turn them off, which
# keeps every dependency proved.
OFF_RULES = RULES.replace("serve: on", "serve: off")


def add_rules(tree: Path, ruled: int) -> list[str]:
    """Rules on up to `ruled` flags, where no dependency proof can fail: flags without
    dependencies (rules that serve on, and a rollout where nothing depends on the flag), and
    flags that nothing depends on (rules that only serve off). The keys, those with a
    rollout first."""
    files = sorted(tree.rglob("*.yaml"))
    texts = {path: path.read_text(encoding="utf-8") for path in files if path.name[0] != "_"}
    needed = {
        name
        for text in texts.values()
        for name in re.findall(r"^  - ([a-z0-9-]+)$", text.split("depends_on:")[-1], re.M)
        if "depends_on:" in text
    }
    chosen: list[str] = []
    for path, text in texts.items():
        key = path.stem
        if len(chosen) >= ruled or ("depends_on:" in text and key in needed):
            continue
        if "depends_on:" in text:
            path.write_text(text + OFF_RULES, encoding="utf-8")
            chosen.append(key)
        elif key not in needed:
            path.write_text(text + RULES + ROLLOUT, encoding="utf-8")
            chosen.insert(0, key)
        else:
            path.write_text(text + RULES, encoding="utf-8")
            chosen.append(key)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, help="how many flags")
    parser.add_argument("out", type=Path, help="the folder to write (must be new or empty)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ruled", type=int, default=0, help="flags to give rules (default 0)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("N must be at least 1")
    try:
        generate(args.count, args.out, args.seed)
        if args.ruled:
            add_rules(args.out, args.ruled)
    except OSError as exc:
        print(f"gen_tree: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
