"""Golden tests over the invalid-input corpus, and a check of the bundled example flags.

Each folder in `corpus/` is one case: `flags/` is a flag tree and `expected.txt` the exact
text report `flagc check` must give for it, with positions and messages. Run pytest with
`--update-golden` to rewrite every `expected.txt` from what the compiler prints now, then
review the diff. A case whose folder holds `xfail.txt` documents a known compiler bug: its
`expected.txt` is written by hand (what the compiler *should* print), it is never rewritten,
and it is expected to fail (strictly) until the bug is fixed and `xfail.txt` removed.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from compiler.diagnostics import CODES
from compiler.pipeline import compile_tree
from compiler.render.diagnostics import text

CORPUS = Path(__file__).resolve().parent / "corpus"
EXAMPLE = Path(__file__).resolve().parents[2] / "flags"
TODAY = datetime.date(2026, 6, 1)
EXPECTED = "expected.txt"
XFAIL = "xfail.txt"
UNTESTED_CODES = {
    "io-error",  # needs an unreadable file: tested in test_load.py
    "missing-reason",  # needs git history: tested in test_reasons.py
}
CODE_IN_LINE = re.compile(r"^[^\n]*?:\d+:\d+: (?:error|warning)\[([a-z-]+)\]: ", re.MULTILINE)


def _cases() -> list[Path]:
    return sorted(path for path in CORPUS.iterdir() if path.is_dir())


def _params() -> Iterator[object]:
    for case in _cases():
        marks = []
        if (case / XFAIL).is_file():
            reason = (case / XFAIL).read_text(encoding="utf-8").strip()
            marks.append(pytest.mark.xfail(reason=reason, strict=True))
        yield pytest.param(case, id=case.name, marks=marks)


def _report(flags: Path, today: datetime.date = TODAY) -> str:
    return text(compile_tree(flags, display_root="flags", today=today).diagnostics)


@pytest.mark.parametrize("case", list(_params()))
def test_case_gives_expected_diagnostics(case: Path, update_golden: bool) -> None:
    expected = case / EXPECTED
    got = _report(case / "flags")
    if update_golden and not (case / XFAIL).exists():
        expected.write_text(got, encoding="utf-8", newline="\n")
        return
    assert got == expected.read_text(encoding="utf-8")


def test_every_case_has_flags_and_expected_output() -> None:
    cases = _cases()
    assert cases, f"no cases in {CORPUS}"
    incomplete = [
        case.name
        for case in cases
        if not (case / EXPECTED).is_file() or not (case / "flags").is_dir()
    ]
    assert not incomplete, f"cases without flags/ or {EXPECTED}: {incomplete}"


def test_every_code_is_exercised_by_a_passing_case() -> None:
    found: set[str] = set()
    for case in _cases():
        if (case / EXPECTED).is_file() and not (case / XFAIL).exists():
            found.update(CODE_IN_LINE.findall((case / EXPECTED).read_text(encoding="utf-8")))
    assert set(CODES) - UNTESTED_CODES - found == set()
    assert found <= set(CODES)


def test_valid_cases_have_no_diagnostics() -> None:
    valid = [case for case in _cases() if case.name.startswith("valid-")]
    assert valid
    for case in valid:
        assert (case / EXPECTED).read_text(encoding="utf-8") == "", case.name


def _longest_chain(edges: Mapping[str, Sequence[str]]) -> int:
    """The most dependency edges on one path; the graph is known to be acyclic here."""
    depth: dict[str, int] = {}

    def visit(key: str) -> int:
        if key not in depth:
            depth[key] = 1 + max((visit(d) for d in edges.get(key, ())), default=-1)
        return depth[key]

    return max((visit(key) for key in edges), default=0)


def test_bundled_example_flags_are_clean() -> None:
    compiled = compile_tree(EXAMPLE, display_root="flags", today=datetime.date(2026, 11, 22))
    assert text(compiled.diagnostics) == ""
    assert compiled.grid is not None
    assert len(compiled.grid.environments) == 3
    assert len(compiled.grid.applications) == 3
    assert len(compiled.flags) >= 12
    edges = {key: flag_file.flag.depends_on for key, flag_file in compiled.flags.items()}
    assert _longest_chain(edges) >= 3
    assert len({Path(f.document.path).parent for f in compiled.flags.values()}) >= 3


def test_bundled_example_files_name_their_schema() -> None:
    files = sorted(EXAMPLE.rglob("*.yaml"))
    assert files
    for path in files:
        relative = path.relative_to(EXAMPLE)
        schema = "project" if path.name == "_project.yaml" else "flag"
        up = "../" * len(relative.parts)
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == f"# yaml-language-server: $schema={up}schemas/{schema}.schema.json", (
            relative
        )
