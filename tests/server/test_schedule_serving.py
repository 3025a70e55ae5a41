"""Steps served by the clock (server.store): a build's view at its next step is made ahead
and swapped in at the moment, with listeners, the hub, metrics and /readyz told; in-process
with a clock the test sets, and end to end with real time, a real gunicorn flagserve and the
unmodified OpenFeature SDK watched across a step a few seconds ahead."""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import falcon.testing
import orjson
import pytest
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext

from core.schedule import moment, utc_text
from core.snapshot import Snapshot
from server import metrics
from server.app import create_app
from server.store import STEP_LEAD_SECONDS, STEP_LOOK_SECONDS, Store
from server.streams import Hub
from tests.conftest import git_in, write_tree
from tests.server.conftest import Built, Live, built_in_git, wait_until_served
from tests.server.helpers import Listener, sample, wait_until

S1 = moment("2030-01-07T09:00:00Z")
S2 = S1 + 3600
PROJECT = "environments: [staging, production]\napplications: [web, ios]\n"
PRICING = "description: Pricing\nowner: team-pricing\nenabled: true\n"


def banner(*steps: tuple[int, bool]) -> str:
    """The banner, off, with production's `steps` (moment, enabled)."""
    text = "description: Banner\nowner: team-growth\nenabled: false\n"
    if not steps:
        return text
    text += "environments:\n  production:\n    enabled: false\n    schedule:\n"
    for at, enabled in steps:
        text += f"      - at: {utc_text(at)}\n        enabled: {str(enabled).lower()}\n"
    return text


class Clock:
    """A clock the test sets; `then`, if set, runs at the next reading (once)."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.calls = 0
        self.then: Callable[[], object] | None = None

    def __call__(self) -> float:
        self.calls += 1
        then, self.then = self.then, None
        if then is not None:
            then()
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(S1 - 600)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    files = {"_project.yaml": PROJECT, "platform/pricing.yaml": PRICING}
    return built_in_git(tmp_path, {**files, "growth/banner.yaml": banner((S1, True), (S2, False))})


@pytest.fixture
def scheduled(out: Path, clock: Clock) -> Store:
    store = Store(out, clock)
    store.start()
    return store


def values(snapshot: Snapshot, environment: str) -> dict[str, Any]:
    found: dict[str, Any] = orjson.loads(snapshot.flat_maps[environment, None].data)["flags"]
    return found


def rebuild(out: Path, files: dict[str, str]) -> None:
    """Commit `files` in the repository `built_in_git` made beside `out`, and build again."""
    from compiler.cli import main as flagc  # noqa: PLC0415 - as the fixtures build

    repo = out.parent / "repo"
    git = git_in(repo)
    write_tree(repo / "flags", files)
    git("add", "--all")
    git("commit", "--quiet", "--message", "Move the step")
    assert flagc(["build", str(repo / "flags"), "-o", str(out)]) == 0


# The store, with a clock the test sets ----------------------------------------------------


def test_a_steps_view_is_made_ahead_and_swapped_in_at_its_moment(
    scheduled: Store, clock: Clock
) -> None:
    stepped: list[Snapshot] = []
    reloaded: list[bool] = []
    scheduled.step_listeners.append(lambda: stepped.append(scheduled.current))
    scheduled.listeners.append(lambda swapped, error: reloaded.append(swapped))
    before = scheduled.current
    whole = before.snapshot_body  # the build's own bytes, steps and all: the same at every step
    assert (before.moment, scheduled.next_step) == (S1 - 600, S1)
    assert scheduled.step_wait() == STEP_LOOK_SECONDS  # far ahead: only a look later
    assert scheduled.prepared is None

    clock.now = S1 - STEP_LEAD_SECONDS / 2  # within the lead: the view is made now
    assert scheduled.step_wait() == 0
    made = scheduled.prepared
    assert made is not None and made.moment == S1
    assert {"evaluator", "flat_maps", "definition_tags"} <= set(made.__dict__)  # answers made
    assert scheduled.current is before and values(before, "production")["banner"] is False
    assert scheduled.step_wait() == pytest.approx(STEP_LEAD_SECONDS / 2)  # until the moment

    clock.now = S1
    assert scheduled.step_wait() == 0
    after = scheduled.current
    assert after is made  # the view made ahead, not one made at the moment
    assert (after.moment, scheduled.next_step, scheduled.prepared) == (S1, S2, None)
    assert stepped == [after] and reloaded == []
    assert (scheduled.steps_applied, scheduled.reloads) == (1, 1)
    assert values(after, "production")["banner"] is True
    assert values(after, "staging") == values(before, "staging")
    # A body is the hash of its bytes: the ETag changes where the step changed something.
    cells = [(name, app) for name in ("production", "staging") for app in (None, "web", "ios")]
    changed = {cell for cell in cells if before.flat_maps[cell].etag != after.flat_maps[cell].etag}
    assert changed == {cell for cell in cells if cell[0] == "production"}
    assert after.definition_tags["production"] != before.definition_tags["production"]
    assert after.definition_tags["staging"] == before.definition_tags["staging"]
    assert after.flagd_definitions is before.flagd_definitions  # flagd's files carry the steps
    assert after.snapshot_body is whole


def test_a_late_look_serves_now_in_one_swap(scheduled: Store, clock: Clock) -> None:
    """A machine resumed (or a wall clock set forward) past both steps: the build as it
    stands now, not each step in turn; a view made ahead that no longer serves is not used."""
    clock.now = S1 - 0.5
    assert scheduled.prepare_step()
    assert not scheduled.prepare_step()  # made once
    clock.now = S2 + 5
    stepped: list[Snapshot] = []
    scheduled.step_listeners.append(lambda: stepped.append(scheduled.current))
    assert scheduled.step_wait() == 0
    now = scheduled.current
    assert (now.moment, scheduled.next_step) == (S2 + 5, None)
    assert values(now, "production")["banner"] is False
    assert stepped == [now] and scheduled.steps_applied == 1
    assert scheduled.step_wait() is None  # no step ahead: nothing more to do


def test_a_clock_set_back_keeps_what_is_served(scheduled: Store, clock: Clock) -> None:
    """Steps go forward: a clock set back serves on until the next step comes."""
    clock.now = S1 + 1
    assert scheduled.advance()
    clock.now = S1 - 60
    assert not scheduled.advance()
    assert values(scheduled.current, "production")["banner"] is True
    assert scheduled.next_step == S2


def test_a_build_landing_between_steps_replaces_the_view_made_ahead(
    out: Path, scheduled: Store, clock: Clock
) -> None:
    clock.now = S1 - 0.5
    assert scheduled.step_wait() == 0
    assert scheduled.prepared is not None
    rebuild(out, {"growth/banner.yaml": banner((S1 + 60, True))})  # the step moved on
    assert scheduled.reload()
    assert scheduled.prepared is None  # the old build's view: not kept, not served
    assert scheduled.next_step == S1 + 60
    clock.now = S1
    assert not scheduled.advance()
    assert values(scheduled.current, "production")["banner"] is False
    clock.now = S1 + 60
    assert scheduled.step_wait() == 0
    assert values(scheduled.current, "production")["banner"] is True
    assert scheduled.next_step is None and scheduled.steps_applied == 1


def test_a_view_made_while_a_build_lands_is_not_kept(
    out: Path, scheduled: Store, clock: Clock
) -> None:
    """The view is made outside the store's lock, and kept only if its build still serves
    once it is made: here a new build lands as it is being made."""
    clock.now = S1 - 0.5
    rebuild(out, {"growth/banner.yaml": banner((S2, True))})
    landed: list[bool] = []
    clock.then = lambda: landed.append(scheduled.reload())  # read as the view is begun
    assert scheduled.prepare_step()
    assert landed == [True]
    assert scheduled.prepared is None and scheduled.next_step == S2


def test_a_build_without_steps_gives_the_step_thread_no_work(built: Built) -> None:
    """It waits for a new build alone: it never even reads the clock."""
    clock = Clock(time.time())
    store = Store(built.out, clock)
    store.start()
    calls = clock.calls
    thread = store.follow_steps()
    assert store.follow_steps() is thread  # one per process
    time.sleep(0.3)
    assert thread.is_alive() and clock.calls == calls
    assert (store.next_step, store.step_wait(), store.prepare_step(), store.advance()) == (
        None,
        None,
        False,
        False,
    )
    store.poll_only()  # as gunicorn's master: no step thread
    thread.join(2)
    assert not thread.is_alive()


def test_the_masters_build_is_brought_to_now_before_a_fork(scheduled: Store, clock: Clock) -> None:
    """gunicorn's master makes no view ahead (`poll_only`); before it forks a worker it
    takes in the build as it stands then (`Service.before_fork`), so a new worker serves
    the step that is current from its first request."""
    thread = scheduled.follow_steps()
    scheduled.poll_only()
    thread.join(2)
    assert not thread.is_alive()
    clock.now = S1 + 30
    assert scheduled.advance()
    assert scheduled.current.moment == S1 + 30 and scheduled.next_step == S2
    scheduled.after_fork()  # the worker: its own step thread, made ahead as before
    assert scheduled.follow_steps().is_alive()


# The real-time tests choose a step's moment a few seconds ahead: a build (end to end, every
# worker serving it) that lands too late on a loaded machine is made again, once, with a
# moment further ahead, rather than every run waiting as long as the slowest needs.
IN_PROCESS_AHEAD = (4, 10)  # seconds from choosing the moment to it
IN_PROCESS_LOOK = 2  # seconds left once the store serves the build: to see the view made
# ahead (STEP_LEAD_SECONDS before the step at least) before the step


def test_the_step_thread_serves_a_step_from_its_moment(tmp_path: Path) -> None:
    """Real time, in-process: the thread makes the view ahead and swaps it in at once."""
    for ahead in IN_PROCESS_AHEAD:
        step = int(time.time()) + ahead
        files = {"_project.yaml": PROJECT, "growth/banner.yaml": banner((step, True))}
        (tmp_path / str(ahead)).mkdir()
        store = Store(built_in_git(tmp_path / str(ahead), files))
        store.start()
        if time.time() < step - IN_PROCESS_LOOK:
            break
    else:
        raise AssertionError("the build landed too late to look before its step, twice")
    assert store.next_step == step
    swapped: list[float] = []
    store.step_listeners.append(lambda: swapped.append(time.time()))
    store.follow_steps()
    wait_until(lambda: store.prepared is not None, timeout=10, what="the view made ahead")
    made = store.prepared
    assert time.time() < step and values(store.current, "production")["banner"] is False
    wait_until(lambda: bool(swapped), timeout=10, what="the step")
    assert step <= swapped[0] < step + 0.5  # a thread's wake-up, on a loaded machine
    assert store.current is made and values(made, "production")["banner"] is True
    store.poll_only()


# What a step tells: the hub, metrics, /readyz, the headers ------------------------------


def test_the_hub_tells_only_the_environment_a_step_changes(scheduled: Store, clock: Clock) -> None:
    hub = Hub(scheduled)
    heard: list[dict[str, Any]] = []
    hub.subscribe(heard.append)
    before = {name: hub.tag(name) for name in ("staging", "production")}
    clock.now = S1
    assert scheduled.advance()
    assert list(heard[0]) == ["production"]
    tag, _ = heard[0]["production"]
    assert tag == hub.tag("production") == scheduled.current.definition_tags["production"]
    assert tag != before["production"] and hub.tag("staging") == before["staging"]
    clock.now = S2
    assert scheduled.advance()
    assert list(heard[1]) == ["production"]  # off again: news again, with a tag of its own
    assert heard[1]["production"][0] not in (tag, before["production"])


def test_metrics_show_the_next_step_and_count_steps(scheduled: Store, clock: Clock) -> None:
    metrics.observe(scheduled)
    applied = sample("flagserve_steps_applied_total")
    reloads = sample("flagserve_reloads_total", result="success")
    assert sample("flagserve_next_step_timestamp_seconds") == S1
    clock.now = S1
    assert scheduled.advance()
    assert sample("flagserve_steps_applied_total") == applied + 1
    assert sample("flagserve_reloads_total", result="success") == reloads  # not a reload
    assert sample("flagserve_next_step_timestamp_seconds") == S2
    clock.now = S2
    assert scheduled.advance()
    assert math.isnan(sample("flagserve_next_step_timestamp_seconds"))  # none ahead


def test_readiness_names_the_moment_served_and_the_next_step(
    scheduled: Store, clock: Clock
) -> None:
    client = falcon.testing.TestClient(create_app(scheduled))
    ready = client.simulate_get("/readyz").json
    assert (ready["moment"], ready["next_step"]) == (utc_text(S1 - 600), utc_text(S1))
    clock.now = S2 + 1
    assert scheduled.advance()
    ready = client.simulate_get("/readyz").json
    assert (ready["moment"], ready["next_step"]) == (utc_text(S2 + 1), None)


def test_answers_change_with_the_step_and_no_copy_is_kept_past_it(
    scheduled: Store, clock: Clock
) -> None:
    client = falcon.testing.TestClient(create_app(scheduled))
    paths = ["/api/v1/environments/production/flags", "/api/v1/flags/banner", "/"]
    before = {path: client.simulate_get(path) for path in paths}
    flagd = client.simulate_get("/api/v1/environments/production/flagd.json")
    for answer in before.values():
        assert answer.status_code == 200
        assert fresh_for(answer.headers["Cache-Control"]) <= S1 - clock.now
    clock.now = S1
    assert scheduled.advance()
    for path, old in before.items():
        again = client.simulate_get(path, headers={"If-None-Match": old.headers["ETag"]})
        assert again.status_code == 200, path  # the old copy is not the current one
        assert again.headers["ETag"] != old.headers["ETag"], path
    assert client.simulate_get(FLAT_PRODUCTION).json["flags"]["banner"] is True
    same = client.simulate_get("/api/v1/environments/production/flagd.json")
    assert (same.content, same.headers["ETag"]) == (flagd.content, flagd.headers["ETag"])


FLAT_PRODUCTION = "/api/v1/environments/production/flags"


def fresh_for(cache_control: str) -> float:
    """How long a cache may use its copy without asking again (0 for no-cache)."""
    directives = {part.strip().split("=")[0]: part for part in cache_control.split(",")}
    if "no-cache" in directives or "no-store" in directives:
        return 0.0
    found = re.search(r"max-age=(\d+)", cache_control)
    return math.inf if found is None else float(found[1])


# End to end: a real flagserve across a step a few seconds ahead ---------------------------

STEP_AHEAD = (8, 16)  # seconds from writing the build to its step, as IN_PROCESS_AHEAD
STEP_LOOK = 4  # seconds before the step every worker must serve the build: to look before it
FLAGD = "/api/v1/environments/production/flagd.json"
BULK = "/ofrep/v1/evaluate/flags"


def scheduled_banner(step: int) -> str:
    """conftest's banner (on in development), on in production from `step` for an hour."""
    return (
        "description: Free shipping banner\nowner: team-growth\nenabled: false\n"
        "environments:\n  development: true\n  production:\n    enabled: false\n"
        f"    schedule:\n      - at: {utc_text(step)}\n        enabled: true\n"
        f"      - at: {utc_text(step + 3600)}\n        enabled: false\n"
    )


def stream_of(live: Live, environment: str) -> Listener:
    answer = live.post(BULK, json={"context": {"environment": environment}})
    assert answer.status_code == 200, answer.text
    return Listener(live, answer.json()["eventStreams"][0]["endpoint"]["requestUri"])


def scraped(live: Live, name: str) -> float:
    """A sample's value in flagserve's /metrics (over its workers); NaN when absent."""
    for line in live.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return math.nan


def listen(listener: Listener, seconds: float) -> Callable[[], float]:
    """Read `listener` in a thread for `seconds` (or until its first event); returns what
    gives, once joined, when the event came (time.time(); NaN for none)."""
    came: list[float] = []
    offset = time.time() - time.monotonic()

    def read() -> None:
        at = listener.read_until(seconds)
        came.append(at + offset if listener.events else math.nan)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()

    def joined() -> float:
        thread.join(seconds + 5)
        return came[0]

    return joined


def served_ahead(live: Live, built: Built) -> int:
    """Commit the banner with a step STEP_AHEAD on, and wait until every worker serves its
    build; once more, further ahead, if it landed too late to look before the step. The step."""
    for ahead in STEP_AHEAD:
        step = int(time.time()) + ahead
        banner = {"growth/banner.yaml": scheduled_banner(step)}
        built.commit("Show the banner in production", banner)
        wait_until_served(live, built.git("rev-parse", "HEAD").strip())
        if time.time() < step - STEP_LOOK:
            return step
    raise AssertionError("the build landed too late to look before its step, twice")


def test_flagserve_serves_a_step_at_its_moment_without_a_build(live: Live, built: Built) -> None:
    """The unmodified OpenFeature SDK (OFREP), the flat map, its ETag, the streams, /readyz
    and /metrics switch at the step, within a second, in both workers; flagd's file does
    not change (it carries the steps)."""
    step = served_ahead(live, built)
    applied = scraped(live, "flagserve_steps_applied_total")  # a late try's step, if it came
    applied = 0.0 if math.isnan(applied) else applied
    flagd_file = (built.out / "flagd" / "production.json").read_bytes()
    flagd_served = live.get(FLAGD).content
    domain = f"gitflags-{uuid.uuid4().hex}"
    api.set_provider(OFREPProvider(live.url), domain)
    openfeature = api.get_client(domain)
    production = EvaluationContext("user-1", {"environment": "production"})
    try:
        first = live.get(FLAT_PRODUCTION)
        assert first.json()["flags"]["banner"] is False
        assert fresh_for(first.headers["Cache-Control"]) <= step - time.time()
        assert openfeature.get_boolean_value("banner", True, production) is False
        ready = live.get("/readyz").json()
        assert ready["next_step"] == utc_text(step) and ready["moment"] < utc_text(step)
        assert scraped(live, "flagserve_next_step_timestamp_seconds") == step
        streams = {name: stream_of(live, name) for name in ("production", "staging")}
        heard = {name: listen(found, step + 2.5 - time.time()) for name, found in streams.items()}

        answers = []  # (sent, received, the banner's value), each on a new connection
        while time.time() < step + 1.5:
            sent = time.time()
            value = live.get(FLAT_PRODUCTION).json()["flags"]["banner"]
            answers.append((sent, time.time(), value))
            time.sleep(0.02)
        assert all(received >= step for _, received, value in answers if value)  # not early
        assert all(sent < step + 1 for sent, _, value in answers if not value)  # nor late
        assert any(value for *_, value in answers) and not answers[0][2]

        assert openfeature.get_boolean_value("banner", False, production) is True
        again = live.get(FLAT_PRODUCTION, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 200 and again.headers["ETag"] != first.headers["ETag"]
        ready = live.get("/readyz").json()
        assert (ready["moment"], ready["next_step"]) == (utc_text(step), utc_text(step + 3600))
        wait_until(
            lambda: scraped(live, "flagserve_steps_applied_total") == applied + 2,
            what="the step in each worker",
        )
        assert scraped(live, "flagserve_next_step_timestamp_seconds") == step + 3600
        came = heard["production"]()
        assert step <= came < step + 1, f"{came - step:.3f} s after the step"
        (event,) = streams["production"].events
        tag = orjson.loads(event["data"])["etag"]
        assert tag == event["id"] and f"since={tag}" in stream_of(live, "production").path
        assert math.isnan(heard["staging"]()) and streams["staging"].events == []
        assert (built.out / "flagd" / "production.json").read_bytes() == flagd_file
        assert live.get(FLAGD).content == flagd_served
    finally:
        api.clear_providers()
