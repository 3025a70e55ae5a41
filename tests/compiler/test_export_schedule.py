"""`flagc export` of a build with schedules: the documents are the build as it stands at the
export's moment (now, or `--at`), and the manifest's `valid_until` is the next step. Real git
repositories, real builds, the real clock where no `--at` is given."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from compiler.cli import main
from compiler.commands.export import MANIFEST
from core.schedule import moment, utc_text
from tests.compiler.helpers import run
from tests.conftest import PROJECT, Git, write_tree

LAUNCH = """description: The new checkout
owner: team-checkout
enabled: false
environments:
  production:
    enabled: false
    schedule:
      - at: {past}
        enabled: true
      - at: {future}
        applications:
          ios: false
"""
STEADY = "description: Always on\nowner: team-a\nenabled: true\n"
PAST, FUTURE = "2027-01-11T09:00:00+01:00", "2027-03-01T00:00:00Z"  # 08:00 UTC, then March
BETWEEN = "2027-02-01T00:00:00Z"


def build(git_repo: tuple[Path, Git], files: dict[str, str]) -> Path:
    """`files` committed in the repository's flags folder and built; OUT."""
    root, git = git_repo
    folder = write_tree(root / "flags", {"_project.yaml": PROJECT, **files})
    git("add", "--all")
    git("commit", "--quiet", "--message", "Launch the new checkout on a schedule")
    out = root / "build"
    assert main(["build", str(folder), "-o", str(out)]) == 0
    return out


def scheduled(git_repo: tuple[Path, Git], past: str = PAST, future: str = FUTURE) -> Path:
    """A build of a flag with a step at `past` and one at `future`, and a flag without."""
    launch = LAUNCH.format(past=past, future=future)
    return build(git_repo, {"launch.yaml": launch, "steady.yaml": STEADY})


def export(
    out: Path, site: Path, capsys: pytest.CaptureFixture[str], *options: str
) -> tuple[int, str]:
    code, _, err = run(["export", str(site), "--from", str(out), *options], capsys)
    return code, err


def read(site: Path, relative: str) -> Any:
    return orjson.loads((site / relative).read_bytes())


def flags_of(site: Path, application: str | None = None) -> dict[str, bool]:
    where = "" if application is None else f"/applications/{application}"
    found: dict[str, bool] = read(site, f"api/v1/environments/production{where}/flags.json")[
        "flags"
    ]
    return found


def files(site: Path) -> dict[str, bytes]:
    return {
        path.relative_to(site).as_posix(): path.read_bytes()
        for path in sorted(site.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize(
    ("at", "launch", "ios", "until"),
    [
        pytest.param("2027-01-11T07:59:59Z", False, False, "2027-01-11T08:00:00Z", id="before"),
        pytest.param("2027-01-11T08:00:00Z", True, True, "2027-03-01T00:00:00Z", id="at-the-step"),
        pytest.param(BETWEEN, True, True, "2027-03-01T00:00:00Z", id="between"),
        pytest.param("2027-03-01T01:00:00+01:00", True, False, None, id="at-the-last"),
        pytest.param("2030-01-01T00:00:00Z", True, False, None, id="after"),
    ],
)
def test_the_site_is_the_build_at_its_moment_and_valid_until_the_next_step(
    git_repo: tuple[Path, Git],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    at: str,
    launch: bool,
    ios: bool,
    until: str | None,
) -> None:
    """A step in the export's past is applied, one in its future is not: it is when the
    site must be exported again."""
    out = scheduled(git_repo)
    site = tmp_path / "site"
    code, err = export(out, site, capsys, "--at", at)
    assert code == 0
    assert read(site, MANIFEST)["valid_until"] == until
    assert flags_of(site) == {"launch": launch, "steady": True}
    assert flags_of(site, "ios")["launch"] is ios
    assert flags_of(site, "web")["launch"] is launch
    valid = "" if until is None else f" (valid until {until}, its next step)"
    assert err.endswith(f"-> {site}/{valid}\n")
    # flagd's file carries the steps itself: the same bytes at every moment.
    flagd = (out / "flagd" / "production.json").read_bytes()
    assert (site / "api/v1/environments/production/flagd.json").read_bytes() == flagd


def test_an_export_is_its_build_and_moment_alone(
    git_repo: tuple[Path, Git], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Byte for byte: the same build and --at into two folders, and two moments between
    the same steps (the manifest does not record when the export ran)."""
    out = scheduled(git_repo)
    sites = [tmp_path / name for name in ("one", "two", "three")]
    moments = [BETWEEN, BETWEEN, "2027-02-28T23:59:59Z"]
    for site, at in zip(sites, moments, strict=True):
        assert export(out, site, capsys, "--at", at)[0] == 0
    assert files(sites[0]) == files(sites[1]) == files(sites[2])
    assert export(out, sites[2], capsys, "--at", FUTURE)[0] == 0  # a step passed: new bytes
    assert files(sites[2]) != files(sites[0])


def test_without_at_the_site_is_the_build_now(
    git_repo: tuple[Path, Git], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real clock: a step a day ago is applied, the one a day ahead is the limit."""
    now = int(time.time())
    past, future = utc_text(now - 86400), utc_text(now + 86400)
    out = scheduled(git_repo, past, future)
    site = tmp_path / "site"
    assert export(out, site, capsys)[0] == 0
    assert read(site, MANIFEST)["valid_until"] == future
    assert flags_of(site) == {"launch": True, "steady": True}
    assert flags_of(site, "ios")["launch"] is True
    assert moment(future) > time.time()


def test_a_build_without_steps_is_valid_until_the_next_build(
    git_repo: tuple[Path, Git], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = build(git_repo, {"steady.yaml": STEADY})
    sites = [tmp_path / "now", tmp_path / "then"]
    assert export(out, sites[0], capsys)[0] == 0
    assert export(out, sites[1], capsys, "--at", BETWEEN)[0] == 0
    assert read(sites[0], MANIFEST)["valid_until"] is None
    assert files(sites[0]) == files(sites[1])


@pytest.mark.parametrize(
    ("at", "why"),
    [
        ("2027-02-01T00:00:00", "'2027-02-01T00:00:00' is not a moment"),
        ("2027-02-30T00:00:00Z", "'2027-02-30T00:00:00Z' is not a moment"),
        ("2027-02-01T24:00:00Z", "'2027-02-01T24:00:00Z' is not a moment"),
        ("3000-01-01T00:00:00Z", "'3000-01-01T00:00:00Z' is not a moment"),
        ("now", "'now' is not a moment"),
        ("2027-02-01", "'2027-02-01' is not a moment"),
        ("2027-02-01T00:00:00Z\n::error::x", "'2027-02-01T00:00:00Z\\n::error::x' is not a moment"),
        ("", "'' is not a moment"),
    ],
)
def test_a_moment_that_is_not_one_is_refused(
    git_repo: tuple[Path, Git],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    at: str,
    why: str,
) -> None:
    out = scheduled(git_repo)
    site = tmp_path / "site"
    code, err = export(out, site, capsys, "--at", at)
    assert code == 2
    assert err.splitlines()[-1] == (
        f"flagc export: error: argument --at: {why}: write it as 2027-01-11T09:00:00Z "
        "(RFC 3339, with its zone offset), between the years 1970 and 2999"
    )
    assert not site.exists()
