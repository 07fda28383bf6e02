"""The aiohttp adapter: HTTP request -> engine -> HTTP response, for the contract routes.

It holds no contract knowledge: it reads the body (bounded), turns the request into
a :class:`MockRequest`, awaits the engine, applies delays and faults, writes the answer,
logs one line and records the journal entry (unless a reset came in between), which the bus
then announces to an open dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from typing import Any, AsyncIterator

from aiohttp import web

from . import admin, dashboard
from .answers import MockResponse
from .errors import INTERNAL_ERROR, problem
from .http import MOCK, guards, incoming, to_http
from .logs import ACCESS
from .mock import Mock, build_mock
from .settings import Settings
from .state import StateUnavailable

log = logging.getLogger("mockserver")

RELOAD_INTERVAL_S = 1.0

__all__ = ["create_app", "build_mock", "MOCK", "Mock"]


def create_app(settings: Settings | None = None, *, mock: Mock | None = None, **changes: Any) -> web.Application:
    """An aiohttp Application serving the mock; hand it to ``aiohttp_client`` or any runner.

    ``changes`` are :class:`~mockserver.settings.Settings` fields (``scenarios_dir``, ``seed``,
    ``strict``, ``admin_token``, ...), applied over ``settings``; ``mock`` serves an already
    built mock instead.
    """
    if mock is None:
        mock = build_mock(settings, **changes)
    elif changes or settings is not None:
        raise TypeError("give either a built mock or settings, not both")
    app = web.Application(client_max_size=mock.engine.options.max_body_bytes,
                          middlewares=[guards(mock.settings.cors_allow_origins)]
                          + ([_state_unavailable] if mock.shared is not None else []))
    app[MOCK] = mock
    admin.register(app, mock.settings.admin_token)
    dashboard.register(app, mock.settings.admin_token)
    app.router.add_route("*", r"/{tail:[\s\S]*}", handle)
    if mock.settings.hot_reload and mock.book.directory is not None:
        app.cleanup_ctx.append(_reload_scenarios)
    app.cleanup_ctx.append(_warm_up)
    app.on_startup.append(_start)
    app.on_cleanup.append(_close)
    return app


async def _warm_up(app: web.Application) -> AsyncIterator[None]:
    """Once listening, build what the first request of each operation would otherwise build,
    one operation at a time between requests (a large document listens seconds sooner)."""
    async def run() -> None:
        for _ in app[MOCK].engine.warm_up():
            await asyncio.sleep(0)

    task = asyncio.create_task(run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


UNAVAILABLE_MESSAGE = "The mock's state store is unreachable; try again shortly."
_UNAVAILABLE_LOG_EVERY_S = 5.0
_unavailable_logged = [0.0]


@web.middleware
async def _state_unavailable(request: web.Request, handler: Any) -> web.StreamResponse:
    """A lost state store is a 503 in the contract's error shape, for contract and admin routes
    alike, once the store's bounded wait is over; one log line every few seconds, no traceback.
    Nothing was acknowledged, so a client that retries loses nothing."""
    try:
        return await handler(request)
    except StateUnavailable as exc:
        now = time.monotonic()
        if now - _unavailable_logged[0] >= _UNAVAILABLE_LOG_EVERY_S:
            _unavailable_logged[0] = now
            log.warning("answering 503: %s", exc)
        mock = request.app[MOCK]
        return to_http(mock.engine.error_response(problem(503, INTERNAL_ERROR, UNAVAILABLE_MESSAGE)),
                       mock.contract.request_id.header)


async def _start(app: web.Application) -> None:
    app[MOCK].deliveries.start()


async def _close(app: web.Application) -> None:
    await app[MOCK].close()


async def handle(request: web.Request) -> web.StreamResponse:
    """Every contract request goes through here."""
    mock = request.app[MOCK]
    header = mock.contract.request_id.header
    generation = mock.epoch.value
    started = time.perf_counter()
    received_at = time.time()
    req = await incoming(request, mock, generation)
    if isinstance(req, web.Response):
        return req
    try:
        resp = await mock.engine.handle(req)
    except StateUnavailable:
        raise
    except Exception:  # a bug of ours must not take the server down or show a traceback
        log.exception("internal error while answering %s %s", req.method, req.path)
        resp = mock.engine.error_response(problem(500))
    if req.body_too_large:  # the rest of the body is still on the wire: do not reuse the connection
        resp.close = True
    if resp.delay_ms:
        await asyncio.sleep(resp.delay_ms / 1000)
    duration_ms = (time.perf_counter() - started) * 1000
    if mock.epoch.current(generation):  # a reset in between: this request belongs to no one now
        # A dropped connection has no status: the journal names the fault instead.
        recorded = dataclasses.replace(resp, status=None) if resp.fault == "reset" else resp
        rec = await mock.journal.record(req, recorded, received_at, duration_ms)
        if mock.bus.listening:  # a dashboard is open: only then is the event worth building
            _announce(mock, rec, recorded)
    if ACCESS.enabled():
        shown = "-" if resp.fault == "reset" else resp.status
        ACCESS.line(f"{req.method} {req.path} {shown} {duration_ms:.1f}ms {resp.request_id}{_what_answered(resp)}")
    if resp.fault == "reset":
        return _reset(request)
    return to_http(resp, header)


def _announce(mock: Mock, rec: Any, resp: MockResponse) -> None:
    try:
        mock.bus.publish("request", dashboard.request_event(mock, rec, resp))
    except Exception:  # the dashboard must never cost a request its answer
        log.exception("could not publish the request event")


def _what_answered(resp: MockResponse) -> str:
    if resp.scenario is None:
        return ""
    return f" scenario={resp.scenario} rule={resp.rule}" + (f" fault={resp.fault}" if resp.fault else "")


def _reset(request: web.Request) -> web.StreamResponse:
    """Drop the connection without an answer, as a crashed upstream would."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError()


async def _reload_scenarios(app: web.Application) -> AsyncIterator[None]:
    book = app[MOCK].book

    async def poll() -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL_S)
            try:
                await book.refresh()
            except Exception:  # never let a reload problem stop the server
                log.exception("scenario reload failed")

    task = asyncio.create_task(poll())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
