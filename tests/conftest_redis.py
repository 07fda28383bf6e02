"""Fixtures for tests against a real Redis server (see ``redis_server.py`` for where it comes from).

One server per test process (so one per pytest-xdist worker), started on first use and stopped
at the end of the session; every test gets its own key prefix on it, so tests never see each
other's keys. Load it from ``conftest.py`` with ``pytest_plugins = [..., "conftest_redis"]``,
or import the fixtures into a test module.
"""

from __future__ import annotations

import atexit
import uuid
from typing import Iterator

import pytest

from redis_server import RedisServer, ServerNotFound

_server: RedisServer | None = None


def shared_server() -> RedisServer:
    """This process's server, started on first use. A singleton rather than only a fixture's
    value: a session fixture imported into two modules is two fixtures, and would start two."""
    global _server
    if _server is None:
        try:
            server = RedisServer()
        except ServerNotFound as exc:
            pytest.fail(str(exc), pytrace=False)
        _server = server.start()
        atexit.register(server.close)  # the session's end closes it; this covers an interrupted run
    return _server


def _close_shared() -> None:
    global _server
    if _server is not None:
        _server.close()
        _server = None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The process's real server (do not stop it: use ``RedisServer()`` for a private one)."""
    yield shared_server()
    _close_shared()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:PORT/0`` of the session's server."""
    return redis_server.url


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"
