"""Text output safe on a terminal and in a CI log: the one escaping every text renderer uses.

File names, flag data, commit subjects and author names come from whoever wrote them, and
are printed where a reviewer reads them. A control character there could clear the screen,
move the cursor or recolour what follows (ESC, CSI), rewrite a line (CR), start a new line
(LF) that GitHub Actions runs as a workflow command (`::error ...`), or reorder what the
reader sees (Unicode bidirectional controls, as in "Trojan Source"). `printable` shows each
of them as its escape instead, so the reader sees that it is there and what it is.
"""

from __future__ import annotations

# Shown by name, as Python and C write them.
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# C0 controls, DEL and C1 controls (Unicode category Cc).
_CONTROLS = [*map(chr, range(0x20)), "\x7f", *map(chr, range(0x80, 0xA0))]
# Bidirectional formatting (they reorder the text around them on screen), and the line and
# paragraph separators (some terminals and editors break the line there).
_INVISIBLE_LAYOUT = [
    "\u061c",
    "\u200e",
    "\u200f",
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
    "\u2028",
    "\u2029",
]


def _escape(character: str) -> str:
    code = ord(character)
    if character in _NAMED:
        return _NAMED[character]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_TABLE = str.maketrans({c: _escape(c) for c in [*_CONTROLS, *_INVISIBLE_LAYOUT]})
WORKFLOW_COMMAND = "::"  # what GitHub Actions runs when a log line starts with it


def printable(text: str) -> str:
    """`text` as one line that is safe to print: every control character (C0, DEL, C1,
    line breaks and tabs included), bidirectional control and line or paragraph separator
    is replaced by its escape (`\\x1b`, `\\n`, `\\u202e`), and a leading `::` becomes
    `\\x3a:` so that the line cannot be a GitHub workflow command. Everything else, other
    scripts and emoji included, is kept as it is: printable text reads unchanged.

    Renderers apply it to each whole line they print, so that what starts a line is known.
    """
    escaped = text.translate(_TABLE)
    if escaped.startswith(WORKFLOW_COMMAND):
        return "\\x3a" + escaped[1:]
    return escaped
