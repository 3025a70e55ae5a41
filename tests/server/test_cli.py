"""`flagserve`: its options (each beating its variable), `hash-key`, and start-ups that must
fail with exit status 2 and a message, run as real processes."""

from __future__ import annotations

import hashlib
import io
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from server.auth import digest
from server.cli import main
from server.settings import Settings
from tests.server.conftest import ROOT, Built, free_port, free_ports
from tests.server.helpers import (
    GUNICORN,
    check_configured,
    environment,
    finish,
    json_lines,
    keys_file,
    running,
    wait_until,
    workers,
)


def hash_key(stdin: bytes, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "server", "hash-key", *arguments],
        cwd=ROOT,
        env=environment(),
        input=stdin,
        capture_output=True,
        timeout=30,
        check=False,
    )


def test_hash_key_prints_the_sha256_of_the_key_on_stdin() -> None:
    done = hash_key(b"  s3cret-key\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == hashlib.sha256(b"s3cret-key").hexdigest() + "\n"


@pytest.mark.parametrize(("stdin", "arguments"), [(b"\n", ()), (b"key", ("extra",))])
def test_hash_key_refuses_no_key_and_arguments(stdin: bytes, arguments: tuple[str, ...]) -> None:
    done = hash_key(stdin, *arguments)
    assert done.returncode == 2
    assert b"hash-key" in done.stderr
    assert done.stdout == b""


def test_help_names_every_variable() -> None:
    done = finish(["--help"])
    assert done.returncode == 0
    for variable in ("DIR", "BIND", "WORKERS", "THREADS", "LOG_FORMAT", "API_KEYS"):
        assert f"FLAGSERVE_{variable}" in done.stdout
    assert "FLAGSERVE_DEFAULT_ENVIRONMENT" in done.stdout
    assert "FLAGSERVE_METRICS_BIND" in done.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--workers", "0"], "argument --workers: '0' must be at least 1"),
        (["--threads", "many"], "argument --threads: 'many' is not a whole number"),
        (["--bind", "localhost"], "argument --bind: 'localhost' is not HOST:PORT"),
        (["--bind", "127.0.0.1:70000"], "argument --bind: '127.0.0.1:70000' is not HOST:PORT"),
        (["--log-format", "xml"], "argument --log-format: 'xml' is not one of text, json"),
        (["--metrics-bind", "9100"], "argument --metrics-bind: '9100' is not HOST:PORT"),
        (["--default-environment", " "], "argument --default-environment: an empty name"),
        (["--bind", "127.0.0.1:9000", "--metrics-bind", "127.0.0.1:9000"], "another port"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
)
def test_bad_options_exit_2_with_a_message(arguments: list[str], message: str) -> None:
    done = finish(arguments)
    assert done.returncode == 2
    assert message in done.stderr


@pytest.mark.parametrize("command", [("-m", "server"), GUNICORN], ids=["flagserve", "gunicorn"])
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FLAGSERVE_WORKERS", "zero", "FLAGSERVE_WORKERS: 'zero' is not a whole number"),
        ("FLAGSERVE_LOG_FORMAT", "xml", "FLAGSERVE_LOG_FORMAT: 'xml' is not one of text, json"),
        ("FLAGSERVE_RELOAD_INTERVAL", "0", "FLAGSERVE_RELOAD_INTERVAL: '0' must be more than 0"),
        ("FLAGSERVE_RELOAD_NOTIFY", "maybe", "FLAGSERVE_RELOAD_NOTIFY: 'maybe' is neither on nor"),
    ],
)
def test_bad_variables_exit_2_with_a_message(
    command: tuple[str, ...], variable: str, value: str, message: str
) -> None:
    done = finish([], {variable: value}, command=command)
    assert done.returncode == 2
    assert message in done.stderr


def _truncate(out: Path) -> str:
    data = (out / "snapshot.json").read_bytes()
    (out / "snapshot.json").write_bytes(data[: len(data) // 2])
    return "snapshot.json is not valid JSON"


def _tamper(out: Path) -> str:
    document = orjson.loads((out / "snapshot.json").read_bytes())
    document["flags"]["banner"]["enabled"] = True
    (out / "snapshot.json").write_bytes(orjson.dumps(document))
    return "does not match its digest"


def _remove(out: Path) -> str:
    (out / "snapshot.json").unlink()
    return "snapshot.json does not exist; build it with `flagc build`"


@pytest.mark.parametrize("breaks", [_truncate, _tamper, _remove])
def test_a_bad_build_stops_the_start_with_exit_2(built: Built, breaks: object) -> None:
    message = breaks(built.out)  # type: ignore[operator]
    done = finish([str(built.out)])
    assert done.returncode == 2
    assert f"flagserve: error: {message}" in done.stderr or message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_directory_stops_plain_gunicorn_too(tmp_path: Path) -> None:
    done = finish([], {"FLAGSERVE_DIR": str(tmp_path / "nothing")}, command=GUNICORN)
    assert done.returncode == 2
    assert f"{tmp_path / 'nothing' / 'snapshot.json'} does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Booting worker" not in done.stderr  # the master failed, before any worker


def test_an_address_in_use_stops_the_start_with_exit_2(built: Built) -> None:
    """Another program's listener: one message and status 2, before any worker."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = finish([str(built.out), "--bind", f"127.0.0.1:{port}"])
    assert done.returncode == 2
    assert f"flagserve: error: cannot listen on 127.0.0.1:{port}:" in done.stderr
    assert "Booting worker" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_keys_file_stops_the_start(built: Built, tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text("- name: ops\n  sha256: not-a-digest\n  environments: ['*']\n")
    done = finish([str(built.out), "--api-keys", str(keys)])
    assert done.returncode == 2
    assert f"{keys}: key 1 (ops): sha256 must be 64 lowercase hexadecimal digits" in done.stderr
    missing = finish([str(built.out), "--api-keys", str(tmp_path / "none.yaml")])
    assert missing.returncode == 2
    assert "the API keys file does not exist" in missing.stderr


def test_an_unknown_default_environment_stops_the_start(built: Built) -> None:
    done = finish([str(built.out), "--default-environment", "qa"])
    assert done.returncode == 2
    assert "'qa' is not an environment of the build (development, staging, production)" in (
        done.stderr
    )


def test_every_option_takes_effect_and_beats_its_variable(built: Built, tmp_path: Path) -> None:
    port, metrics_port = free_ports()
    arguments = [
        str(built.out),
        "--bind", f"127.0.0.1:{port}",
        "--workers", "3",
        "--threads", "5",
        "--log-format", "json",
        "--api-keys", str(keys_file(tmp_path / "keys.yaml")),
        "--default-environment", "development",
        "--metrics-bind", f"127.0.0.1:{metrics_port}",
    ]  # fmt: skip
    beaten = {
        "FLAGSERVE_DIR": str(tmp_path / "elsewhere"),
        "FLAGSERVE_BIND": f"127.0.0.1:{free_port()}",
        "FLAGSERVE_WORKERS": "1",
        "FLAGSERVE_THREADS": "1",
        "FLAGSERVE_LOG_FORMAT": "text",
        "FLAGSERVE_DEFAULT_ENVIRONMENT": "production",
    }
    with running(arguments, tmp_path / "flagserve.log", beaten, port=port) as live:
        check_configured(live, metrics_port, workers_expected=3, threads_expected=5)


def test_gunicorn_settings_in_gunicorn_cmd_args_win(built: Built, tmp_path: Path) -> None:
    """flagserve runs gunicorn as `gunicorn -c python:server.gunicorn_conf` does: settings
    given in GUNICORN_CMD_ARGS beat the config module's (and so FLAGSERVE_*)."""
    env = {
        "GUNICORN_CMD_ARGS": "--workers 3 --threads 2",
        "FLAGSERVE_WORKERS": "1",
        "FLAGSERVE_LOG_FORMAT": "json",
    }
    with running([str(built.out)], tmp_path / "flagserve.log", env) as live:
        wait_until(lambda: len(workers(live.process.pid)) == 3, what="3 workers")
        [started] = [
            line["message"]
            for line in json_lines(live.log)
            if "flagserve: serving" in line["message"]
        ]
        assert "with 3 workers x 2 threads" in started


# --- the same, in this process (quick, and seen by coverage) ----------------------------------


def test_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "FLAGSERVE_DIR": "out",
            "FLAGSERVE_BIND": "[::1]:8080",
            "FLAGSERVE_WORKERS": "4",
            "FLAGSERVE_THREADS": "16",
            "FLAGSERVE_LOG_FORMAT": "json",
            "FLAGSERVE_API_KEYS": "keys.yaml",
            "FLAGSERVE_DEFAULT_ENVIRONMENT": "production",
            "FLAGSERVE_RELOAD_INTERVAL": "0.5",
            "FLAGSERVE_RELOAD_NOTIFY": "off",
            "FLAGSERVE_METRICS_BIND": "0.0.0.0:9100",
            "FLAGSERVE_HEADER_TIMEOUT": "2.5",
            "FLAGSERVE_WRITE_TIMEOUT": "7",
        }
    )
    assert settings == Settings(
        Path("out"),
        "[::1]:8080",
        4,
        16,
        "json",
        Path("keys.yaml"),
        "production",
        0.5,
        False,
        "0.0.0.0:9100",
        header_timeout=2.5,
        write_timeout=7.0,
    )
    assert Settings.from_env({"FLAGSERVE_WORKERS": "  "}) == Settings()  # blank is unset


def test_main_refuses_bad_options_before_starting_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--threads", "0"])
    assert raised.value.code == 2
    assert "argument --threads: '0' must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        main(["--bind", "127.0.0.1:1", "--metrics-bind", "127.0.0.1:1"])
    assert raised.value.code == 2
    with pytest.raises(SystemExit) as raised:
        main(["--header-timeout", "0"])
    assert raised.value.code == 2
    assert "argument --header-timeout: '0' must be more than 0" in capsys.readouterr().err


def test_hash_key_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"key-1\r\n")))
    assert main(["hash-key"]) == 0
    assert capsys.readouterr().out == digest(b"key-1") + "\n"
    assert main(["hash-key", "x"]) == 2
