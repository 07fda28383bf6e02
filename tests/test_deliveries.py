"""Signed deliveries to a real receiver: filters, authentication, order, retries, penalty box."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from aiohttp import web

from conftest import AUTH, CONTRACT, minimal
from mockserver.signing import sign, signature_headers, verify


OPS = {op.operation_id: op for op in CONTRACT.operations}


class Receiver:
    """A small webhook receiver: records what arrives, and fails on demand."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.failing = False
        self.app = web.Application()
        self.app.router.add_post("/hook", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append({"headers": dict(request.headers), "body": body, "json": json.loads(body)})
        return web.Response(status=503 if self.failing else 204)

    def types(self) -> list[str]:
        return [r["json"]["type"] for r in self.received]


@pytest.fixture
async def receiver(aiohttp_server):
    rec = Receiver()
    server = await aiohttp_server(rec.app)
    rec.url = f"http://127.0.0.1:{server.port}/hook"
    return rec


@pytest.fixture
async def mock(make_client):
    return await make_client(fast_retries=True, delivery_timeout_s=2)


async def register(client, receiver, headers=None, **changes) -> dict:
    resp = await client.post("/v1/webhooks", json=minimal(url=receiver.url, **changes), headers=headers or AUTH)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def emit(client, event_type, data=None, platform=None) -> dict:
    headers = {"x-platform-id": platform} if platform else {}
    resp = await client.post("/__mock/events", json={"type": event_type, **({"data": data} if data else {})},
                             headers=headers)
    assert resp.status == 202, await resp.text()
    return await resp.json()


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def deliveries(client) -> list[dict]:
    return (await (await client.get("/__mock/deliveries")).json())["deliveries"]


async def test_events_arrive_signed_in_order_and_filtered_by_actions(mock, receiver):
    hook = await register(mock, receiver, included_actions=["INVOICE.CREATED", "INVOICE.PAID"],
                          excluded_actions=["INVOICE.PAID"])
    for event_type in ["INVOICE.CREATED", "CUSTOMER.CREATED", "INVOICE.PAID", "INVOICE.CREATED"]:
        await emit(mock, event_type, {"total_amount": "12.50"} if event_type == "INVOICE.CREATED" else None)
    await until(lambda: len(receiver.received) == 2)
    await asyncio.sleep(0.1)
    assert receiver.types() == ["INVOICE.CREATED", "INVOICE.CREATED"]
    first = receiver.received[0]
    envelope = first["json"]
    assert set(envelope) == {"created_at", "type", "original_request_id", "environment", "data"}
    assert envelope["data"]["object_type"] == "INVOICE" and envelope["data"]["total_amount"] == "12.50"
    assert verify(hook["secret_key"], first["body"], first["headers"])
    assert not verify("whsec_wrong", first["body"], first["headers"])
    attempts = await deliveries(mock)
    assert [a["status"] for a in attempts] == [204, 204]
    assert {a["webhook_id"] for a in attempts} == {hook["id"]}
    assert set(attempts[0]) == {"webhook_id", "event_id", "event_type", "attempt", "status", "error", "latency_ms", "at"}


async def test_every_action_reaches_a_webhook_without_filters_and_inactive_ones_get_nothing(mock, receiver):
    await register(mock, receiver)
    await register(mock, receiver, active=False)
    await emit(mock, "CUSTOMER.CREATED")
    await emit(mock, "SUBSCRIPTION.CANCELLED")
    await until(lambda: len(receiver.received) == 2)
    await asyncio.sleep(0.1)
    assert receiver.types() == ["CUSTOMER.CREATED", "SUBSCRIPTION.CANCELLED"]


@pytest.mark.parametrize("changes, expected", [
    ({"authentication_type": "PASSWORD", "username": "hookuser", "password": "hookpass"},
     ("Authorization", "Basic " + base64.b64encode(b"hookuser:hookpass").decode())),
    ({"authentication_type": "API_KEY", "api_header_field": "X-Receiver-Key", "api_key": "rk-123"},
     ("X-Receiver-Key", "rk-123")),
    ({"authentication_type": "NONE"}, None),
])
async def test_deliveries_use_the_configured_authentication(mock, receiver, changes, expected):
    await register(mock, receiver, **changes)
    await emit(mock, "INVOICE.CREATED")
    await until(lambda: len(receiver.received) == 1)
    headers = receiver.received[0]["headers"]
    if expected is None:
        assert "Authorization" not in headers and "X-Receiver-Key" not in headers
    else:
        assert headers[expected[0]] == expected[1]
    text = json.dumps(await deliveries(mock))
    assert "hookpass" not in text and "rk-123" not in text


async def test_events_go_only_to_the_named_platform(mock, receiver):
    await register(mock, receiver, headers={**AUTH, "x-platform-id": "plat_a"}, name="a")
    await register(mock, receiver, headers={**AUTH, "x-platform-id": "plat_b"}, name="b")
    result = await emit(mock, "INVOICE.CREATED", platform="plat_b")
    assert len(result["webhooks"]) == 1
    await until(lambda: len(receiver.received) == 1)
    result = await emit(mock, "INVOICE.PAID")
    assert len(result["webhooks"]) == 2


async def test_failing_receiver_puts_the_webhook_in_the_penalty_box_and_release_delivers_in_order(mock, receiver):
    hook = await register(mock, receiver)
    receiver.failing = True
    await emit(mock, "INVOICE.CREATED")
    await emit(mock, "INVOICE.UPDATED")
    await emit(mock, "INVOICE.PAID")
    path = f"/v1/webhooks/{hook['id']}"

    async def boxed() -> dict:
        return await (await mock.get(path, headers=AUTH)).json()

    deadline = time.monotonic() + 5
    while (await boxed())["penalty_box"] is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    state = await boxed()
    data = state["penalty_box_data"]
    assert data["retry_count"] == 3 and "503" in data["cause"]
    assert json.loads(data["payload"])["type"] == "INVOICE.CREATED"
    attempts = await deliveries(mock)
    assert [(a["event_type"], a["attempt"], a["status"]) for a in attempts] == [
        ("INVOICE.CREATED", 1, 503), ("INVOICE.CREATED", 2, 503), ("INVOICE.CREATED", 3, 503)]
    await asyncio.sleep(0.1)
    assert len(receiver.received) == 3  # later events wait behind the held one

    still = await mock.post(f"{path}/send-penalty-box-payload", headers=AUTH)
    assert (await still.json())["successful"] is False
    receiver.failing = False
    released = await mock.post(f"{path}/send-penalty-box-payload", headers=AUTH)
    assert released.status == 200 and (await released.json())["successful"] is True
    await until(lambda: len(receiver.received) == 7)
    assert receiver.types()[-3:] == ["INVOICE.CREATED", "INVOICE.UPDATED", "INVOICE.PAID"]
    state = await boxed()
    assert state["penalty_box"] is None and state["penalty_box_data"] is None
    again = await mock.post(f"{path}/send-penalty-box-payload", headers=AUTH)
    assert again.status == 409


async def test_send_test_and_test_connection_really_call_the_url(mock, receiver):
    hook = await register(mock, receiver)
    resp = await mock.post(f"/v1/webhooks/{hook['id']}/send-test", headers=AUTH)
    result = await resp.json()
    assert resp.status == 200 and result == {"successful": True, "message": "delivered: HTTP 204"}
    assert not list(OPS["sendWebhookTest"].responses[200].validator.iter_errors(result))
    assert verify(hook["secret_key"], receiver.received[0]["body"], receiver.received[0]["headers"])
    resp = await mock.post("/v1/webhooks/test-connection", json=minimal(url=receiver.url), headers=AUTH)
    assert (await resp.json())["successful"] is True and len(receiver.received) == 2
    receiver.failing = True
    resp = await mock.post("/v1/webhooks/test-connection", json=minimal(url=receiver.url), headers=AUTH)
    result = await resp.json()
    assert resp.status == 200 and result["successful"] is False and "503" in result["message"]


async def test_deliveries_never_leave_the_machine_unless_allowed(mock):
    resp = await mock.post("/v1/webhooks/test-connection", json=minimal(url="https://example.com/hook"), headers=AUTH)
    result = await resp.json()
    assert result["successful"] is False and "not allowed" in result["message"]


async def test_unknown_event_types_are_refused(mock):
    resp = await mock.post("/__mock/events", json={"type": "INVOICE.EXPLODED"})
    body = await resp.json()
    assert resp.status == 400 and body["code"] == "BAD_REQUEST" and "INVOICE.CREATED" in body["message"]
    assert (await mock.post("/__mock/events", json={"nope": 1})).status == 400


async def test_during_a_roll_both_secrets_sign(mock, receiver):
    hook = await register(mock, receiver)
    rolled = await (await mock.patch(f"/v1/webhooks/{hook['id']}/secret-key", headers=AUTH)).json()
    await emit(mock, "INVOICE.CREATED")
    await until(lambda: len(receiver.received) == 1)
    got = receiver.received[0]
    assert verify(rolled["secret_key"], got["body"], got["headers"])
    assert verify(hook["secret_key"], got["body"], got["headers"])
    assert got["headers"]["X-Webhook-Signature"].count("v1=") == 2


def test_verify_rejects_stale_tampered_and_unsigned_bodies():
    body = b'{"type":"INVOICE.CREATED"}'
    headers = signature_headers(["whsec_a"], body, timestamp=1_000_000)
    assert verify("whsec_a", body, headers, now=1_000_100)
    assert not verify("whsec_a", body, headers, now=1_000_400)
    assert verify("whsec_a", body, headers, tolerance_s=1000, now=1_000_400)
    assert not verify("whsec_a", body + b" ", headers, now=1_000_100)
    assert not verify("whsec_a", body, {}, now=1_000_100)
    assert headers["X-Webhook-Signature"] == sign("whsec_a", 1_000_000, body)
    lower = {k.lower(): v for k, v in headers.items()}
    assert verify("whsec_a", body, lower, now=1_000_000)


def test_fixture_exposes_deliveries(pytester):
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_receiver='''
        import json, threading, urllib.request
        from http.server import BaseHTTPRequestHandler, HTTPServer

        got = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                got.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200); self.end_headers()
            def log_message(self, *a):
                pass

        def test_delivery(mockserver):
            server = HTTPServer(("127.0.0.1", 0), Handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            url = f"http://127.0.0.1:{server.server_port}/hook"
            req = urllib.request.Request(mockserver.url + "/v1/webhooks", method="POST",
                data=json.dumps({"url": url, "name": "n", "reference": "r"}).encode(),
                headers={"Content-Type": "application/json", "X-API-KEY": "k"})
            urllib.request.urlopen(req).read()
            mockserver.emit("INVOICE.CREATED")
            attempts = mockserver.wait_for_deliveries(1)
            assert attempts[0]["status"] == 200 and attempts[0]["event_type"] == "INVOICE.CREATED"
            assert json.loads(got[0])["type"] == "INVOICE.CREATED"
            server.shutdown()
    ''')
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
