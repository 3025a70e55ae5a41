"""Strict YAML text -> plain data plus a source map, reporting problems as diagnostics.

PyYAML's composer gives a node tree that carries marks; we construct plain JSON-like data
from it ourselves so that duplicate keys, anchors, aliases and tags are caught instead of
silently accepted, and so that scalars follow YAML 1.2's core schema (`yes` is a string).
`read_plain` reads the plain block style most flag files are written in, without nodes or
positions, to the same data; any other text is `parse`'s to read and report on.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from compiler.diagnostics import Diagnostic, Severity


class _Untyped(yaml.resolver.BaseResolver):
    """Leaves every node untyped: `_scalar` types plain scalars by YAML 1.2's core schema.

    The composer asks the loader to resolve every node; PyYAML's resolver does it with a
    regular expression per YAML 1.1 type, which costs more than composing itself.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        return ""

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


class _PyLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _Untyped,
):
    """PyYAML's pure-Python parser and composer: slower than libyaml, same results."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Untyped.__init__(self)


class _EventSource(Protocol):
    """What both parsers offer: events one by one, or the composed document."""

    def get_event(self) -> yaml.Event | None: ...

    def get_single_node(self) -> yaml.Node | None: ...


_Loader: Callable[[str], _EventSource]
try:
    from yaml._yaml import CParser

    class _CLoader(CParser, _Untyped):  # libyaml's C parser and composer
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Untyped.__init__(self)

    _Loader = _CLoader
    _BYTE_OFFSETS = True

except ImportError:  # pragma: no cover - PyYAML built without libyaml: slower, same results
    _Loader = _PyLoader
    _BYTE_OFFSETS = False


MAX_DEPTH = 64
# libyaml's composer recurses in C and crashes the interpreter on very deep flow nesting,
# so any text that could nest deeply is measured with the (flat) event stream first.
_SUSPECT_CHARS = ("&", "*", "!")
# Block mappings cannot nest on one line (`a: b: c` is invalid), so `:` needs no counting.
_PACKED_INDICATORS = re.compile(r"(?:[-?][ \t]+){16}")

Path_ = tuple[str | int, ...]
Data = None | bool | int | float | str | list["Data"] | dict[str, "Data"]

_CORE_TAG = "tag:yaml.org,2002:"
# YAML 1.2 core schema. Unlike YAML 1.1 (PyYAML's default), yes/no/on/off are strings.
_NOT_CONSTANT = object()
_CONSTANTS: dict[str, object] = {
    **dict.fromkeys(("true", "True", "TRUE"), True),
    **dict.fromkeys(("false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), None),
}
_NUMBER_START = frozenset("0123456789+-.")
_DECIMAL = re.compile(r"[-+]?[0-9]+")
_OCTAL = re.compile(r"0o[0-7]+")
_HEXADECIMAL = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INFINITY = re.compile(r"[-+]?\.(inf|Inf|INF)")


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Finds the line and column (1-based) of a value or key by its path in the document."""

    root: yaml.Node | None
    hidden: bool = False  # keys hold stand-ins for line separators (see `parse`)

    def locate(self, path: Path_, *, key: bool = False) -> tuple[int, int]:
        """Position of the value at `path`, or of its key; the nearest ancestor if absent."""
        node = self.root
        if node is None:
            return (1, 1)
        mark = node.start_mark
        for depth, part in enumerate(path, start=1):
            hidden_part = part.translate(_HIDE) if self.hidden and isinstance(part, str) else part
            child = _child(node, hidden_part)
            if child is None:
                break
            key_node, node = child
            on_key = key and depth == len(path)
            mark = key_node.start_mark if on_key and key_node is not None else node.start_mark
        return (mark.line + 1, mark.column + 1)


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == part:
                return key_node, value_node
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        return None, node.value[part]
    return None


@dataclass(frozen=True, slots=True)
class Parsed:
    """A document that could be read; `problems` (such as duplicate keys) still fail it,
    but it is checked further so that one run reports everything."""

    data: Data
    source: SourceMap
    problems: list[Diagnostic]


def parse(text: str, file: str) -> Parsed | list[Diagnostic]:
    """Parse one YAML document strictly: the data and its source map, or what is wrong.

    A document with anchors, aliases or tags is refused (its values are not plain), but
    only after every other YAML problem in it (duplicate keys, keys that are not names) is
    found too, so that one run reports them all. A syntax error or too deep a nesting ends
    the reading: what follows it cannot be read.
    """
    hidden = _hides_separators(text)
    if hidden:
        text = text.translate(_HIDE)
    refused: list[Diagnostic] = []
    if _needs_scan(text):
        refused, readable = _scan_events(text, file)
        if not readable:
            return refused
    try:
        root = _Loader(text).get_single_node()
    except yaml.YAMLError as exc:
        return [_syntax_error(exc, file, text)]
    problems: list[Diagnostic] = []
    # An alias is the node of its anchor again: each node is built once (a billion laughs
    # stays one pass), and its problems reported once, where it is written.
    seen: set[int] | None = set() if refused else None
    data = _construct(root, problems.append, file, 0, seen) if root is not None else None
    if refused:
        return sorted([*refused, *problems], key=lambda d: (d.line, d.column))
    if hidden:
        data = _shown(data)
    return Parsed(data, SourceMap(root, hidden), problems)


# libyaml reads U+0085, U+2028 and U+2029 as line breaks (YAML 1.1); YAML 1.2, git and
# editors read them as characters. They are parsed as private-use stand-ins, which keep
# every position, and put back in the data.
_SEPARATORS = "\x85\u2028\u2029"
_STAND_INS = "\ue085\ue028\ue029"
_HIDE = str.maketrans(_SEPARATORS, _STAND_INS)
_SHOW = str.maketrans(_STAND_INS, _SEPARATORS)


def _hides_separators(text: str) -> bool:
    return any(c in text for c in _SEPARATORS) and not any(c in text for c in _STAND_INS)


def _shown(data: Data) -> Data:
    if isinstance(data, str):
        return data.translate(_SHOW)
    if isinstance(data, list):
        return [_shown(item) for item in data]
    if isinstance(data, dict):
        return {key.translate(_SHOW): _shown(value) for key, value in data.items()}
    return data


def _needs_scan(text: str) -> bool:
    """Whether the text may hold anchors, aliases, tags or deep nesting.

    Only flow brackets and indicators packed on one line (`- - - x`, `? ? x`) can nest deep
    in 64 KiB; nesting by indentation costs a line per level and stays shallow.
    """
    return (
        any(c in text for c in _SUSPECT_CHARS)
        or text.count("[") + text.count("{") > MAX_DEPTH
        or (_may_pack(text) and _PACKED_INDICATORS.search(text) is not None)
    )


def _may_pack(text: str) -> bool:
    # The search tries every position; 16 indicators must be there first, which is rare.
    counts = text.count("- ") + text.count("? ") + text.count("-\t") + text.count("?\t")
    return counts >= 16


def _error(file: str, mark: Any, code: str, message: str) -> Diagnostic:
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return Diagnostic(file, line, column, Severity.ERROR, code, message)


def _scan_events(
    text: str, file: str, loader: Callable[[str], _EventSource] = _Loader
) -> tuple[list[Diagnostic], bool]:
    """Anchors, aliases, explicit tags and deep nesting, from the flat event stream; and
    whether the document can be composed (no syntax error, not too deep).

    libyaml 0.2.6 (bundled from PyYAML 6.0.2 on) stops at 1,000 flow levels in its scanner,
    which reads ahead of the events, so its own error would come before our limit's: then
    the text is scanned again by PyYAML's Python parser, which has no such limit, so that
    every allowed PyYAML gives the same diagnostic at the same place.
    """
    problems: list[Diagnostic] = []
    aliased: set[str] = set()
    depth = 0
    try:
        for event in _events(loader(text)):
            if isinstance(event, yaml.AliasEvent):
                if event.anchor not in aliased:  # once per anchor: a billion laughs is one error
                    aliased.add(str(event.anchor))
                    problems.append(_alias_error(file, event, f"alias *{event.anchor}"))
            elif isinstance(event, yaml.NodeEvent):
                problems.extend(_anchor_and_tag(file, event))
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    message = f"values are nested more than {MAX_DEPTH} levels deep; flatten them"
                    return [_error(file, event.start_mark, "yaml-syntax", message)], False
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        if loader is not _PyLoader and _LIBYAML_LIMIT in str(exc):
            return _scan_events(text, file, _PyLoader)
        return [_syntax_error(exc, file, text)], False
    return problems, True


# libyaml's own nesting limit (0.2.6 on), in the flow scanner and the parser alike.
_LIBYAML_LIMIT = "exceeded maximum nesting depth"


def _events(loader: _EventSource) -> Iterator[yaml.Event]:
    while (event := loader.get_event()) is not None:
        yield event


def _anchor_and_tag(file: str, event: yaml.NodeEvent) -> Iterator[Diagnostic]:
    if event.anchor is not None:
        yield _alias_error(file, event, f"anchor &{event.anchor}")
    tag = getattr(event, "tag", None)
    if tag is not None:
        shown = f"!!{tag.removeprefix(_CORE_TAG)}" if tag.startswith(_CORE_TAG) else tag
        message = f"tag {shown} is not allowed: flag files are plain YAML; remove the tag"
        yield _error(file, event.start_mark, "yaml-alias", message)


def _alias_error(file: str, event: yaml.Event, what: str) -> Diagnostic:
    message = f"{what} is not allowed: flag files are plain YAML; write the value out in full"
    return _error(file, event.start_mark, "yaml-alias", message)


# Errors whose context mark (where the construct began) says more than the problem mark
# (where the parser gave up, often a later, correct line or the end of the file).
_STARTS_MATTER = ("while scanning a quoted", "while scanning a simple key", "while parsing a flow")


def _syntax_error(exc: yaml.YAMLError, file: str, text: str) -> Diagnostic:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return _marked_error(exc, file, text)
    if isinstance(exc, yaml.reader.ReaderError):
        line, column = _position(text, exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"character U+{code:04X} is not allowed in YAML; remove it"
        return Diagnostic(file, line, column, Severity.ERROR, "yaml-syntax", message)
    return Diagnostic(file, 1, 1, Severity.ERROR, "yaml-syntax", f"invalid YAML: {exc}")


def _marked_error(exc: yaml.MarkedYAMLError, file: str, text: str) -> Diagnostic:
    mark = exc.problem_mark
    problem = exc.problem or "invalid YAML"
    context = exc.context or ""
    if isinstance(exc, yaml.composer.ComposerError) and "single document" in context:
        message = "the file holds more than one YAML document ('---'); keep one per flag file"
    elif context.startswith(_STARTS_MATTER) and exc.context_mark is not None:
        mark, message = exc.context_mark, f"{problem} {context}; fix the YAML syntax here"
    elif mark is not None and text[mark.index : mark.index + 1] == "\t":
        message = "a tab cannot indent YAML; indent with spaces"
    else:
        message = f"{f'{problem} {context}'.rstrip()}; fix the YAML syntax here"
    return _error(file, mark, "yaml-syntax", message)


def _position(text: str, offset: int) -> tuple[int, int]:
    """Line and column of a reader error; libyaml counts its offset in UTF-8 bytes."""
    before = (
        text.encode("utf-8")[:offset].decode("utf-8", "replace") if _BYTE_OFFSETS else text[:offset]
    )
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def _construct(
    node: yaml.Node,
    report: Callable[[Diagnostic], None],
    file: str,
    depth: int,
    seen: set[int] | None = None,
) -> Data:
    """Plain data from `node`, reporting duplicate keys, keys that are not names and too
    deep a nesting. With `seen`, a collection node met again (through an alias) is not
    built again: it stands as None."""
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if seen is not None:
        if id(node) in seen:
            return None
        seen.add(id(node))
    if depth >= MAX_DEPTH:
        message = f"values are nested more than {MAX_DEPTH} levels deep; flatten them"
        report(_error(file, node.start_mark, "yaml-syntax", message))
        return None
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, report, file, depth + 1, seen) for item in node.value]
    mapping: dict[str, Data] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            message = "a key must be a plain name, not a list or mapping"
            report(_error(file, key_node.start_mark, "yaml-syntax", message))
            continue
        key = key_node.value
        if key in lines:  # the first one is kept, to check the rest of the file
            message = (
                f"key {key!r} is already set on line {lines[key]}; "
                "YAML would silently keep only the last one: remove one of them"
            )
            report(_error(file, key_node.start_mark, "yaml-duplicate-key", message))
            continue
        lines[key] = key_node.start_mark.line + 1
        mapping[key] = _construct(value_node, report, file, depth + 1, seen)
    return mapping


def _scalar(node: yaml.ScalarNode) -> Data:
    value: str = node.value
    if node.style:  # quoted, literal or folded: always a string
        return value
    return _plain(value)


def _plain(value: str) -> Data:
    """A plain (unquoted) scalar, typed by YAML 1.2's core schema."""
    constant = _CONSTANTS.get(value, _NOT_CONSTANT)
    if constant is not _NOT_CONSTANT:
        return constant  # type: ignore[return-value]
    if value[:1] in _NUMBER_START:
        return _number(value)
    return value  # dates too: they are checked as text


def _number(value: str) -> Data:
    if _DECIMAL.fullmatch(value):
        return int(value)
    if _OCTAL.fullmatch(value):
        return int(value[2:], 8)
    if _HEXADECIMAL.fullmatch(value):
        return int(value[2:], 16)
    if _FLOAT.fullmatch(value):
        return float(value)
    if _INFINITY.fullmatch(value):
        return float("-inf") if value.startswith("-") else float("inf")
    return float("nan") if value in (".nan", ".NaN", ".NAN") else value


# `read_plain`: the common shape of a flag file read line by line, without libyaml's nodes.
# Any line outside that shape, or any doubt, and `parse` reads the text instead.
_PLAIN_LINES = re.compile(
    r"^( *)(?:#.*|(- +)(.*)|([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}):(?: +(.*))?|(.+))?$", re.M
)
# Characters libyaml reads as ordinary ones, but for tabs, carriage returns and line
# separators (see `_SEPARATORS`), which change how lines and blanks are read.
_UNUSUAL = re.compile(
    r"[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_AFTER = r"(?: +(?:#.*)?)?"  # blanks, then maybe a comment
_DOUBLE_QUOTED = re.compile(r'"([^"\\]*)"' + _AFTER)
_SINGLE_QUOTED = re.compile(r"'([^']*)'" + _AFTER)
_FLOW_SEQUENCE = re.compile(r"\[([^][{}\"'#:]*)\]" + _AFTER)
_PLAIN_DEPTH = 32
Plain = tuple[Data] | None  # (the data,) or None: not in the shape `read_plain` reads


def read_plain(text: str) -> Plain:
    """The data of a document written in the plain block style flag files use (`key: value`
    lines, nested by indentation; `- item` lists; one-line `[a, b]` lists; scalars plain,
    or quoted without escapes), exactly as `parse` gives it for a document with no
    problems; None for any other text, which `parse` must read. Cheaper than `parse`: it
    keeps no node or source position, and every problem is left to `parse` to report."""
    if _UNUSUAL.search(text) is not None:
        return None
    blocks = _Blocks()
    line = blocks.line
    for spaces, dash, item, key, value, other in _PLAIN_LINES.findall(text):
        if other or ((dash or key) and not line(len(spaces), dash, item if dash else value, key)):
            return None
    return None if blocks.root is None else (blocks.root,)


Block = dict[str, Data] | list[Data]


class _Blocks:
    """The mappings and lists open while `read_plain` reads, with the indent of their
    entries, innermost last; and a `key:` whose block may start on the next line."""

    __slots__ = ("indent", "pending", "root", "stack", "top")

    def __init__(self) -> None:
        self.root: Block | None = None
        self.stack: list[tuple[int, Block]] = []
        self.pending: tuple[dict[str, Data], str, int] | None = None
        self.top: Block = []  # the innermost block, and the indent of its entries
        self.indent = -1

    def line(self, indent: int, dash: str, text: str, key: str) -> bool:
        """Add a `- item` (`dash`) or `key: text` line; False when YAML would not read it so."""
        top = self.top
        if indent != self.indent or self.pending is not None or isinstance(top, dict) == bool(dash):
            found_top = self._block_at(indent, bool(dash))  # most lines continue the last block
            if found_top is None:
                return False
            top = found_top
        if isinstance(top, list):
            found = _plain_value(text)
            if found is not None:
                top.append(found[0])
            return found is not None
        if key in top:
            return False
        if text[:1] in ("", "#"):
            top[key] = None
            self.pending = (top, key, indent)
            return True
        found = _plain_value(text)
        if found is not None:
            top[key] = found[0]
        return found is not None

    def _block_at(self, indent: int, dash: bool) -> Block | None:
        """Where a line at `indent` goes (None: a line YAML would refuse, or read otherwise)."""
        self._open(indent, dash)
        stack = self.stack
        if not stack:
            return self._start(indent, dash)
        while stack[-1][0] > indent:  # the root's 0 stops it
            stack.pop()
        if stack[-1][0] != indent or len(stack) > _PLAIN_DEPTH:
            return None
        if not dash and isinstance(stack[-1][1], list):  # a list at its key's indent ends
            stack.pop()
            if not stack or stack[-1][0] != indent:
                return None
        self.indent, self.top = stack[-1]
        return self.top if isinstance(self.top, list) == dash else None

    def _open(self, indent: int, dash: bool) -> None:
        """The pending key's block, if the line at `indent` starts one."""
        if self.pending is None:
            return
        parent, key, at = self.pending
        self.pending = None
        if indent > at or (indent == at and dash):  # a list may sit at its key's indent
            block: Block = [] if dash else {}
            parent[key] = block
            self.stack.append((indent, block))

    def _start(self, indent: int, dash: bool) -> Block | None:
        if self.root is not None or indent != 0:
            return None
        self.root = [] if dash else {}
        self.stack.append((0, self.root))
        self.indent, self.top = 0, self.root
        return self.root


def _plain_value(text: str) -> Plain:
    """A one-line value: a scalar, plain or quoted without escapes, or a flow list of plain
    scalars; comments dropped. None for anything else."""
    if text[:1] == "[":  # a new list each time: the data is the caller's
        flow = _FLOW_SEQUENCE.fullmatch(text)
        return None if flow is None else _flow_items(flow[1])
    return _scalar_value(text)


@functools.lru_cache(maxsize=4096)  # a history repeats its values (true, owners, dates)
def _scalar_value(text: str) -> Plain:
    first = text[0] if text else "-"
    if first in "\"'":
        quoted = (_DOUBLE_QUOTED if first == '"' else _SINGLE_QUOTED).fullmatch(text)
        return None if quoted is None else (quoted[1],)
    if first in _INDICATORS:
        return None
    comment = text.find(" #")
    value = (text if comment < 0 else text[:comment]).rstrip(" ")
    if ": " in value or value.endswith(":"):
        return None
    return (_plain(value),)


def _flow_items(inside: str) -> Plain:
    if not inside.strip(" "):
        return ([],)
    items: list[Data] = []
    for part in inside.split(","):
        item = part.strip(" ")
        if not item or item[0] in _INDICATORS:
            return None
        items.append(_plain(item))
    return (items,)
