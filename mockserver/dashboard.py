"""The dashboard: a page at ``/__mock/``, the live event stream and the few routes the page needs
beyond the admin API.

The page is three static files shipped in the package (``mockserver/dashboard/``: HTML, CSS
and plain JavaScript, no build step, nothing fetched from elsewhere), read once when the app
is built. Everything it shows comes from the admin API and from ``GET /__mock/stream``, a
Server-Sent Events stream of the bus (``request``, ``delivery``, ``scenario``, ``reset``).

The routes obey what the admin API obeys: the browser guards (Host, Origin, Sec-Fetch-Site)
apply to every route of the app, and with ``--admin-token`` every route here but the page and
its files needs the token, in ``X-Admin-Token`` or ``Authorization: Bearer``. That includes the
stream: the page reads it with ``fetch()`` (which can send a header) rather than EventSource
(which cannot), so the token never has to travel in a URL, where logs and history would keep it.
The page and its files hold no data, so they are served without the token; the page asks for it.
"""

from __future__ import annotations

import asyncio
from importlib import resources
from typing import Any

from aiohttp import web

from . import jsoncodec
from .admin import PREFIX, add_routes, answer, failure
from .answers import MockResponse
from .errors import ErrorShape, problem
from .http import MOCK, Handler
from .mock import Mock

__all__ = ["register", "request_event"]

HEARTBEAT_S = 10.0  # a comment line this often: proxies keep the stream open, a vanished client is noticed
ANSWER_LIMIT = 64 * 1024  # bytes of an answer body shown
TEXT_LIMIT = 4 * 1024  # characters of an answer that is not JSON shown
_MAX_DEPTH = 64

_ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
_TOKEN_MARK = "{{token}}"
# The page runs only its own script and style, talks only to the mock, and cannot be framed.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def register(app: web.Application, admin_token: str | None = None) -> None:
    """Add the page, its files, the stream and the dashboard's routes (call before the catch-all)."""
    page = _read("index.html").replace(_TOKEN_MARK, "required" if admin_token else "none").encode()
    files = {name: (_read(name).encode(), media) for name, media in _ASSETS.items()}

    async def index(request: web.Request) -> web.StreamResponse:
        return web.Response(body=page, content_type="text/html", charset="utf-8", headers=_PAGE_HEADERS)

    async def asset(request: web.Request) -> web.StreamResponse:
        found = files.get(request.match_info["name"])
        if found is None:
            return failure(request, problem(404, message=f"No dashboard file {request.match_info['name']!r}"))
        body, media = found
        return web.Response(body=body, headers={**_PAGE_HEADERS, "Content-Type": media})

    async def to_page(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(PREFIX + "/")

    routes: list[tuple[str, str, Handler, bool]] = [
        ("GET", "", to_page, False),
        ("GET", "/", index, False),
        ("GET", "/ui/{name}", asset, False),
        ("GET", "/stream", stream, True),
        ("GET", "/contract", contract, True),
        ("GET", "/webhooks", webhooks, True),
        ("GET", "/scenarios/uses", uses, True),
        ("POST", "/deliveries/{webhook_id}/release", release, True),
    ]
    add_routes(app, routes, admin_token)
    app.on_shutdown.append(_close_streams)


def _read(name: str) -> str:
    return (resources.files("mockserver") / "dashboard" / name).read_text(encoding="utf-8")


async def _close_streams(app: web.Application) -> None:
    app[MOCK].bus.close()


# ---------------------------------------------------------------- the stream


async def stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events from the bus until the client leaves, falls behind or the server stops.

    ``Last-Event-ID`` (the id of the last event seen) first replays the events kept since
    then (``0``: every event kept since the last reset); without it, only what happens next.
    """
    bus = request.app[MOCK].bus
    last = request.headers.get("Last-Event-ID", "").strip()
    since = int(last) if last.isascii() and last.isdigit() and len(last) < 19 else None
    transport = request.transport

    def cut() -> None:  # fell behind: a write may be stuck on a client that reads nothing
        if transport is not None:
            transport.abort()

    sub = bus.subscribe(since, on_drop=cut)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no", "X-Content-Type-Options": "nosniff"})
    try:
        await resp.prepare(request)
        await resp.write(b"retry: 1000\n: connected\n\n")
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_S):
                    event = await sub.get()
            except TimeoutError:
                await resp.write(b": keep-alive\n\n")
                continue
            if event is None:
                break
            await resp.write(event.frame)
    except (ConnectionError, RuntimeError):  # the client went away (aiohttp raises either)
        pass
    finally:
        sub.close()
    return resp


# ---------------------------------------------------------------- the request event


def request_event(mock: Mock, rec: Any, resp: MockResponse) -> dict[str, Any]:
    """The journal entry just recorded (already scrubbed) and what was answered, scrubbed the same way."""
    entry = mock.journal.entry(rec)  # built as GET /__mock/requests builds it
    entry["answer"] = _answer(mock, resp)
    return entry


def _answer(mock: Mock, resp: MockResponse) -> dict[str, Any]:
    scrub = mock.journal.secrets.scrub
    headers = {mock.contract.request_id.header: resp.request_id}
    if resp.content_type is not None and resp.body:
        headers["Content-Type"] = resp.content_type
    headers.update((name, scrub(value)) for name, value in resp.headers)
    body: Any = None
    if len(resp.body) > ANSWER_LIMIT:
        body = {"omitted": "too large to show", "length": len(resp.body)}
    elif resp.body:
        body = _shown(mock, resp.body, resp.content_type)
    field, message = failure_of(mock.contract.error_shape, body) if resp.status and resp.status >= 400 else (None, None)
    return {"status": resp.status, "headers": headers, "body": body, "field": field, "message": message}


def _shown(mock: Mock, raw: bytes, content_type: str | None) -> Any:
    scrub = mock.journal.secrets.scrub
    if content_type is None or "json" in content_type:
        try:
            value = jsoncodec.loads(raw)
        except (ValueError, RecursionError):
            value = None
        else:
            return _scrubbed(mock.journal.redactor.value(value), scrub, 0)
    text = raw.decode("utf-8", "replace")
    return scrub(text[:TEXT_LIMIT] + ("…" if len(text) > TEXT_LIMIT else ""))


def _scrubbed(value: Any, scrub: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return "…"
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(str(k)): _scrubbed(v, scrub, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, scrub, depth + 1) for v in value]
    return value


def failure_of(shape: ErrorShape, body: Any) -> tuple[Any, Any]:
    """The failing field and the message of an error body, where the contract's error shape puts
    them (RFC 9457 problem details: ``detail`` and the first violation's field)."""
    if not isinstance(body, dict):
        return None, None
    if shape.template is None:
        errors = body.get("errors")
        first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
        return first.get("field"), body.get("detail")
    names = {value[1:]: name for name, value in shape.template.items() if isinstance(value, str)
             and value.startswith("$")}
    return body.get(names.get("field", "")), body.get(names.get("message", ""))


# ---------------------------------------------------------------- routes the page reads


async def contract(request: web.Request) -> web.Response:
    """Every operation of the served contract: method, path and what the mock does for it."""
    mock = request.app[MOCK]
    operations = []
    for op in mock.contract.operations:
        behaviour = op.behaviour
        operations.append({
            "operation": op.operation_id, "method": op.method, "path": op.path, "summary": op.summary,
            "permission": op.permission, "statuses": sorted(op.responses),
            "behaviour": None if behaviour is None else {
                "kind": behaviour.kind, "collection": behaviour.collection, "action": behaviour.action},
            "behaviour_source": op.behaviour_source,
        })
    return answer(request, 200, {"operations": operations})


async def webhooks(request: web.Request) -> web.Response:
    """Every stored webhook (each tenant's) with its delivery line and penalty box; its signing
    secrets are left out. Also what the event form needs: the event types and the tenancy header."""
    mock = request.app[MOCK]
    deliveries = mock.deliveries
    spec = deliveries.spec
    tenancy = mock.contract.tenancy_header
    if spec is None:
        return answer(request, 200, {"webhooks": [], "event_types": [], "tenancy_header": tenancy, "signing": None})
    lines = {(line["tenant"], line["webhook_id"]): line for line in await deliveries.lines()}
    hidden = {spec.secrets.current, spec.secrets.previous}
    scrub = mock.journal.secrets.scrub
    out = []
    for tenant, stored in await mock.engine.store.everywhere(spec.collection):
        body = await mock.engine.present(tenant, spec.collection, dict(stored.body))
        webhook_id = str(body.get(spec.fields.id))
        line = lines.get((tenant, webhook_id)) or {}
        out.append({
            "tenant": tenant, "id": webhook_id, "url": scrub(str(body.get(spec.fields.url) or "")),
            "active": body.get(spec.fields.active) is not False,
            "penalty_box": line.get("penalty_box"), "queued": line.get("queued", 0),
            "dropped": line.get("dropped", 0), "delivering": line.get("delivering", False),
            "webhook": _scrubbed({k: v for k, v in body.items() if k not in hidden}, scrub, 0),
        })
    signing = {"timestamp_header": spec.signing.timestamp_header, "signature_header": spec.signing.signature_header}
    return answer(request, 200, {"webhooks": out, "event_types": sorted(deliveries.catalogue),
                                 "tenancy_header": tenancy, "signing": signing})


async def uses(request: web.Request) -> web.Response:
    """How often each rule answered, per scenario and client binding (``times`` counters)."""
    book = request.app[MOCK].book
    out = []
    for (name, client), counts in sorted((await book.counters()).items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        scenario = book.scenarios.get(name)
        if scenario is None:
            continue
        out.append({"scenario": name, "client": client, "used": sum(counts.values()),
                    "rules": [{"rule": rule.label, "used": counts.get(rule.index, 0), "times": rule.times}
                              for rule in scenario.rules]})
    return answer(request, 200, {"uses": out})


async def release(request: web.Request) -> web.Response:
    """Send a penalty-boxed webhook's held event once more, as its send-penalty-box-payload
    operation does, without the tenant's credentials (``?tenant=`` when two tenants share the id)."""
    mock = request.app[MOCK]
    deliveries = mock.deliveries
    spec = deliveries.spec
    webhook_id = request.match_info["webhook_id"]
    if spec is None:
        return failure(request, problem(409, message="This contract delivers no events"))
    tenant = request.query.get("tenant")
    boxed = [line for line in await deliveries.lines(webhook_id)
             if line["penalty_box"] is not None and (tenant is None or line["tenant"] == tenant)]
    if not boxed:
        return failure(request, problem(409, message=f"Webhook {webhook_id!r} is not in the penalty box"))
    if len(boxed) > 1:
        return failure(request, problem(409, message=f"Webhooks of {len(boxed)} tenants have the id {webhook_id!r}; "
                                                     f"name one with ?tenant="))
    tenant = boxed[0]["tenant"]
    stored = await mock.engine.store.get(tenant, spec.collection, webhook_id)
    if stored is None:
        return failure(request, problem(404, message=f"Webhook {webhook_id!r} is gone"))
    result = await deliveries.release(tenant, stored, mock.epoch.value)
    if not isinstance(result, tuple):
        return failure(request, result)
    status, body = result
    return answer(request, status, {**body, "webhook_id": webhook_id, "tenant": tenant})
