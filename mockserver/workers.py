"""``mockserver serve --workers N``: N processes serving one port, sharing state through ``--state``.

Each worker is an ordinary ``mockserver serve`` process that binds the port with SO_REUSEPORT,
so the kernel spreads connections over them and no process forwards another's traffic. This
process only supervises: it holds the port (bound, never listening, so it takes no connections
and ``--port 0`` names one port for all), starts the workers, prints the start-up line once
every one of them listens, starts another when one dies, and passes SIGTERM and SIGINT on,
so that a stop is as graceful as with one process.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Iterator, Sequence, TextIO

from .settings import STATE_VARIABLE
from .server import url_for

log = logging.getLogger("mockserver")

START_TIMEOUT_S = 60.0
RESTART_PAUSE_S = 1.0


def reserve(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with SO_REUSEPORT (port 0: a free one), not listening."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class _Worker:
    def __init__(self, index: int, argv: list[str], environment: dict[str, str] | None,
                 seeds: Iterator[int] | None = None) -> None:
        self.index = index
        self.argv = argv
        self.environment = environment
        # The same seed in two processes would hand out the same ids, so a worker started again
        # after one died gets one no worker had.
        self.seeds = seeds
        self.process: subprocess.Popen[str] | None = None
        self.url: str | None = None
        self.ready = threading.Event()

    def start(self) -> None:
        self.ready.clear()
        self.url = None
        seed = ["--seed", str(next(self.seeds))] if self.seeds is not None else []
        self.process = subprocess.Popen([sys.executable, "-m", "mockserver", *self.argv, *seed],
                                        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, bufsize=1,
                                        env=self.environment)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:  # the start-up line, then nothing: drained so a print never blocks
            if line.startswith("listening on ") and self.url is None:
                self.url = line.split(" ", 2)[2].strip()
                self.ready.set()
        self.ready.set()  # ended without listening: the waiter looks at the exit status

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)


def supervise(serve_argv: Sequence[str], host: str, port: int, workers: int, seed: int | None,
              shutdown_grace: float, out: TextIO, err: TextIO, state: str | None = None) -> int:
    """Run ``workers`` copies of ``mockserver serve`` (``serve_argv``: its options) on one port
    until SIGTERM or SIGINT; returns the exit status. The state store's URL reaches them in
    the environment, never in their arguments, where any user of the machine could read a password."""
    serve_argv = _without_state(serve_argv)
    environment = {**os.environ, STATE_VARIABLE: state} if state else None
    try:
        held = reserve(host, port)
    except OSError as exc:
        print(f"mockserver: error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=err)
        return 1
    bound = held.getsockname()[1]
    crew = []
    for index in range(workers):
        argv = ["serve", *serve_argv, "--port", str(bound), "--workers", "1", "--reuse-port"]
        seeds = itertools.count(seed + index, workers) if seed is not None else None
        crew.append(_Worker(index, argv, environment, seeds))
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        stopping.set()
        for worker in crew:
            worker.signal(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for worker in crew:
            worker.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        for worker in crew:
            worker.ready.wait(max(0.0, deadline - time.monotonic()))
            if worker.url is None:
                status = worker.process.poll() if worker.process else None
                stop(signal.SIGTERM, None)
                _wait_all(crew, shutdown_grace)
                if status is None:
                    print(f"mockserver: error: worker {worker.index} did not start within {START_TIMEOUT_S:g} s",
                          file=err)
                    return 1
                return status or 1
        print(f"listening on {url_for(host, bound)} ({workers} workers, pids "
              f"{' '.join(str(w.process.pid) for w in crew if w.process)})", file=out, flush=True)
        while not stopping.is_set():
            stopping.wait(0.25)
            for worker in crew:
                code = worker.process.poll() if worker.process else None
                if code is not None and not stopping.is_set():
                    print(f"mockserver: worker {worker.index} (pid {worker.process.pid}) exited with status "
                          f"{code}; starting another", file=err, flush=True)
                    time.sleep(RESTART_PAUSE_S)
                    if not stopping.is_set():
                        worker.start()
        return _wait_all(crew, shutdown_grace)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        held.close()


def _without_state(argv: Sequence[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--state":
            skip = True
        elif not arg.startswith("--state="):
            out.append(arg)
    return out


def _wait_all(crew: list[_Worker], grace: float) -> int:
    """Wait for every worker to stop (they were signalled); kill one that overstays. The status
    is the first non-zero one, else 0."""
    deadline = time.monotonic() + grace + 5.0
    status = 0
    for worker in crew:
        if worker.process is None:
            continue
        try:
            code = worker.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            code = worker.process.wait()
        if code not in (0, -signal.SIGTERM, -signal.SIGINT) and status == 0:
            status = code if code > 0 else 1
    return status

