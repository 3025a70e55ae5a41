"""`flagc export SITE --from OUT` and the one list it writes (`core.documents`): every file
holds the bytes and ETag the server answers at its URL (a real gunicorn, and the Falcon app
in-process), the mapping of files to URLs is pinned, the application route answers as the
query does, the writes are safe, and every refusal is one line and exit code 2."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import orjson
import pytest
import requests

from compiler.commands.export import MANIFEST, write_site
from core import canonical
from core.documents import Document, documents
from core.snapshot import load
from server import openapi
from server.store import Store
from tests.server.conftest import Built, start_server, stop_server
from tests.server.contract import conforms, routes
from tests.server.exports import export, manifest, state, tree

GOLDEN = Path(__file__).parent / "golden" / "export-mapping.txt"
RAW = {"Accept-Encoding": "identity"}  # the bytes as stored, not a gzip variant


# Byte for byte what the server answers ---------------------------------------------------


def test_every_file_is_what_a_running_server_answers_at_its_url(
    built: Built, tmp_path: Path
) -> None:
    """With a flag deleted since (its log stays) and pages of one item (several pages)."""
    built.commit("Retire the free shipping banner", {"growth/banner.yaml": None})
    site = tmp_path / "site"
    assert export(site, built.out, "--page-size", "1") == 0
    listed = manifest(site)["documents"]
    files = tree(site)
    assert set(files) == {*listed, MANIFEST}
    assert "api/v1/flags/banner/audit.json" in listed
    assert "api/v1/flags/banner.json" not in listed
    assert "api/v1/audit/pages/4.json" in listed  # five entries, one a page
    live = start_server(built.out, tmp_path / "flagserve.log")
    try:
        with requests.Session() as session:
            for path, entry in listed.items():
                answer = session.get(live.url + entry["url"], headers=RAW, timeout=30)
                assert answer.status_code == 200, (path, answer.text)
                assert answer.content == files[path], path
                assert answer.headers["ETag"] == entry["etag"], path
                assert answer.headers["Content-Type"] == entry["content_type"], path
                assert entry["size"] == len(files[path]), path
            again = session.get(
                live.url + listed["api/v1/flags.json"]["url"],
                headers={"If-None-Match": listed["api/v1/flags.json"]["etag"]},
                timeout=30,
            )
            assert again.status_code == 304  # the manifest's ETag revalidates at the server
    finally:
        stop_server(live)


@pytest.mark.parametrize("page_size", [1, 2, 1000])
def test_every_document_is_what_the_app_answers(
    store: Store, client: falcon.testing.TestClient, page_size: int
) -> None:
    found = list(documents(store.current, page_size))
    assert len({document.path for document in found}) == len(found)
    for document in found:
        path, _, query = document.url.partition("?")
        answer = client.simulate_get(path, query_string=query or None)
        assert answer.status_code == 200, document.url
        assert answer.content == document.body.data, document.url
        assert answer.headers["ETag"] == document.body.etag, document.url


def test_every_api_route_the_server_answers_on_get_is_exported(
    store: Store, client: falcon.testing.TestClient
) -> None:
    """The one list stays whole: a GET route added under /api/ must be exported too (or be
    named here with the reason why it cannot)."""
    paths = {document.url.partition("?")[0] for document in documents(store.current)}
    templates = {t for t, method in routes(client.app) if method == "get" and t.startswith("/api/")}
    for template in templates:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", template)
        assert any(re.fullmatch(pattern, path) for path in paths), template


def test_the_mapping_of_files_to_urls(store: Store, update_golden: bool) -> None:
    """The mapping README documents, for the example build at the default page size."""
    found = sorted(documents(store.current), key=lambda document: document.path)
    got = "".join(f"{document.path}  {document.url}\n" for document in found)
    if update_golden:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(got, encoding="utf-8", newline="\n")
    assert got == GOLDEN.read_text(encoding="utf-8")


def test_the_manifest_names_the_build(built: Built, tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert export(site, built.out) == 0
    found = manifest(site)
    snapshot = load(built.out)
    assert found["generator"] == "flagc export"
    assert (found["revision"], found["digest"]) == (snapshot.revision, snapshot.digest)
    assert found["page_size"] == 1000
    assert (site / MANIFEST).read_bytes() == canonical.serialize(found) + b"\n"


# The application's flat map at a path ---------------------------------------------------

CELLS = [(env, app) for env in ("development", "production") for app in ("web", "ios")]


@pytest.mark.parametrize(("environment", "application"), CELLS)
def test_the_application_path_answers_as_the_query(
    client: falcon.testing.TestClient, environment: str, application: str
) -> None:
    by_path = client.simulate_get(
        f"/api/v1/environments/{environment}/applications/{application}/flags"
    )
    by_query = client.simulate_get(
        f"/api/v1/environments/{environment}/flags", params={"application": application}
    )
    assert by_path.status_code == 200
    assert by_path.content == by_query.content
    assert by_path.headers["ETag"] == by_query.headers["ETag"]


@pytest.mark.parametrize(
    ("url", "status", "kind"),
    [
        ("/api/v1/environments/production/applications/web/flags", 200, None),
        ("/api/v1/environments/production/applications/toaster/flags", 404, "unknown-application"),
        ("/api/v1/environments/nowhere/applications/web/flags", 404, "unknown-environment"),
    ],
)
def test_the_application_path_conforms_to_the_document(
    client: falcon.testing.TestClient, url: str, status: int, kind: str | None
) -> None:
    conforms(client, openapi.spec(), "GET", url, {}, status)
    if kind is not None:
        assert client.simulate_get(url).json["type"].endswith(kind)


# Safe writes and determinism -------------------------------------------------------------


def test_exports_are_deterministic_and_replace_the_previous_one(
    built: Built, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert export(first, built.out) == 0
    assert export(second, built.out) == 0
    assert tree(first) == tree(second)
    assert export(first, built.out) == 0  # over a previous export
    assert tree(first) == tree(second)
    built.commit("Retire the free shipping banner", {"growth/banner.yaml": None})
    assert export(first, built.out) == 0
    assert "api/v1/flags/banner.json" not in tree(first)  # nothing stale stays
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first", "out", "repo", "second"]
    modes = {(path.is_dir(), path.stat().st_mode & 0o777) for path in [first, *first.rglob("*")]}
    assert modes == {(True, 0o755), (False, 0o644)}  # for a web server, whatever the umask


def test_unchanged_files_keep_their_modification_time(built: Built, tmp_path: Path) -> None:
    """So that `aws s3 sync` and `gsutil rsync` upload only the documents that changed."""
    site = tmp_path / "site"
    assert export(site, built.out) == 0
    long_ago = 1_000_000_000  # 2001, in seconds
    for path in site.rglob("*.json"):
        os.utime(path, (long_ago, long_ago))
    built.commit("Turn the banner on in staging", {"growth/banner.yaml": BANNER_IN_STAGING})
    assert export(site, built.out) == 0
    kept = {
        path.relative_to(site).as_posix()
        for path in site.rglob("*.json")
        if path.stat().st_mtime == long_ago
    }
    # The flags the commit left alone; everything else names the new revision or the change.
    assert kept == {"api/v1/flags/new-checkout.json", "api/v1/flags/pricing-engine.json"}


BANNER_IN_STAGING = (
    "description: Free shipping banner\nowner: team-growth\nenabled: false\n"
    "environments:\n  development: true\n  staging: true\n"
)


def test_a_failure_halfway_leaves_the_previous_export(built: Built, tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert export(site, built.out) == 0
    before = state(tmp_path)
    snapshot = load(built.out)

    def halfway() -> Iterator[Document]:
        found = documents(snapshot)
        yield next(found)
        yield next(found)
        raise OSError(28, "No space left on device", str(site))

    with pytest.raises(OSError, match="No space left"):
        write_site(site, halfway(), snapshot, 1000)
    assert state(tmp_path) == before  # the old site whole, and no temporary folder left


def test_an_empty_folder_is_written_into(built: Built, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    assert export(site, built.out) == 0
    assert (site / "api/v1/snapshot.json").read_bytes() == (
        built.out / "snapshot.json"
    ).read_bytes()


def _digest_mismatch(out: Path) -> None:
    document = orjson.loads((out / "snapshot.json").read_bytes())
    document["flags"]["banner"]["owner"] = "someone-else"
    (out / "snapshot.json").write_bytes(canonical.serialize(document))


def _escaping_name(out: Path) -> None:
    """A hand-made build whose environment name would climb out of the site; its digest is
    right, so only the export's own check can refuse it."""
    document = orjson.loads((out / "snapshot.json").read_bytes())
    document["environments"] = ["development", "staging", "../../escape"]
    for flag in document["flags"].values():
        flag["resolved"]["../../escape"] = flag["resolved"].pop("production")
        flag["environments"].pop("production", None)
    document["digest"] = canonical.digest_of(document)
    (out / "snapshot.json").write_bytes(canonical.serialize(document))


def _sabotage(out: Path, site: Path, case: str) -> None:
    """Set up `case` against the build in `out` and the site folder `site`."""
    if case == "missing build":
        (out / "snapshot.json").unlink()
    elif case == "truncated snapshot":
        (out / "snapshot.json").write_bytes((out / "snapshot.json").read_bytes()[:100])
    elif case == "digest mismatch":
        _digest_mismatch(out)
    elif case == "escaping name":
        _escaping_name(out)
    elif case == "site is a file":
        site.write_text("mine\n")
    elif case == "site holds other files":
        (site / "notes").mkdir(parents=True)
        (site / "notes" / "todo.txt").write_text("mine\n")
    elif case == "site is a symbolic link":
        (site.parent / "elsewhere").mkdir()
        site.symlink_to(site.parent / "elsewhere")
    elif case == "site below a file":
        site.parent.rename(site.parent.with_name("moved"))
        site.parent.write_text("mine\n")


REFUSALS = [
    ("missing build", [], "does not exist; build it with `flagc build`"),
    ("truncated snapshot", [], "is not valid JSON"),
    ("digest mismatch", [], "does not match its digest"),
    ("escaping name", [], "'../../escape'"),  # refused by the loader or by the export
    ("site is a file", [], "exists and is not a folder"),
    ("site holds other files", [], "is neither empty nor a previous export"),
    ("site is a symbolic link", [], "is a symbolic link"),
    ("site below a file", [], "cannot write"),
    ("page too large", ["--page-size", "1001"], "a page holds 1 to 1000 items"),
    ("page empty", ["--page-size", "0"], "a page holds 1 to 1000 items"),
]


@pytest.mark.parametrize(("case", "options", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_are_one_line_and_write_nothing(
    built: Built,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    options: list[str],
    message: str,
) -> None:
    site = tmp_path / "sites" / "site"
    site.parent.mkdir()
    _sabotage(built.out, site, case)
    before = state(tmp_path / "sites")
    capsys.readouterr()
    assert export(site, built.out, *options) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("flagc: error: ")
    assert message in err
    assert err.count("\n") == 1, err
    assert state(tmp_path / "sites") == before
