"""The ``/__mock/`` routes: health, journal, scenario selection, reset and (proxy mode) violations.

Admin answers use the contract's ApiError shape for errors, carry a request id
like every other answer, and draw no randomness from the seeded generator, so a
seeded run gives the same contract bodies however often the admin API is called.
"""

from __future__ import annotations

import hmac
from typing import Any, Callable

from aiohttp import web

from . import openapi
from .answers import json_answer
from .errors import UNAUTHORISED, UNSUPPORTED_MEDIA_TYPE, ApiProblem, problem
from .http import JSON, MOCK, ClientGone, Handler, read_body, to_http
from .scenarios import UnknownScenario
from .validation import media_type_accepted, parse_json

PREFIX = "/__mock"
# Set by ``mockserver proxy``: its journal holds the contract violations of each exchange.
PROXY_MODE = web.AppKey("mockserver-proxy-mode", bool)
_LOCATIONS = ("request", "response")
ADMIN_BODY_LIMIT = 1024 * 1024
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def register(app: web.Application, admin_token: str | None = None) -> None:
    """Add every admin route; with ``admin_token`` all but health require it."""
    guard = guard_with(admin_token)

    def wrap(handler: Handler, guarded: bool) -> Handler:
        handler = json_writes(handler)
        return guard(handler) if guarded else handler

    routes: list[tuple[str, str, Handler, bool]] = [
        ("GET", "/health", health, False),
        ("GET", "/openapi.json", openapi_document, True),
        ("GET", "/requests", list_requests, True),
        ("DELETE", "/requests", clear_requests, True),
        ("GET", "/scenario", get_scenario, True),
        ("PUT", "/scenario", put_scenario, True),
        ("GET", "/scenarios", list_scenarios, True),
        ("POST", "/reset", reset, True),
        ("POST", "/events", emit_event, True),
        ("GET", "/deliveries", list_deliveries, True),
        ("GET", "/violations", list_violations, True),
    ]
    allowed: dict[str, list[str]] = {}
    for method, path, handler, guarded in routes:
        app.router.add_route(method, PREFIX + path, wrap(handler, guarded))
        allowed.setdefault(PREFIX + path, []).append(method)
    for path, methods in allowed.items():
        app.router.add_route("*", path, not_allowed(methods))


def answer(request: web.Request, status: int, value: Any) -> web.Response:
    mock = request.app[MOCK]
    return to_http(json_answer(status, value, mock.engine.unseeded_request_id()), mock.contract.request_id.header)


def failure(request: web.Request, failed: ApiProblem) -> web.Response:
    mock = request.app[MOCK]
    return to_http(mock.engine.error_response(failed), mock.contract.request_id.header)


def json_writes(handler: Handler) -> Handler:
    """An admin write that carries a body must say it is JSON.

    Browsers send ``text/plain`` and form bodies across origins without a preflight; refusing
    them is what keeps a web page from posting to the mock. A bodyless write (``curl -X POST
    .../__mock/reset``) needs no content type.
    """
    async def checked(request: web.Request) -> web.StreamResponse:
        if request.method in _WRITES and (request.content_length or request.body_exists):
            if not media_type_accepted(JSON, request.headers.get("Content-Type")):
                return failure(request, problem(415, UNSUPPORTED_MEDIA_TYPE,
                                                f"Admin requests with a body must send Content-Type: {JSON}"))
        return await handler(request)

    return checked


def guard_with(token: str | None) -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        if token is None:
            return handler

        async def guarded(request: web.Request) -> web.StreamResponse:
            sent = request.headers.get("X-Admin-Token", "")
            auth = request.headers.get("Authorization", "")
            if auth.lower().startswith("bearer "):
                sent = sent or auth[7:].strip()
            if not sent or not hmac.compare_digest(sent.encode(), token.encode()):
                return failure(request, problem(401, UNAUTHORISED,
                                                "This admin route needs the admin token (X-Admin-Token or Authorization: Bearer)."))
            return await handler(request)

        return guarded

    return wrap


def not_allowed(methods: list[str]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        listed = ", ".join(sorted(methods))
        return failure(request, problem(405, message=f"{request.method} is not allowed on {request.path}; allowed: {listed}",
                                        headers=[("Allow", listed)]))
    return handler


async def openapi_document(request: web.Request) -> web.Response:
    return answer(request, 200, openapi.document(request.app[MOCK].engine.contract))


class _BadBody(Exception):
    def __init__(self, failed: ApiProblem) -> None:
        self.failed = failed


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one; _BadBody when it is too large."""
    try:
        raw, too_large = await read_body(request, ADMIN_BODY_LIMIT, request.app[MOCK].engine.options.read_timeout_s)
    except (TimeoutError, ClientGone):
        raise _BadBody(problem(400, message="The request body did not arrive in time")) from None
    if too_large:
        raise _BadBody(problem(413, message=f"Admin request bodies are limited to {ADMIN_BODY_LIMIT} bytes"))
    ok, value = parse_json(raw)
    return value if ok and isinstance(value, dict) else None


def _reads_body(handler: Callable[[web.Request], Any]) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _BadBody as exc:
            resp = failure(request, exc.failed)
            resp.force_close()  # the rest of an oversized body is still on the wire
            return resp
    return wrapped


async def health(request: web.Request) -> web.Response:
    return answer(request, 200, {"status": "ok"})


async def list_requests(request: web.Request) -> web.Response:
    journal = request.app[MOCK].journal
    status = request.query.get("status")
    if status is not None and not (status.isascii() and status.isdigit() and len(status) == 3):
        return failure(request, problem(400, field="status", message="status must be a three-digit HTTP status"))
    entries = journal.snapshot(path=request.query.get("path"), method=request.query.get("method"),
                               status=int(status) if status else None)
    return answer(request, 200, {"requests": entries, "dropped": journal.dropped})


async def list_violations(request: web.Request) -> web.Response:
    """Proxy mode: every violation of the contract seen in the journaled exchanges, oldest first."""
    if not request.app.get(PROXY_MODE, False):
        return failure(request, problem(404, message=f"{PREFIX}/violations answers in proxy mode only "
                                                     f"(mockserver proxy --upstream URL); this server is the mock"))
    status = request.query.get("status")
    if status is not None and not (status.isascii() and status.isdigit() and len(status) == 3):
        return failure(request, problem(400, field="status", message="status must be a three-digit HTTP status"))
    location = request.query.get("location")
    if location is not None and location not in _LOCATIONS:
        return failure(request, problem(400, field="location", message="location must be request or response"))
    found = request.app[MOCK].journal.violations(path=request.query.get("path"), method=request.query.get("method"),
                                                 status=int(status) if status else None, location=location)
    return answer(request, 200, {"violations": found, "total": len(found)})


async def clear_requests(request: web.Request) -> web.Response:
    journal = request.app[MOCK].journal
    cleared = len(journal)
    journal.clear()
    return answer(request, 200, {"cleared": cleared})


async def get_scenario(request: web.Request) -> web.Response:
    return answer(request, 200, request.app[MOCK].book.state())


@_reads_body
async def put_scenario(request: web.Request) -> web.Response:
    """``{"name": NAME|null}`` server-wide, or with ``api_key``/``token`` for one client."""
    book = request.app[MOCK].book
    payload = await _json_object(request)
    if payload is None:
        return failure(request, problem(400, message='Send a JSON object such as {"name": "revoked-key"}'))
    if "name" not in payload:
        return failure(request, problem(400, message='Send a JSON object with "name" (a scenario name or null)'))
    name = payload["name"]
    unknown = set(payload) - {"name", "api_key", "token"}
    if unknown:
        return failure(request, problem(400, message=f"Unknown key(s) {sorted(unknown)}; allowed: name, api_key, token"))
    if name is not None and not isinstance(name, str):
        return failure(request, problem(400, field="name", message="name must be a string or null"))
    kind = "api_key" if "api_key" in payload else "token" if "token" in payload else None
    credential = payload.get(kind) if kind else None
    if kind and (not isinstance(credential, str) or not credential):
        return failure(request, problem(400, field=kind, message=f"{kind} must be a non-empty string"))
    if "api_key" in payload and "token" in payload:
        return failure(request, problem(400, message="Bind to api_key or token, not both"))
    try:
        book.select(name, kind, credential)
    except UnknownScenario:
        known = ", ".join(sorted(book.scenarios)) or "none loaded"
        return failure(request, problem(400, field="name", message=f"Unknown scenario {name!r}; known: {known}"))
    return answer(request, 200, book.state())


@_reads_body
async def emit_event(request: web.Request) -> web.Response:
    """``{"type": "INVOICE.CREATED", "data": {...}}``: deliver to every webhook that selects it
    (on the platform named by the tenancy header, or on every platform without one)."""
    mock = request.app[MOCK]
    payload = await _json_object(request)
    if payload is None:
        return failure(request, problem(400, message='Send a JSON object such as {"type": "INVOICE.CREATED"}'))
    if not isinstance(payload.get("type"), str):
        return failure(request, problem(400, field="type", message='Send a JSON object with "type", such as INVOICE.CREATED'))
    header = mock.engine.contract.tenancy_header
    platform = request.headers.get(header) if header else None
    try:
        result = await mock.deliveries.emit(payload["type"], payload.get("data"), platform or None)
    except RecursionError:  # within the JSON parser's nesting limit, beyond Python's stack
        return failure(request, problem(400, field="data", message="data is nested too deeply"))
    if isinstance(result, ApiProblem):
        return failure(request, result)
    return answer(request, 202, result)


async def list_deliveries(request: web.Request) -> web.Response:
    """Every recorded attempt, and each webhook's delivery line (queued, dropped, penalty box).
    A line names its tenant as the platform id or a credential's fingerprint, never the credential."""
    webhook = request.query.get("webhook_id")
    deliveries = request.app[MOCK].deliveries
    return answer(request, 200, {"deliveries": deliveries.snapshot(webhook), "webhooks": deliveries.lines(webhook)})


async def list_scenarios(request: web.Request) -> web.Response:
    return answer(request, 200, {"scenarios": request.app[MOCK].book.listing()})


async def reset(request: web.Request) -> web.Response:
    mock = request.app[MOCK]
    await mock.reset()
    return answer(request, 200, {"status": "reset", "scenario": mock.book.state()})
