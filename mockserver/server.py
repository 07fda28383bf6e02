"""Run the mock on a port: in the main loop (the CLI) or in a background thread (pytest).

Both bind the socket themselves and read the real port back, so ``port=0`` always
yields a free port without a race.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import signal
import threading
from typing import Any, Callable, TypeVar

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from .errors import problem
from .http import MOCK, loopback_host, to_http
from .mock import Mock

T = TypeVar("T")

try:  # libuv's event loop roughly halves the cost of the HTTP machinery per request
    import uvloop
except ImportError:  # not on every platform: the standard loop works the same, only slower
    uvloop = None  # type: ignore[assignment]


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed, else asyncio's default loop."""
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()

log = logging.getLogger("mockserver")
_ALL_INTERFACES = {"0.0.0.0", "::", ""}


class _MockProtocol(RequestHandler):
    """aiohttp's connection handler, answering unparseable requests in the contract's error shape.

    aiohttp answers a request it cannot parse (bad request line, oversized or
    invalid headers) with a plain-text 400 and logs a traceback. A contract mock
    must answer in the ApiError shape, with a request id, and keep quiet.
    """

    def handle_error(self, request: Any, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        mock: Mock | None = getattr(self._manager, "mock", None)
        if mock is None:
            return super().handle_error(request, status, exc, message)
        if status >= 500:
            log.error("internal error while answering a request", exc_info=exc)
            failed = problem(500)
        else:  # aiohttp's own message may quote header values, which may be credentials
            log.warning("unparseable HTTP request answered %d", status)
            failed = problem(400, message="The HTTP request could not be parsed: malformed request line "
                                          "or headers, or headers larger than the server accepts.")
        resp = to_http(mock.engine.error_response(failed), mock.contract.request_id.header)
        resp.force_close()
        return resp


class _MockServer(Server):
    mock: Mock

    def __call__(self) -> RequestHandler:
        return _MockProtocol(self, loop=self._loop, **self._kwargs)


class MockRunner(web.AppRunner):
    """An AppRunner whose connections answer parse errors as ApiError."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        if type(server) is Server:  # same object, one method more: see _MockServer
            server.__class__ = _MockServer
            server.mock = self.app[MOCK]  # type: ignore[attr-defined]
        return server


async def start_site(app: web.Application, host: str, port: int, shutdown_grace: float = 5.0,
                     idle_timeout: float = 15.0, reuse_port: bool = False) -> tuple[web.AppRunner, int]:
    """Start serving ``app``; returns the runner and the port actually bound.

    ``idle_timeout`` closes connections that send no complete request in time
    (nothing at all, or headers that stall), so they cannot pile up.
    """
    if host in _ALL_INTERFACES:
        log.warning("listening on all interfaces (%s): anyone who can reach this machine can use the mock", host or "*")
    mock = app.get(MOCK)
    if mock is not None and not mock.settings.admin_token and not loopback_host(host):
        log.warning("the admin routes (/__mock/: reset, scenarios, events) answer anyone who can reach %s; "
                    "give --admin-token TOKEN to require it", host or "*")
    runner = MockRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_grace,
                        keepalive_timeout=idle_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True, reuse_port=reuse_port or None)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, bound


def url_for(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in _ALL_INTERFACES else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


async def serve_until_signal(app: web.Application, host: str, port: int,
                             ready: Callable[[str], None], shutdown_grace: float = 5.0,
                             idle_timeout: float = 15.0, tick: Callable[[], None] | None = None,
                             reuse_port: bool = False) -> None:
    """Serve until SIGINT or SIGTERM; then refuse new connections, let in-flight requests finish.

    ``tick`` runs a few times per second (the log handler flushes its buffer there).
    """
    runner, bound = await start_site(app, host, port, shutdown_grace, idle_timeout, reuse_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ready(url_for(host, bound))
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.25)
            except asyncio.TimeoutError:
                pass
            if tick is not None:
                tick()
    finally:
        await runner.cleanup()


class ServerThread:
    """A mock served from its own thread and event loop; used once per pytest session."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0,
                 idle_timeout: float = 15.0) -> None:
        self.app = app
        self.idle_timeout = idle_timeout
        self.host = host
        self.port = port
        self.loop = new_event_loop()
        self._thread = threading.Thread(target=self._run, name="mockserver", daemon=True)
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def mock(self) -> Mock:
        return self.app[MOCK]

    @property
    def url(self) -> str:
        return url_for(self.host, self.port)

    def start(self) -> "ServerThread":
        self._thread.start()
        self._started.wait(timeout=30)
        if self._error is not None:
            raise self._error
        if not self._started.is_set():
            raise RuntimeError("mockserver did not start within 30 s")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self._runner, self.port = self.loop.run_until_complete(
                start_site(self.app, self.host, self.port, idle_timeout=self.idle_timeout))
        except BaseException as exc:  # surfaced to the thread that called start()
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()
        if self._runner is not None:
            self.loop.run_until_complete(self._runner.cleanup())
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` on the server's loop and return its result (awaited when it is a coroutine
        function): state is only touched there."""
        if inspect.iscoroutinefunction(fn):
            return asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), self.loop).result(timeout=30)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout=30)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=30)
