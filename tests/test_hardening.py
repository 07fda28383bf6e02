"""Bad input, slow and broken clients, the admin token: through mockserver's own HTTP server."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest

from conftest import AUTH, ERROR_VALIDATOR, REQUEST_ID, minimal

VALID = json.dumps(minimal()).encode()


async def raw_exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes, return everything the server sends until it closes or goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    chunks = []
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), wait)
            if not chunk:
                break
            chunks.append(chunk)
            if _complete(b"".join(chunks)):
                break
    except (asyncio.TimeoutError, ConnectionResetError):
        pass
    writer.close()
    return b"".join(chunks)


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def parse(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def assert_api_error(status: int, headers: dict[str, str], body: bytes, expected_status: int, code: str) -> dict:
    assert status == expected_status, body
    assert headers["content-type"] == "application/json"
    assert REQUEST_ID.match(headers["x-request-id"]), headers
    parsed = json.loads(body)
    assert not list(ERROR_VALIDATOR.iter_errors(parsed))
    assert parsed["code"] == code, parsed
    return parsed


def request_bytes(body: bytes, headers: dict[str, str] | None = None, path: str = "/v1/webhooks",
                  method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


JSON_AUTH = {"X-API-KEY": "k", "Content-Type": "application/json"}

BATTERY = [
    ("malformed-json", request_bytes(b'{"url": ', JSON_AUTH), 400, "UNABLE_TO_PROCESS_INSTRUCTIONS"),
    ("array-body", request_bytes(b"[1, 2]", JSON_AUTH), 400, "UNABLE_TO_PROCESS_INSTRUCTIONS"),
    ("string-body", request_bytes(b'"hello"', JSON_AUTH), 400, "UNABLE_TO_PROCESS_INSTRUCTIONS"),
    ("number-body", request_bytes(b"12.5", JSON_AUTH), 400, "UNABLE_TO_PROCESS_INSTRUCTIONS"),
    ("null-body", request_bytes(b"null", JSON_AUTH), 400, "UNABLE_TO_PROCESS_INSTRUCTIONS"),
    ("empty-body", request_bytes(b"", JSON_AUTH), 400, "UNABLE_TO_PROCESS_INSTRUCTIONS"),
    ("deep-nesting", request_bytes(b"[" * 100_000 + b"]" * 100_000, JSON_AUTH), 400, "UNABLE_TO_PROCESS_INSTRUCTIONS"),
    ("deep-nesting-in-object", request_bytes(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON_AUTH),
     400, "UNABLE_TO_PROCESS_INSTRUCTIONS"),
    ("invalid-utf8", request_bytes(b'{"url": "https://a.b", "name": "\xff\xfe", "reference": "r"}', JSON_AUTH),
     400, "UNABLE_TO_PROCESS_INSTRUCTIONS"),
    ("lone-surrogate", request_bytes(b'{"url": "https://a.b", "name": "\\ud800", "reference": "r"}', JSON_AUTH),
     400, "UNABLE_TO_PROCESS_INSTRUCTIONS"),
    ("nul-in-string", request_bytes(b'{"url": "https://a.b", "name": "a\\u0000b", "reference": "r"}', JSON_AUTH),
     201, None),
    ("nul-in-url", request_bytes(b'{"url": "https://a.b/\\u0000", "name": "n", "reference": "r"}', JSON_AUTH),
     400, "INVALID_FIELD"),
    ("far-past-max-length", request_bytes(json.dumps(minimal(api_header_field="x" * 500_000)).encode(), JSON_AUTH),
     400, "INVALID_FIELD"),
    ("number-for-string", request_bytes(json.dumps(minimal(name=12)).encode(), JSON_AUTH), 400, "INVALID_FIELD"),
    ("string-for-boolean", request_bytes(json.dumps(minimal(active="true")).encode(), JSON_AUTH), 400, "INVALID_FIELD"),
    ("string-for-integer", request_bytes(json.dumps(minimal(penalty_box_data={"retry_count": "1"})).encode(), JSON_AUTH),
     400, "INVALID_FIELD"),
    ("huge-integer", request_bytes(b'{"url": "https://a.b", "name": "n", "reference": "r", "penalty_box_data": '
                                   b'{"retry_count": 1' + b"0" * 5000 + b"}}", JSON_AUTH), 400, "UNABLE_TO_PROCESS_INSTRUCTIONS"),
    ("very-long-header", request_bytes(VALID, {**JSON_AUTH, "X-Long": "a" * 40_000}), 400, "BAD_REQUEST"),
    ("repeated-headers", request_bytes(VALID, {**JSON_AUTH, **{f"X-Rep-{i}": "1" for i in range(60)}}), 201, None),
    ("too-many-headers", request_bytes(VALID, {**JSON_AUTH, **{f"X-Rep-{i}": "1" for i in range(300)}}),
     400, "BAD_REQUEST"),
    ("same-header-twice", request_bytes(VALID, JSON_AUTH).replace(b"X-API-KEY: k", b"X-API-KEY: k\r\nX-API-KEY: j"),
     201, None),
    ("nul-in-header", request_bytes(VALID, {**JSON_AUTH, "X-Bad": "a\x00b"}), 400, "BAD_REQUEST"),
    ("non-latin-header", request_bytes(VALID, JSON_AUTH).replace(b"X-API-KEY: k", b"X-API-KEY: \xe2\x98\x83"), 201, None),
    ("empty-bearer", request_bytes(VALID, {"Authorization": "Bearer ", "Content-Type": "application/json"}),
     401, "UNAUTHORISED"),
    ("basic-auth", request_bytes(VALID, {"Authorization": "Basic dTpw", "Content-Type": "application/json"}),
     401, "UNAUTHORISED"),
    ("garbage-request-line", b"HELLO\r\n\r\n", 400, "BAD_REQUEST"),
    ("unknown-path", request_bytes(VALID, JSON_AUTH, path="/v1/hooks"), 404, "RESOURCE_NOT_FOUND"),
    ("wrong-method", request_bytes(VALID, JSON_AUTH, method="PUT"), 405, "INVALID_OPERATION"),
    ("version-2", request_bytes(VALID, JSON_AUTH, path="/v2/webhooks"), 400, "UNSUPPORTED_VERSION"),
    ("trailing-slash", request_bytes(VALID, JSON_AUTH, path="/v1/webhooks/"), 404, "RESOURCE_NOT_FOUND"),
    ("percent-encoded-version", request_bytes(VALID, JSON_AUTH, path="/v%32/webhooks"), 400, "UNSUPPORTED_VERSION"),
    ("percent-encoded-newline", request_bytes(VALID, JSON_AUTH, path="/v1%0A/webhooks"), 400, "UNSUPPORTED_VERSION"),
    ("percent-encoded-slash", request_bytes(VALID, JSON_AUTH, path="/v1%2Fwebhooks"), 404, "RESOURCE_NOT_FOUND"),
    ("dot-segments", request_bytes(VALID, JSON_AUTH, path="/v1/../v1/webhooks"), 404, "RESOURCE_NOT_FOUND"),
]


@pytest.mark.parametrize("name, data, status, code", BATTERY, ids=[case[0] for case in BATTERY])
async def test_bad_input_battery(live, caplog, name, data, status, code):
    server = live()
    with caplog.at_level(logging.DEBUG):
        got_status, headers, body = parse(await raw_exchange(server.port, data))
        if code is None:
            assert got_status == status, body
            assert REQUEST_ID.match(headers["x-request-id"])
        else:
            assert_api_error(got_status, headers, body, status, code)
        after = parse(await raw_exchange(server.port, request_bytes(VALID, JSON_AUTH)))
    assert after[0] == 201
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "Traceback" not in caplog.text


async def test_body_over_the_limit_is_not_read_past_the_limit(live):
    server = live(max_body_bytes=1000)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /v1/webhooks HTTP/1.1\r\nHost: localhost\r\nX-API-KEY: k\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 50000000\r\n\r\n" + b"[" * 2000)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(65536), 5)
    status, headers, body = parse(data)
    parsed = assert_api_error(status, headers, body, 400, "BAD_REQUEST")
    assert "1000" in parsed["message"]
    writer.close()


# ------------------------------------------------------------------ slow and broken clients


async def _valid_create(port: int) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{port}/v1/webhooks", json=minimal(), headers=AUTH) as resp:
            return resp.status


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), seconds) is not None
    except asyncio.TimeoutError:
        return False


@pytest.mark.parametrize("sent", [b"", b"POST /v1/webhooks HTTP/1.1\r\nHost: localhost\r\nX-API-"],
                         ids=["silent-connection", "stalled-headers"])
async def test_a_connection_without_a_complete_request_is_closed_and_blocks_nobody(live, sent):
    server = live(idle_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(sent)
    await writer.drain()
    assert await _valid_create(server.port) == 201
    assert await _closed_within(reader, 5)
    writer.close()


async def test_a_stalled_body_gets_a_timeout_answer(live):
    server = live(read_timeout_s=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /v1/webhooks HTTP/1.1\r\nHost: localhost\r\nX-API-KEY: k\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"url\": ")
    await writer.drain()
    assert await _valid_create(server.port) == 201
    data = await asyncio.wait_for(reader.read(65536), 5)
    status, headers, body = parse(data)
    parsed = assert_api_error(status, headers, body, 400, "BAD_REQUEST")
    assert "did not arrive" in parsed["message"]
    writer.close()


async def test_a_client_that_disconnects_mid_body_leaves_no_trace(live, caplog):
    server = live()
    with caplog.at_level(logging.DEBUG):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /v1/webhooks HTTP/1.1\r\nHost: localhost\r\nX-API-KEY: k\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"url\": ")
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.transport.abort()
        await asyncio.sleep(0.3)
        assert await _valid_create(server.port) == 201
    entries = server.call(server.mock.journal.snapshot)
    assert [e["status"] for e in entries] == [201]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


# ------------------------------------------------------------------ admin token


async def test_admin_token_guards_every_admin_route_but_health(make_client):
    client = await make_client(admin_token="s3cret-admin")
    assert (await client.get("/__mock/health")).status == 200
    for method, path, body in [("GET", "/__mock/requests", None), ("DELETE", "/__mock/requests", None),
                               ("GET", "/__mock/scenario", None), ("PUT", "/__mock/scenario", {"name": "flaky"}),
                               ("GET", "/__mock/scenarios", None), ("POST", "/__mock/reset", None),
                               ("GET", "/__mock/openapi.json", None), ("GET", "/__mock/deliveries", None),
                               ("POST", "/__mock/events", {"type": "INVOICE.CREATED"})]:
        resp = await client.request(method, path, json=body)
        assert resp.status == 401, path
        parsed = await resp.json()
        assert parsed["code"] == "UNAUTHORISED" and "s3cret-admin" not in json.dumps(parsed)
        resp = await client.request(method, path, json=body, headers={"Authorization": "Bearer wrong"})
        assert resp.status == 401
    # nothing changed
    await client.post("/v1/webhooks", json=minimal(), headers=AUTH)
    resp = await client.get("/__mock/scenario", headers={"X-Admin-Token": "s3cret-admin"})
    assert resp.status == 200 and (await resp.json())["active"] is None
    resp = await client.get("/__mock/requests", headers={"Authorization": "Bearer s3cret-admin"})
    assert resp.status == 200 and len((await resp.json())["requests"]) == 1
    # every guarded route opens with the token
    for path in ("/__mock/deliveries", "/__mock/scenarios", "/__mock/openapi.json"):
        assert (await client.get(path, headers={"X-Admin-Token": "s3cret-admin"})).status == 200, path
    resp = await client.post("/__mock/events", json={"type": "INVOICE.CREATED"}, headers={"X-Admin-Token": "s3cret-admin"})
    assert resp.status == 202, await resp.text()


async def test_unknown_admin_path_is_a_404_api_error(client):
    resp = await client.get("/__mock/nothing-here")
    assert resp.status == 404
    assert (await resp.json())["code"] == "RESOURCE_NOT_FOUND"


async def test_journal_survives_concurrent_bursts(live):
    server = live()
    async with aiohttp.ClientSession() as session:
        async def one(i: int) -> str:
            async with session.post(f"{server.url}/v1/webhooks", json=minimal(name=f"n{i}"), headers=AUTH) as resp:
                await resp.read()
                return resp.headers["X-REQUEST-ID"]
        ids = await asyncio.gather(*(one(i) for i in range(200)))
    entries = server.call(server.mock.journal.snapshot)
    assert sorted(e["request_id"] for e in entries) == sorted(ids)


@pytest.mark.parametrize("path,method", [("/v1/webhooks", "POST"), ("/__mock/events", "POST")])
async def test_json_nested_just_within_the_parsers_limit_is_a_400_not_a_500(client, path, method):
    deep = "[" * 1000 + "]" * 1000
    if path == "/v1/webhooks":
        raw = '{"url": "https://example.com", "name": ' + deep + '}'
        headers = {"X-API-KEY": "k", "Content-Type": "application/json"}
    else:
        raw = '{"type": "INVOICE.CREATED", "data": {"x": ' + deep + '}}'
        headers = {"Content-Type": "application/json"}
    resp = await client.request(method, path, data=raw.encode(), headers=headers)
    assert resp.status == 400, await resp.text()
    assert (await client.get("/__mock/health")).status == 200
