"""The attacks of issue 12 kept as regression tests; the server's fixtures (real builds in
real git repositories, a Falcon test client, a real flagserve) are the same as tests/server's."""

from tests.server.conftest import built, client, live, store

__all__ = ["built", "client", "live", "store"]
