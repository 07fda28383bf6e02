"""The ``/__mock/`` routes: health, journal, scenarios (chosen, and added at run time), reset
and (proxy mode) violations.

Admin answers use the contract's ApiError shape for errors, carry a request id
like every other answer, and draw no randomness from the seeded generator, so a
seeded run gives the same contract bodies however often the admin API is called.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any, Callable, Collection, Iterable

from aiohttp import web

from . import openapi
from .answers import json_answer
from .errors import UNAUTHORISED, UNSUPPORTED_MEDIA_TYPE, ApiProblem, LoadError, problem
from .http import JSON, MOCK, ClientGone, Handler, read_body, to_http
from .scenarios import RUNTIME, NameTaken, ScriptChecker, UnknownScenario, invalid_name, load_scenario_text
from .validation import media_type_accepted, parse_json

PREFIX = "/__mock"
# Set by ``mockserver proxy``: its journal holds the contract violations of each exchange.
PROXY_MODE = web.AppKey("mockserver-proxy-mode", bool)
_LOCATIONS = ("request", "response")
ADMIN_BODY_LIMIT = 1024 * 1024
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A scenario may be put in the format of its file. None of these is a type a browser sends
# across origins without a preflight, so accepting them keeps what json_writes protects.
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
_TAKES_YAML = frozenset({("PUT", "/scenarios/{name}")})


def register(app: web.Application, admin_token: str | None = None) -> None:
    """Add every admin route; with ``admin_token`` all but health require it."""
    routes: list[tuple[str, str, Handler, bool]] = [
        ("GET", "/health", health, False),
        ("GET", "/openapi.json", openapi_document, True),
        ("GET", "/requests", list_requests, True),
        ("DELETE", "/requests", clear_requests, True),
        ("GET", "/scenario", get_scenario, True),
        ("PUT", "/scenario", put_scenario, True),
        ("GET", "/scenarios", list_scenarios, True),
        ("GET", "/scenarios/{name}", get_named_scenario, True),
        ("PUT", "/scenarios/{name}", put_named_scenario, True),
        ("DELETE", "/scenarios/{name}", delete_named_scenario, True),
        ("POST", "/reset", reset, True),
        ("POST", "/events", emit_event, True),
        ("GET", "/deliveries", list_deliveries, True),
        ("GET", "/violations", list_violations, True),
    ]
    add_routes(app, routes, admin_token)


def add_routes(app: web.Application, routes: Iterable[tuple[str, str, Handler, bool]],
               admin_token: str | None) -> None:
    """Routes under ``/__mock`` as (method, path, handler, guarded): writes must say they send
    JSON (YAML too where a route takes it), a guarded route needs ``admin_token``, and a
    method a path does not list is a 405 naming the ones it does."""
    guard = guard_with(admin_token)
    allowed: dict[str, list[str]] = {}
    for method, path, handler, guarded in routes:
        handler = json_writes(handler, YAML_TYPES if (method, path) in _TAKES_YAML else ())
        app.router.add_route(method, PREFIX + path, guard(handler) if guarded else handler)
        allowed.setdefault(PREFIX + path, []).append(method)
    for path, methods in allowed.items():
        app.router.add_route("*", path, not_allowed(methods))


def answer(request: web.Request, status: int, value: Any) -> web.Response:
    mock = request.app[MOCK]
    return to_http(json_answer(status, value, mock.engine.unseeded_request_id()), mock.contract.request_id.header)


def failure(request: web.Request, failed: ApiProblem) -> web.Response:
    mock = request.app[MOCK]
    return to_http(mock.engine.error_response(failed), mock.contract.request_id.header)


def json_writes(handler: Handler, also: Collection[str] = ()) -> Handler:
    """An admin write that carries a body must say it is JSON (or one of ``also``).

    Browsers send ``text/plain`` and form bodies across origins without a preflight; refusing
    them is what keeps a web page from posting to the mock. A bodyless write (``curl -X POST
    .../__mock/reset``) needs no content type.
    """
    accepted = JSON + (f", or on this route YAML ({', '.join(also)})" if also else "")

    async def checked(request: web.Request) -> web.StreamResponse:
        if request.method in _WRITES and (request.content_length or request.body_exists):
            sent = request.headers.get("Content-Type")
            if not media_type_accepted(JSON, sent) and _media_type(sent) not in also:
                return failure(request, problem(415, UNSUPPORTED_MEDIA_TYPE,
                                                f"Admin requests with a body must send Content-Type: {accepted}"))
        return await handler(request)

    return checked


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


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


async def _raw_body(request: web.Request) -> bytes:
    """The body, at most ADMIN_BODY_LIMIT bytes; _BadBody when it is larger or does not arrive."""
    try:
        raw, too_large = await read_body(request, ADMIN_BODY_LIMIT, request.app[MOCK].engine.options.read_timeout_s)
    except (TimeoutError, ClientGone):
        raise _BadBody(problem(400, message="The request body did not arrive in time")) from None
    if too_large:
        raise _BadBody(problem(413, message=f"Admin request bodies are limited to {ADMIN_BODY_LIMIT} bytes"))
    return raw


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one; _BadBody when it is too large."""
    raw = await _raw_body(request)
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
    entries, dropped = await journal.read(path=request.query.get("path"), method=request.query.get("method"),
                                          status=int(status) if status else None)
    return answer(request, 200, {"requests": entries, "dropped": dropped})


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
    found = await request.app[MOCK].journal.violations(path=request.query.get("path"), method=request.query.get("method"),
                                                 status=int(status) if status else None, location=location)
    return answer(request, 200, {"violations": found, "total": len(found)})


async def clear_requests(request: web.Request) -> web.Response:
    cleared = await request.app[MOCK].journal.clear()
    return answer(request, 200, {"cleared": cleared})


async def get_scenario(request: web.Request) -> web.Response:
    return answer(request, 200, await request.app[MOCK].book.state())


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
        await book.select(name, kind, credential)
    except UnknownScenario:
        known = ", ".join(sorted(book.scenarios)) or "none loaded"
        return failure(request, problem(400, field="name", message=f"Unknown scenario {name!r}; known: {known}"))
    return answer(request, 200, await book.state())


@_reads_body
async def emit_event(request: web.Request) -> web.Response:
    """``{"type": EVENT_TYPE, "data": {...}}``: deliver to every webhook that selects it
    (on the platform named by the tenancy header, or on every platform without one)."""
    mock = request.app[MOCK]
    payload = await _json_object(request)
    if payload is None or not isinstance(payload.get("type"), str):
        example = json.dumps(min(mock.deliveries.catalogue, default="an event type of the contract"))
        if payload is None:
            return failure(request, problem(400, message=f'Send a JSON object such as {{"type": {example}}}'))
        return failure(request, problem(400, field="type", message=f'Send a JSON object with "type", such as {example}'))
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
    return answer(request, 200, {"deliveries": await deliveries.snapshot(webhook), "webhooks": await deliveries.lines(webhook)})


async def list_scenarios(request: web.Request) -> web.Response:
    """Every scenario; ``origin`` says whether it came from a file or was put at run time."""
    return answer(request, 200, {"scenarios": await request.app[MOCK].book.listing()})


def _unknown(request: web.Request, name: str) -> web.Response:
    known = ", ".join(sorted(request.app[MOCK].book.scenarios)) or "none loaded"
    return failure(request, problem(404, field="name", message=f"Unknown scenario {name!r}; known: {known}"))


def _from_file(request: web.Request, name: str, source: str, doing: str) -> web.Response:
    return failure(request, problem(409, field="name", message=(
        f"Scenario {name!r} is defined by the file {source}; {doing} only a scenario put at run time")))


async def get_named_scenario(request: web.Request) -> web.Response:
    """One scenario with its rules as written and how often each answered since the last reset."""
    name = request.match_info["name"]
    try:
        return answer(request, 200, await request.app[MOCK].book.view(name))
    except UnknownScenario:
        return _unknown(request, name)


@_reads_body
async def put_named_scenario(request: web.Request) -> web.Response:
    """Add or replace a run-time scenario: the body is a scenario file's content, in JSON or
    YAML, checked as a file is (a problem is a 400 whose message is the file's one line, with
    the line within the body). 201 when new, 200 when it replaced one; in effect at once."""
    mock = request.app[MOCK]
    book = mock.book
    name = request.match_info["name"]
    bad = invalid_name(name)
    if bad is not None:
        return failure(request, problem(400, field="name", message=f"Invalid scenario name in the path: {bad}"))
    held = book.scenarios.get(name)
    if held is not None and held.origin != RUNTIME:
        return _from_file(request, name, held.source, "pick another name: a PUT replaces")
    raw = await _raw_body(request)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return failure(request, problem(400, message="The scenario must be UTF-8 text"))
    if not text.strip():
        return failure(request, problem(400, message="Send the scenario as the body: JSON or YAML with at least `rules:`"))
    as_json = media_type_accepted(JSON, request.headers.get("Content-Type"))
    where = f"scenario {name!r} (request body)"
    try:
        # Parsing and checking a body of up to 1 MiB happens off the loop, as a file's reload does.
        scenario = await asyncio.to_thread(
            load_scenario_text, text, where, ScriptChecker(mock.contract), name=name, origin=RUNTIME,
            source=f"PUT {PREFIX}/scenarios/{name}", as_json=as_json)
    except LoadError as exc:
        return failure(request, problem(400, message=str(exc)))
    try:
        replaced = await book.put(scenario)
    except NameTaken as exc:  # a file took the name while the body was being checked
        return _from_file(request, name, str(exc), "pick another name: a PUT replaces")
    return answer(request, 200 if replaced else 201, await book.view(name))


async def delete_named_scenario(request: web.Request) -> web.Response:
    """Remove a run-time scenario, and the selection or bindings that chose it."""
    name = request.match_info["name"]
    try:
        await request.app[MOCK].book.remove(name)
    except UnknownScenario:
        return _unknown(request, name)
    except NameTaken as exc:
        return _from_file(request, name, str(exc), "delete or edit the file: a DELETE removes")
    return answer(request, 200, {"deleted": name, "scenario": await request.app[MOCK].book.state()})


async def reset(request: web.Request) -> web.Response:
    mock = request.app[MOCK]
    await mock.reset()
    return answer(request, 200, {"status": "reset", "scenario": await mock.book.state()})
