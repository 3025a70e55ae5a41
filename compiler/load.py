"""Stage 1, load: a flags directory -> source files with positions, and what is wrong."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import marshal
import os
import posixpath
import queue
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from compiler.beside import Beside, can_fork
from compiler.diagnostics import Diagnostic, Severity
from compiler.yamlsource import Data, Parsed, Path_, SourceMap, parse, read_plain
from core.keys import KEY_PATTERN
from core.regular import NotRegularFile, read_regular_file

MAX_FILE_BYTES = 64 * 1024
PROJECT_FILE = "_project.yaml"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One parsed YAML file: its display path, plain data and where each value stands."""

    file: str  # as shown to people: the folder as given, then the path inside it
    data: Data
    source: SourceMap | LaterSource
    key: str = ""
    path: str = ""  # inside the flags folder, the same however the folder was named
    blob: str = ""  # git's blob id of the bytes read (compiler.incremental keys files so)


class LaterSource:
    """The source map of a text `read_plain` read, made by `parse` only when a position is
    asked for (most files of a clean tree never are: parsing with positions took twice as
    long as `read_plain`, 1.1 s against 0.56 s for 10,000 flags). A top-level key with a
    one-line value is placed from the text itself, where parse places it: where each
    `expires` stands is asked of every flag that has one."""

    __slots__ = ("_map", "file", "text")

    def __init__(self, text: str, file: str) -> None:
        self.text, self.file = text, file
        self._map: SourceMap | None = None

    def locate(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """As `SourceMap.locate`."""
        if len(path) == 1 and isinstance(path[0], str):
            found = _TOP_LEVEL.search(self.text)
            while found is not None and found[1] != path[0]:
                found = _TOP_LEVEL.search(self.text, found.end())
            if found is not None and found[2]:  # `key: value` on one line
                line = self.text.count("\n", 0, found.start()) + 1
                return (line, 1) if key else (line, len(found[0]) - len(found[2]) + 1)
        if self._map is None:
            parsed = parse(self.text, self.file)
            assert isinstance(parsed, Parsed)  # what read_plain reads, parse reads
            self._map = parsed.source
        return self._map.locate(path, key=key)


# A top-level key as read_plain reads it, and its value's first character when the value
# is on the line (not a comment): a mapping's keys are the lines that start unindented.
_TOP_LEVEL = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*):(?: +([^ #\n]))?", re.M)


@dataclass(frozen=True, slots=True)
class Unread:
    """A flag file whose content could not be read or parsed (its own error says why). Its
    file name still names its flag: references to the key are not unknown, and another
    file with the same key is still a duplicate."""

    key: str
    file: str
    path: str


@dataclass(slots=True)
class Loaded:
    project: SourceFile | None = None
    flags: list[SourceFile] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    unread: list[Unread] = field(default_factory=list)

    def keys(self) -> set[str]:
        """Every key a flag file names, whether its content could be read or not."""
        return {d.key for d in self.flags} | {u.key for u in self.unread}


def load_tree(
    root: Path,
    display_root: str | None = None,
    ahead: ReadAhead | None = None,
    each: Callable[[SourceFile], object] | None = None,
) -> Loaded:
    """Read every flag file below `root` and `_project.yaml`; never raises for bad input.

    Paths in diagnostics are `display_root` (default: `root` as given) joined with the
    path inside the tree, so that they match what the user typed and what CI annotates.
    Only regular files inside `root` are opened (see `_open_inside`): a link that leads out
    of the folder is `file-outside-tree`, a FIFO or device an `io-error`, each at its entry.
    With `ahead`, the files it reads are not read again (`ReadAhead`). `each` is called
    with each file as soon as it is loaded, `_project.yaml` first, then the flag files in
    order (what compiler.pipeline validates while the rest are read).
    """
    shown = str(root) if display_root is None else display_root
    loaded = Loaded()
    inside = _Tree(root)
    project_file = display_path(shown, PROJECT_FILE)
    if os.path.lexists(root / PROJECT_FILE):
        link = (root / PROJECT_FILE).is_symlink()
        loaded.project = _load_file(inside, PROJECT_FILE, project_file, loaded.diagnostics, link)
        if loaded.project is not None and each is not None:
            each(loaded.project)
    else:
        hint = " (there is a _project.yml: rename it)" if (root / "_project.yml").exists() else ""
        message = (
            f"{PROJECT_FILE} is missing{hint}; create it with the lists "
            "`environments:` and `applications:`"
        )
        loaded.diagnostics.append(_problem(project_file, 1, 1, "project-config", message))
    entries, linked_out, unreadable = _flag_files(inside)
    for relative in linked_out:
        loaded.diagnostics.append(_outside(display_path(shown, relative), inside, relative))
    for relative, error in unreadable:
        message = f"cannot read the folder ({error.strerror}); check its permissions"
        loaded.diagnostics.append(
            _problem(display_path(shown, relative), 1, 1, "io-error", message)
        )
    for relative, link in entries:
        file = display_path(shown, relative)
        # as PurePosixPath's stem and suffix, for the names flag_key takes (a tenth of the time)
        stem, suffix = posixpath.splitext(posixpath.basename(relative))
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
        document = _flag_document(inside, (relative, link, stem), file, loaded.diagnostics, ahead)
        if document is not None:
            loaded.flags.append(document)
            if each is not None:
                each(document)
        else:
            loaded.unread.append(Unread(stem, file, relative))
    return loaded


def _flag_document(
    tree: _Tree,
    entry: tuple[str, bool, str],
    file: str,
    diagnostics: list[Diagnostic],
    ahead: ReadAhead | None,
) -> SourceFile | None:
    """The flag file at `entry` (a `_flag_files` entry, and the file's stem), as `ahead`
    read it if it did."""
    relative, link, stem = entry
    plain = ahead.get(relative) if ahead is not None else None
    if plain is None:
        return _load_file(tree, relative, file, diagnostics, link, stem)
    data, text, blob = plain
    return SourceFile(file, data, LaterSource(text, file), stem, relative, blob)


# A flag file read whole by `read_plain`: its data, its text and its blob id.
_Plain = tuple[Data, str, str]


class ReadAhead:
    """The flag files below a folder, read by `read_plain` in a forked process (compiler.
    beside) in the order `load_tree` takes them, and sent back in batches as they are read:
    `flagc build` starts it before it imports the compiler (0.25 s), and `load_tree` takes
    each file as it arrives, so that this process validates and resolves the first files
    while the last are still read (compiler.pipeline). Only plain regular files that are
    not links are read ahead; any other file, and any the other process has not sent (it
    died, or the folder changed between the two listings), is read here as usual, so what
    is loaded never depends on how far the other process got. With one CPU nothing is read
    ahead. Reading 10,000 flag files takes 0.55 s."""

    __slots__ = ("_arrived", "_beside", "_stream")

    def __init__(self, root: Path) -> None:
        self._arrived: dict[str, _Plain | None] = {}
        self._beside: Beside[None] | None = None
        self._stream: BinaryIO | None = None
        if not can_fork():
            return
        receiving, sending = os.pipe()
        with contextlib.suppress(OSError):  # a wider pipe: fewer turns (Linux's default most)
            fcntl.fcntl(sending, fcntl.F_SETPIPE_SZ, 1 << 20)
        try:
            self._beside = Beside(_read_all, root, sending)
        finally:
            os.close(sending)  # the other process's copy is the one left: its end is the end
        self._stream = os.fdopen(receiving, "rb")  # read across calls, closed by `cancel`

    def get(self, relative: str) -> _Plain | None:
        """The file at `relative`, once the other process has sent it; None when it did not
        read it (this process reads it then)."""
        while relative not in self._arrived and self._stream is not None:
            self._receive()
        return self._arrived.pop(relative, None)

    def _receive(self) -> None:
        """Take the next batch; at the end (or a batch cut short) stop reading ahead."""
        assert self._stream is not None
        head = self._stream.read(8)
        size = int.from_bytes(head, "little") if len(head) == 8 else 0
        block = self._stream.read(size) if size else b""
        if size == 0 or len(block) != size:
            self.cancel()
            return
        self._arrived.update(marshal.loads(block))

    def cancel(self) -> None:
        """Stop reading ahead, unless done already: the files are read (or not wanted: the
        build reused the last one's, or failed)."""
        stream, self._stream = self._stream, None
        beside, self._beside = self._beside, None
        if stream is not None:
            stream.close()
        if beside is not None:
            beside.cancel()


def settled(folder: Path) -> Path:
    """The folder a build reads: `folder` with its links resolved, once, when the build
    starts. git-sync checks each commit out into a work tree of its own and swaps a link to
    it; a build that went through the link at each read could take some files (or git's
    answers) from one commit's work tree and the rest, or the revision, from the next one's.
    What is not a folder is left as given, for the error that names it."""
    return folder.resolve() if folder.is_dir() else folder


def read_ahead(root: Path) -> ReadAhead | None:
    """The flag files below `root` read ahead (`ReadAhead`), where another process can read
    them; None where none would (one CPU): each file would then be checked as it loads for
    nothing, which took 0.1 s longer than checking them all at once at 10,000 flags."""
    return ReadAhead(root) if root.is_dir() and can_fork() else None


_BATCH = 256  # files a batch: 40 batches for 10,000 files


def _read_all(root: Path, sending: int) -> None:
    """`ReadAhead`'s forked half: every file in order, sent in batches as they are read.
    A thread writes the batches, so that reading never waits for the other process, which
    takes none while it imports; each batch is marshalled, which takes half the time pickle
    does and keeps what `read_plain` reads as it is."""
    tree = _Tree(root)
    entries, _, _ = _flag_files(tree)
    batches: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    writer = threading.Thread(target=_send, args=(sending, batches))
    writer.start()
    try:
        batch: dict[str, _Plain | None] = {}
        for relative, link in entries:
            batch[relative] = None if link else _read_plain_file(tree, relative)
            if len(batch) == _BATCH:
                batches.put(marshal.dumps(batch))
                batch = {}
        if batch:
            batches.put(marshal.dumps(batch))
    finally:
        batches.put(None)
        writer.join()


def _send(sending: int, batches: queue.SimpleQueue[bytes | None]) -> None:
    """Write each batch, its length first, until None; the other process may have stopped
    listening (its build is done with the files), which ends the sending."""
    with contextlib.suppress(OSError), open(sending, "wb") as sink:
        while (batch := batches.get()) is not None:
            sink.write(len(batch).to_bytes(8, "little") + batch)
            sink.flush()


def _read_plain_file(tree: _Tree, relative: str) -> _Plain | None:
    """The file (not a link), when `_read` and `_decode` take it and `read_plain` reads it
    whole; None for any other, which `_load_file` reads again to say what is wrong."""
    unsaid: list[Diagnostic] = []
    raw = _read(tree, relative, relative, unsaid, link=False)
    text = None if raw is None else _decode(raw, relative, unsaid)
    plain = None if text is None else read_plain(text)
    if raw is None or text is None or plain is None:
        return None
    return plain[0], text, blob_id(raw)


def loaded_from(project: bytes, flags: Mapping[str, bytes], display_root: str) -> Loaded:
    """What `load_tree` gives for a folder holding `_project.yaml` with bytes `project` and
    the flag files `flags` (path inside the folder -> bytes), read already: an incremental
    build reads every file once to know whether it changed, then parses only those that
    did. The caller has made sure every path is a valid flag file name of a regular file
    no larger than MAX_FILE_BYTES."""
    loaded = Loaded()
    diagnostics = loaded.diagnostics
    shown = display_path(display_root, PROJECT_FILE)
    loaded.project = _source(project, PROJECT_FILE, shown, diagnostics, "")
    for relative in sorted(flags):
        key = PurePosixPath(relative).stem
        file = display_path(display_root, relative)
        document = _source(flags[relative], relative, file, diagnostics, key)
        if document is not None:
            loaded.flags.append(document)
        else:
            loaded.unread.append(Unread(key, file, relative))
    return loaded


def flag_files(root: Path) -> tuple[list[tuple[str, bool]], list[str], list[tuple[str, OSError]]]:
    """What `load_tree` finds below `root` (see `_flag_files`), for a reader of its own."""
    return _flag_files(_Tree(root))


def blob_id(data: bytes) -> str:
    """Git's blob id of `data` (what `git hash-object` prints): a file's key by content,
    the same as git's index holds for a clean file."""
    hashed = hashlib.sha1(b"blob %d\0" % len(data))  # git's id, not a secret
    hashed.update(data)
    return hashed.hexdigest()


def flag_key(path: str) -> str | None:
    """The key of the flag file at `path` (inside the flags folder), or None for a file the
    loader does not read as a flag (hidden, `_*`, not YAML). `.yml` files count: the loader
    reads them to report them."""
    name = path.rsplit("/", 1)[-1]
    if path.startswith(".") or "/." in path or name.startswith("_"):
        return None
    stem, dot, suffix = name.rpartition(".")
    return stem if dot and suffix.lower() in ("yaml", "yml") else None


def display_path(shown: str, relative: str) -> str:
    """A path inside the flags folder as diagnostics show it: after the folder as given."""
    return relative if shown in ("", ".") else f"{shown.rstrip('/')}/{relative}"


class _Tree:
    """The flags folder, and where it really is once every link is followed."""

    __slots__ = ("real", "root")

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real = os.path.realpath(root)

    def target(self, relative: str) -> str:
        return os.path.realpath(self.root / relative)

    def holds(self, relative: str) -> bool:
        """Whether the entry, its links followed, is still inside the folder. A pull request
        can add a link to ~/.netrc or /dev/stdin; it must never be opened."""
        target = self.target(relative)
        return target == self.real or target.startswith(self.real.rstrip(os.sep) + os.sep)


def _flag_files(tree: _Tree) -> tuple[list[tuple[str, bool]], list[str], list[tuple[str, OSError]]]:
    """The files `flag_key` names a flag, sorted, each with whether it is a symbolic link;
    the linked folders that lead out of the tree (never entered); and the folders that could
    not be listed. Hidden folders are not entered at all, nor is any linked folder: one whose
    target is inside the tree is read where it is, not again through the link. So every
    entry that is not itself a link is inside the tree, and only links need resolving."""
    found: list[tuple[str, bool]] = []
    linked_out: list[str] = []
    unreadable: list[tuple[str, OSError]] = []
    pending = [""]
    while pending:
        prefix = pending.pop()
        try:
            with os.scandir(tree.root / prefix) as entries:
                for entry in entries:
                    relative = prefix + entry.name
                    if not entry.is_dir():  # a link to a folder counts as a folder
                        if flag_key(relative) is not None:
                            found.append((relative, entry.is_symlink()))
                    elif entry.name.startswith("."):
                        continue
                    elif not entry.is_symlink():
                        pending.append(f"{relative}/")
                    elif not tree.holds(relative):
                        linked_out.append(relative)
        except OSError as exc:
            unreadable.append((prefix.rstrip("/") or ".", exc))
    return sorted(found), sorted(linked_out), sorted(unreadable, key=lambda item: item[0])


def _outside(file: str, tree: _Tree, relative: str) -> Diagnostic:
    try:  # as the link was written (the machine's own paths stay out of CI logs)
        target = repr(str((tree.root / relative).readlink()))
    except OSError:  # pragma: no cover - only links lead out of the tree
        target = "a place"
    message = (
        f"this is a link to {target}, which leads out of the flags folder: it is not read; "
        "put what it links to in the folder itself, or link only within the folder"
    )
    return _problem(file, 1, 1, "file-outside-tree", message)


def _load_file(
    tree: _Tree,
    relative: str,
    file: str,
    diagnostics: list[Diagnostic],
    link: bool,
    key: str = "",
) -> SourceFile | None:
    raw = _read(tree, relative, file, diagnostics, link)
    if raw is None:
        return None
    return _source(raw, relative, file, diagnostics, key)


def _source(
    raw: bytes, relative: str, file: str, diagnostics: list[Diagnostic], key: str
) -> SourceFile | None:
    text = _decode(raw, file, diagnostics)
    if text is None:
        return None
    plain = read_plain(text)
    if plain is not None:
        return SourceFile(file, plain[0], LaterSource(text, file), key, relative, blob_id(raw))
    parsed = parse(text, file)
    if isinstance(parsed, Parsed):
        diagnostics.extend(parsed.problems)
        return SourceFile(file, parsed.data, parsed.source, key, relative, blob_id(raw))
    diagnostics.extend(parsed)
    return None


def _read(
    tree: _Tree, relative: str, file: str, diagnostics: list[Diagnostic], link: bool
) -> bytes | None:
    """The file's bytes, or None with why they cannot be had: a `link` leading out of the
    tree, not a regular file, unreadable, or too large."""
    if link and not tree.holds(relative):
        diagnostics.append(_outside(file, tree, relative))
        return None
    try:
        raw = read_regular_file(tree.root / relative, MAX_FILE_BYTES + 1)
    except NotRegularFile as exc:
        message = f"this is {exc}, not a regular file: it is not read; replace it with a file"
        diagnostics.append(_problem(file, 1, 1, "io-error", message))
        return None
    except OSError as exc:
        message = f"cannot read the file ({exc.strerror}); check its permissions"
        diagnostics.append(_problem(file, 1, 1, "io-error", message))
        return None
    if len(raw) > MAX_FILE_BYTES:
        message = f"the file is larger than {MAX_FILE_BYTES // 1024} KiB; a flag file is short"
        diagnostics.append(_problem(file, 1, 1, "file-too-large", message))
        return None
    return raw


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
