"""A drifted provider: the bundled mock on a real port, with its answers rewritten where a test says.

It follows the contract exactly (it *is* the mock) except for the drifts it is given: each names
what goes wrong and, optionally, for which operation, which status of the real answer, which
requests and how often. Use it as the upstream of ``mockserver verify``, or of any client under
test that should survive a provider that moved::

    with DriftedProvider(Drift(SERVER_ERROR, operation="getWebhooksActions")) as provider:
        ... provider.url ...
        provider.drifts = [Drift(SLOW, status=200, times=1)]   # change it between runs
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from mockserver import create_app
from mockserver.errors import problem
from mockserver.http import MOCK, to_http
from mockserver.server import ServerThread

PROBLEM_JSON = "problem-json"      # a 400 in the contract's shape becomes a 422 application/problem+json
DROP_REQUIRED = "drop-required"    # a required property of a success answer is left out
RENAME_CODE = "rename-code"        # an error's code becomes `value` (outside the schema's enum)
EXTRA_PROPERTY = "extra-property"  # a success answer gains a property the schema does not name (not a drift)
SERVER_ERROR = "server-error"      # a 500 in the contract's shape
SLOW = "slow"                      # the answer is held back for `delay` seconds (or until the provider stops)
DISCONNECT = "disconnect"          # the connection is dropped without an answer

_REWRITES = {PROBLEM_JSON, DROP_REQUIRED, RENAME_CODE, EXTRA_PROPERTY}


@dataclass
class Drift:
    kind: str
    operation: str | None = None  # operation id; None: every operation
    status: int | None = None  # only answers the real mock gives with this status (PROBLEM_JSON: 400)
    times: int | None = None  # how many requests it applies to; None: every one
    forward: bool = True  # False: the real mock never sees the request (nothing stored, nothing deleted)
    on_stored: bool = False  # only requests with credentials on a resource the mock holds
    field: str | None = None  # DROP_REQUIRED: the property (default: the schema's first required one)
    value: str = "INVALID_PARAMETER"  # RENAME_CODE: the new code
    name: str = "drifted_extra"  # EXTRA_PROPERTY: the property added
    delay: float = 30.0  # SLOW: seconds held at most


class DriftedProvider:
    """The bundled mock with drifts, served from its own thread on a free loopback port."""

    def __init__(self, *drifts: Drift, **settings: Any) -> None:
        settings.setdefault("scenarios_dir", None)
        settings.setdefault("hot_reload", False)
        self.app = create_app(**settings)
        self.app.middlewares.append(self._drift)
        self.drifts = list(drifts)
        self.requests = 0  # every request that reached it, admin routes included
        self.applied: list[tuple[str, str, str]] = []  # (drift kind, method, path) of each drift that acted
        self._released = asyncio.Event()
        self.server: ServerThread | None = None

    # -------------------------------------------------------------- lifetime

    def start(self) -> "DriftedProvider":
        self.server = ServerThread(self.app, idle_timeout=5).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.call(self._released.set)  # a held answer must not hold up the shutdown
            self.server.stop()
            self.server = None

    def __enter__(self) -> "DriftedProvider":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self.server is not None, "start the provider first"
        return self.server.url

    @property
    def mock(self) -> Any:
        return self.app[MOCK]

    # -------------------------------------------------------------- drifting

    @web.middleware
    async def _drift(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests += 1
        mock = self.app[MOCK]
        routed = mock.engine.route(request.method, request.rel_url.raw_path)
        if not isinstance(routed, tuple):
            return await handler(request)
        op, params = routed
        wanted = [d for d in self.drifts if d.operation in (None, op.operation_id) and d.times != 0
                  and (not d.on_stored or await self._on_stored(request, op, params))]
        early = next((d for d in wanted if not d.forward), None)
        if early is not None:
            return await self._act(early, request, op, None)
        resp = await handler(request)
        drift = next((d for d in wanted if d.status in (None, resp.status)
                      and not (d.kind == PROBLEM_JSON and d.status is None and resp.status != 400)), None)
        if drift is None:
            return resp
        return await self._act(drift, request, op, resp)

    async def _act(self, drift: Drift, request: web.Request, op: Any, resp: Any) -> web.StreamResponse:
        body = _json(resp)
        if drift.kind in _REWRITES and not self._rewrites(drift, op, resp, body):
            return resp
        if drift.times is not None:
            drift.times -= 1
        self.applied.append((drift.kind, request.method, request.path))
        mock = self.app[MOCK]
        header = mock.contract.request_id.header
        if drift.kind == DISCONNECT:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError()
        if drift.kind == SERVER_ERROR:
            return to_http(mock.engine.error_response(problem(500)), header)
        if drift.kind == SLOW:
            try:
                await asyncio.wait_for(self._released.wait(), drift.delay)
            except asyncio.TimeoutError:
                pass
            return resp if resp is not None else to_http(mock.engine.error_response(problem(500)), header)
        if drift.kind == PROBLEM_JSON:
            detail = body.get("message") if isinstance(body, dict) else None
            return _answer(resp, 422, {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
                                       "detail": detail or "invalid request"}, "application/problem+json")
        if drift.kind == DROP_REQUIRED:
            body.pop(drift.field or _first_required(op, resp.status), None)
        elif drift.kind == RENAME_CODE:
            body[_code_member(mock.contract)] = drift.value
        elif drift.kind == EXTRA_PROPERTY:
            body[drift.name] = "added by the provider"
        return _answer(resp, resp.status, body, resp.content_type)

    def _rewrites(self, drift: Drift, op: Any, resp: Any, body: Any) -> bool:
        """Whether a rewriting drift has something to rewrite in this answer."""
        if resp is None or not isinstance(body, dict):
            return False
        if drift.kind in (DROP_REQUIRED, EXTRA_PROPERTY):
            return 200 <= resp.status < 300 and (drift.kind == EXTRA_PROPERTY
                                                 or (drift.field or _first_required(op, resp.status)) in body)
        return resp.status >= 400

    async def _on_stored(self, request: web.Request, op: Any, params: dict[str, str]) -> bool:
        engine = self.app[MOCK].engine
        headers = {k.lower(): v for k, v in request.headers.items()}
        behaviour = op.behaviour
        if behaviour is None or not behaviour.key or not engine.credentials(headers):
            return False
        found = await engine.store.get(engine.tenant(headers), behaviour.collection, params.get(behaviour.key, ""))
        return found is not None


def _json(resp: Any) -> Any:
    if resp is None or not isinstance(getattr(resp, "body", None), bytes):
        return None
    try:
        return json.loads(resp.body)
    except ValueError:
        return None


def _answer(resp: Any, status: int, body: Any, content_type: str) -> web.Response:
    out = web.Response(status=status, body=json.dumps(body).encode())
    for name, value in resp.headers.items():
        if name.lower() not in ("content-length", "content-type"):
            out.headers[name] = value
    out.headers["Content-Type"] = content_type
    return out


def _first_required(op: Any, status: int) -> str:
    return (op.responses[status].schema.get("required") or [""])[0]


def _code_member(contract: Any) -> str:
    """The member of the contract's error body that carries the code."""
    return next(name for name, value in (contract.error_shape.template or {}).items() if value == "$code")
