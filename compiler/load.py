"""Stage 1, load: a flags directory -> documents with source positions, and what is wrong."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from compiler.diagnostics import Diagnostic, Severity
from compiler.yamlsource import Data, Parsed, SourceMap, parse

MAX_FILE_BYTES = 64 * 1024
PROJECT_FILE = "_project.yaml"
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,63}")


@dataclass(frozen=True, slots=True)
class Document:
    """One parsed file: its display path, plain data and where each value stands."""

    file: str  # as shown to people: the folder as given, then the path inside it
    data: Data
    source: SourceMap
    key: str = ""
    path: str = ""  # inside the flags folder, the same however the folder was named


@dataclass(slots=True)
class Loaded:
    project: Document | None = None
    flags: list[Document] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def load_tree(root: Path, display_root: str | None = None) -> Loaded:
    """Read every flag file below `root` and `_project.yaml`; never raises for bad input.

    Paths in diagnostics are `display_root` (default: `root` as given) joined with the
    path inside the tree, so that they match what the user typed and what CI annotates.
    """
    shown = str(root) if display_root is None else display_root
    loaded = Loaded()
    project_file = _display(shown, PROJECT_FILE)
    if (root / PROJECT_FILE).is_file():
        loaded.project = _load_file(root, PROJECT_FILE, project_file, loaded.diagnostics)
    else:
        hint = " (there is a _project.yml: rename it)" if (root / "_project.yml").exists() else ""
        message = (
            f"{PROJECT_FILE} is missing{hint}; create it with the lists "
            "`environments:` and `applications:`"
        )
        loaded.diagnostics.append(_problem(project_file, 1, 1, "project-config", message))
    for relative in _flag_files(root):
        file = _display(shown, relative)
        stem, suffix = PurePosixPath(relative).stem, PurePosixPath(relative).suffix
        if suffix != ".yaml":
            message = f"flag files end in .yaml: rename it to {stem}.yaml"
            loaded.diagnostics.append(_problem(file, 1, 1, "invalid-key", message))
            continue
        if not KEY_PATTERN.fullmatch(stem):
            message = (
                f"{stem!r} is not a valid flag key: rename the file so that its name "
                "(without .yaml) starts with a lowercase letter and has at most 64 "
                "lowercase letters, digits, '-' or '_'"
            )
            loaded.diagnostics.append(_problem(file, 1, 1, "invalid-key", message))
        document = _load_file(root, relative, file, loaded.diagnostics, stem)
        if document is not None:
            loaded.flags.append(document)
    return loaded


def flag_key(path: str) -> str | None:
    """The key of the flag file at `path` (inside the flags folder), or None for a file the
    loader does not read as a flag (hidden, `_*`, not YAML). `.yml` files count: the loader
    reads them to report them."""
    name = path.rsplit("/", 1)[-1]
    if path.startswith(".") or "/." in path or name.startswith("_"):
        return None
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and suffix.lower() in ("yaml", "yml") else None


def _display(shown: str, relative: str) -> str:
    return relative if shown in ("", ".") else f"{shown.rstrip('/')}/{relative}"


def _flag_files(root: Path) -> list[str]:
    """Relative paths of the files `flag_key` names a flag, sorted; hidden folders are not
    entered at all."""
    found: list[str] = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        prefix = os.path.relpath(folder, root)
        for name in files:
            relative = name if prefix == "." else f"{prefix}/{name}".replace(os.sep, "/")
            if flag_key(relative) is not None:
                found.append(relative)
    return sorted(found)


def _load_file(
    root: Path, relative: str, file: str, diagnostics: list[Diagnostic], key: str = ""
) -> Document | None:
    try:
        with (root / relative).open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        message = f"cannot read the file ({exc.strerror}); check its permissions"
        diagnostics.append(_problem(file, 1, 1, "io-error", message))
        return None
    if len(raw) > MAX_FILE_BYTES:
        message = f"the file is larger than {MAX_FILE_BYTES // 1024} KiB; a flag file is short"
        diagnostics.append(_problem(file, 1, 1, "file-too-large", message))
        return None
    text = _decode(raw, file, diagnostics)
    if text is None:
        return None
    parsed = parse(text, file)
    if isinstance(parsed, Parsed):
        diagnostics.extend(parsed.problems)
        return Document(file, parsed.data, parsed.source, key, relative)
    diagnostics.extend(parsed)
    return None


def _decode(raw: bytes, file: str, diagnostics: list[Diagnostic]) -> str | None:
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line_start = before.rfind(b"\n") + 1
        line = before.count(b"\n") + 1
        column = len(before[line_start:].decode("utf-8")) + 1  # all valid up to the bad byte
        message = f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; save the file as UTF-8"
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            message = "the file is UTF-16; save it as UTF-8"
        diagnostics.append(_problem(file, line, column, "file-encoding", message))
        return None


def _problem(file: str, line: int, column: int, code: str, message: str) -> Diagnostic:
    return Diagnostic(file, line, column, Severity.ERROR, code, message)
