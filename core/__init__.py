"""gitflags' core: what the compiler (`compiler/`) and the server (`server/`) both need, and
nothing of either.

The file formats and their schemas (`model`, `schemas`), the build directory's layout and
reading (`layout`, `regular`, `snapshot`), the canonical bytes and digest (`canonical`),
resolution and the dependency graph (`resolve`, `graph`), flagd's documents (`flagd`), a
build's verification (`verify`), and the response bodies of a snapshot with the list of a
build's GET documents (`bodies`, `paging`, `flag_bodies`, `audit_bodies`, `documents`).

The rule (tests/test_layers.py): `core` imports neither `compiler` nor `server`; those two
import `core` and never each other. Nothing here imports git, Falcon or gunicorn.
"""
