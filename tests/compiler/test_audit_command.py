"""`flagc audit KEY [DIR] [--format text|json]`: one flag's history from a scripted
repository, as text and as JSON, and its usage errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.compiler.helpers import run
from tests.compiler.scripted import (
    APPLICATIONS,
    BANNER,
    CHECKOUT,
    GRACE,
    MARYAM,
    ZOE,
    Made,
    Scripted,
    appeared,
    cells,
    created_fields,
    deleted_fields,
    entry,
    vanished,
)
from tests.conftest import PROJECT, Git

BANNER_DEV = BANNER + "environments:\n  development: true\n"
WEB_ON = BANNER_DEV + "  production:\n    applications:\n      web: true\n"
MARKETING = WEB_ON.replace("owner: growth", "owner: marketing")
CELLS_DEVELOPMENT = ["development", *(f"development/{app}" for app in APPLICATIONS)]
IOS_OFF = MARKETING.replace(
    "  development: true\n",
    "  development:\n    enabled: true\n    applications:\n      ios: false\n",
)


@pytest.fixture
def history(git_repo: tuple[Path, Git]) -> tuple[Scripted, list[Made]]:
    """The banner's life: created on in development, on for the web in production, moved
    to marketing, off on iOS in development (with no message), then retired."""
    scripted = Scripted(*git_repo)
    made = [
        scripted.commit(
            "Add the banner",
            {"_project.yaml": PROJECT, "growth/banner.yaml": BANNER_DEV, "checkout.yaml": CHECKOUT},
            date="2026-01-05T09:00:00+01:00",
        ),
        scripted.commit(
            "Show the banner on the web in production\n\nMarketing asked for it.\nTicket: GROW-12",
            {"growth/banner.yaml": WEB_ON},
            author=GRACE,
            date="2026-01-06T10:30:00-05:00",
        ),
        scripted.commit(
            "Marketing owns the banner",
            {"growth/banner.yaml": None, "marketing/banner.yaml": MARKETING},
            author=ZOE,
            date="2026-01-07T08:00:00+05:30",
        ),
        scripted.commit(
            "", {"marketing/banner.yaml": IOS_OFF}, author=MARYAM, date="2026-01-08T12:00:00+03:00"
        ),
        scripted.commit(
            "Update the checkout", {"checkout.yaml": CHECKOUT.replace("true", "false")}
        ),
        scripted.commit(
            "Retire the banner", {"marketing/banner.yaml": None}, date="2026-01-09T18:45:00-08:00"
        ),
    ]
    return scripted, made


def test_text(history: tuple[Scripted, list[Made]], capsys: pytest.CaptureFixture[str]) -> None:
    scripted, made = history
    code, out, err = run(["audit", "banner", str(scripted.flags)], capsys)
    assert (code, err) == (0, "")
    assert out == (
        f"commit {made[5].sha} (deleted) marketing/banner.yaml\n"
        "Author: Ada Lovelace <ada@example.com>\n"
        "Date:   2026-01-09T18:45:00-08:00\n"
        "\n"
        "    Retire the banner\n"
        "\n"
        "  was on: development, development/web, development/android, production/web\n"
        '  description: "Free shipping banner" -> (absent)\n'
        "  enabled: false -> (absent)\n"
        "  environments.development.applications.ios: false -> (absent)\n"
        "  environments.development.enabled: true -> (absent)\n"
        "  environments.production.applications.web: true -> (absent)\n"
        '  owner: "marketing" -> (absent)\n'
        "\n"
        f"commit {made[3].sha} (modified) marketing/banner.yaml\n"
        "Author: مريم الأحمد <>\n"
        "Date:   2026-01-08T12:00:00+03:00\n"
        "\n"
        "    (no message)\n"
        "\n"
        "  development/ios: on -> off\n"
        "  environments.development: true -> (absent)\n"
        "  environments.development.applications.ios: (absent) -> false\n"
        "  environments.development.enabled: (absent) -> true\n"
        "\n"
        f"commit {made[2].sha} (moved) growth/banner.yaml -> marketing/banner.yaml\n"
        "Author: Zoë Çelik 🚀 <zoe@example.com>\n"
        "Date:   2026-01-07T08:00:00+05:30\n"
        "\n"
        "    Marketing owns the banner\n"
        "\n"
        '  owner: "growth" -> "marketing"\n'
        "\n"
        f"commit {made[1].sha} (modified) growth/banner.yaml\n"
        "Author: Grace Hopper <grace@example.com>\n"
        "Date:   2026-01-06T10:30:00-05:00\n"
        "\n"
        "    Show the banner on the web in production\n"
        "\n"
        "    Marketing asked for it.\n"
        "    Ticket: GROW-12\n"
        "\n"
        "  production/web: off -> on\n"
        "  environments.production.applications.web: (absent) -> true\n"
        "\n"
        f"commit {made[0].sha} (created) growth/banner.yaml\n"
        "Author: Ada Lovelace <ada@example.com>\n"
        "Date:   2026-01-05T09:00:00+01:00\n"
        "\n"
        "    Add the banner\n"
        "\n"
        "  on: development, development/web, development/ios, development/android\n"
        '  description: (absent) -> "Free shipping banner"\n'
        "  enabled: (absent) -> false\n"
        "  environments.development: (absent) -> true\n"
        '  owner: (absent) -> "growth"\n'
    )


def test_json(history: tuple[Scripted, list[Made]], capsys: pytest.CaptureFixture[str]) -> None:
    scripted, made = history
    code, out, err = run(["audit", "banner", str(scripted.flags), "--format", "json"], capsys)
    assert (code, err) == (0, "")
    entries = json.loads(out)
    assert entries == [e for e in scripted.extract()["entries"] if e["flag"] == "banner"]
    development = dict.fromkeys(cells(False), False) | dict.fromkeys(CELLS_DEVELOPMENT, True)
    last = {**development, "development/ios": False, "production/web": True}
    ios = "environments.development.applications.ios"
    web = "environments.production.applications.web"
    expected = [
        entry(
            made[5],
            "deleted",
            "banner",
            "marketing/banner.yaml",
            deleted_fields(
                [
                    ("description", "Free shipping banner"),
                    ("enabled", False),
                    (ios, False),
                    ("environments.development.enabled", True),
                    (web, True),
                    ("owner", "marketing"),
                ]
            ),
            vanished(last),
        ),
        entry(
            made[3],
            "modified",
            "banner",
            "marketing/banner.yaml",
            [
                ("environments.development", True, None),
                (ios, None, False),
                ("environments.development.enabled", None, True),
            ],
            [("development/ios", True, False)],
        ),
        entry(
            made[2],
            "moved",
            "banner",
            "marketing/banner.yaml",
            [("owner", "growth", "marketing")],
            previous_file="growth/banner.yaml",
        ),
        entry(
            made[1],
            "modified",
            "banner",
            "growth/banner.yaml",
            [(web, None, True)],
            [("production/web", False, True)],
        ),
        entry(
            made[0],
            "created",
            "banner",
            "growth/banner.yaml",
            created_fields(
                [
                    ("description", "Free shipping banner"),
                    ("enabled", False),
                    ("environments.development", True),
                    ("owner", "growth"),
                ]
            ),
            appeared(development),
        ),
    ]
    assert entries == expected
    # Byte for byte, in the key order of audit.json's entries (which `entry` follows).
    assert out == json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    assert "مريم الأحمد" in out  # as written, not escaped


def test_default_folder_is_flags(
    history: tuple[Scripted, list[Made]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scripted, made = history
    monkeypatch.chdir(scripted.repo)
    code, out, _ = run(["audit", "checkout", "--format", "json"], capsys)
    assert code == 0
    flag_cells = cells(True)
    assert json.loads(out) == [
        entry(
            made[4],
            "modified",
            "checkout",
            "checkout.yaml",
            [("enabled", True, False)],
            [(cell, True, False) for cell in flag_cells],
        ),
        entry(
            made[0],
            "created",
            "checkout",
            "checkout.yaml",
            created_fields(
                [
                    ("description", "The redesigned checkout"),
                    ("enabled", True),
                    ("expires", "2099-12-31"),
                    ("owner", "checkout"),
                    ("tags", ["payments", "web"]),
                ]
            ),
            appeared(flag_cells),
        ),
    ]
    monkeypatch.chdir(scripted.flags / "growth")  # any folder of the work tree: DIR is explicit
    assert run(["audit", "checkout", ".."], capsys)[0] == 0


def test_created_everywhere_or_nowhere_and_invalid(
    git_repo: tuple[Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    scripted = Scripted(*git_repo)
    on = "description: Everywhere\nowner: me\nenabled: true\n"
    first = scripted.commit("Add", {"_project.yaml": PROJECT, "a.yaml": on, "b.yaml": BANNER})
    broken = scripted.commit("Break a", {"a.yaml": on.replace("true", "yes please")})
    code, out, _ = run(["audit", "a", str(scripted.flags)], capsys)
    assert code == 0
    blocks = out.split("\n\n")
    assert blocks[0] == (
        f"commit {broken.sha} (modified) a.yaml\n"
        "Author: Ada Lovelace <ada@example.com>\n"
        f"Date:   {broken.date}"
    )
    assert blocks[1] == "    Break a"
    assert blocks[2].startswith("  the file was not valid here: 3:10: ")
    assert "\n" not in blocks[2]  # only that: no changes to list
    assert blocks[-2:] == [
        "    Add",
        '  on: everywhere\n  description: (absent) -> "Everywhere"\n'
        '  enabled: (absent) -> true\n  owner: (absent) -> "me"\n',
    ]
    code, out, _ = run(["audit", "b", str(scripted.flags)], capsys)
    assert code == 0
    assert f"commit {first.sha} (created) b.yaml\n" in out
    assert "\n  on: nowhere\n" in out


def test_unknown_key_suggests_a_close_one(
    history: tuple[Scripted, list[Made]], capsys: pytest.CaptureFixture[str]
) -> None:
    scripted, _ = history
    code, out, err = run(["audit", "baner", str(scripted.flags)], capsys)
    assert (code, out) == (2, "")
    assert err == "flagc: error: no flag 'baner' in the history (did you mean 'banner'?)\n"
    code, out, err = run(["audit", "zzz", str(scripted.flags), "--format", "json"], capsys)
    assert (code, out) == (2, "")
    assert err == "flagc: error: no flag 'zzz' in the history\n"


def test_not_a_git_work_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    if inside.returncode == 0:
        pytest.skip(f"{tmp_path} is inside a git work tree")
    folder = tmp_path / "flags"
    folder.mkdir()
    (folder / "_project.yaml").write_text(PROJECT, encoding="utf-8")
    code, out, err = run(["audit", "banner", str(folder)], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"flagc: error: {folder} is not in a git work tree: there is no history to read\n"
    )
    code, _, err = run(["audit", "banner", str(tmp_path / "missing")], capsys)
    assert code == 2
    assert "is not in a git work tree" in err


def test_repository_without_commits(
    git_repo: tuple[Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, _ = git_repo
    (repo / "flags").mkdir()
    code, out, err = run(["audit", "banner", str(repo / "flags")], capsys)
    assert (code, out) == (2, "")
    assert err == "flagc: error: no flag 'banner' in the history\n"


def test_text_and_json_tell_the_same_changes(
    history: tuple[Scripted, list[Made]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every entry of the JSON is one block of the text, in the same order."""
    scripted, _ = history
    text = run(["audit", "banner", str(scripted.flags)], capsys)[1]
    entries = json.loads(
        run(["audit", "banner", str(scripted.flags), "--format", "json"], capsys)[1]
    )
    heads = [line for line in text.splitlines() if line.startswith("commit ")]
    assert [line.split()[1:3] for line in heads] == [
        [e["commit"], f"({e['change']})"] for e in entries
    ]
    assert [e["timestamp"] for e in entries] == [
        line.removeprefix("Date:   ") for line in text.splitlines() if line.startswith("Date:")
    ]
    assert [f"Author: {e['author']['name']} <{e['author']['email']}>" for e in entries] == [
        line for line in text.splitlines() if line.startswith("Author:")
    ]


BUTTON = """description: Colour of the checkout button
owner: team-growth
type: string
variants: {blue: "#1f6feb", green: "#2da44e"}
default: blue
off: blue
environments:
  production:
    applications:
      web: green
rules:
  - when: {plan: {not: [free]}}
    serve: green
  - rollout: {green: 10, blue: 90}
"""


def test_text_of_typed_values_rules_and_rollouts(
    git_repo: tuple[Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    scripted = Scripted(*git_repo)
    scripted.commit("Add the button", {"_project.yaml": PROJECT, "button.yaml": BUTTON})
    made = scripted.commit(
        "Roll green out to a quarter, and to the web everywhere",
        {
            "button.yaml": BUTTON.replace("green: 10, blue: 90", "green: 25, blue: 75").replace(
                "environments:\n  production:\n",
                "applications:\n  web: green\nenvironments:\n"
                "  staging:\n    rules: []\n  production:\n",
            )
        },
    )
    code, out, err = run(["audit", "button", str(scripted.flags)], capsys)
    assert (code, err) == (0, "")
    newest, created = out.split("\n\ncommit ")
    assert newest.startswith(f"commit {made.sha} (modified) button.yaml\n")
    assert newest.endswith(
        "    Roll green out to a quarter, and to the web everywhere\n\n"
        "  development/web: blue -> green\n"
        "  staging/web: blue -> green\n"
        "  development, production: rollout of green 10% -> 25% (moves 15% of users)\n"
        "  staging: rules removed\n"
        '  applications.web: (absent) -> "green"\n'
        "  environments.staging.rules: (absent) -> []\n"
        '  rules: [{"when": {"plan": {"not": ["free"]}}, "serve": "green"}, '
        '{"rollout": {"green": 10, "blue": 90}}] -> [{"when": {"plan": {"not": ["free"]}}, '
        '"serve": "green"}, {"rollout": {"green": 25, "blue": 75}}]'
    )
    assert created.endswith(
        "  serves blue: development, development/web, development/ios, development/android, "
        "staging, staging/web, staging/ios, staging/android, production, production/ios, "
        "production/android\n"
        "  serves green: production/web\n"
        "  development, staging, production: new rule 1 (plan not free) serves green\n"
        "  development, staging, production: new rule 2 (everyone) rolls out green 10%, blue 90%\n"
        '  default: (absent) -> "blue"\n'
        '  description: (absent) -> "Colour of the checkout button"\n'
        '  environments.production.applications.web: (absent) -> "green"\n'
        '  off: (absent) -> "blue"\n'
        '  owner: (absent) -> "team-growth"\n'
        '  rules: (absent) -> [{"when": {"plan": {"not": ["free"]}}, "serve": "green"}, '
        '{"rollout": {"green": 10, "blue": 90}}]\n'
        '  type: (absent) -> "string"\n'
        '  variants.blue: (absent) -> "#1f6feb"\n'
        '  variants.green: (absent) -> "#2da44e"\n'
    )
