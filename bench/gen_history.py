"""Generate a synthetic flag history for benchmarks: `python bench/gen_history.py OUTDIR`.

    python bench/gen_history.py OUTDIR [--flags 2000] [--commits 10000] [--seed 1]
                                       [--envs 3] [--apps 3] [--event-rate 0.01]
                                       [--folder-size 200]
    python bench/gen_history.py OUTDIR --append K

Makes OUTDIR a git repository whose whole history is written by one `git fast-import`
stream, with no git command per commit. The first commit adds flags/_project.yaml and the
initial flags, in sub-folders of --folder-size (200) named after teams. Then each of the
--commits changes is one commit on the first-parent line of main (so the first-parent log
of flags/ has --commits + 1 commits), touching one to three flags the way people do: mostly
edits of real fields (an environment or application override turned on, off or dropped,
the default, description, owner, tags, expiry, a dependency). Rarely (--event-rate each,
1% of the flags touched by default) a flag is moved to another folder, deleted, re-created
after a deletion, created, or committed broken (invalid YAML or against the schema) and
fixed a few commits later. Every tenth change is a pull request: one or two commits on a
feature branch, merged by a merge commit on main.

Twenty-odd scripted authors (some with non-ASCII names) commit in their own time zones, at
increasing dates, with a subject and a body. Dependencies only ever point at "platform"
flags, on everywhere and never changed, so every flag may be on wherever it likes and the
final tree always passes `flagc check`. The same options always give the same commits
(the same SHAs).

--append K adds K more changes on top of a repository made by this script, also through
one fast-import stream; what the generator needs to go on is kept in
OUTDIR/.git/gen_history.json.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from gen_tree import ADJECTIVES, APPLICATIONS, AUDIENCES, NOUNS, TAGS, TEAMS, FlagSpec, flag_yaml

FLAGS = "flags"  # the flags folder, at the root of the repository
FOLDER_SIZE = 200
STATE_FILE = "gen_history.json"
STATE_FORMAT = 1
MAIN = "refs/heads/main"
BRANCH = "refs/heads/pull-request"  # reused by every pull request, deleted at the end
START = 1_685_610_000  # 2023-06-01T09:00:00Z, the first commit
MERGE_EVERY = 10
FIX_WINDOW = 5  # a broken file is fixed 1 to FIX_WINDOW changes later, within the same run
ENVIRONMENT_SETS = {
    1: ("production",),
    2: ("staging", "production"),
    3: ("development", "staging", "production"),
    4: ("development", "testing", "staging", "production"),
    5: ("development", "testing", "staging", "canary", "production"),
}
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_SYSTEM": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    email: str
    offset: int  # minutes east of UTC

    def signature(self, when: int) -> str:
        sign = "-" if self.offset < 0 else "+"
        hours, minutes = divmod(abs(self.offset), 60)
        return f"{self.name} <{self.email}> {when} {sign}{hours:02d}{minutes:02d}"

    @property
    def login(self) -> str:
        return self.email.split("@", 1)[0].replace(".", "-")


PEOPLE = (
    Person("Ada Lovelace", "ada.lovelace@example.com", 0),
    Person("Grace Hopper", "grace.hopper@example.com", -300),
    Person("Zoë Ashford", "zoe.ashford@example.com", 60),
    Person("José García", "jose.garcia@example.com", 120),
    Person("Łucja Nowak", "lucja.nowak@example.com", 120),
    Person("Bjørn Eriksen", "bjorn.eriksen@example.com", 60),
    Person("François Dubois", "francois.dubois@example.com", 60),
    Person("Ümit Özdemir", "umit.ozdemir@example.com", 180),
    Person("山田 太郎", "taro.yamada@example.com", 540),
    Person("Анна Петрова", "anna.petrova@example.com", 180),
    Person("Nguyễn Văn An", "an.nguyen@example.com", 420),
    Person("Siobhán Ó Briain", "siobhan.obriain@example.com", 0),
    Person("Priya Raghunathan", "priya.raghunathan@example.com", 330),
    Person("Kwame Mensah", "kwame.mensah@example.com", 0),
    Person("Linus Åkesson", "linus.akesson@example.com", 60),
    Person("María-José Peña", "mj.pena@example.com", -180),
    Person("Dmitri Ivanov", "dmitri.ivanov@example.com", 180),
    Person("Chen Wei", "chen.wei@example.com", 480),
    Person("Olusegun Adeyemi", "segun.adeyemi@example.com", 60),
    Person("Tomás O'Neill", "tomas.oneill@example.com", -480),
    Person("Aroha Ngata", "aroha.ngata@example.com", 780),
)
MERGER = Person("GitHub", "noreply@github.com", 0)
REASONS = (
    "The rollout went well in {environment}: no new errors in the dashboards.",
    "Rolling back: the error rate went up after the last deploy.",
    "Requested by support (ticket SUP-{number}).",
    "Cleanup before the quarterly flag review.",
    "The experiment has concluded; see the analysis linked in FLAG-{number}.",
    "Agreed in the release meeting, see the notes of {date}.",
    "Spotted by Łucja during the incident review; thanks!",
    "Merci à Zoë pour la relecture.",
    "Part of the migration plan, step {step} of 5.",
    "Product asked for this ahead of the launch on {date}.",
)
VERBS = ("Enable", "Show", "Use", "Offer", "Turn on", "Roll out")


@dataclass(slots=True)
class Edit:
    """What one change does to one flag: the files it removes and writes (repository paths)."""

    key: str
    summary: str
    removes: list[str] = field(default_factory=list)
    writes: dict[str, bytes] = field(default_factory=dict)


@dataclass(slots=True)
class State:
    """Everything the generator needs to go on, saved as JSON in the repository's .git."""

    seed: int
    event_rate: float
    environments: list[str]
    applications: list[str]
    live: dict[str, FlagSpec]
    platform: list[str]  # keys of the flags others may depend on; never changed
    normal: list[str]  # keys of the other live flags, in a stable order
    deleted: dict[str, FlagSpec]
    folders: list[str]
    folder_size: int = FOLDER_SIZE
    next_index: int = 0
    clock: int = START
    changes: int = 0
    pulls: int = 0
    runs: list[int] = field(default_factory=list)
    head: str = ""

    def to_json(self) -> str:
        return json.dumps({"format": STATE_FORMAT, **dataclasses.asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> State:
        data: dict[str, Any] = json.loads(text)
        if data.pop("format", None) != STATE_FORMAT:
            raise ValueError("the repository was made by another version of gen_history.py")
        for name in ("live", "deleted"):
            data[name] = {key: FlagSpec(**spec) for key, spec in data[name].items()}
        return cls(**data)


class FastImport:
    """Writes a `git fast-import` stream: commits with inline blobs."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.marks = 0
        stream.write(b"feature done\n")

    def commit(
        self,
        ref: str,
        author: tuple[Person, int],
        committer: tuple[Person, int],
        message: str,
        parents: Sequence[str],
        edits: Sequence[Edit],
    ) -> str:
        """Write one commit; returns its mark (`:N`). parents are marks or revisions."""
        self.marks += 1
        text = message.encode()
        head = [
            f"commit {ref}",
            f"mark :{self.marks}",
            f"author {author[0].signature(author[1])}",
            f"committer {committer[0].signature(committer[1])}",
            f"data {len(text)}",
        ]
        out = self.stream
        out.write("\n".join(head).encode() + b"\n" + text + b"\n")
        for keyword, parent in zip(("from", *["merge"] * len(parents)), parents, strict=False):
            out.write(f"{keyword} {parent}\n".encode())
        for edit in edits:
            for path in edit.removes:
                out.write(f"D {path}\n".encode())
            for path, content in edit.writes.items():
                out.write(f"M 100644 inline {path}\ndata {len(content)}\n".encode())
                out.write(content + b"\n")
        out.write(b"\n")
        return f":{self.marks}"


@contextlib.contextmanager
def fast_import(repo: Path) -> Iterator[FastImport]:
    """A `git fast-import` process in `repo`: refs move only if the stream is complete."""
    command = ["git", "fast-import", "--quiet", "--done"]
    # glibc's malloc would give memory back to the system after every object fast-import
    # compresses and take it again for the next: half the import's time, in brk calls.
    env = {**_env(), "MALLOC_TOP_PAD_": str(64 << 20)}
    process = subprocess.Popen(command, cwd=repo, stdin=subprocess.PIPE, env=env)
    assert process.stdin is not None
    stream = process.stdin
    try:
        yield FastImport(stream)
        stream.write(b"done\n")
    finally:
        stream.close()
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"git fast-import failed with exit code {code}")


def _env() -> dict[str, str]:
    return {**os.environ, **GIT_ENV}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, env=_env(), check=True, capture_output=True, text=True
    )
    return done.stdout


def _bool(value: bool) -> str:
    return "on" if value else "off"


class History:
    """Decides what each change does, keeping the model of the tree in `state`."""

    def __init__(self, state: State, rng: random.Random) -> None:
        self.state = state
        self.rng = rng
        self.broken: dict[str, tuple[int, str]] = {}  # key -> (change that fixes it, what)
        self.modifications: list[Callable[[FlagSpec], str | None]] = [
            self._environment,
            self._environment_application,
            self._application,
            self._default,
            self._description,
            self._owner,
            self._tags,
            self._expires,
            self._dependency,
        ]
        self.weights = [30, 15, 12, 5, 6, 5, 8, 8, 5]

    # -- the initial flags

    def initial_flags(self, count: int) -> list[Edit]:
        state = self.state
        edits = [Edit("_project", "project", writes={f"{FLAGS}/_project.yaml": self._project()})]
        for index in range(count):
            group = index // state.folder_size
            team = TEAMS[group % len(TEAMS)]
            folder = team if group < len(TEAMS) else f"{team}-{group // len(TEAMS) + 1}"
            if folder not in state.folders:
                state.folders.append(folder)
            if index < 3 or self.rng.random() < 0.05:
                spec = self._platform_spec(self._key(), folder)
                state.platform.append(spec.key)
            else:
                spec = self._new_spec(self._key(), folder)
                state.normal.append(spec.key)
            state.live[spec.key] = spec
            edits.append(Edit(spec.key, f"add {spec.key}", writes=self._write(spec)))
        return edits

    def _project(self) -> bytes:
        return (
            "# Generated by bench/gen_history.py\n"
            f"environments: [{', '.join(self.state.environments)}]\n"
            f"applications: [{', '.join(self.state.applications)}]\n"
        ).encode()

    def _key(self) -> str:
        index = self.state.next_index
        self.state.next_index += 1
        return f"{self.rng.choice(ADJECTIVES)}-{self.rng.choice(NOUNS)}-{index:05d}"

    def _platform_spec(self, key: str, folder: str) -> FlagSpec:
        words = key.rsplit("-", 1)[0].replace("-", " ")
        return FlagSpec(
            key=key,
            folder=folder,
            description=f"Shared platform capability (the {words}), on everywhere",
            owner="team-platform",
            enabled=True,
            tags=["platform"],
        )

    def _new_spec(self, key: str, folder: str) -> FlagSpec:
        rng, state = self.rng, self.state
        spec = FlagSpec(
            key=key,
            folder=folder,
            description=self._describe(key),
            owner=self._owner_for(folder),
            enabled=rng.random() < 0.3,
            tags=rng.sample(TAGS, rng.choice((0, 0, 1, 1, 2))),
            expires=self._expiry() if rng.random() < 0.25 else None,
        )
        for environment in state.environments:
            if rng.random() < 0.35:
                spec.environments[environment] = rng.random() < 0.5
        if rng.random() < 0.3:
            chosen = rng.sample(state.applications, rng.randint(1, min(2, len(state.applications))))
            spec.applications = {app: rng.random() < 0.5 for app in chosen}
        if rng.random() < 0.15:
            self._environment_application(spec)
        if state.platform and rng.random() < 0.3:
            spec.depends_on = rng.sample(state.platform, min(len(state.platform), 2))[
                : rng.choice((1, 1, 2))
            ]
        return spec

    def _describe(self, key: str) -> str:
        words = key.rsplit("-", 1)[0].split("-", 1)
        adjective, noun = words[0], words[-1].replace("-", " ")
        verb, audience = self.rng.choice(VERBS), self.rng.choice(AUDIENCES)
        return f"{verb} the {adjective} {noun} for {audience}"

    def _owner_for(self, folder: str) -> str:
        if self.rng.random() < 0.7:
            return f"team-{folder.split('-', maxsplit=1)[0]}"
        return self.rng.choice(PEOPLE).email

    def _expiry(self) -> str:
        day = datetime.datetime.fromtimestamp(self.state.clock, datetime.UTC).date()
        return (day + datetime.timedelta(days=self.rng.randint(365, 1460))).isoformat()

    @staticmethod
    def _path(spec: FlagSpec) -> str:
        return f"{FLAGS}/{spec.folder}/{spec.key}.yaml"

    def _write(self, spec: FlagSpec, content: str | None = None) -> dict[str, bytes]:
        return {self._path(spec): (flag_yaml(spec) if content is None else content).encode()}

    # -- one change: the flags one commit touches

    def change(self, number: int, last: int) -> list[Edit]:
        """The edits of change `number`, the run ending with change `last`."""
        edits = [self._fix(key) for key, (due, _) in self.broken.items() if due == number]
        for edit in edits:
            del self.broken[edit.key]
        wanted = self.rng.choices((1, 2, 3), weights=(70, 20, 10))[0]
        touched = {edit.key for edit in edits}
        for _ in range(10 * wanted):
            if len(edits) >= wanted:
                break
            found = self._event(number, last, touched)
            if found is not None:
                edits.append(found)
                touched.add(found.key)
        return edits

    def _event(self, number: int, last: int, touched: set[str]) -> Edit | None:
        rate, roll = self.state.event_rate, self.rng.random()
        if roll < rate:
            return self._move(touched)
        if roll < 2 * rate:
            return self._delete(touched)
        if roll < 3 * rate:
            return self._recreate(touched)
        if roll < 4 * rate:
            return self._break(number, last, touched)
        if roll < 4.5 * rate:
            return self._create()
        return self._modify(touched)

    def _pick(self, touched: set[str]) -> FlagSpec | None:
        """A live flag that may be changed: not a platform flag, not broken, not touched."""
        normal = self.state.normal
        for _ in range(20):
            if not normal:
                return None
            key = self.rng.choice(normal)
            if key not in touched and key not in self.broken:
                return self.state.live[key]
        return None

    def _modify(self, touched: set[str]) -> Edit | None:
        spec = self._pick(touched)
        if spec is None:
            return None
        summary = self._apply_modification(spec)
        return Edit(spec.key, summary, writes=self._write(spec))

    def _apply_modification(self, spec: FlagSpec) -> str:
        """Change one field of `spec`, really: every change is a new version of the file."""
        before = flag_yaml(spec)
        while True:
            modify = self.rng.choices(self.modifications, weights=self.weights)[0]
            summary = modify(spec)
            if summary is not None and flag_yaml(spec) != before:
                return summary

    def _move(self, touched: set[str]) -> Edit | None:
        spec = self._pick(touched)
        folders = [folder for folder in self.state.folders if spec and folder != spec.folder]
        if spec is None or not folders:
            return None
        old = self._path(spec)
        spec.folder = self.rng.choice(folders)
        summary = f"move {spec.key} to {spec.folder}/"
        edited = self._owner(spec) if self.rng.random() < 0.3 else None  # moved and edited
        if edited is not None:
            summary += f" and {edited}"
        return Edit(spec.key, summary, removes=[old], writes=self._write(spec))

    def _delete(self, touched: set[str]) -> Edit | None:
        spec = self._pick(touched)
        if spec is None:
            return None
        state = self.state
        state.normal.remove(spec.key)
        del state.live[spec.key]
        state.deleted[spec.key] = spec
        why = self.rng.choice(("fully rolled out", "experiment over", "no longer used"))
        return Edit(spec.key, f"remove {spec.key}: {why}", removes=[self._path(spec)])

    def _recreate(self, touched: set[str]) -> Edit | None:
        state = self.state
        candidates = [key for key in state.deleted if key not in touched]
        if not candidates:
            return None
        key = self.rng.choice(candidates)
        del state.deleted[key]
        spec = self._new_spec(key, self.rng.choice(state.folders))
        state.live[key] = spec
        state.normal.append(key)
        return Edit(key, f"bring back {key}", writes=self._write(spec))

    def _create(self) -> Edit:
        state = self.state
        spec = self._new_spec(self._key(), self.rng.choice(state.folders))
        state.live[spec.key] = spec
        state.normal.append(spec.key)
        return Edit(spec.key, f"add {spec.key}", writes=self._write(spec))

    def _break(self, number: int, last: int, touched: set[str]) -> Edit | None:
        """The intended change, committed as a broken file; fixed within FIX_WINDOW changes."""
        if number + FIX_WINDOW > last:
            return None
        spec = self._pick(touched)
        if spec is None:
            return None
        summary = self._apply_modification(spec)
        text, what = self._corrupt(flag_yaml(spec))
        self.broken[spec.key] = (number + self.rng.randint(1, FIX_WINDOW), what)
        return Edit(spec.key, summary, writes=self._write(spec, text))

    def _corrupt(self, text: str) -> tuple[str, str]:
        lines = text.splitlines(keepends=True)
        choice = self.rng.randrange(5)
        if choice == 0:  # an unterminated quoted scalar: a YAML syntax error
            lines[0] = lines[0].replace("description: ", 'description: "', 1)
            return "".join(lines), "the unterminated quote in the description"
        if choice == 1 and any(line.startswith("  ") for line in lines):
            return text.replace("\n  ", "\n\t", 1), "the tab used for indentation"
        if choice == 2:  # YAML 1.2: `yes` is a string, not a boolean
            return text.replace("enabled: true", "enabled: yes").replace(
                "enabled: false", "enabled: no"
            ), "enabled: yes/no, which are strings"
        if choice == 3:
            return text.replace("owner:", "owners:", 1), "the misspelt owner field"
        return text + lines[2], "the duplicated enabled key"

    def _fix(self, key: str) -> Edit:
        spec = self.state.live[key]
        return Edit(key, f"fix {key}: {self.broken[key][1]}", writes=self._write(spec))

    # -- modifications of one flag's fields; each returns what it did, or None

    def _environment(self, spec: FlagSpec) -> str | None:
        environment = self.rng.choice(self.state.environments)
        current = spec.environments.get(environment)
        if isinstance(current, bool) and self.rng.random() < 0.3:
            del spec.environments[environment]
            return f"drop the {environment} override of {spec.key}"
        if isinstance(current, dict):
            value = not current.get("enabled", not spec.enabled)
            current["enabled"] = value
        else:
            value = not current if isinstance(current, bool) else self.rng.random() < 0.6
            spec.environments[environment] = value
        return f"turn {spec.key} {_bool(value)} in {environment}"

    def _environment_application(self, spec: FlagSpec) -> str | None:
        environment = self.rng.choice(self.state.environments)
        app = self.rng.choice(self.state.applications)
        current = spec.environments.get(environment)
        if current is None:
            current = spec.environments[environment] = {"applications": {}}
        elif isinstance(current, bool):
            current = spec.environments[environment] = {"enabled": current, "applications": {}}
        apps: dict[str, bool] = current.setdefault("applications", {})
        if app in apps and self.rng.random() < 0.4:
            del apps[app]
            summary = f"drop the {environment}/{app} override of {spec.key}"
        else:
            apps[app] = not apps[app] if app in apps else self.rng.random() < 0.6
            summary = f"turn {spec.key} {_bool(apps[app])} for {app} in {environment}"
        if not apps:
            del current["applications"]
            if not current:
                del spec.environments[environment]
            else:
                spec.environments[environment] = current["enabled"]
        return summary

    def _application(self, spec: FlagSpec) -> str | None:
        app = self.rng.choice(self.state.applications)
        if app in spec.applications and self.rng.random() < 0.4:
            del spec.applications[app]
            return f"drop the {app} override of {spec.key}"
        value = not spec.applications[app] if app in spec.applications else self.rng.random() < 0.6
        spec.applications[app] = value
        return f"turn {spec.key} {_bool(value)} for {app}"

    def _default(self, spec: FlagSpec) -> str | None:
        spec.enabled = not spec.enabled
        return f"turn {spec.key} {_bool(spec.enabled)} by default"

    def _description(self, spec: FlagSpec) -> str | None:
        spec.description = self._describe(spec.key)
        return f"reword the description of {spec.key}"

    def _owner(self, spec: FlagSpec) -> str | None:
        owner = self._owner_for(self.rng.choice(self.state.folders))
        if owner == spec.owner:
            return None
        spec.owner = owner
        return f"hand {spec.key} over to {owner}"

    def _tags(self, spec: FlagSpec) -> str | None:
        if spec.tags and self.rng.random() < 0.4:
            tag = spec.tags.pop(self.rng.randrange(len(spec.tags)))
            return f"untag {spec.key} {tag}"
        tag = self.rng.choice(TAGS)
        if tag in spec.tags:
            return None
        spec.tags.append(tag)
        return f"tag {spec.key} {tag}"

    def _expires(self, spec: FlagSpec) -> str | None:
        if spec.expires and self.rng.random() < 0.3:
            spec.expires = None
            return f"drop the expiry of {spec.key}"
        spec.expires = self._expiry()
        return f"set {spec.key} to expire on {spec.expires}"

    def _dependency(self, spec: FlagSpec) -> str | None:
        if spec.depends_on and self.rng.random() < 0.4:
            dependency = spec.depends_on.pop(self.rng.randrange(len(spec.depends_on)))
            return f"drop the dependency of {spec.key} on {dependency}"
        dependency = self.rng.choice(self.state.platform)
        if dependency in spec.depends_on:
            return None
        spec.depends_on.append(dependency)
        return f"make {spec.key} depend on {dependency}"

    # -- messages

    def message(self, edits: Sequence[Edit], *, pull_request: bool = False) -> str:
        subject = edits[0].summary
        subject = subject[0].upper() + subject[1:]
        if len(edits) > 1:
            subject += f", and {len(edits) - 1} more"
        lines = [subject, ""]
        if len(edits) > 1:
            lines.extend(f"- {edit.summary}" for edit in edits)
            lines.append("")
        day = datetime.datetime.fromtimestamp(self.state.clock, datetime.UTC).date()
        reason = self.rng.choice(REASONS).format(
            environment=self.rng.choice(self.state.environments),
            number=self.rng.randint(100, 9999),
            date=(day + datetime.timedelta(days=self.rng.randint(-14, 30))).isoformat(),
            step=self.rng.randint(1, 5),
        )
        lines.extend([reason, "", f"Refs: FLAG-{self.rng.randint(1000, 9999)}"])
        if not pull_request and self.rng.random() < 0.1:
            helper = self.rng.choice(PEOPLE)
            lines.append(f"Co-authored-by: {helper.name} <{helper.email}>")
        return "\n".join(lines) + "\n"

    def tick(self, low: int = 300, high: int = 3 * 3600) -> int:
        self.state.clock += self.rng.randint(low, high)
        return self.state.clock


class Run:
    """One fast-import run of changes on main, from `tip` (a mark or a revision)."""

    def __init__(self, history: History, importer: FastImport, tip: str | None) -> None:
        self.history = history
        self.importer = importer
        self.tip = tip

    def initial(self, count: int) -> None:
        history = self.history
        edits = history.initial_flags(count)
        person, when = history.rng.choice(PEOPLE), history.tick()
        message = (
            f"Import {count} feature flags\n\nOne YAML file a flag, in folders of about "
            f"{history.state.folder_size} by team; _project.yaml declares "
            f"{len(history.state.environments)} environments and "
            f"{len(history.state.applications)} applications.\n"
        )
        self._on_main(
            self.importer.commit(MAIN, (person, when), (person, when), message, [], edits)
        )

    def changes(self, count: int) -> None:
        state = self.history.state
        last = state.changes + count
        for _ in range(count):
            state.changes += 1
            edits = self.history.change(state.changes, last)
            if state.changes % MERGE_EVERY == 0:
                self._pull_request(edits)
            else:
                self._direct(edits)
        state.runs.append(count)
        assert not self.history.broken, "a broken file was left unfixed"

    def _direct(self, edits: list[Edit]) -> None:
        history = self.history
        person, when = history.rng.choice(PEOPLE), history.tick()
        message = history.message(edits)
        parents = [] if self.tip is None else [self.tip]
        self._on_main(
            self.importer.commit(MAIN, (person, when), (person, when), message, parents, edits)
        )

    def _pull_request(self, edits: list[Edit]) -> None:
        """One or two commits on a feature branch from main's tip, merged into main.

        The branch starts `from refs/heads/main`, which fast-import copies from the tree it
        holds in memory: starting from an older commit would read trees back from its pack,
        and made the whole import three times slower."""
        history, rng = self.history, self.history.rng
        state = history.state
        person = rng.choice(PEOPLE)
        parts = [edits[:1], edits[1:]] if len(edits) > 1 and rng.random() < 0.5 else [edits]
        branch = MAIN
        for part in parts:
            when = history.tick(60, 1800)
            message = history.message(part, pull_request=True)
            branch = self.importer.commit(
                BRANCH, (person, when), (person, when), message, [branch], part
            )
        state.pulls += 1
        message = (
            f"Merge pull request #{state.pulls} from {person.login}/{edits[0].key}\n\n"
            + history.message(edits, pull_request=True)
        )
        when = history.tick(60, 3600)
        parents = [branch] if self.tip is None else [self.tip, branch]
        self._on_main(
            self.importer.commit(MAIN, (person, when), (MERGER, when), message, parents, edits)
        )

    def _on_main(self, mark: str) -> None:
        self.tip = mark


def generate(
    out: Path,
    flags: int = 2000,
    commits: int = 10_000,
    seed: int = 1,
    environments: int = 3,
    applications: int = 3,
    event_rate: float = 0.01,
    folder_size: int = FOLDER_SIZE,
) -> str:
    """Make `out` (new or empty) a generated repository; returns the SHA of its HEAD."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    out.mkdir(parents=True, exist_ok=True)
    git(out, "init", "--quiet", "--initial-branch=main")
    state = State(
        seed=seed,
        event_rate=event_rate,
        environments=list(ENVIRONMENT_SETS[environments]),
        applications=list(APPLICATIONS[:applications]),
        live={},
        platform=[],
        normal=[],
        deleted={},
        folders=[],
        folder_size=folder_size,
    )
    history = History(state, random.Random(seed))
    with fast_import(out) as importer:
        run = Run(history, importer, None)
        run.initial(flags)
        run.changes(commits)
    return _finish(out, state)


def append(out: Path, count: int) -> str:
    """Add `count` changes to a repository made by `generate`; returns the new HEAD."""
    state = State.from_json((out / ".git" / STATE_FILE).read_text(encoding="utf-8"))
    head = git(out, "rev-parse", "--verify", "--quiet", "HEAD").strip()
    if head != state.head:
        raise ValueError(f"{out} has moved since it was generated (HEAD is {head})")
    history = History(state, random.Random(f"{state.seed}/append/{len(state.runs)}"))
    with fast_import(out) as importer:
        Run(history, importer, f"{MAIN}^0").changes(count)
    return _finish(out, state)


def _finish(out: Path, state: State) -> str:
    """Drop the pull-request branch, check out HEAD, save the state."""
    git(out, "update-ref", "-d", BRANCH)
    git(out, "reset", "--hard", "--quiet")
    state.head = git(out, "rev-parse", "HEAD").strip()
    (out / ".git" / STATE_FILE).write_text(state.to_json(), encoding="utf-8")
    return state.head


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the repository to make (new or empty folder)")
    parser.add_argument("--flags", type=_positive, default=2000, help="initial flags")
    parser.add_argument("--commits", type=int, default=10_000, help="changes after the import")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--envs", type=int, choices=range(1, 6), default=3, metavar="1..5")
    parser.add_argument("--apps", type=int, choices=range(1, 21), default=3, metavar="1..20")
    parser.add_argument("--event-rate", type=float, default=0.01, help="per rare event")
    parser.add_argument("--folder-size", type=_positive, default=FOLDER_SIZE, metavar="N")
    parser.add_argument("--append", type=_positive, metavar="K", help="add K changes to OUT")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        if args.append:
            head = append(args.out, args.append)
            what = f"appended {args.append} changes"
        else:
            head = generate(
                args.out,
                args.flags,
                args.commits,
                args.seed,
                args.envs,
                args.apps,
                args.event_rate,
                args.folder_size,
            )
            what = f"generated {args.flags} flags and {args.commits} changes"
    except (OSError, ValueError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"gen_history: {exc}", file=sys.stderr)
        return 2
    took = time.perf_counter() - started
    print(f"gen_history: {what} in {args.out} in {took:.1f} s, HEAD {head}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
