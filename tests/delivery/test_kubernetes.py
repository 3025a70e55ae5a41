"""deploy/kubernetes/: every manifest valid (strictly) against Kubernetes 1.29's schemas,
the pod locked down, the probes on endpoints the real application serves and on the port it
binds, the pieces wired to each other, and the way new builds get in (a builder compiling
each new commit of the synced checkout into the volume flagserve serves) run for real."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import yaml

from tests.conftest import Git, write_tree
from tests.delivery import served
from tests.server.conftest import FLAGS, Live, start_server, stop_server, wait_until_served

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
FILES = sorted(MANIFESTS.glob("*.yaml"))
KUBERNETES = "1.29.0"
BIN = Path(sys.executable).parent
# The build baked into the image: the Dockerfile's (runtime stage's) FLAGSERVE_DIR.
(BAKED,) = re.findall(r"FLAGSERVE_DIR=(\S+)", (ROOT / "Dockerfile").read_text(encoding="utf-8"))

Manifest = dict[str, Any]


def documents() -> dict[str, Manifest]:
    """Every manifest by kind."""
    found = {}
    for path in FILES:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            found[document["kind"]] = document
    return found


KINDS = documents()
DEPLOYMENT = KINDS["Deployment"]
POD = DEPLOYMENT["spec"]["template"]["spec"]
CONTAINERS = {c["name"]: c for c in [*POD["initContainers"], *POD["containers"]]}
SERVER = CONTAINERS["flagserve"]


def env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


def mounts(container: dict[str, Any]) -> dict[str, str]:
    """Mount path by volume name."""
    return {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> falcon.testing.TestClient:
    return served.client(tmp_path_factory.mktemp("build"))


def test_the_manifests_are_the_four_kinds() -> None:
    assert sorted(KINDS) == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
    ]
    assert KINDS["HorizontalPodAutoscaler"]["apiVersion"] == "autoscaling/v2"
    assert KINDS["PodDisruptionBudget"]["apiVersion"] == "policy/v1"


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "-k", KUBERNETES, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_every_manifest_is_valid_for_kubernetes_strictly() -> None:
    result = validate(*FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in FILES:
        assert f"{path} passed" in result.stdout + result.stderr


def test_strict_validation_catches_a_misspelt_field(tmp_path: Path) -> None:
    """So that the test above proves something: an unknown field fails."""
    broken = tmp_path / "deployment.yaml"
    text = (MANIFESTS / "deployment.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("  replicas: 2", "  replica: 2"), encoding="utf-8")
    assert validate(broken).returncode != 0


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_every_container_is_locked_down_and_bounded(name: str) -> None:
    container = CONTAINERS[name]
    context = {**POD["securityContext"], **container["securityContext"]}
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_what_a_container_writes_goes_to_a_volume(name: str) -> None:
    """A read-only root: /tmp (and the server's TMPDIR) are emptyDirs where mounted."""
    volumes = {volume["name"]: volume for volume in POD["volumes"]}
    for volume_name, path in mounts(CONTAINERS[name]).items():
        assert "emptyDir" in volumes[volume_name], (volume_name, path)
    if name != "seed":  # cp writes nowhere else
        assert "/tmp" in mounts(CONTAINERS[name]).values()


def test_at_least_two_replicas_and_autoscaled_from_there() -> None:
    hpa = KINDS["HorizontalPodAutoscaler"]["spec"]
    assert DEPLOYMENT["spec"]["replicas"] >= 2
    assert hpa["minReplicas"] == DEPLOYMENT["spec"]["replicas"]
    assert hpa["maxReplicas"] > hpa["minReplicas"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": DEPLOYMENT["apiVersion"],
        "kind": "Deployment",
        "name": DEPLOYMENT["metadata"]["name"],
    }
    assert KINDS["PodDisruptionBudget"]["spec"]["minAvailable"] < hpa["minReplicas"]


@pytest.mark.parametrize("kind", ["Service", "PodDisruptionBudget", "Deployment"])
def test_selectors_match_the_pods(kind: str) -> None:
    spec = KINDS[kind]["spec"]
    selector = spec["selector"].get("matchLabels", spec["selector"])
    labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


@pytest.mark.parametrize("probe", ["startupProbe", "livenessProbe", "readinessProbe"])
def test_probes_ask_real_endpoints_on_the_bound_port(
    probe: str, app: falcon.testing.TestClient
) -> None:
    action = SERVER[probe]["httpGet"]
    ports = {port["name"]: port["containerPort"] for port in SERVER["ports"]}
    assert ports[action["port"]] == served.port_of(env(SERVER)["FLAGSERVE_BIND"])
    assert app.simulate_get(action["path"]).status_code == 200
    expected = "/readyz" if probe == "readinessProbe" else "/healthz"
    assert action["path"] == expected


def test_the_service_and_the_scrape_annotations_name_the_servers_ports() -> None:
    ports = {port["name"]: port["containerPort"] for port in SERVER["ports"]}
    service_ports = {port["name"]: port for port in KINDS["Service"]["spec"]["ports"]}
    assert {port["targetPort"] for port in service_ports.values()} == set(ports)
    annotations = DEPLOYMENT["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == ports[service_ports["http"]["targetPort"]]
    sync_port = int(env(SERVER)["FLAGSERVE_SYNC_BIND"].rsplit(":", 1)[1])
    assert ports[service_ports["flagd-sync"]["targetPort"]] == sync_port


def test_the_builds_volume_is_what_flagserve_serves_and_the_builder_writes() -> None:
    builds = env(SERVER)["FLAGSERVE_DIR"]
    assert mounts(SERVER)["builds"] == builds
    assert env(CONTAINERS["builder"])["OUT"] == mounts(CONTAINERS["builder"])["builds"] == builds
    assert CONTAINERS["seed"]["command"] == ["cp", "-R", f"{BAKED}/.", f"{builds}/"]
    assert mounts(CONTAINERS["seed"])["builds"] == builds


def test_the_builder_reads_the_whole_history_git_sync_keeps() -> None:
    arguments = dict(a.removeprefix("--").split("=", 1) for a in CONTAINERS["git-sync"]["args"])
    assert arguments["depth"] == "0"  # not shallow: the audit log needs every commit
    root = mounts(CONTAINERS["git-sync"])["repository"]
    assert arguments["root"] == root == mounts(CONTAINERS["builder"])["repository"]
    assert env(CONTAINERS["builder"])["REPO"] == f"{root}/{arguments['link']}"


class Builder:
    """The builder container's own command, run on the host against a real repository."""

    def __init__(self, repo: Path, out: Path, log: Path) -> None:
        command = CONTAINERS["builder"]["command"]
        variables = {**env(CONTAINERS["builder"]), "REPO": str(repo), "OUT": str(out)}
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **variables, "INTERVAL": "0.2", "PATH": path_with_flagc()},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log = log

    def stop(self) -> int:
        """SIGTERM, as the kubelet sends: the loop must exit at once, not at the grace's end."""
        os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=10)


def path_with_flagc() -> str:
    return f"{BIN}:{os.environ.get('PATH', '')}"


def commit(repo: Path, git: Git, message: str, files: dict[str, str]) -> str:
    write_tree(repo / "flags", files)
    git("add", "--all")
    git("commit", "--quiet", "--message", message)
    return git("rev-parse", "HEAD").strip()


@pytest.fixture
def pod(git_repo: tuple[Path, Git], tmp_path: Path) -> Iterator[tuple[Path, Git, Live, Builder]]:
    """The pod's volumes in tmp_path: the image's baked build copied in by the seed
    command, flagserve serving the builds volume, and the builder watching the checkout."""
    repo, git = git_repo
    first = {name: text for name, text in FLAGS.items() if "new-checkout" not in name}
    commit(repo, git, "Add the pricing engine and the banner", first)
    baked, live_dir = tmp_path / "baked", tmp_path / "live"
    subprocess.run(
        [BIN / "flagc", "build", repo / "flags", "-o", baked], check=True, capture_output=True
    )
    live_dir.mkdir()
    seed = [part.replace(BAKED, str(baked)) for part in CONTAINERS["seed"]["command"]]
    seed = [part.replace(env(SERVER)["FLAGSERVE_DIR"], str(live_dir)) for part in seed]
    subprocess.run(seed, check=True)
    server = start_server(live_dir, tmp_path / "flagserve.log")
    builder = Builder(repo, live_dir, tmp_path / "builder.log")
    try:
        yield repo, git, server, builder
    finally:
        if builder.process.poll() is None:
            builder.stop()
        stop_server(server)


def test_new_commits_reach_the_server_without_a_new_image(
    pod: tuple[Path, Git, Live, Builder],
) -> None:
    repo, git, server, builder = pod
    first = git("rev-parse", "HEAD").strip()
    assert server.get("/readyz").json()["revision"] == first  # the seeded (baked) build
    checkout = FLAGS["checkout/new-checkout.yaml"]
    second = commit(repo, git, "Launch the new checkout", {"checkout/new-checkout.yaml": checkout})
    wait_until_served(server, second)
    assert "new-checkout" in server.get("/api/v1/environments/production/flags").json()["flags"]
    audit = server.get("/api/v1/audit").json()
    assert {entry["commit"] for entry in audit["items"]} >= {first, second}

    broken = commit(repo, git, "Break the banner", {"growth/banner.yaml": "enabled: maybe\n"})
    deadline = time.monotonic() + 60
    while f"{broken} did not build" not in builder.log.read_text():
        assert time.monotonic() < deadline, builder.log.read_text()
        time.sleep(0.2)
    assert server.get("/readyz").json()["revision"] == second  # the last good build serves
    fixed = commit(
        repo, git, "Mend the banner", {"growth/banner.yaml": FLAGS["growth/banner.yaml"]}
    )
    wait_until_served(server, fixed)
    assert builder.log.read_text().count(f"{broken} did not build") == 1  # not retried

    assert builder.stop() == 0
