"""A plan in Markdown for a pull request (compiler.render.plan_markdown): flag data escaped,
long plans cut under GitHub's limit, notes, project changes and flags not compared. Plans of
two trees compiled in tmp_path; the whole output through `flagc diff` is a golden file in
tests/compiler/test_diff_command.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from compiler.render.plan_markdown import MAX_MARKDOWN, escape, render
from tests.compiler.helpers import plan_of
from tests.conftest import PROJECT

BASE = {
    "_project.yaml": PROJECT,
    "growth/hero.yaml": "description: Hero image\nowner: team-growth\nenabled: false\n",
    "checkout/apple-pay.yaml": "description: Apple Pay\nowner: team-payments\nenabled: true\n",
}


@pytest.mark.parametrize(
    ("text", "limit", "escaped"),
    [
        ("a|b", None, "a&#124;b"),
        ("<x> & `y`\nz", None, "&#60;x&#62; &#38; &#96;y&#96; z"),
        (
            "@team_a *b* [c] ~d~ $e$ \\",
            None,
            "&#64;team&#95;a &#42;b&#42; &#91;c&#93; &#126;d&#126; &#36;e&#36; &#92;",
        ),
        ("abcdef", 4, "abc…"),
        ("<" * 10, 3, "&#60;&#60;…"),  # cut first, then escaped
    ],
)
def test_escape(text: str, limit: int | None, escaped: str) -> None:
    assert escape(text, limit) == escaped


def test_flag_data_is_escaped(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script> | `code` @org/team *bold* [link](http://x) $x$ \\"
    evil = f"description: {json.dumps(hostile)}\nowner: '@org/team'\nenabled: false\n"
    out = render(plan_of(tmp_path, BASE, {**BASE, "we|ird`<i>/evil.yaml": evil}))
    for forbidden in ("<script", "<i>", "`code`", "@org", "*bold*", "[link]", "$x$", "|`"):
        assert forbidden not in out
    row = next(line for line in out.splitlines() if "evil" in line and "&#60;script" in line)
    assert row.count("|") == 5  # four cells: the data added no column
    assert "we&#124;ird&#96;&#60;i&#62;/evil.yaml" in row


def test_500_changed_flags_stay_under_the_limit(tmp_path: Path) -> None:
    noisy = "<b>|`@x`|</b> " * 40  # what escaping makes longest
    base = {"_project.yaml": PROJECT} | {
        f"bulk/f{i:03}.yaml": f"description: '{noisy}{i}'\nowner: team-bulk\nenabled: false\n"
        for i in range(500)
    }
    head = {"_project.yaml": PROJECT} | {
        f"bulk/f{i:03}.yaml": f"description: '{noisy}{i} v2'\nowner: team-bulk\n"
        "enabled: false\nenvironments:\n  production: true\n"
        for i in range(500)
    }
    out = render(plan_of(tmp_path, base, head))
    assert len(out) < MAX_MARKDOWN  # a pull-request comment holds 65,536 characters
    assert out.index("| changed | 500 |") < out.index("| production | 2000 | 2000 | 0 |")
    assert out.index("| production | 2000 | 2000 | 0 |") < out.index("<details>")
    assert "more: `flagc diff --format json` lists them all." in out
    assert "<b>" not in out
    assert out.count("<details>") == out.count("</details>") == 2


def test_no_change(tmp_path: Path) -> None:
    out = render(plan_of(tmp_path, BASE, BASE))
    assert "No changes." in out
    assert "<details>" not in out
    assert re.search(r"^\| production \| 0 \| 0 \| 0 \|$", out, re.MULTILINE)


def test_notes_project_and_flags_not_compared(tmp_path: Path) -> None:
    head = {
        **BASE,
        "_project.yaml": PROJECT.replace("production]", "production, qa]"),
        "growth/hero.yaml": "description: Hero\nowner: [x]\nenabled: true\n",
    }
    plan = plan_of(tmp_path, BASE, head, head_name="working tree")
    out = render(plan)
    assert "> **Note:** HEAD (working tree) has 1 error: " in out
    assert "(`flagc check` lists the errors)" in out
    assert "**Project:** + environment qa" in out
    assert "<details><summary>qa: 4 values (4 on, 0 off)</summary>" in out
    assert "<details><summary>1 flag not compared</summary>" in out
    [unreadable] = plan.unreadable
    assert f"| <code>hero</code> | {escape(unreadable.file)} | HEAD |" in out


def test_values_not_compared(tmp_path: Path) -> None:
    out = render(plan_of(tmp_path, BASE, {**BASE, "_project.yaml": "environments: []\n"}))
    assert "Values not compared." in out
    assert "| environment |" not in out
