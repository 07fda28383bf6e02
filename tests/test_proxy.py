"""mockserver proxy: the upstream's answer passes unchanged; every way an exchange breaks the contract
is reported precisely; it only ever calls its upstream; it survives an upstream that fails.

The upstreams are small aiohttp apps on real ports that answer what each test says (drifting from
the contract where the test says so), or the bundled mock itself.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from conftest import AUTH, CONTRACT, ERROR_VALIDATOR, REQUEST_ID, api_error, minimal
from mockserver import cli
from mockserver.http import MOCK
from mockserver.logs import ACCESS
from mockserver.proxy import VIOLATIONS_HEADER, Finding, create_proxy_app, violations_header

GET_ONE = next(op for op in CONTRACT.operations if op.method == "GET" and op.path == "/v{version}/webhooks/{resourceId}")
WEBHOOK: dict[str, Any] = {
    "object_type": "WEBHOOK", "id": "whk_Ik2zwEQHfwcepYyNGfB5", "name": "Invoices", "reference": "invoices",
    "url": "https://example.com/hook", "active": True, "include_previous_data": False, "authentication_type": "NONE",
    "username": None, "api_header_field": None, "included_actions": None, "excluded_actions": None,
    "penalty_box": None, "secret_key": "whsec_" + "cd0e87" * 10 + "cd0e", "signing_protocol": "HmacSHA256",
    "previous_secret_key": None, "previous_signing_protocol": None, "secret_rolled_at": None,
    "penalty_box_data": None, "disabled_reason": None,
}
HOOK_PATH = f"/v1/webhooks/{WEBHOOK['id']}"
_ids = itertools.count()


def request_id() -> str:
    return f"reqr_{next(_ids):020d}"


def answer(status: int, body: Any, *, content_type: str = "application/json", rid: bool = True,
           headers: dict[str, str] | None = None) -> web.Response:
    """What an upstream sends: JSON (or text) with a request id unless told otherwise."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    out = web.Response(status=status, body=raw, headers=headers or {})
    out.headers["Content-Type"] = content_type
    if rid:
        out.headers["X-REQUEST-ID"] = request_id()
    return out


def api_error_body(code: str, message: str, field: str | None = None, kind: str = "INVALID_REQUEST") -> dict[str, Any]:
    return {"type": kind, "code": code, "field": field, "message": message}


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: Any
    body: bytes


class Upstream:
    """A small local API that answers with ``handler`` and remembers every request that reached it."""

    def __init__(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        self.handler = handler
        self.seen: list[Seen] = []
        self.app = web.Application()
        self.app.router.add_route("*", r"/{tail:[\s\S]*}", self._handle)
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.rel_url.raw_path, request.rel_url.raw_query_string,
                              request.headers.copy(), body))
        return await self.handler(request)


@pytest.fixture
def upstream(aiohttp_server: Any) -> Any:
    async def start(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Upstream:
        api = Upstream(handler)
        server = await aiohttp_server(api.app)
        api.url = f"http://127.0.0.1:{server.port}"
        return api
    return start


@pytest.fixture
def proxy(aiohttp_client: Any) -> Any:
    async def start(upstream_url: str, **options: Any) -> Any:
        return await aiohttp_client(create_proxy_app(upstream=upstream_url, **options))
    return start


def reported(resp: Any) -> list[tuple[str, str | None, str]]:
    return [(v["location"], v["field"], v["message"]) for v in json.loads(resp.headers.get(VIOLATIONS_HEADER, "[]"))]


def journal(client: Any) -> Any:
    return client.server.app[MOCK].journal


def test_the_upstream_answers_of_these_tests_follow_the_contract():
    assert GET_ONE.responses[200].validator.is_valid(WEBHOOK)
    assert ERROR_VALIDATOR.is_valid(api_error_body("RESOURCE_NOT_FOUND", "No such webhook"))


# ---------------------------------------------------------------- passing through


async def test_a_conforming_exchange_passes_unchanged_and_reports_nothing(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        out = answer(201, {**WEBHOOK, "name": "Hook"}, headers={"X-Upstream": "yes"})
        out.headers.add("Set-Cookie", "a=1")
        out.headers.add("Set-Cookie", "b=2")
        return out

    api = await upstream(handler)
    client = await proxy(api.url)
    sent = json.dumps(minimal(name="Hook")).encode()
    resp = await client.post("/v1/webhooks?trace=a%26b%20c&x=1&x=2", data=sent, headers={
        **AUTH, "Content-Type": "application/json", "X-Custom": "kept", "Connection": "keep-alive, X-Hop",
        "X-Hop": "dropped", "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0"})
    assert resp.status == 201
    assert await resp.read() == json.dumps({**WEBHOOK, "name": "Hook"}).encode()
    assert resp.headers["X-Upstream"] == "yes" and resp.headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert REQUEST_ID.match(resp.headers["X-REQUEST-ID"])
    assert VIOLATIONS_HEADER not in resp.headers
    [seen] = api.seen
    assert (seen.method, seen.path, seen.query, seen.body) == ("POST", "/v1/webhooks", "trace=a%26b%20c&x=1&x=2", sent)
    assert seen.headers["X-API-KEY"] == AUTH["X-API-KEY"] and seen.headers["X-Custom"] == "kept"
    assert seen.headers["Host"] == api.url.removeprefix("http://")
    [entry] = await journal(client).snapshot()  # what reached the proxy, less the hop-by-hop headers, and no more
    hop_by_hop = {"connection", "x-hop", "proxy-authorization", "host", "content-length"}
    assert {h.lower() for h in seen.headers} - {"host", "content-length"} == set(entry["headers"]) - hop_by_hop
    assert (entry["status"], entry["operation"], entry["violations"]) == (201, "postWebhooks", [])
    assert entry["request_id"] == resp.headers["X-REQUEST-ID"]


async def test_an_encoded_answer_goes_back_as_it_came_and_is_still_checked(upstream, proxy):
    import gzip

    async def handler(request: web.Request) -> web.StreamResponse:
        body = dict(WEBHOOK)
        del body["secret_key"]
        out = answer(200, gzip.compress(json.dumps(body).encode()))
        out.headers["Content-Encoding"] = "gzip"
        return out

    api = await upstream(handler)
    client = await proxy(api.url)
    resp = await client.get(HOOK_PATH, headers={**AUTH, "Accept-Encoding": "gzip"}, auto_decompress=False)
    raw = await resp.read()
    assert resp.headers["Content-Encoding"] == "gzip" and "secret_key" not in json.loads(gzip.decompress(raw))
    assert reported(resp) == [("response", "secret_key", "secret_key is required")]


# ---------------------------------------------------------------- drift, reported precisely


async def test_a_422_problem_json_instead_of_a_400_in_the_contract_shape(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        return answer(422, {"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
                            "detail": "url is required"}, content_type="application/problem+json")

    client = await proxy((await upstream(handler)).url)
    resp = await client.post("/v1/webhooks", json={"name": "n", "reference": "r"}, headers=AUTH)
    assert resp.status == 422 and (await resp.json())["detail"] == "url is required"
    found = reported(resp)
    assert found[:2] == [
        ("response", None, "status 422 is not a status of postWebhooks (the contract lists 201, 400, 401, 403, 500); "
                           "for this request the contract answers 400"),
        ("response", "Content-Type", "Content-Type must be application/json for status 422, "
                                     "not application/problem+json"),
    ]
    assert found[2:] == [  # the problem details checked against the contract's error shape
        ("response", "code", "code is required"),
        ("response", "message", "message is required"),
        ("response", "type", 'type must be one of "API_ERROR", "INVALID_REQUEST"'),
    ]


async def test_a_required_property_dropped_from_an_answer(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        return answer(200, {k: v for k, v in WEBHOOK.items() if k != "secret_key"})

    client = await proxy((await upstream(handler)).url)
    resp = await client.get(HOOK_PATH, headers=AUTH)
    assert resp.status == 200
    assert reported(resp) == [("response", "secret_key", "secret_key is required")]


async def test_an_error_code_renamed_outside_the_schema_enum(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        return answer(404, api_error_body("WEBHOOK_NOT_FOUND", "No such webhook"))

    client = await proxy((await upstream(handler)).url)
    resp = await client.get("/v1/webhooks/whk_unknown", headers=AUTH)
    [(location, field, message)] = reported(resp)
    assert (location, field) == ("response", "code")
    assert message.startswith('code must be one of "RESOURCE_NOT_FOUND", ') and "WEBHOOK_NOT_FOUND" not in message


async def test_an_unknown_extra_property_is_not_a_violation(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        return answer(200, {**WEBHOOK, "created_by_the_future": {"nested": True}})

    client = await proxy((await upstream(handler)).url)
    resp = await client.get(HOOK_PATH, headers=AUTH)
    assert resp.status == 200 and VIOLATIONS_HEADER not in resp.headers
    assert (await client.get("/__mock/violations")).status == 200
    assert await (await client.get("/__mock/violations")).json() == {"violations": [], "total": 0}


async def test_a_500_in_the_contract_shape_passes_and_one_that_is_not_is_reported(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.query.get("html"):
            return answer(500, b"<h1>Internal Server Error</h1>", content_type="text/html")
        return answer(500, api_error_body("INTERNAL_ERROR", "An internal error occurred.", kind="API_ERROR"))

    client = await proxy((await upstream(handler)).url)
    fine = await client.get("/v1/webhooks/actions", headers=AUTH)
    assert fine.status == 500 and VIOLATIONS_HEADER not in fine.headers
    assert (await fine.json())["code"] == "INTERNAL_ERROR"
    broken = await client.get("/v1/webhooks/actions?html=1", headers=AUTH)
    assert broken.status == 500 and await broken.text() == "<h1>Internal Server Error</h1>"
    assert reported(broken) == [
        ("response", "Content-Type", "Content-Type must be application/json for status 500, not text/html"),
        ("response", None, "the body is not valid JSON"),
    ]


async def test_an_answer_without_the_request_id_header(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        return answer(200, WEBHOOK, rid=False)

    client = await proxy((await upstream(handler)).url)
    resp = await client.get(HOOK_PATH, headers=AUTH)
    assert reported(resp) == [("response", "X-REQUEST-ID", "the answer carries no X-REQUEST-ID header")]
    assert REQUEST_ID.match((await journal(client).snapshot())[0]["request_id"])  # the journal still names the exchange


async def test_a_request_the_contract_refuses_is_reported_only_when_the_upstream_accepts_it(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.query.get("refuse"):
            return answer(401, api_error_body("UNAUTHORISED", "Missing credentials"))
        return answer(201, WEBHOOK)

    client = await proxy((await upstream(handler)).url)
    accepted = await client.post("/v1/webhooks", json={"url": "https://example.com/h", "reference": "r"})
    assert accepted.status == 201
    assert reported(accepted) == [
        ("request", None, "Missing or invalid credentials: send X-API-KEY or Authorization: Bearer <token>."),
        ("request", "name", "name is required"),
    ]
    refused = await client.post("/v1/webhooks?refuse=1", json={"url": "https://example.com/h", "reference": "r"})
    assert refused.status == 401 and VIOLATIONS_HEADER not in refused.headers


async def test_an_error_status_other_than_the_contract_gives_for_that_request(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        return answer(400, api_error_body("BAD_REQUEST", "No key"))

    client = await proxy((await upstream(handler)).url)
    resp = await client.post("/v1/webhooks", json=minimal())
    assert reported(resp) == [("response", None, "status 400 where the contract answers 401 to this request "
                                                 "(Missing or invalid credentials: send X-API-KEY or Authorization: "
                                                 "Bearer <token>.)")]


async def test_an_answer_to_a_path_the_contract_does_not_have(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        return answer(200, {"ok": True}) if request.method == "GET" else answer(404, {"error": "gone"})

    client = await proxy((await upstream(handler)).url)
    ok = await client.get("/v1/invoices", headers=AUTH)
    assert reported(ok) == [("request", None, "No operation of the contract lives at /v1/invoices")]
    missing = await client.delete("/v1/invoices", headers=AUTH)
    assert ("response", "code", "code is required") in reported(missing)


async def test_many_violations_are_cut_at_8_kib_and_say_how_many_were_left_out(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        return answer(200, {"data": [{"id": i} for i in range(200)], "limit": 20, "page": 1,
                            "total_number_of_pages": 1, "links": {}})

    client = await proxy((await upstream(handler)).url)
    resp = await client.get("/v1/webhooks", headers=AUTH)
    value = resp.headers[VIOLATIONS_HEADER]
    assert len(value.encode()) <= 8 * 1024
    shown = json.loads(value)
    note = shown[-1]
    total = (await (await client.get("/__mock/violations")).json())["total"]
    assert total > 1000 and note["omitted"] == total - (len(shown) - 1)
    assert note["message"] == f"{note['omitted']} more violation(s) left out; GET /__mock/violations lists every one"
    assert all(set(v) == {"location", "field", "message"} for v in shown[:-1])


def test_the_violations_header_keeps_every_finding_that_fits():
    few = [Finding("response", "code", "code is required")]
    assert json.loads(violations_header(few)) == [{"location": "response", "field": "code",
                                                   "message": "code is required"}]
    many = [Finding("response", f"data.{i}.id", "x" * 100) for i in range(100)]
    cut = violations_header(many, limit=1000)
    assert len(cut) <= 1000
    kept = json.loads(cut)
    assert kept[-1]["omitted"] == 100 - (len(kept) - 1) and len(kept) > 3


# ---------------------------------------------------------------- a failing upstream


async def test_an_upstream_slower_than_the_timeout_is_a_502_and_the_proxy_keeps_serving(upstream, proxy):
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.query.get("slow"):
            await asyncio.wait_for(release.wait(), 30)
        return answer(200, WEBHOOK)

    api = await upstream(handler)
    client = await proxy(api.url, upstream_timeout=0.2)
    try:
        slow = await client.get(HOOK_PATH + "?slow=1", headers=AUTH)
        body = await api_error(slow, 502, "INTERNAL_ERROR")
        assert body["message"] == f"The upstream {api.url} did not answer within 0.2 s"
        assert (await client.get(HOOK_PATH, headers=AUTH)).status == 200
    finally:
        release.set()
    statuses = [e["status"] for e in (await journal(client).snapshot())]
    assert statuses == [502, 200]


async def test_an_upstream_that_drops_the_connection_is_a_502(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.query.get("drop"):
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError()
        return answer(200, WEBHOOK)

    api = await upstream(handler)
    client = await proxy(api.url)
    dropped = await client.get(HOOK_PATH + "?drop=1", headers=AUTH)
    body = await api_error(dropped, 502, "INTERNAL_ERROR")
    assert body["message"] == f"The upstream {api.url} closed the connection without answering"
    assert (await client.get(HOOK_PATH, headers=AUTH)).status == 200


async def test_a_refusing_upstream_is_a_502_naming_it(proxy):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = await proxy(f"http://127.0.0.1:{port}")
    resp = await client.get(HOOK_PATH, headers=AUTH)
    body = await api_error(resp, 502, "INTERNAL_ERROR")
    assert body["message"] == f"The upstream http://127.0.0.1:{port} cannot be reached: connection refused"
    again = await client.get("/__mock/health")
    assert again.status == 200


async def test_an_unreachable_upstream_is_a_502_naming_it(proxy):
    client = await proxy("http://unreachable.invalid", upstream_timeout=3)
    resp = await client.get(HOOK_PATH, headers=AUTH)
    body = await api_error(resp, 502, "INTERNAL_ERROR")
    assert body["message"].startswith("The upstream http://unreachable.invalid ")
    assert body["message"].endswith(("its host name does not resolve", "did not answer within 3 s"))


# ---------------------------------------------------------------- only ever the upstream


async def raw_request(port: int, head: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode() + b"\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


async def test_absolute_targets_host_headers_and_redirects_never_send_it_elsewhere(upstream, proxy):
    async def elsewhere(request: web.Request) -> web.StreamResponse:
        return answer(200, WEBHOOK)

    decoy = await upstream(elsewhere)
    decoy_authority = decoy.url.removeprefix("http://")

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.query.get("redirect"):
            return web.Response(status=302, headers={"Location": decoy.url + HOOK_PATH, "X-REQUEST-ID": request_id()})
        return answer(200, WEBHOOK)

    api = await upstream(handler)
    client = await proxy(api.url)
    port = client.server.port
    own = f"127.0.0.1:{port}"
    absolute = await raw_request(port, f"GET http://{decoy_authority}{HOOK_PATH} HTTP/1.1\r\nHost: {own}\r\n"
                                       f"X-API-KEY: k-1234\r\nConnection: close\r\n")
    assert absolute.startswith(b"HTTP/1.1 200")
    other_host = await client.get(HOOK_PATH, headers={**AUTH, "Host": f"localhost:{decoy.url.rsplit(':', 1)[1]}"})
    assert other_host.status == 200
    double_slash = await raw_request(port, f"GET //{decoy_authority}{HOOK_PATH} HTTP/1.1\r\nHost: {own}\r\n"
                                           f"X-API-KEY: k-1234\r\nConnection: close\r\n")
    assert double_slash.startswith(b"HTTP/1.1 ")
    redirect = await client.get(HOOK_PATH + "?redirect=1", headers=AUTH, allow_redirects=False)
    assert redirect.status == 302 and redirect.headers["Location"] == decoy.url + HOOK_PATH
    assert ("response", None, "status 302 is not a status of getWebhooksByResourceId "
                              "(the contract lists 200, 400, 401, 403, 404, 500)") in reported(redirect)
    assert decoy.seen == []
    assert [s.path for s in api.seen] == [HOOK_PATH, HOOK_PATH, f"//{decoy_authority}{HOOK_PATH}", HOOK_PATH]
    assert {s.headers["Host"] for s in api.seen} == {api.url.removeprefix("http://")}


async def test_an_upstream_with_a_base_path_gets_it_before_every_path(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        return answer(200, WEBHOOK)

    api = await upstream(handler)
    client = await proxy(api.url + "/api/")
    assert (await client.get(HOOK_PATH, headers=AUTH)).status == 200
    assert api.seen[0].path == "/api" + HOOK_PATH


@pytest.mark.parametrize("url, why", [
    ("ftp://example.com", "must be an absolute http or https URL"),
    ("example.com", "must be an absolute http or https URL"),
    ("https://user:pw@example.com", "must not carry credentials"),
    ("https://example.com/?a=1", "must not have a query"),
])
def test_an_upstream_that_is_not_a_plain_http_base_url_is_refused(url, why):
    with pytest.raises(ValueError, match=why):
        create_proxy_app(upstream=url)


# ---------------------------------------------------------------- journal, admin, log


async def test_every_exchange_is_journaled_with_its_violations_and_logged_with_their_count(
        upstream, proxy, caplog, monkeypatch):
    monkeypatch.setattr(ACCESS, "_direct", None)  # through logging, where caplog sees it
    caplog.set_level(logging.INFO)

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method == "DELETE":
            return answer(200, {k: v for k, v in WEBHOOK.items() if k not in ("name", "url")})
        return answer(200, WEBHOOK)

    client = await proxy((await upstream(handler)).url)
    ok = await client.get(HOOK_PATH, headers=AUTH)
    broken = await client.delete(HOOK_PATH, headers=AUTH)
    entries = await journal(client).snapshot()
    assert [(e["method"], e["violations"]) for e in entries] == [
        ("GET", []),
        ("DELETE", [{"location": "response", "field": "name", "message": "name is required"},
                    {"location": "response", "field": "url", "message": "url is required"}]),
    ]
    listed = await (await client.get("/__mock/violations")).json()
    rid = broken.headers["X-REQUEST-ID"]
    assert listed == {"total": 2, "violations": [
        {"request_id": rid, "method": "DELETE", "path": HOOK_PATH, "status": 200, "location": "response",
         "field": "name", "message": "name is required"},
        {"request_id": rid, "method": "DELETE", "path": HOOK_PATH, "status": 200, "location": "response",
         "field": "url", "message": "url is required"},
    ]}
    assert (await (await client.get("/__mock/violations?location=request")).json())["total"] == 0
    assert (await (await client.get("/__mock/violations?method=GET")).json())["total"] == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "mockserver.access"]
    assert f"GET {HOOK_PATH} 200" in lines[0] and lines[0].endswith(f"{ok.headers['X-REQUEST-ID']} violations=0")
    assert f"DELETE {HOOK_PATH} 200" in lines[1] and lines[1].endswith(f"{rid} violations=2")
    reset = await client.post("/__mock/reset")
    assert reset.status == 200 and (await journal(client).snapshot()) == []


async def test_the_violations_route_answers_only_in_proxy_mode(client):
    resp = await client.get("/__mock/violations")
    body = await api_error(resp, 404, "RESOURCE_NOT_FOUND")
    assert "proxy mode only" in body["message"]


async def test_bad_admin_filters_get_a_clear_answer(upstream, proxy):
    async def handler(request: web.Request) -> web.StreamResponse:
        return answer(200, WEBHOOK)

    client = await proxy((await upstream(handler)).url)
    await api_error(await client.get("/__mock/violations?location=both"), 400, "BAD_REQUEST", "location")
    await api_error(await client.get("/__mock/violations?status=2x"), 400, "BAD_REQUEST", "status")


# ---------------------------------------------------------------- the bundled mock as the upstream


async def realistic_session(call: Callable[..., Awaitable[tuple[int, Any]]]) -> list[tuple[str, int, Any]]:
    """Create, get, list, update, roll and drop a secret, delete, and requests the contract refuses.

    ``call(method, path, headers, body)`` answers (status, parsed body). No request is repeated
    expecting another answer: a recording keeps one answer per request.
    """
    steps: list[tuple[str, int, Any]] = []
    json_auth = {**AUTH, "Content-Type": "application/json"}

    async def step(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        status, value = await call(method, path, json_auth if headers is None else headers, raw)
        steps.append((f"{method} {path}", status, value))
        return value

    first = await step("POST", "/v1/webhooks", {**minimal(name="Invoices", reference="invoices"),
                                                 "authentication_type": "PASSWORD", "username": "hooks",
                                                 "password": "pw-Zq81-secret"})
    hook = f"/v1/webhooks/{first['id']}"
    second = await step("POST", "/v1/webhooks", minimal(name="Customers", reference="customers",
                                                         included_actions=["CUSTOMER.CREATED"]))
    await step("GET", hook)
    await step("GET", "/v1/webhooks?limit=1&page=2")
    await step("GET", "/v1/webhooks/actions", headers={"Authorization": "Bearer tok-Zq84-secret"})
    await step("PATCH", hook, {"name": "Invoices renamed", "active": False})
    await step("PATCH", hook + "/secret-key")
    await step("DELETE", hook + "/secret-key")
    await step("GET", f"/v1/webhooks/{second['id']}")
    await step("GET", "/v1/webhooks")
    await step("DELETE", f"/v1/webhooks/{second['id']}")
    await step("GET", f"/v1/webhooks/{second['id']}")  # gone: 404
    await step("POST", "/v1/webhooks", {"url": "ftp://example.com", "name": "n", "reference": "r"})
    await step("POST", "/v1/webhooks", minimal(), headers={"Content-Type": "application/json"})
    await step("POST", "/v1/webhooks", b"{not json")
    await step("POST", "/v1/webhooks", b"url=x", headers={**AUTH, "Content-Type": "text/plain"})
    await step("GET", "/v2/webhooks")
    await step("GET", "/v1/webhooks?limit=0")
    await step("DELETE", "/v1/webhooks")
    await step("GET", "/v1/nothing-here")
    return steps


def client_call(client: Any, violations: list[Any] | None = None) -> Callable[..., Awaitable[tuple[int, Any]]]:
    """A session's ``call`` through a test client; adds what X-Mock-Violations reports to ``violations``."""
    async def call(method: str, path: str, headers: dict[str, str], body: bytes | None) -> tuple[int, Any]:
        resp = await client.request(method, path, headers=headers, data=body)
        text = await resp.text()
        if violations is not None:
            violations.extend(reported(resp))
        return resp.status, json.loads(text)
    return call


async def test_the_bundled_mock_as_the_upstream_breaks_nothing_over_a_realistic_session(live, proxy):
    upstream_mock = live(scenarios_dir=None)
    client = await proxy(upstream_mock.url)
    violations: list[Any] = []
    steps = await realistic_session(client_call(client, violations))
    assert [status for _, status, _ in steps] == [201, 201, 200, 200, 200, 200, 200, 200, 200, 200, 200, 404,
                                                  400, 401, 400, 400, 400, 400, 405, 404]
    assert violations == []
    assert await (await client.get("/__mock/violations")).json() == {"violations": [], "total": 0}
    assert len(await journal(client).snapshot()) == len(steps)
    assert len(upstream_mock.mock.journal.entries) == len(steps)


# ---------------------------------------------------------------- load


async def test_1000_requests_at_32_connections_lose_nothing_and_are_journaled_once(upstream, proxy):
    issued: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        out = answer(200, WEBHOOK)
        issued.append(out.headers["X-REQUEST-ID"])
        return out

    api = await upstream(handler)
    client = await proxy(api.url)
    url = str(client.make_url(HOOK_PATH))
    gate = asyncio.Semaphore(32)
    expected = json.dumps(WEBHOOK).encode()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
        async def one() -> tuple[int, bool, str]:
            async with gate:
                async with session.get(url, headers=AUTH) as resp:
                    return resp.status, await resp.read() == expected, resp.headers["X-REQUEST-ID"]

        results = await asyncio.gather(*(one() for _ in range(1000)))
    assert [r[:2] for r in results] == [(200, True)] * 1000
    entries = await journal(client).snapshot()
    assert len(entries) == 1000 and len(api.seen) == 1000
    ids = [e["request_id"] for e in entries]
    assert sorted(ids) == sorted(issued) == sorted(r[2] for r in results) and len(set(ids)) == 1000
    assert all(e["violations"] == [] for e in entries)


# ---------------------------------------------------------------- credentials


async def test_credentials_reach_the_upstream_and_appear_nowhere_else(live, proxy, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(ACCESS, "_direct", None)
    caplog.set_level(logging.DEBUG)
    key, token = "ak-Zq91-only-upstream", "bt-Zq92-only-upstream"
    upstream_mock = live(scenarios_dir=None, api_keys={key, token})  # answers 401 to any other credential
    client = await proxy(upstream_mock.url, record=tmp_path)
    created = await client.post("/v1/webhooks", json=minimal(), headers={"X-API-KEY": key})
    assert created.status == 201  # the key reached the upstream
    hook = (await created.json())["id"]
    read = await client.get(f"/v1/webhooks/{hook}?echo={key}", headers={"X-API-KEY": key})
    assert read.status == 200
    listed = await client.get("/v1/webhooks/actions", headers={"Authorization": f"Bearer {token}"})
    assert listed.status == 200  # the token reached the upstream
    refused = await client.post("/v1/webhooks", json={"url": key, "name": token, "reference": "r"},
                                headers={"Authorization": f"Bearer {token}"})
    assert refused.status == 400
    shown = [json.dumps((await journal(client).snapshot())),
             await (await client.get("/__mock/requests")).text(),
             await (await client.get("/__mock/violations")).text(),
             "\n".join(r.getMessage() for r in caplog.records),
             "".join(str(r.exc_text or "") for r in caplog.records)]
    for resp in (created, read, listed, refused):
        shown.append(resp.headers.get(VIOLATIONS_HEADER, ""))
    await client.close()  # the recording is complete once the proxy stops
    shown.append((tmp_path / "recorded.yaml").read_text())
    assert "postWebhooks 201" in shown[-1]
    for text in shown:
        assert key not in text and token not in text


# ---------------------------------------------------------------- command line


def test_proxy_refuses_a_bad_upstream_and_an_existing_recording_with_one_line(tmp_path):
    import io

    err = io.StringIO()
    assert cli.run(["proxy", "--upstream", "ftp://example.com"], io.StringIO(), err) == 2
    assert err.getvalue().startswith("mockserver: error: --upstream must be an absolute http or https URL")
    (tmp_path / "recorded.yaml").write_text("rules: []\n")
    err = io.StringIO()
    assert cli.run(["proxy", "--upstream", "http://127.0.0.1:9", "--record", str(tmp_path)], io.StringIO(), err) == 2
    assert err.getvalue() == (f"mockserver: error: {tmp_path / 'recorded.yaml'} already exists; record into another "
                              f"directory or give another --record-name\n")


def test_the_proxy_command_prints_the_start_up_line_forwards_and_stops_on_sigterm(live):
    upstream_mock = live(scenarios_dir=None)
    proc = subprocess.Popen([sys.executable, "-m", "mockserver", "proxy", "--port", "0", "--upstream",
                             upstream_mock.url, "--upstream-timeout", "5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.split()[-1]
        import urllib.request
        req = urllib.request.Request(url + "/v1/webhooks/actions", headers=AUTH)
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200 and resp.headers.get(VIOLATIONS_HEADER) is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "GET /v1/webhooks/actions 200" in err and "violations=0" in err
