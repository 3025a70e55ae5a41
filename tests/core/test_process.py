"""core.process: the cyclic collector paused for a run, and resumed after it unless the
process ends at once (`flagc`, whose first collection would only walk what it leaves);
what such a process keeps is left to its end, never freed; what a process frees is given
back to the kernel when asked."""

from __future__ import annotations

import subprocess
import sys

import pytest

PAUSED = """
import gc
from core.process import collector_paused, ending_at_once, going_on
if {ending}:
    ending_at_once()
if {going_on}:
    going_on()
with collector_paused():
    print(gc.isenabled())
print(gc.isenabled())
"""

# flagc's own entry point, with a command that pauses the collector as a run does
FLAGC = """
import gc
from compiler import cli
from core.process import collector_paused
def main():
    with collector_paused():
        pass
    print(gc.isenabled())
    return 0
cli.main = main
cli.run()
"""


@pytest.mark.parametrize(
    ("ending", "going_on", "after"),
    [(False, False, "True"), (True, False, "False"), (True, True, "True")],
    ids=["goes on", "ends at once", "ends at once, then goes on (flagc watch)"],
)
def test_the_collector_is_resumed_unless_the_process_ends_at_once(
    ending: bool, going_on: bool, after: str
) -> None:
    script = PAUSED.format(ending=ending, going_on=going_on)
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True
    )
    assert done.stdout.split() == ["False", after], done.stderr


def test_flagc_ends_at_once_without_resuming_the_collector() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FLAGC], check=False, capture_output=True, text=True
    )
    assert (done.returncode, done.stdout.split()) == (0, ["False"]), done.stderr


KEPT = """
import weakref
from core.process import ending_at_once, going_on, keep
class Build:
    pass
if {ending}:
    ending_at_once()
if {going_on}:
    going_on()
build = Build()
alive = weakref.ref(build)
keep(build)
del build
print(alive() is not None)
"""


@pytest.mark.parametrize(
    ("ending", "going_on"),
    [(False, False), (True, False), (True, True)],
    ids=["goes on", "ends at once", "ends at once, then goes on (flagc watch)"],
)
def test_what_is_kept_outlives_its_last_name_only_when_the_process_ends_at_once(
    ending: bool, going_on: bool
) -> None:
    script = KEPT.format(ending=ending, going_on=going_on)
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True
    )
    assert done.stdout.split() == [str(ending and not going_on)], done.stderr


# 200 MB of objects the C library allocates (2 KB each), freed but for one in a hundred,
# which keeps the heap from shrinking by itself at its top.
FREED = """
from core.process import give_back_freed
def resident():
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * 4096 // 2**20
held = [bytes(2048) + bytes([n % 251]) for n in range(100_000)]
kept = held[::100]
del held
before = resident()
print(give_back_freed(), before - resident())
"""


def test_what_a_process_freed_is_given_back_to_the_kernel() -> None:
    done = subprocess.run([sys.executable, "-c", FREED], capture_output=True, text=True, check=True)
    could, given_back = done.stdout.split()
    assert could == "True"  # glibc, as here
    assert int(given_back) > 100  # MB
