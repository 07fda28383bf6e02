"""What every aiohttp route of the mock shares: the app key of the mock, writing an answer,
reading a bounded body, and the guards that keep a browser page from driving the mock.

``app.py`` (contract routes) and ``admin.py`` (``/__mock/``) both build on this module, and
neither imports the other's internals.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
from typing import Any, Awaitable, Callable

from aiohttp import web

from .answers import MockResponse
from .engine import MockRequest
from .errors import problem
from .mock import Mock

log = logging.getLogger("mockserver")

MOCK = web.AppKey("mockserver", Mock)
JSON = "application/json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def to_http(resp: MockResponse, request_id_header: str) -> web.Response:
    """The one place a plain answer becomes an HTTP response."""
    out = web.Response(status=resp.status, body=resp.body)
    if resp.content_type is not None:
        out.headers["Content-Type"] = resp.content_type
    out.headers[request_id_header] = resp.request_id
    for name, value in resp.headers:
        out.headers[name] = value
    if resp.close:
        out.force_close()
    return out


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
            body = await read_up_to(content, limit)
            return (b"", True) if body is None else (body, False)
    except web.HTTPRequestEntityTooLarge:  # aiohttp stops reading at client_max_size
        return b"", True
    except TimeoutError:
        raise
    except Exception as exc:  # aiohttp raises several payload/connection errors here
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ClientGone() from exc
        raise


async def read_up_to(content: Any, limit: int) -> bytes | None:
    """The whole stream, or None once it is longer than ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


# ---------------------------------------------------------------- browser guards

_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


@functools.lru_cache(maxsize=256)  # asked on every request, of a handful of values
def loopback_host(host: str) -> bool:
    """True for a Host value (without port) naming this machine: localhost names and loopback addresses."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> str:
    """The host part of a Host header value (``[::1]:8080`` -> ``[::1]``, ``a:1`` -> ``a``)."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        return value[:end + 1] if end >= 0 else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def bound_to_loopback(request: web.Request) -> bool:
    """True when the connection arrived on a loopback address of this machine."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not sockname:
        return False
    return _loopback_address(sockname[0])


@functools.lru_cache(maxsize=64)
def _loopback_address(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address in ("", socket.gethostname())


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}".lower()


def guards(cors_allow_origins: tuple[str, ...]) -> Any:
    """Middleware that keeps web pages from driving the mock (CSRF and DNS rebinding).

    * On a loopback connection, the Host must name this machine: a page on another name
      that resolves to 127.0.0.1 (DNS rebinding) is refused before it can read anything.
    * A request with an Origin that is not the mock's own is refused, unless the origin is
      allowed (``--cors-allow-origin``); allowed origins also get their preflights answered
      and the CORS headers that let their pages read the answers.
    """
    allowed = frozenset(cors_allow_origins)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        mock = request.app[MOCK]
        host = request.headers.get("Host")
        if host is not None and not loopback_host(split_host(host)) and bound_to_loopback(request):
            return refuse(mock, f"Host {split_host(host)!r} is not a name of this machine; the mock listens on "
                                f"loopback and answers only localhost names and loopback addresses "
                                f"(a guard against DNS rebinding)")
        origin = request.headers.get("Origin")
        if origin is None:
            # Browsers send no Origin on simple cross-site GETs (images, scripts), but they do
            # say where the request comes from; only a top-level navigation may come from elsewhere.
            site = request.headers.get("Sec-Fetch-Site")
            if site in ("cross-site", "same-site") and not (
                    request.method == "GET" and request.headers.get("Sec-Fetch-Mode") == "navigate"):
                return refuse(mock, f"Requests made by web pages of other sites ({site}) are refused; allow a "
                                    f"page's origin with --cors-allow-origin ORIGIN")
            return await handler(request)
        origin = origin.rstrip("/").lower()
        cross = origin not in allowed and origin != own_origin(request)
        if cross:
            return refuse(mock, f"Requests from web pages of origin {origin!r} are refused; allow one with "
                                f"--cors-allow-origin ORIGIN")
        if origin not in allowed:
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            out = web.Response(status=204)
            out.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            requested = request.headers.get("Access-Control-Request-Headers")
            if requested:
                out.headers["Access-Control-Allow-Headers"] = requested
            out.headers["Access-Control-Max-Age"] = "600"
        else:
            out = await handler(request)
        out.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
        out.headers["Access-Control-Expose-Headers"] = mock.contract.request_id.header
        out.headers["Vary"] = "Origin"
        return out

    return guard


def refuse(mock: Mock, message: str) -> web.Response:
    """403 in the contract's error shape, drawing nothing from the seeded sequence."""
    return to_http(mock.engine.error_response(problem(403, message=message)), mock.contract.request_id.header)


def query_values(pairs: Any) -> dict[str, str]:
    """The query as name -> value; a repeated name (``tags=a&tags=b``, an exploded array)
    arrives joined by commas, the way an array that is not exploded is written."""
    out: dict[str, str] = {}
    for name, value in pairs.items():
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


async def incoming(request: web.Request, mock: Mock, generation: int) -> MockRequest | web.Response:
    """The request as plain data with its body read (bounded), or the answer when the body
    never arrives whole: a 400 in the contract's shape for a body that stalls, a bare 400
    for a client that went away."""
    options = mock.engine.options
    try:
        body, too_large = await read_body(request, options.max_body_bytes, options.read_timeout_s)
    except TimeoutError:
        resp = mock.engine.error_response(problem(
            400, message=f"The request body did not arrive within {options.read_timeout_s:g} s"))
        resp.close = True
        return to_http(resp, mock.contract.request_id.header)
    except ClientGone:
        log.debug("client disconnected before sending its whole request; nothing recorded")
        return web.Response(status=400)
    return MockRequest(
        method=request.method,
        path=request.rel_url.raw_path,  # still percent-encoded: routing, logs and journal see what was sent
        query=query_values(request.query),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        body_too_large=too_large,
        generation=generation,
    )
