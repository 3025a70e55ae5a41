"""The reason policy: a commit that changes flags says why, in its message.

Git history is the audit log of flag changes and a commit's message is the reason for one,
so `flagc check --reasons BASE..HEAD` refuses the commits whose message says too little:
an empty message, a subject line (the first line) on the policy's deny list, or one
shorter than its minimum length. `check_reasons` is pure: commits and a policy in,
diagnostics out; commands/check.py reads the commits from git.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence, Set

from compiler.diagnostics import Diagnostic, Severity
from compiler.git_log import Change, Commit
from compiler.load import PROJECT_FILE, flag_key
from core.model import ReasonPolicy

CODE = "missing-reason"
SHORT_SHA = 7  # as `git log --oneline` shows them
_SHOWN = 60  # the most characters of a subject quoted in a message
_FIX = "reword it (git commit --amend, or git rebase -i) to say why the flag changes"


def check_reasons(
    commits: Iterable[Commit], policy: ReasonPolicy, display_root: str
) -> list[Diagnostic]:
    """One `missing-reason` error per commit that changes flag files with too thin a
    message, at the first flag file it changed (its path joined to `display_root`, as the
    loader shows paths). Commits that change no file the compiler reads are skipped."""
    denied = frozenset(deny_form(word) for word in policy.deny)
    diagnostics = []
    for commit in commits:
        files = changed_files(commit.changes)
        problem = thin(commit.message, policy.min_length, denied)
        if files and problem is not None:
            where = _display(display_root, files[0])
            message = _message(commit, files, problem, policy.min_length, display_root)
            diagnostics.append(Diagnostic(where, 1, 1, Severity.ERROR, CODE, message))
    return diagnostics


def thin(message: str, min_length: int, denied: Set[str]) -> str | None:
    """What is too thin about a commit message, or None when it gives a reason.

    `denied` holds deny-list entries in `deny_form`. The subject is judged as it reads:
    without invisible format characters (Unicode category Cf, such as zero-width spaces)
    and surrounding whitespace, so that `wip` followed by zero-width spaces is `wip`. A
    message without a letter or digit anywhere is refused whatever the policy, as an empty
    one is; a subject without one is as good as blank. Length counts characters (code
    points after NFC normalisation, so an accent typed as a combining mark is not counted
    twice).
    """
    subject = visible(message.split("\n", 1)[0])
    if not visible(message):
        return "the message is empty"
    if deny_form(subject) in denied:
        return f"the subject {_quoted(subject)} is on the deny list"
    if not _has_word(message):
        return "the message has no letter or digit"
    return _too_short(subject, min_length)


def _too_short(subject: str, min_length: int) -> str | None:
    """With a minimum length, a subject without a letter or digit fails as a blank one."""
    if min_length > 0 and not _has_word(subject):
        if not subject:  # only a body, after a blank first line
            return "the subject line (the first line) is blank"
        return f"the subject {_quoted(subject)} has no letter or digit"
    if len(subject) < min_length:
        return f"the subject {_quoted(subject)} has {_characters(len(subject))}"
    return None


def visible(text: str) -> str:
    """`text` as a reader sees it: NFC, without format characters (Cf), stripped."""
    shown = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return unicodedata.normalize("NFC", shown).strip()


def _has_word(text: str) -> bool:
    return any(character.isalnum() for character in text)


def deny_form(text: str) -> str:
    """The form in which subjects and deny-list entries are compared: case folded, NFC,
    without trailing punctuation or spaces (`WIP...` is `wip`). Text that is nothing but
    punctuation is kept whole, so that the entry `...` does not also deny `!`."""
    folded = unicodedata.normalize("NFC", text.strip()).casefold()
    end = len(folded)
    while end > 0 and (folded[end - 1].isspace() or _is_punctuation(folded[end - 1])):
        end -= 1
    return folded[:end] if end > 0 else folded


def _is_punctuation(character: str) -> bool:
    return unicodedata.category(character).startswith("P")  # any script's, e.g. `。` and `…`


def changed_files(changes: Sequence[Change]) -> list[str]:
    """The files a commit changed that the compiler reads, as paths inside the flags folder,
    flag files first: a deleted file by its old path, a moved one by its new path."""
    paths = [change.new_path or change.old_path for change in changes]
    read = [path for path in paths if path is not None and _compiled(path)]
    return sorted(read, key=lambda path: path == PROJECT_FILE)  # stable: git's order otherwise


def _compiled(path: str) -> bool:
    # The files the loader reads: flag files and the project (a README beside them is not a
    # flag change).
    return path == PROJECT_FILE or flag_key(path) is not None


def _message(
    commit: Commit, files: list[str], problem: str, min_length: int, display_root: str
) -> str:
    changed = _display(display_root, files[0])
    if len(files) > 1:
        changed += f" and {len(files) - 1} more file{'s' * (len(files) > 2)}"
    at_least = f", in at least {_characters(min_length)}" if min_length > 0 else ""
    return (
        f"commit {commit.sha[:SHORT_SHA]} {_quoted(commit.subject)} changes {changed} but its "
        f"message is too thin: {problem}; {_FIX}{at_least}"
    )


def _quoted(subject: str) -> str:
    """The subject in double quotes, escaped (a subject may hold quotes or control
    characters) and cut short if long."""
    shown = subject if len(subject) <= _SHOWN else f"{subject[: _SHOWN - 1]}…"
    return json.dumps(shown, ensure_ascii=False)


def _characters(count: int) -> str:
    return f"{count} character{'s' * (count != 1)}"


def _display(display_root: str, relative: str) -> str:
    # As load.py joins them, so that these diagnostics name files like every other one.
    return relative if display_root in ("", ".") else f"{display_root.rstrip('/')}/{relative}"
