"""The reason policy: which commit messages are too thin, and `flagc check --reasons` over
real git repositories (merges, deletions, shallow clones, bad ranges)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.cli import main
from compiler.commands import UsageError
from compiler.commands.check import split_range
from compiler.git_log import Change, Commit
from compiler.pipeline import compile_tree
from compiler.reasons import changed_files, check_reasons, deny_form, thin
from core.model import DEFAULT_DENY, ReasonPolicy
from tests.conftest import PROJECT, Git, write_tree

DEFAULT = ReasonPolicy()
DENIED = frozenset(deny_form(word) for word in DEFAULT_DENY)
FIX = "reword it (git commit --amend, or git rebase -i) to say why the flag changes"

# message -> what is wrong with it under the default policy (None: it gives a reason)
MESSAGES: list[tuple[str, str | None]] = [
    ("Turn the new checkout on for web in staging", None),
    ("0123456789", None),  # exactly the minimum
    ("012345678", 'the subject "012345678" has 9 characters'),
    ("fix typo", 'the subject "fix typo" has 8 characters'),
    ("Fix the banner colour in production", None),  # starts with a denied word: fine
    ("fix: turn off the promo banner", None),
    ("wip", 'the subject "wip" is on the deny list'),
    ("WIP", 'the subject "WIP" is on the deny list'),
    ("Wip.", 'the subject "Wip." is on the deny list'),
    ("wip!!!", 'the subject "wip!!!" is on the deny list'),
    ("fix:", 'the subject "fix:" is on the deny list'),
    ("Updated ...", 'the subject "Updated ..." is on the deny list'),
    ("  toggle  ", 'the subject "toggle" is on the deny list'),
    ("FLAGS?!", 'the subject "FLAGS?!" is on the deny list'),
    ("...", 'the subject "..." is on the deny list'),
    (".", 'the subject "." is on the deny list'),
    ("!", "the message has no letter or digit"),  # only punctuation: as good as empty
    # Judged as it reads: invisible format characters (Cf) do not count, and a subject
    # without a letter or digit is as good as blank.
    ("wip" + "\u200b" * 8, 'the subject "wip" is on the deny list'),
    ("\u2060wip\ufeff", 'the subject "wip" is on the deny list'),
    ("\u200b" * 12, "the message is empty"),
    ("\u200b\n\u200d\n", "the message is empty"),
    ("..........", "the message has no letter or digit"),
    ("🚀" * 10, "the message has no letter or digit"),
    ("-- -- -- --\n\nThe body says why", 'the subject "-- -- -- --" has no letter or digit'),
    ("fix\u200b\u200b\u200b\u200b typo", 'the subject "fix typo" has 8 characters'),
    ("\u202eTurn the banner off in production", None),
    (
        "wip\n\nA long body that explains everything in great detail",
        ('the subject "wip" is on the deny list'),
    ),
    ("wip\r\nthe body", 'the subject "wip" is on the deny list'),
    ("Switch payments to the new PSP\n\nwip", None),  # only the subject counts
    ("Long enough subject line\n", None),
    ("", "the message is empty"),
    ("   \n\n \t", "the message is empty"),
    ("\n\nOnly a body, which explains a great deal", "the subject line (the first line) is blank"),
    ("wip 🚀", 'the subject "wip 🚀" has 5 characters'),
    ("wip。", 'the subject "wip。" is on the deny list'),  # ideographic full stop
    ("wip…", 'the subject "wip…" is on the deny list'),
    ("修正", 'the subject "修正" has 2 characters'),
    ("在所有环境中为网页开启新结账", None),  # 14 characters
    ("é" * 9 + "x", None),  # 10 characters, precomposed
    ("e\u0301" * 9 + "x", None),  # the same, with combining accents: still 10 after NFC
    ("e\u0301" * 9, f'the subject "{"é" * 9}" has 9 characters'),  # 18 code points typed
    ('say "hi"', 'the subject "say \\"hi\\"" has 8 characters'),  # quoted as JSON
    ("tab\there", 'the subject "tab\\there" has 8 characters'),
]


@pytest.mark.parametrize(("message", "problem"), MESSAGES)
def test_thin_messages_under_the_default_policy(message: str, problem: str | None) -> None:
    assert thin(message, DEFAULT.min_length, DENIED) == problem


# Text that reads as nothing: invisible format characters, spaces, punctuation and symbols.
_WORDLESS = st.text(
    st.characters(categories=("Cf", "Zs", "Po", "Pd", "Ps", "Pe", "Sm", "So", "Sk")), max_size=40
)


@given(subject=_WORDLESS, body=_WORDLESS, min_length=st.integers(0, 200))
def test_a_message_without_a_letter_or_digit_is_always_thin(
    subject: str, body: str, min_length: int
) -> None:
    message = f"{subject}\n\n{body}" if body else subject
    assert thin(message, min_length, DENIED) is not None


@given(invisible=st.text(st.characters(categories=("Cf",)), min_size=1, max_size=20))
def test_invisible_characters_change_nothing(invisible: str) -> None:
    for message in ("fix typo", "wip", "Turn the banner off in production"):
        hidden = invisible + invisible.join(message) + invisible
        assert thin(hidden, 10, DENIED) == thin(message, 10, DENIED)


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("WIP...", "wip"),
        ("Wip !", "wip"),
        ("Straße", "strasse"),  # case folded, not just lowered
        ("...", "..."),
        ("?!", "?!"),
        ("  ", ""),
        ("fix: x", "fix: x"),  # inner punctuation stays
        ("Cafe\u0301.", "café"),
    ],
)
def test_deny_form(text: str, form: str) -> None:
    assert deny_form(text) == form


def test_a_custom_policy_replaces_both_settings() -> None:
    denied = frozenset(deny_form(word) for word in ["NOPE", "Straße", "..."])
    assert thin("wip", 0, denied) is None  # wip is only on the default list
    assert thin("nope!", 0, denied) == 'the subject "nope!" is on the deny list'
    assert thin("STRASSE", 0, denied) == 'the subject "STRASSE" is on the deny list'
    assert thin("x", 0, denied) is None
    assert thin("x", 1, denied) is None
    assert thin("", 0, denied) == "the message is empty"  # whatever the policy
    assert thin("\n\nbody", 0, denied) is None  # no minimum: a blank subject is allowed
    assert thin("--\n\nbody", 0, denied) is None  # and so is one as good as blank
    assert thin("?!", 0, denied) == "the message has no letter or digit"  # whatever the policy
    long_enough = "a" * 200
    assert (
        thin(long_enough[:-1], 200, frozenset()) == f'the subject "{"a" * 59}…" has 199 characters'
    )
    assert thin(long_enough, 200, frozenset()) is None


# check_reasons over hand-made commits


def commit(message: str, *changes: Change, sha: str = "1a2b3c4d" * 5) -> Commit:
    return Commit(
        sha, (), "A", "a@x", "2026-01-02T03:04:05+01:00", "A", "a@x", "", message, changes
    )


def added(path: str) -> Change:
    return Change("A", None, path, None, "b" * 40)


def deleted(path: str) -> Change:
    return Change("D", path, None, "b" * 40, None)


def moved(old: str, new: str) -> Change:
    return Change("R", old, new, "b" * 40, "c" * 40)


def test_the_example_message() -> None:
    found = check_reasons([commit("wip", added("checkout/new-checkout.yaml"))], DEFAULT, "flags")
    assert [(d.file, d.line, d.column, str(d.severity), d.code) for d in found] == [
        ("flags/checkout/new-checkout.yaml", 1, 1, "error", "missing-reason")
    ]
    assert found[0].message == (
        'commit 1a2b3c4 "wip" changes flags/checkout/new-checkout.yaml but its message is too '
        f'thin: the subject "wip" is on the deny list; {FIX}, in at least 10 characters'
    )


@pytest.mark.parametrize(
    ("changes", "file", "changed"),
    [
        ([deleted("old.yaml")], "flags/old.yaml", "flags/old.yaml"),  # the deleted path
        ([moved("a/x.yaml", "b/x.yaml")], "flags/b/x.yaml", "flags/b/x.yaml"),  # the new one
        (
            [deleted("a/x.yaml"), added("b/y.yml")],
            "flags/a/x.yaml",
            "flags/a/x.yaml and 1 more file",
        ),
        ([added("_project.yaml")], "flags/_project.yaml", "flags/_project.yaml"),
        (  # a flag file before the project, whatever git's order
            [added("_project.yaml"), added("z.yaml"), added("a/README.md"), added("y.yaml")],
            "flags/z.yaml",
            "flags/z.yaml and 2 more files",
        ),
    ],
)
def test_the_diagnostic_is_at_the_first_flag_file(
    changes: list[Change], file: str, changed: str
) -> None:
    [found] = check_reasons([commit("tmp", *changes)], DEFAULT, "flags")
    assert found.file == file
    assert f'"tmp" changes {changed} but' in found.message


@pytest.mark.parametrize(
    "changes",
    [
        [],  # a merge that changed nothing against its first parent
        [added("README.md")],
        [added("_defaults.yaml")],  # `_*` files other than the project are not read
        [added(".hidden/x.yaml")],
        [added("notes/.x.yaml")],
        [deleted("x.json")],
    ],
)
def test_commits_that_change_no_compiled_file_are_ignored(changes: list[Change]) -> None:
    assert check_reasons([commit("wip", *changes)], DEFAULT, "flags") == []


def test_changed_files_keeps_git_order_but_puts_the_project_last() -> None:
    changes = [added("_project.yaml"), added("b.yaml"), deleted("a.yaml"), added("c.txt")]
    assert changed_files(changes) == ["b.yaml", "a.yaml", "_project.yaml"]


@pytest.mark.parametrize(
    ("root", "file"),
    [("flags", "flags/x.yaml"), ("config/flags/", "config/flags/x.yaml"), (".", "x.yaml")],
)
def test_paths_are_joined_like_the_loader_does(root: str, file: str) -> None:
    [found] = check_reasons([commit("", added("x.yaml"))], DEFAULT, root)
    assert found.file == file
    assert f'"" changes {file} but its message is too thin: the message is empty;' in found.message


def test_the_minimum_is_worded_for_the_policy() -> None:
    def message(policy: ReasonPolicy) -> str:
        return check_reasons([commit("", added("x.yaml"))], policy, "f")[0].message

    assert message(ReasonPolicy(min_length=1)).endswith(f"{FIX}, in at least 1 character")
    assert message(ReasonPolicy(min_length=0)).endswith(FIX)


def test_one_diagnostic_per_thin_commit_in_order() -> None:
    commits = [
        commit("wip", added("a.yaml"), sha="1" * 40),
        commit("Turn a on everywhere for the launch", added("a.yaml"), sha="2" * 40),
        commit("tmp", added("README.md"), sha="3" * 40),
        commit("asdf", added("a.yaml"), sha="4" * 40),
    ]
    found = check_reasons(commits, DEFAULT, "flags")
    assert [d.message.split(" ")[1] for d in found] == ["1111111", "4444444"]


# The policy from _project.yaml


@pytest.mark.parametrize(
    ("project", "policy"),
    [
        (PROJECT, ReasonPolicy()),
        (PROJECT + "reasons: {}\n", ReasonPolicy()),
        (PROJECT + "reasons:\n  min_length: 15\n", ReasonPolicy(min_length=15)),
        (PROJECT + "reasons:\n  deny: [nope]\n", ReasonPolicy(deny=["nope"])),
        (
            "\ufeff" + PROJECT + "reasons:\n  min_length: 0\n  deny: []\n",
            ReasonPolicy(min_length=0, deny=[]),
        ),
        # invalid projects: the defaults (the check reports the project itself)
        (PROJECT + "reasons:\n  min_length: 500\n", ReasonPolicy()),
        ("environments: []\napplications: []\nreasons: {min_length: 3}\n", ReasonPolicy()),
        ("reasons: {min_length: 3\n", ReasonPolicy()),
        # a duplicate key is an error of its own; the first value is the one read
        (PROJECT + "reasons: {min_length: 3, min_length: 4}\n", ReasonPolicy(min_length=3)),
        (None, ReasonPolicy()),
    ],
)
def test_project_policy(tmp_path: Path, project: str | None, policy: ReasonPolicy) -> None:
    if project is not None:
        write_tree(tmp_path, {"_project.yaml": project})
    assert project_policy(tmp_path) == policy


def test_project_policy_of_an_unreadable_project(tmp_path: Path) -> None:
    (tmp_path / "_project.yaml").write_bytes(b"environments: [\xff]\napplications: []\n")
    assert project_policy(tmp_path) == ReasonPolicy()
    (tmp_path / "_project.yaml").write_text(PROJECT + "#" * 70_000 + "\n", encoding="utf-8")
    assert project_policy(tmp_path) == ReasonPolicy()


def project_policy(folder: Path) -> ReasonPolicy:
    """The policy `flagc check --reasons` applies: the compiled project's, else defaults."""
    project = compile_tree(folder).project
    return project.reasons if project is not None else ReasonPolicy()


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("main..HEAD", ("main", "HEAD")),
        ("main...HEAD", ("main", "HEAD")),
        ("origin/main", ("origin/main", "HEAD")),
        ("main..", ("main", "HEAD")),
        ("..topic", ("HEAD", "topic")),
        ("v1.2..v1.3", ("v1.2", "v1.3")),
        ("a...b", ("a", "b")),
    ],
)
def test_split_range(text: str, pair: tuple[str, str]) -> None:
    assert split_range(text) == pair


@pytest.mark.parametrize("text", ["", " ", "..", "..."])
def test_split_range_refuses_no_range(text: str) -> None:
    with pytest.raises(UsageError, match=r"name a range such as origin/main\.\.HEAD"):
        split_range(text)


# End to end: flagc check --reasons over a real repository

FLAG = "description: {0}\nowner: team\nenabled: {1}\n"


class History:
    """Commits with scripted messages in a real repository, a minute apart (so that git's
    order is the order they were made in)."""

    def __init__(self, repo: Path, git: Git) -> None:
        self.repo, self.git, self.minute = repo, git, 0

    def commit(self, message: str, files: dict[str, str | None]) -> str:
        for relative, content in files.items():
            if content is None:
                self.git("rm", "--quiet", relative)
            else:
                write_tree(self.repo, {relative: content})
        self.git("add", "--all")
        self.git(
            "commit", "--quiet", "--allow-empty-message", "--message", message, env=self._date()
        )
        return self.sha("HEAD")

    def merge(self, branch: str, message: str) -> str:
        self.git("merge", "--quiet", "--no-ff", "--message", message, branch, env=self._date())
        return self.sha("HEAD")

    def sha(self, revision: str) -> str:
        return self.git("rev-parse", revision).strip()

    def _date(self) -> dict[str, str]:
        self.minute += 1
        date = f"2026-01-02T03:{self.minute:02d}:00+01:00"
        return {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}


@pytest.fixture
def history(git_repo: tuple[Path, Git], monkeypatch: pytest.MonkeyPatch) -> History:
    """A repository with flags/ and the base commit tagged `base`; the current folder is
    the repository's, so that diagnostics name flags/..."""
    repo, git = git_repo
    monkeypatch.chdir(repo)
    made = History(repo, git)
    made.commit(
        "Add the project and the first flags of the checkout team",
        {
            "flags/_project.yaml": PROJECT,
            "flags/checkout/new-checkout.yaml": FLAG.format("New checkout", "false"),
            "flags/growth/banner.yaml": FLAG.format("Banner", "false"),
            "README.md": "# shop\n",
        },
    )
    git("tag", "base")
    return made


@pytest.fixture
def scripted(history: History) -> dict[str, str]:
    """Thin and good commits after `base`, on main and on a merged branch; returns their
    SHAs by name."""
    shas = {}
    shas["readme"] = history.commit("wip", {"README.md": "# shop, now with words\n"})
    shas["wip"] = history.commit(
        "WIP.", {"flags/checkout/new-checkout.yaml": FLAG.format("New checkout", "true")}
    )
    shas["good"] = history.commit(
        "Turn the banner on for the spring campaign\n\nAsked for by growth.",
        {"flags/growth/banner.yaml": FLAG.format("Banner", "true")},
    )
    history.git("checkout", "--quiet", "-b", "topic")
    shas["fix"] = history.commit(
        "fix", {"flags/growth/banner.yaml": FLAG.format("Spring banner", "true")}
    )
    history.git("checkout", "--quiet", "main")
    shas["payments"] = history.commit(
        "Add the PSP migration flag, off until the contract is signed",
        {"flags/payments/psp.yaml": FLAG.format("PSP migration", "false")},
    )
    shas["merge"] = history.merge("topic", "Merge")  # both sides changed flags
    shas["rm"] = history.commit("rm", {"flags/checkout/new-checkout.yaml": None})
    return shas


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def expected(shas: dict[str, str]) -> list[tuple[str, str]]:
    """(file, message) of every diagnostic the scripted history gives, in report order."""
    at_least = f"{FIX}, in at least 10 characters"

    def message(name: str, subject: str, changes: str, problem: str) -> str:
        return (
            f'commit {shas[name][:7]} "{subject}" changes {changes} but its message is too '
            f"thin: {problem}; {at_least}"
        )

    checkout, banner = "flags/checkout/new-checkout.yaml", "flags/growth/banner.yaml"
    return [
        (checkout, message("wip", "WIP.", checkout, 'the subject "WIP." is on the deny list')),
        (checkout, message("rm", "rm", checkout, 'the subject "rm" has 2 characters')),
        (banner, message("fix", "fix", banner, 'the subject "fix" is on the deny list')),
        (banner, message("merge", "Merge", banner, 'the subject "Merge" has 5 characters')),
    ]


def test_check_reasons_text(scripted: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["check", "flags", "--reasons", "base..HEAD"], capsys)
    assert code == 1
    assert out == "".join(
        f"{file}:1:1: error[missing-reason]: {message}\n" for file, message in expected(scripted)
    )
    # readme (outside flags/) is not read; good, fix, payments, merge, wip and rm are
    assert err == "flagc: 2 flags and 6 commits checked: 4 errors, 0 warnings\n"


def test_check_reasons_github(scripted: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["check", "flags", "--reasons", "base..HEAD", "--format", "github"], capsys)
    assert code == 1
    assert out == "".join(
        f"::error file={file},line=1,col=1,title=missing-reason::{message}\n"
        for file, message in expected(scripted)
    )


def test_check_reasons_json(scripted: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["check", "flags", "--reasons", "base", "--format", "json"], capsys)
    assert code == 1
    assert [(row["file"], row["message"]) for row in json.loads(out)] == expected(scripted)


@pytest.mark.parametrize("revisions", ["base..HEAD", "base...HEAD", "base", "base..", "base..main"])
def test_range_spellings_agree(
    revisions: str, scripted: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["check", "flags", "--reasons", revisions], capsys)
    assert code == 1
    assert len(out.splitlines()) == 4


def test_three_dots_leave_out_the_base_branch(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pull request's range: commits on main since the branch parted are not its own."""
    history.git("checkout", "--quiet", "-b", "topic")
    history.commit(
        "Hide the banner on iOS until the fix ships",
        {"flags/growth/banner.yaml": FLAG.format("B", "false")},
    )
    history.git("checkout", "--quiet", "main")
    history.commit("wip", {"flags/checkout/new-checkout.yaml": FLAG.format("C", "true")})
    history.git("checkout", "--quiet", "topic")
    for revisions in ("main...topic", "main..topic", "main"):
        assert run(["check", "flags", "--reasons", revisions], capsys)[:2] == (0, "")
    code, out, _ = run(["check", "flags", "--reasons", "topic..main"], capsys)
    assert code == 1
    assert '"wip"' in out


def test_good_commits_exit_0(scripted: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["check", "flags", "--reasons", f"{scripted['wip']}..{scripted['good']}"], capsys
    )
    assert (code, out) == (0, "")
    assert err == "flagc: 2 flags and 1 commit checked: 0 errors, 0 warnings\n"
    code, out, err = run(["check", "flags", "--reasons", "HEAD..HEAD"], capsys)
    assert (code, out) == (0, "")
    assert "and 0 commits checked" in err


def test_an_absolute_folder_names_files_as_given(
    scripted: dict[str, str], history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = str(history.repo / "flags")
    code, out, _ = run(["check", folder, "--reasons", "base"], capsys)
    assert code == 1
    first = f"{folder}/checkout/new-checkout.yaml:1:1: error[missing-reason]: commit "
    assert out.splitlines()[0].startswith(f"{first}{scripted['wip'][:7]} ")
    assert f"changes {folder}/checkout/new-checkout.yaml but" in out


def test_the_project_policy_applies(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    history.commit(
        "Stricter reasons",  # 16 characters: enough under the policy it sets
        {"flags/_project.yaml": PROJECT + "reasons:\n  min_length: 16\n  deny: [nope]\n"},
    )
    history.commit("wip", {"flags/growth/banner.yaml": FLAG.format("B", "true")})  # short
    history.commit("nope.", {"flags/growth/banner.yaml": FLAG.format("C", "true")})
    history.commit("a wip commit, ok", {"flags/growth/banner.yaml": FLAG.format("D", "true")})
    code, out, _ = run(["check", "flags", "--reasons", "base"], capsys)
    assert code == 1
    problems = [line.split(" is too thin: ")[1].split(";")[0] for line in out.splitlines()]
    assert problems == [
        'the subject "wip" has 3 characters',
        'the subject "nope." is on the deny list',
    ]
    assert out.count("in at least 16 characters") == 2


def test_an_invalid_project_uses_the_defaults_and_is_reported(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    history.commit(
        "Ask for long reasons", {"flags/_project.yaml": PROJECT + "reasons: {min_length: 500}\n"}
    )
    code, out, _ = run(["check", "flags", "--reasons", "base"], capsys)
    assert code == 1
    assert out == (
        "flags/_project.yaml:3:23: error[project-config]: reasons.min_length: 500 is too "
        "large; use a number of at most 200\n"
    )  # 20 characters pass the default minimum of 10


def test_the_normal_checks_still_run(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    sha = history.commit("tmp", {"flags/growth/banner.yaml": "description: B\nowner: team\n"})
    code, out, _ = run(["check", "flags", "--reasons", "base"], capsys)
    assert code == 1
    assert out.splitlines() == [
        "flags/growth/banner.yaml:1:1: error[schema]: missing required field 'enabled'; "
        "add `enabled: ...`",
        f'flags/growth/banner.yaml:1:1: error[missing-reason]: commit {sha[:7]} "tmp" changes '
        f'flags/growth/banner.yaml but its message is too thin: the subject "tmp" is on the '
        f"deny list; {FIX}, in at least 10 characters",
    ]


def test_a_flags_folder_that_is_the_repository(
    git_repo: tuple[Path, Git], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, git = git_repo
    made = History(repo, git)
    made.commit("Add the project file", {"_project.yaml": PROJECT})
    sha = made.commit("misc", {"a.yaml": FLAG.format("A", "true"), "notes.txt": "x\n"})
    made.commit("typo", {"notes.txt": "y\n"})  # not a flag change
    code, out, _ = run(["check", str(repo), "--reasons", "HEAD~2"], capsys)
    assert code == 1
    assert out == (
        f'{repo}/a.yaml:1:1: error[missing-reason]: commit {sha[:7]} "misc" changes '
        f'{repo}/a.yaml but its message is too thin: the subject "misc" is on the deny list; '
        f"{FIX}, in at least 10 characters\n"
    )


# Usage errors: exit 2, nothing on stdout


def test_not_a_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_tree(tmp_path / "flags", {"_project.yaml": PROJECT})
    code, out, err = run(["check", str(folder), "--reasons", "main..HEAD"], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"flagc: error: --reasons reads git history, but {folder} is not in a git work tree\n"
    )
    assert run(["check", str(folder)], capsys)[0] == 0  # without --reasons, git is not needed


@pytest.mark.parametrize(
    ("revisions", "unknown"),
    [
        ("nope..HEAD", "nope"),
        ("base..nope", "nope"),
        ("nope", "nope"),
        ("HEAD~50", "HEAD~50"),
        ("HEAD@{50}", "HEAD@{50}"),
        ("--output=x", "--output=x"),  # never reaches git as an option
        ("base^{tree}", "base^{tree}"),  # not a commit
    ],
)
def test_unknown_revision(
    revisions: str, unknown: str, history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["check", "flags", f"--reasons={revisions}"], capsys)
    assert (code, out) == (2, "")
    assert err == (
        f"flagc: error: --reasons: unknown revision {unknown!r}; name a commit, branch or tag "
        "of this repository (a remote branch must be fetched first)\n"
    )
    assert not (history.repo / "x").exists()


def test_no_range(history: History, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["check", "flags", "--reasons="], capsys)
    assert (code, out) == (2, "")
    assert "name a range such as origin/main..HEAD" in err


def test_missing_folder_is_named_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["check", str(tmp_path / "nowhere"), "--reasons", "HEAD"], capsys)
    assert code == 2
    assert "is not a folder" in err


def test_shallow_clone_without_the_base(
    scripted: dict[str, str],
    history: History,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clone = tmp_path / "clone"
    history.git("clone", "--quiet", "--depth", "1", f"file://{history.repo}", str(clone))
    monkeypatch.chdir(clone)
    base = history.sha("base")
    for revisions in (f"{base}..HEAD", "HEAD~3"):
        code, out, err = run(["check", "flags", "--reasons", revisions], capsys)
        assert (code, out) == (2, "")
        assert "is not in this shallow clone" in err
        assert "fetch-depth: 0" in err
    code, out, _ = run(["check", "flags", "--reasons", "HEAD"], capsys)  # nothing to read
    assert (code, out) == (0, "")
