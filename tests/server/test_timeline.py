"""A scheduled flag's timeline (`GET /api/v1/flags/{key}`, the flag page) and the steps that
took effect beside the commits that scheduled them (`GET /api/v1/flags/{key}/audit`, the
history on the flag page and `/audit`), over real builds of real git repositories served
at a fixed moment, and `core.audit_bodies.steps_taken` on its own."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from compiler.cli import main as flagc
from core.audit_bodies import steps_taken
from core.schedule import moment
from server.app import create_app
from server.auth import AccessControl, ApiKey, KeyRing
from server.store import Store
from tests.conftest import Git, git_in, new_repository, write_tree
from tests.server.conftest import PROJECT
from tests.server.contract import conforms
from tests.server.helpers import HOSTILE

NOW = moment("2026-06-01T00:00:00Z")  # the moment served: steps in 2020 past, 2098 ahead
SALE = """\
description: The sale
owner: team-growth
enabled: false
environments:
  staging: true
  production:
    enabled: false
    schedule:
      - at: 2020-01-01T09:00:00+01:00
        enabled: true
        applications:
          ios: false
      - ramp:
          from: 2020-02-01T00:00:00Z
          to: 2020-02-01T02:00:00Z
          variant: "on"
"""
QUOTED = HOSTILE.replace('"', '\\"')
LATER_IN_PRODUCTION = f"""\
      - at: 2020-03-01T00:00:00Z
        rules:
          - when: {{country: ["{QUOTED}"]}}
            serve: "off"
      - at: 2098-01-01T00:00:00Z
        enabled: false
"""
DEVELOPMENT = """\
schedule:
  - at: 2020-04-01T00:00:00Z
    enabled: true
  - at: 2099-01-01T00:00:00Z
    enabled: false
"""
THEME = """\
description: The theme
owner: team-design
type: string
variants: {blue: "#00f", green: "#0f0"}
default: blue
environments:
  staging:
    default: blue
    schedule:
      - at: 2097-01-01T00:00:00Z
        default: green
"""
PLAIN = "description: Plain\nowner: team-growth\nenabled: true\n"


def commit(git: Git, message: str, date: str) -> str:
    when = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    git("add", "--all")
    git("commit", "--quiet", "--message", message, env=when)
    return git("rev-parse", "HEAD").strip()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A repository where the sale is created with two past steps (A), gets a past and a
    future step in production (B) and a top-level schedule for development (C), then only
    its description changes (D); built once for the module."""
    root = tmp_path_factory.mktemp("timeline")
    repo, git = new_repository(root)
    flags = repo / "flags"
    files = {"_project.yaml": PROJECT, "sale.yaml": SALE, "theme.yaml": THEME, "plain.yaml": PLAIN}
    write_tree(flags, files)
    shas = {"A": commit(git, "Add the sale, on in production from January", "2019-06-01T10:00:00Z")}
    write_tree(flags, {"sale.yaml": SALE + LATER_IN_PRODUCTION})
    shas["B"] = commit(git, "Sale: no country rule, and off again in 2098", "2019-07-01T10:00:00Z")
    write_tree(flags, {"sale.yaml": SALE + LATER_IN_PRODUCTION + DEVELOPMENT})
    shas["C"] = commit(git, "Sale: development from April", "2019-08-01T10:00:00Z")
    reworded = SALE.replace("The sale", "The spring sale") + LATER_IN_PRODUCTION + DEVELOPMENT
    write_tree(flags, {"sale.yaml": reworded})
    shas["D"] = commit(git, "Sale: a better description", "2026-01-02T10:00:00Z")
    out = root / "out"
    assert flagc(["build", str(flags), "-o", str(out)]) == 0
    return {"out": out, "shas": shas, "repo": repo}


@pytest.fixture
def client(history: dict[str, Any]) -> falcon.testing.TestClient:
    store = Store(history["out"], clock=lambda: NOW)
    store.start()
    return falcon.testing.TestClient(create_app(store))


def summary(timeline: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each moment as (at, state, [(environment, from -> to, applications, rules?, ramp)])."""
    return [
        (
            item["at"],
            item["state"],
            [
                (
                    change["environment"],
                    f"{change['from']['variant']} -> {change['to']['variant']}",
                    {
                        name: f"{moved['from']['variant']} -> {moved['to']['variant']}"
                        for name, moved in change["applications"].items()
                    },
                    change["rules"] is not None,
                    change["ramp"],
                )
                for change in item["changes"]
            ],
        )
        for item in timeline
    ]


def ramp(share: int) -> dict[str, Any]:
    return {"variant": "on", "share": share}


IOS_STAYS_OFF = {"ios": "off -> off"}
SALE_TIMELINE = [
    ("2020-01-01T08:00:00Z", "past", [("production", "off -> on", IOS_STAYS_OFF, False, None)]),
    ("2020-02-01T00:00:00Z", "past", [("production", "on -> on", {}, True, ramp(0))]),
    ("2020-02-01T01:00:00Z", "past", [("production", "on -> on", {}, True, ramp(50))]),
    ("2020-02-01T02:00:00Z", "past", [("production", "on -> on", {}, True, ramp(100))]),
    ("2020-03-01T00:00:00Z", "past", [("production", "on -> on", {}, True, None)]),
    ("2020-04-01T00:00:00Z", "current", [("development", "off -> on", {}, False, None)]),
    ("2098-01-01T00:00:00Z", "next", [("production", "on -> off", IOS_STAYS_OFF, False, None)]),
    ("2099-01-01T00:00:00Z", "later", [("development", "on -> off", {}, False, None)]),
]  # fmt: skip


def test_a_scheduled_flag_has_its_timeline_marked_against_the_moment_served(
    client: falcon.testing.TestClient,
) -> None:
    found = client.simulate_get("/api/v1/flags/sale").json
    assert summary(found["timeline"]) == SALE_TIMELINE
    assert [step["at"] for step in found["steps"]] == [at for at, _, _ in SALE_TIMELINE]
    # the values served are those of the current moment
    assert found["resolved"]["development"]["variant"] == "on"
    assert found["resolved"]["production"]["rules"][0]["serve"] == "off"


def test_a_typed_flag_before_its_only_step_and_a_flag_without_a_schedule(
    client: falcon.testing.TestClient,
) -> None:
    theme = client.simulate_get("/api/v1/flags/theme").json
    assert summary(theme["timeline"]) == [
        ("2097-01-01T00:00:00Z", "next", [("staging", "blue -> green", {}, False, None)])
    ]
    assert theme["timeline"][0]["changes"][0]["to"] == {
        "variant": "green",
        "value": "#0f0",
        "source": "environment",
    }
    plain = client.simulate_get("/api/v1/flags/plain").json
    assert "timeline" not in plain and "steps" not in plain


PRODUCTION_MOMENTS = [
    ("2020-01-01T08:00:00Z", "past"),
    ("2020-02-01T00:00:00Z", "past"),
    ("2020-02-01T01:00:00Z", "past"),
    ("2020-02-01T02:00:00Z", "past"),
    ("2020-03-01T00:00:00Z", "current"),
    ("2098-01-01T00:00:00Z", "next"),
]


@pytest.mark.parametrize(
    ("environments", "moments"),
    [
        (["production"], PRODUCTION_MOMENTS),
        (["development"], [("2020-04-01T00:00:00Z", "current"), ("2099-01-01T00:00:00Z", "next")]),
        (["staging"], []),
        (["staging", "development", "production"], [(at, state) for at, state, _ in SALE_TIMELINE]),
    ],
)
def test_a_key_for_some_environments_sees_only_their_moments_and_steps(
    history: dict[str, Any], environments: list[str], moments: list[tuple[str, str]]
) -> None:
    store = Store(history["out"], clock=lambda: NOW)
    store.start()
    key = ApiKey("some", hashlib.sha256(b"some-secret").digest(), frozenset(environments))
    app = create_app(store, middleware=[AccessControl(KeyRing([key]))])
    found = falcon.testing.TestClient(app).simulate_get(
        "/api/v1/flags/sale", headers={"Authorization": "Bearer some-secret"}
    )
    assert found.status_code == 200
    timeline, steps = found.json["timeline"], found.json["steps"]
    assert [(item["at"], item["state"]) for item in timeline] == moments
    changed = {change["environment"] for item in timeline for change in item["changes"]}
    assert changed <= set(environments)
    assert {env for step in steps for env in step["resolved"]} <= set(environments)
    assert [step["at"] for step in steps] == [at for at, _ in moments]  # none left that names none


def test_the_states_follow_the_moment_served(history: dict[str, Any]) -> None:
    def states(at: str) -> list[str]:
        store = Store(history["out"], clock=lambda: moment(at))
        store.start()
        body = falcon.testing.TestClient(create_app(store)).simulate_get("/api/v1/flags/sale")
        return [item["state"] for item in body.json["timeline"]]

    assert states("2019-12-31T00:00:00Z") == ["next", *["later"] * 7]
    assert states("2020-02-01T01:30:00Z") == ["past", "past", "current", "next", *["later"] * 4]
    assert states("2099-06-01T00:00:00Z") == [*["past"] * 7, "current"]


# The steps that took effect, beside the commits that scheduled them ----------------------


def test_each_step_that_took_effect_names_the_commit_that_scheduled_it(
    client: falcon.testing.TestClient, history: dict[str, Any]
) -> None:
    shas = history["shas"]
    page = client.simulate_get("/api/v1/flags/sale/audit").json
    taken = [
        (item["at"], item["environments"], item["share"], item["commit"], item["attribution"])
        for item in page["took_effect"]
    ]
    assert taken == [  # newest first; D changed no step, and the 2098 and 2099 steps are ahead
        ("2020-04-01T00:00:00Z", ["development"], None, shas["C"], "added"),
        ("2020-03-01T00:00:00Z", ["production"], None, shas["B"], "added"),
        ("2020-02-01T00:00:00Z", ["production"], 100, shas["A"], "added"),
        ("2020-01-01T08:00:00Z", ["production"], None, shas["A"], "added"),
    ]
    assert page["took_effect"][3]["step"] == {
        "at": "2020-01-01T09:00:00+01:00",
        "enabled": True,
        "applications": {"ios": False},
    }
    # the same on every page and whatever the filters: it concerns steps, not entries
    for query in ("limit=1&offset=3", "actor=nobody", "since=2030-01-01"):
        other = client.simulate_get("/api/v1/flags/sale/audit", query_string=query).json
        assert other["took_effect"] == page["took_effect"], query
    flagged = client.simulate_get("/api/v1/audit", params={"flag": "sale"}).json
    assert flagged["took_effect"] == page["took_effect"]
    assert "took_effect" not in client.simulate_get("/api/v1/audit").json
    assert "took_effect" not in client.simulate_get("/api/v1/flags/plain/audit").json
    assert client.simulate_get("/api/v1/flags/theme/audit").json["took_effect"] == []


@pytest.fixture(scope="module")
def shallow(history: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same flags built from a clone of depth 1: the log holds D alone, as "created"."""
    root = tmp_path_factory.mktemp("shallow")
    git_in(root)("clone", "--quiet", "--depth", "1", f"file://{history['repo']}", "clone")
    out = root / "out"
    assert flagc(["build", str(root / "clone" / "flags"), "-o", str(out), "--allow-shallow"]) == 0
    return out


def test_a_history_cut_short_names_no_commit_it_cannot_know(
    shallow: Path, history: dict[str, Any]
) -> None:
    store = Store(shallow, clock=lambda: NOW)
    store.start()
    client = falcon.testing.TestClient(create_app(store))
    page = client.simulate_get("/api/v1/flags/sale/audit").json
    assert page["complete"] is False
    assert [item["commit"] for item in page["took_effect"]] == [None] * 4
    assert {item["attribution"] for item in page["took_effect"]} == {"none"}
    html = client.simulate_get("/flags/sale").text
    unplaced = html.split("scheduled by a commit not listed above:", 1)[1].split("</ul>", 1)[0]
    assert unplaced.count("<li>") == 4
    assert "took effect at 2020-04-01T00:00:00Z in development" in re.sub(r"<[^>]+>", "", unplaced)
    assert took_effect_under(html, history["shas"]["D"]) == []


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/flags/sale",
        "/api/v1/flags/theme",
        "/api/v1/flags/plain",
        "/api/v1/flags/sale/audit",
        "/api/v1/flags/sale/audit?limit=1",
        "/api/v1/audit?flag=sale",
    ],
)
def test_the_bodies_match_the_openapi_document(client: falcon.testing.TestClient, url: str) -> None:
    document = client.simulate_get("/openapi.json").json
    conforms(client, document, "GET", url, {}, 200)


def test_hostile_input_is_refused_as_before(client: falcon.testing.TestClient) -> None:
    for path in ("/api/v1/flags/..%2Fsale", f"/api/v1/flags/{HOSTILE}/audit"):
        result = client.simulate_get(path)
        assert result.status_code == 404 and "took_effect" not in result.text
    result = client.simulate_get("/api/v1/flags/sale/audit", params={"since": HOSTILE})
    assert result.status_code == 400


# The dashboard -----------------------------------------------------------------------------


def rows(html: str) -> list[tuple[str, str, str]]:
    """The schedule table's rows: (class, time, what changes as text)."""
    table = html.split('<table class="timeline">', 1)[1].split("</table>", 1)[0]
    found = re.findall(
        r'<tr class="(\w+)"><td><time[^>]*>([^<]+)</time></td>.*?<td>(.*?)</td></tr>', table, re.S
    )
    return [(state, at, re.sub(r"<[^>]+>", "", text)) for state, at, text in found]


def test_the_flag_page_shows_the_timeline_with_the_current_moment_highlighted(
    client: falcon.testing.TestClient,
) -> None:
    html = client.simulate_get("/flags/sale").text
    found = rows(html)
    assert [(state, at) for state, at, _ in found] == [(s, at) for at, s, _ in SALE_TIMELINE]
    assert found[0][2] == "production: off → on, production/ios: off → off"
    assert found[2][2] == "production: on → on; ramp: on 50%"
    assert found[4][2].startswith("production: on → on; rules: country in &lt;script&gt;")
    assert found[5][2] == "development: off → on"
    assert '<td class="state">now</td>' in html and '<td class="state">next</td>' in html
    assert "<h2>Schedule</h2>" not in client.simulate_get("/flags/plain").text


def took_effect_under(html: str, sha: str) -> list[str]:
    """The took-effect lines of the history entries of commit `sha`, as text."""
    history = html.split('<ol class="history">', 1)[1].split("\n</ol>", 1)[0]
    entries = [
        part for part in history.split('<li class="entry">') if f">{sha[:10]}</code>" in part
    ]
    blocks = re.findall(r'<ul class="took-effect">(.*?)</ul>', "".join(entries), re.S)
    return [
        re.sub(r"<[^>]+>", "", line) for block in blocks for line in block.split("</li>") if line
    ]


def test_the_history_shows_each_step_that_took_effect_beside_its_commit(
    client: falcon.testing.TestClient, history: dict[str, Any]
) -> None:
    shas = history["shas"]
    for page in ("/flags/sale", "/audit?flag=sale", "/audit"):
        html = client.simulate_get(page).text
        assert took_effect_under(html, shas["A"]) == [
            "ramp began at 2020-02-01T00:00:00Z in production (now 100%): on 0% → 100% until "
            "2020-02-01T02:00:00Z, every 1h",
            "took effect at 2020-01-01T08:00:00Z in production: "
            "applications: {&#34;ios&#34;:false}, enabled: true",
        ], page
        assert took_effect_under(html, shas["B"])[0].startswith(
            "took effect at 2020-03-01T00:00:00Z in production: rules: "
        )
        assert took_effect_under(html, shas["C"]) == [
            "took effect at 2020-04-01T00:00:00Z in development: enabled: true"
        ]
        assert took_effect_under(html, shas["D"]) == []
        assert "<script>document" not in html


# A step scheduled by a commit made after the step's moment ---------------------------------

LATE = """\
description: The late launch
owner: team-growth
enabled: false
environments:
  production:
    enabled: false
    schedule:
      - at: 2025-06-01T00:00:00Z
        enabled: true
      - ramp: {from: 2025-07-01T00:00:00Z, to: 2025-07-01T02:00:00Z, variant: "on"}
      - at: 2026-04-01T00:00:00Z
        applications: {ios: false}
"""
MERGED = "2026-03-05T10:00:00Z"


@pytest.fixture(scope="module")
def late(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A repository where a pull request authored before its steps' moments is merged (its
    commit made) on 2026-03-05, after the first two of them."""
    root = tmp_path_factory.mktemp("late")
    repo, git = new_repository(root)
    flags = repo / "flags"
    write_tree(flags, {"_project.yaml": PROJECT, "launch.yaml": LATE.split("    schedule:", 1)[0]})
    first = commit(git, "Add the launch, off", "2025-01-01T10:00:00Z")
    write_tree(flags, {"launch.yaml": LATE})
    git("add", "--all")
    dates = {"GIT_AUTHOR_DATE": "2025-05-01T10:00:00Z", "GIT_COMMITTER_DATE": MERGED}
    git("commit", "--quiet", "--message", "Launch: on from June", env=dates)
    out = root / "out"
    assert flagc(["build", str(flags), "-o", str(out)]) == 0
    return {"out": out, "repo": repo, "first": first, "sha": git("rev-parse", "HEAD").strip()}


LATE_WORDS = [  # newest first, by when each took effect
    "took effect at 2026-04-01T00:00:00Z in production: applications: IOS",
    f"ramp began at {MERGED} when merged (scheduled for 2025-07-01T00:00:00Z) in production"
    " (now 100%): on 0% ARROW 100% until 2025-07-01T02:00:00Z, every 1h",
    f"took effect at {MERGED} when merged (scheduled for 2025-06-01T00:00:00Z) in production:"
    " enabled: true",
]


def test_a_step_merged_after_its_moment_took_effect_when_merged(late: dict[str, Any]) -> None:
    store = Store(late["out"], clock=lambda: NOW)
    store.start()
    client = falcon.testing.TestClient(create_app(store))
    page = client.simulate_get("/api/v1/flags/launch/audit").json
    assert [
        (item["at"], item["scheduled_for"], item["commit"], item["attribution"])
        for item in page["took_effect"]
    ] == [
        ("2026-04-01T00:00:00Z", "2026-04-01T00:00:00Z", late["sha"], "added"),
        (MERGED, "2025-07-01T00:00:00Z", late["sha"], "added"),
        (MERGED, "2025-06-01T00:00:00Z", late["sha"], "added"),
    ]
    document = client.simulate_get("/openapi.json").json
    conforms(client, document, "GET", "/api/v1/flags/launch/audit", {}, 200)
    html = client.simulate_get("/flags/launch").text
    ios = "{&#34;ios&#34;:false}"
    expected = [line.replace("IOS", ios).replace("ARROW", "→") for line in LATE_WORDS]
    assert took_effect_under(html, late["sha"]) == expected
    assert took_effect_under(html, late["first"]) == []


def test_flagc_audit_says_when_a_late_step_took_effect(
    late: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert flagc(["audit", "launch", str(late["repo"] / "flags")]) == 0
    newest = re.split(r"^commit ", capsys.readouterr().out, flags=re.M)[1]
    assert newest.startswith(late["sha"])
    lines = [
        line.strip() for line in newest.splitlines() if line.startswith("  ") and " at " in line
    ]
    ios = '{"ios":false}'
    assert lines == [line.replace("IOS", ios).replace("ARROW", "->") for line in LATE_WORDS]


# steps_taken on its own: the attribution rule --------------------------------------------

STEP = {"at": "2020-01-01T00:00:00Z", "enabled": True}
OTHER = {"at": "2020-02-01T00:00:00Z", "enabled": False}
FLAG = {"schedule": [], "environments": {"production": {"enabled": False, "schedule": [STEP]}}}
WHERE = "environments.production.schedule"


def entry(sha: str, date: str, *lists: Any) -> dict[str, Any]:
    """An entry of the flag's log; with `lists`, its production schedule went from the first
    to the second."""
    fields = [{"field": WHERE, "from": lists[0], "to": lists[1]}] if lists else []
    return {
        "commit": sha * 40,
        "timestamp": f"{date}T00:00:00Z",
        "change": "modified",
        "fields": fields,
    }


REWRITTEN = {**STEP, "at": "2020-01-01T01:00:00+01:00"}  # the same moment, written otherwise


@pytest.mark.parametrize(
    ("entries", "commit", "attribution"),
    [
        pytest.param(
            [entry("c", "2021-01-01"), entry("b", "2019-06-01", None, [STEP])],
            "b", "added", id="added by b, kept since",
        ),
        pytest.param(
            [
                entry("c", "2019-09-01", [STEP], [STEP, OTHER]),
                entry("b", "2019-06-01", None, [STEP]),
            ],
            "b", "added", id="the list changed around it",
        ),
        pytest.param(
            [
                entry("d", "2019-10-01", None, [STEP]),
                entry("c", "2019-09-01", [STEP], None),
                entry("b", "2019-06-01", None, [STEP]),
            ],
            "d", "added", id="removed, then put back",
        ),
        pytest.param(
            [
                entry("c", "2019-09-01", [REWRITTEN], [STEP]),
                entry("b", "2019-06-01", None, [REWRITTEN]),
            ],
            "c", "added", id="rewritten: as it stands",
        ),
        pytest.param(
            [entry("c", "2021-01-01", [STEP], [STEP, OTHER]), entry("b", "2019-06-01")],
            "b", "last-change", id="a history cut short: the last change before its moment",
        ),
        pytest.param([entry("c", "2021-01-01")], None, "none", id="no change before its moment"),
        pytest.param([], None, "none", id="no history"),
    ],
)  # fmt: skip
def test_the_commit_that_scheduled_a_step(
    entries: list[dict[str, Any]], commit: str | None, attribution: str
) -> None:
    (found,) = steps_taken(FLAG, ["development", "production"], entries, NOW)
    assert found["commit"] == (None if commit is None else commit * 40)
    assert found["attribution"] == attribution
    assert found["environments"] == ["production"] and found["at"] == "2020-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("entries", "at"),
    [
        pytest.param(
            [{**entry("b", "2019-06-01", None, [STEP]), "committed_at": "2021-01-01T01:00+01:00"}],
            "2021-01-01T00:00:00Z", id="added, committed after the moment",
        ),
        pytest.param(
            [{**entry("b", "2019-06-01", None, [STEP]), "committed_at": "2019-07-01T00:00:00Z"}],
            STEP["at"], id="added, committed before the moment",
        ),
        pytest.param(
            [
                entry("c", "2021-06-01", [STEP], [STEP, OTHER]),
                {**entry("b", "2019-06-01"), "committed_at": "2021-01-01T00:00:00Z"},
            ],
            "2021-01-01T00:00:00Z", id="the last change, authored before, committed after",
        ),
        pytest.param([], STEP["at"], id="no commit: its moment"),
    ],
)  # fmt: skip
def test_a_step_takes_effect_when_its_commit_came_if_that_is_later(
    entries: list[dict[str, Any]], at: str
) -> None:
    (found,) = steps_taken(FLAG, ["production"], entries, NOW)
    assert (found["at"], found["scheduled_for"]) == (at, STEP["at"])


def test_in_a_log_cut_short_the_oldest_created_entry_added_nothing() -> None:
    created = {**entry("b", "2019-06-01", None, [STEP]), "change": "created"}
    newer = entry("c", "2019-09-01")
    for complete, commit in ((True, "b" * 40), (False, "c" * 40)):
        (found,) = steps_taken(FLAG, ["production"], [newer, created], NOW, complete=complete)
        assert found["commit"] == commit, complete


def test_a_top_level_step_applies_where_no_schedule_of_its_own_is_and_no_bare_value() -> None:
    flag = {
        "schedule": [STEP],
        "environments": {"staging": True, "production": {"schedule": [OTHER]}},
    }
    found = steps_taken(flag, ["development", "staging", "production"], [], NOW)
    assert [(item["at"], item["environments"]) for item in found] == [
        ("2020-02-01T00:00:00Z", ["production"]),
        ("2020-01-01T00:00:00Z", ["development"]),
    ]
    before = moment("2020-01-15T00:00:00Z")
    assert [item["at"] for item in steps_taken(flag, ["development"], [], before)] == [STEP["at"]]
    assert steps_taken(flag, ["development"], [], moment("2019-01-01T00:00:00Z")) == []


def test_a_step_flagc_would_refuse_is_skipped_not_a_crash() -> None:
    flag = {
        "schedule": [],
        "environments": {
            "production": {"schedule": [{"at": "not a time"}, {"ramp": {"from": 3}}, "x", STEP]}
        },
    }
    found = steps_taken(flag, ["production"], [], NOW)
    assert [item["at"] for item in found] == [STEP["at"]]


# flagc audit: the same lines beneath each commit, judged against now -----------------------


def test_flagc_audit_shows_each_step_that_took_effect_beneath_its_commit(
    history: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert flagc(["audit", "sale", str(history["repo"] / "flags")]) == 0
    commits = re.split(r"^commit ", capsys.readouterr().out, flags=re.M)[1:]
    shas = history["shas"]
    took = {
        sha[:10]: [line.strip() for line in text.splitlines() if "at 20" in line and ": " in line]
        for text in commits
        for sha in [text.split(" ", 1)[0]]
    }
    assert (
        took
        == {  # the steps of 2098 and 2099 have not taken effect (until 2098)
            shas["D"][:10]: [],
            shas["C"][:10]: ["took effect at 2020-04-01T00:00:00Z in development: enabled: true"],
            shas["B"][:10]: [
                "took effect at 2020-03-01T00:00:00Z in production: rules: "
                f'[{{"serve":"off","when":{{"country":["{QUOTED}"]}}}}]'
            ],
            shas["A"][:10]: [
                "ramp began at 2020-02-01T00:00:00Z in production (now 100%): on 0% -> 100% until "
                "2020-02-01T02:00:00Z, every 1h",
                'took effect at 2020-01-01T08:00:00Z in production: applications: {"ios":false}, '
                "enabled: true",
            ],
        }
    )
