"""compiler.beside: a function run in a forked process gives what it gives in this one,
its exception is raised here, a child that dies is an OSError, and a cancelled one stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from compiler.beside import Beside, can_fork


@pytest.fixture
def forking() -> None:
    """Decided when the test runs: a thread another test left running (flagserve's reload
    poller) makes this process one that never forks."""
    if not can_fork():
        pytest.skip("this process would not fork: one CPU, or another thread runs")


several_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU")


def pid_and(value: int) -> tuple[int, int]:
    return os.getpid(), value * 2


def fails(message: str) -> None:
    raise ValueError(message)


def dies() -> None:
    os._exit(3)


def sleeps(marker: Path) -> None:
    marker.write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(60)


@pytest.mark.usefixtures("forking")
def test_the_function_runs_in_another_process_and_its_value_comes_back() -> None:
    beside = Beside(pid_and, 21)
    assert beside.forked
    pid, value = beside.result()
    assert (pid != os.getpid(), value) == (True, 42)


def test_without_fork_the_function_runs_here_when_the_result_is_asked_for() -> None:
    calls: list[int] = []
    beside = Beside(calls.append, 1, fork=False)
    assert (beside.forked, calls) == (False, [])
    assert beside.result() is None
    assert calls == [1]


@pytest.mark.parametrize("fork", [True, False])
def test_the_functions_exception_is_raised_here(fork: bool) -> None:
    with pytest.raises(ValueError, match=r"^no history$"):
        Beside(fails, "no history", fork=fork).result()


def tells_then(gate: Path, then: str, tell: Callable[[str], None]) -> str:
    """Tell twice, then wait for `gate` to exist (a forked child's parent makes it once
    told), then return `then`, raise it as a ValueError, or die."""
    tell(f"told by {os.getpid()}")
    tell("and again")
    deadline = time.monotonic() + 10
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    if then == "raise":
        raise ValueError("after telling")
    if then == "die":
        os._exit(3)
    return then


def never_tells(tell: Callable[[str], None]) -> int:
    return 7


@pytest.mark.usefixtures("forking")
def test_a_forked_function_is_heard_telling_before_it_returns(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    beside = Beside(tells_then, gate, "done", telling=True)
    told = beside.told()  # the child waits for the gate: the words came before its value
    assert told != f"told by {os.getpid()}" and told.startswith("told by ")
    assert beside.told() == "and again"
    gate.touch()
    assert (beside.told(), beside.result()) == (None, "done")


def tells_much_then_goes_on(mark: Path, tell: Callable[[object], None]) -> int:
    """Tell more than a pipe holds, then leave `mark`: what the parent does not read yet
    must not keep the function from going on."""
    tell({"history": "x" * (4 << 20)})
    mark.touch()
    return 3


@pytest.mark.usefixtures("forking")
def test_a_forked_function_goes_on_while_what_it_told_is_not_read(tmp_path: Path) -> None:
    mark = tmp_path / "went on"
    beside = Beside(tells_much_then_goes_on, mark, telling=True)
    deadline = time.monotonic() + 10
    while not mark.exists() and time.monotonic() < deadline:  # nothing read meanwhile
        time.sleep(0.01)
    assert mark.exists()
    assert (beside.told(), beside.told(), beside.result()) == (
        {"history": "x" * (4 << 20)},
        None,
        3,
    )


def test_without_fork_what_was_told_is_known_once_the_function_returned(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.touch()
    beside = Beside(tells_then, gate, "done", fork=False, telling=True)
    assert [beside.told(), beside.told(), beside.told()] == [
        f"told by {os.getpid()}",
        "and again",
        None,
    ]
    assert beside.result() == "done"


@pytest.mark.parametrize("fork", [True, False])
def test_a_function_that_tells_nothing_is_told_none_and_answers(fork: bool) -> None:
    beside = Beside(never_tells, fork=fork, telling=True)
    assert (beside.told(), beside.result()) == (None, 7)


@pytest.mark.parametrize(
    ("fork", "then", "raised"),
    [(True, "raise", ValueError), (False, "raise", ValueError), (True, "die", OSError)],
)
def test_what_happens_after_telling_is_raised_by_result(
    tmp_path: Path, fork: bool, then: str, raised: type[Exception]
) -> None:
    if then == "die" and not can_fork():
        pytest.skip("this process would not fork: one CPU, or another thread runs")
    gate = tmp_path / "gate"
    if not fork:
        gate.touch()
    beside = Beside(tells_then, gate, then, fork=fork, telling=True)
    assert beside.told() is not None  # the second word is not asked for: `result` skips it
    gate.touch()
    with pytest.raises(raised):
        beside.result()
    beside.cancel()  # nothing left to stop


@pytest.mark.usefixtures("forking")
def test_a_child_that_dies_without_answering_is_an_os_error() -> None:
    with pytest.raises(OSError, match=r"stopped \(exit code 3\)"):
        Beside(dies).result()


@pytest.mark.usefixtures("forking")
def test_cancel_stops_the_child(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    beside = Beside(sleeps, marker)
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    pid = int(marker.read_text(encoding="utf-8"))
    started = time.monotonic()
    beside.cancel()
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


KILLED = """
import os, signal, sys, time
from pathlib import Path
from compiler.beside import Beside

def sleeps(marker):
    Path(marker + ".tmp").write_text(str(os.getpid()))
    os.rename(marker + ".tmp", marker)  # whole when it is there: the parent reads it killed
    time.sleep(60)

beside = Beside(sleeps, sys.argv[1])
while not Path(sys.argv[1]).exists():
    time.sleep(0.01)
os.kill(os.getpid(), signal.SIGKILL)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited: only its parent has not reaped it


@several_cpus  # in a fresh interpreter, which forks
def test_a_child_dies_with_its_parent(tmp_path: Path) -> None:
    """A build killed with SIGKILL leaves nothing running that holds OUT's lock."""
    marker = tmp_path / "pid"
    done = subprocess.run([sys.executable, "-c", KILLED, str(marker)], check=False, timeout=60)
    assert done.returncode == -signal.SIGKILL
    pid = int(marker.read_text(encoding="utf-8"))
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def test_no_fork_while_another_thread_runs() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not can_fork()
        assert not Beside(pid_and, 1).forked
    finally:
        stop.set()
        thread.join()
