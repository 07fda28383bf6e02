"""The aiohttp adapter: HTTP request -> engine -> HTTP response. The only code that speaks HTTP.

It holds no contract knowledge: it reads the body (bounded), turns the request into
a :class:`MockRequest`, hands it to the engine, applies delays and faults, writes
the answer, logs one line and records the journal entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterable

from aiohttp import web

from .contract import Contract, load_contract
from .engine import Engine, MockRequest, MockResponse, Options, dump
from .errors import ApiProblem, problem
from .generation import Generator, unseeded_token
from .journal import DEFAULT_LIMIT, Journal
from .lifecycle import Deliveries, install
from .logs import ACCESS
from .scenarios import ScenarioBook, load_scenarios

log = logging.getLogger("mockserver")

JSON = "application/json"
RELOAD_INTERVAL_S = 1.0


@dataclass
class Mock:
    """Everything one running mock holds; shared by the adapter, the admin API and the plugin."""

    engine: Engine
    journal: Journal
    deliveries: Deliveries

    @property
    def book(self) -> ScenarioBook:
        return self.engine.book

    def reset(self) -> None:
        """Back to the start-up state: journal, counters, bindings, run-time scenario, stored resources."""
        self.journal.clear()
        self.book.reset()
        self.engine.store.clear()
        self.deliveries.reset()


MOCK = web.AppKey("mockserver", Mock)


def build_mock(spec_dir: Path | str | None = None, scenarios_dir: Path | str | None = None,
               scenario: str | None = None, seed: int | None = None, strict: bool = False,
               max_body_bytes: int = 1024 * 1024, journal_limit: int = DEFAULT_LIMIT,
               contract: Contract | None = None, read_timeout_s: float = 10.0,
               delivery_timeout_s: float = 10.0, fast_retries: bool = False,
               delivery_allowed_hosts: Iterable[str] = (), store_limit: int = 10_000,
               api_keys: Iterable[str] | None = None) -> Mock:
    """Load, check and compile everything; raises LoadError/LoadErrors before anything listens."""
    contract = contract or load_contract(spec_dir)
    scenarios = load_scenarios(scenarios_dir, contract)
    book = ScenarioBook(scenarios, default=scenario,
                        directory=Path(scenarios_dir) if scenarios_dir else None, contract=contract)
    engine = Engine(contract, book, Generator(seed), Options(strict=strict, max_body_bytes=max_body_bytes,
                                                                 read_timeout_s=read_timeout_s, store_limit=store_limit,
                                                                 api_keys=frozenset(api_keys) if api_keys else None))
    secret_headers = {s.header for op in contract.operations for s in op.security}
    journal = Journal(journal_limit, contract.write_only_fields(), secret_headers)
    deliveries = Deliveries(engine, delivery_timeout_s, fast_retries, delivery_allowed_hosts, journal_limit)
    install(engine, deliveries)
    return Mock(engine, journal, deliveries)


def create_app(spec_dir: Path | str | None = None, scenarios_dir: Path | str | None = None, *,
               admin_token: str | None = None, hot_reload: bool = True, mock: Mock | None = None,
               **settings: Any) -> web.Application:
    """An aiohttp Application serving the mock; hand it to ``aiohttp_client`` or any runner.

    ``settings`` are those of :func:`build_mock` (scenario, seed, strict, limits, timeouts, ...);
    ``mock`` serves an already built mock instead.
    """
    from . import admin

    mock = mock or build_mock(spec_dir, scenarios_dir, **settings)
    app = web.Application(client_max_size=mock.engine.options.max_body_bytes)
    app[MOCK] = mock
    admin.register(app, admin_token)
    app.router.add_route("*", r"/{tail:[\s\S]*}", handle)
    if hot_reload and mock.book.directory is not None:
        app.cleanup_ctx.append(_reload_scenarios)
    app.on_cleanup.append(_close_deliveries)
    return app


async def _close_deliveries(app: web.Application) -> None:
    await app[MOCK].deliveries.close()


async def handle(request: web.Request) -> web.StreamResponse:
    """Every contract request goes through here."""
    mock = request.app[MOCK]
    options = mock.engine.options
    started = time.perf_counter()
    received_at = time.time()
    try:
        body, too_large = await read_body(request, options.max_body_bytes, options.read_timeout_s)
    except TimeoutError:
        return _closing(mock_error_response(mock, problem(
            400, message=f"The request body did not arrive within {options.read_timeout_s:g} s")))
    except ClientGone:
        log.debug("client disconnected before sending its whole request; nothing recorded")
        return web.Response(status=400)
    req = MockRequest(
        method=request.method,
        path=request.rel_url.raw_path,  # still percent-encoded: routing, logs and journal see what was sent
        query={k: v for k, v in request.query.items()},
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        body_too_large=too_large,
    )
    try:
        resp = mock.engine.handle(req)
        if resp.pending is not None:  # an action that talks to the network (deliveries)
            resp = mock.engine.complete(resp, await resp.pending)
    except Exception:  # a bug of ours must not take the server down or show a traceback
        log.exception("internal error while answering %s %s", req.method, req.path)
        resp = mock.engine.error_response(problem(500))
    if too_large:  # the rest of the body is still on the wire: do not reuse the connection
        resp.close = True
    if resp.delay_ms:
        await asyncio.sleep(resp.delay_ms / 1000)
    duration_ms = (time.perf_counter() - started) * 1000
    mock.journal.record(req, resp, received_at, duration_ms)
    if ACCESS.enabled():
        ACCESS.line(f"{req.method} {req.path} {resp.status} {duration_ms:.1f}ms {resp.request_id}{_what_answered(resp)}")
    if resp.fault == "reset":
        return _reset(request)
    return to_http(resp, mock.engine.contract.request_id.header)


def _what_answered(resp: MockResponse) -> str:
    if resp.scenario is None:
        return ""
    return f" scenario={resp.scenario} rule={resp.rule}" + (f" fault={resp.fault}" if resp.fault else "")


def _closing(resp: web.Response) -> web.Response:
    resp.force_close()
    return resp


def to_http(resp: MockResponse, request_id_header: str) -> web.Response:
    out = web.Response(status=resp.status, body=resp.body)
    out.headers["Content-Type"] = JSON
    out.headers[request_id_header] = resp.request_id
    for name, value in resp.headers:
        out.headers[name] = value
    if resp.close:
        out.force_close()
    return out


def _reset(request: web.Request) -> web.StreamResponse:
    """Drop the connection without an answer, as a crashed upstream would."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise asyncio.CancelledError()


class ClientGone(Exception):
    """The client went away before its request was complete."""


async def read_body(request: web.Request, limit: int, timeout_s: float | None = None) -> tuple[bytes, bool]:
    """The body, or (b'', True) as soon as it is known to exceed ``limit``; never reads past it.

    Raises TimeoutError when the body does not arrive within ``timeout_s``, and
    ClientGone when the connection drops halfway.
    """
    if request.content_length is not None and request.content_length > limit:
        return b"", True
    if not request.can_read_body:
        return b"", False
    content = request.content
    try:
        if content.is_eof():  # already received whole (the common case): take it, no timer needed
            body = content.read_nowait(-1)
            return (b"", True) if len(body) > limit else (body, False)
        async with asyncio.timeout(timeout_s):
            return await request.read(), False
    except web.HTTPRequestEntityTooLarge:  # aiohttp stops reading at client_max_size
        return b"", True
    except TimeoutError:
        raise
    except Exception as exc:  # aiohttp raises several payload/connection errors here
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ClientGone() from exc
        raise


async def _reload_scenarios(app: web.Application) -> AsyncIterator[None]:
    book = app[MOCK].book

    async def poll() -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL_S)
            try:
                book.refresh()
            except Exception:  # never let a reload problem stop the server
                log.exception("scenario reload failed")

    task = asyncio.create_task(poll())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def mock_error_response(mock: Mock, failed: ApiProblem) -> web.Response:
    """An ApiError answer that draws nothing from the seeded generator (admin, transport errors)."""
    rid = mock.engine.contract.request_id
    out = json_response(failed.status, failed.body(), rid.header, unseeded_token(rid.prefix, rid.length))
    for name, value in failed.headers:
        out.headers[name] = value
    return out


def json_response(status: int, value: Any, request_id_header: str, request_id: str) -> web.Response:
    out = web.Response(status=status, body=dump(value))
    out.headers["Content-Type"] = JSON
    out.headers[request_id_header] = request_id
    return out
