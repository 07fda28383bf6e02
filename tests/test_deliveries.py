"""Signed deliveries to a real receiver: filters, authentication, order, retries, penalty box,
the reset barrier, where deliveries may go and which headers they may carry.

"Nothing else arrived" is never shown by waiting a while: a sentinel event is sent after the
one that must not arrive, and once the sentinel is in, anything earlier would have been too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
from dataclasses import replace
from itertools import count

import pytest
import yaml
from aiohttp import web

from conftest import AUTH, CONTRACT, DATA, SPEC, SCENARIOS, api_error, created, minimal
from mockserver import create_app
from mockserver.http import MOCK
from mockserver.mock import build_mock
from mockserver.signing import sign, signature_headers, verify

pytest_plugins = ["conftest_redis"]  # redis_url, redis_prefix: the shared delivery lines


OPS = {op.operation_id: op for op in CONTRACT.operations}
SIGNING = CONTRACT.deliveries.signing
_SENTINELS = count(1)


class Receiver:
    """A small webhook receiver: records what arrives on which path, fails on demand, and can
    hold requests at a gate until the test opens it."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.failing = False
        self.gate: asyncio.Event | None = None
        self.app = web.Application()
        self.app.router.add_post("/{name}", self.handle)
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append({"path": request.match_info["name"], "headers": dict(request.headers),
                              "body": body, "json": json.loads(body)})
        if self.gate is not None:
            await self.gate.wait()
        return web.Response(status=503 if self.failing else 204)

    def url_for(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + "/" + name

    def at(self, name: str = "hook") -> list[dict]:
        return [r for r in self.received if r["path"] == name]

    def types(self, name: str = "hook") -> list[str]:
        return [r["json"]["type"] for r in self.at(name)]


@pytest.fixture
async def receiver(aiohttp_server):
    rec = Receiver()
    server = await aiohttp_server(rec.app)
    rec.url = f"http://127.0.0.1:{server.port}/hook"
    yield rec
    if rec.gate is not None:
        rec.gate.set()


@pytest.fixture(params=["memory", "redis"])
async def mock(make_client, request):
    """A mock with its delivery lines in memory, or shared on a real Redis: the same behaviour."""
    shared = {}
    if request.param == "redis":
        shared = {"state": request.getfixturevalue("redis_url"), "state_prefix": request.getfixturevalue("redis_prefix")}
    return await make_client(fast_retries=True, delivery_timeout_s=2, **shared)


async def register(client, receiver, headers=None, **changes) -> dict:
    changes.setdefault("url", receiver.url)
    resp = await client.post("/v1/webhooks", json=minimal(**changes), headers=headers or AUTH)
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


async def delivery_state(client) -> list[dict]:
    return (await (await client.get("/__mock/deliveries")).json())["webhooks"]


async def sentinel(client, receiver, name="hook", platform=None, event_type="INVOICE.CREATED") -> str:
    """Emit a marked event and wait until it arrives at ``name``; returns its marker."""
    marker = f"sentinel-{next(_SENTINELS)}"
    await emit(client, event_type, {"sentinel": marker}, platform=platform)
    await until(lambda: any(r["json"]["data"].get("sentinel") == marker for r in receiver.at(name)))
    return marker


def is_sentinel(got: dict) -> bool:
    return "sentinel" in got["json"]["data"]


async def wait_boxed(client, hook_id: str, headers=AUTH) -> dict:
    deadline = time.monotonic() + 5
    while True:
        state = await (await client.get(f"/v1/webhooks/{hook_id}", headers=headers)).json()
        if state["penalty_box"] is not None:
            return state
        assert time.monotonic() < deadline, state
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------ what arrives


async def test_events_arrive_signed_in_order_and_filtered_by_actions(mock, receiver):
    hook = await register(mock, receiver, included_actions=["INVOICE.CREATED", "INVOICE.PAID"],
                          excluded_actions=["INVOICE.PAID"])
    for event_type in ["INVOICE.CREATED", "CUSTOMER.CREATED", "INVOICE.PAID", "INVOICE.CREATED"]:
        await emit(mock, event_type, {"total_amount": "12.50"} if event_type == "INVOICE.CREATED" else None)
    await sentinel(mock, receiver)  # one line per webhook, in order: anything emitted earlier came first
    assert receiver.types() == ["INVOICE.CREATED", "INVOICE.CREATED", "INVOICE.CREATED"]
    first = receiver.received[0]
    envelope = first["json"]
    assert set(envelope) == {"created_at", "type", "original_request_id", "environment", "data"}
    assert envelope["data"]["object_type"] == "INVOICE" and envelope["data"]["total_amount"] == "12.50"
    assert verify(hook["secret_key"], first["body"], first["headers"])
    assert not verify("whsec_wrong", first["body"], first["headers"])
    attempts = await deliveries(mock)
    assert [a["status"] for a in attempts] == [204, 204, 204]
    assert {a["webhook_id"] for a in attempts} == {hook["id"]}
    assert set(attempts[0]) == {"webhook_id", "event_id", "event_type", "attempt", "status", "error", "refused",
                                "latency_ms", "at", "headers"}
    assert attempts[0]["refused"] is False
    sent = {k.lower(): v for k, v in first["headers"].items()}  # the signature headers, as the receiver saw them
    assert all(sent[name.lower()] == value for name, value in attempts[0]["headers"].items()), attempts[0]
    assert "X-Webhook-Signature" in attempts[0]["headers"]


async def test_credential_headers_of_a_delivery_are_recorded_by_name_only(mock, receiver):
    hook = await register(mock, receiver, authentication_type="API_KEY", api_header_field="X-Receiver-Key",
                          api_key="receiver-secret-123")
    await mock.post(f"/v1/webhooks/{hook['id']}/send-test", headers=AUTH)
    assert receiver.received[-1]["headers"]["X-Receiver-Key"] == "receiver-secret-123"
    attempts = await deliveries(mock)
    assert attempts[-1]["headers"]["X-Receiver-Key"] == "[redacted]"
    assert "receiver-secret-123" not in json.dumps(attempts)


async def test_every_action_reaches_a_webhook_without_filters_and_inactive_ones_get_nothing(mock, receiver):
    await register(mock, receiver)
    idle = await register(mock, receiver, url=receiver.url_for("idle"), active=False)
    await emit(mock, "CUSTOMER.CREATED")
    await emit(mock, "SUBSCRIPTION.CANCELLED")
    await until(lambda: len(receiver.at("hook")) == 2)
    # Switched on, the idle webhook's line must be empty: the sentinel is the first thing it gets.
    resp = await mock.patch(f"/v1/webhooks/{idle['id']}", json={"active": True}, headers=AUTH)
    assert resp.status == 200
    await sentinel(mock, receiver, "idle")
    assert [is_sentinel(r) for r in receiver.at("idle")] == [True]
    assert receiver.types()[:2] == ["CUSTOMER.CREATED", "SUBSCRIPTION.CANCELLED"]


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


# ------------------------------------------------------------------ penalty box


async def test_failing_receiver_puts_the_webhook_in_the_penalty_box_and_release_delivers_in_order(mock, receiver):
    hook = await register(mock, receiver)
    await register(mock, receiver, url=receiver.url_for("other"), headers={**AUTH, "x-platform-id": "plat_s"},
                   included_actions=["CUSTOMER.CREATED"])
    receiver.failing = True
    await emit(mock, "INVOICE.CREATED")
    await emit(mock, "INVOICE.UPDATED")
    await emit(mock, "INVOICE.PAID")
    path = f"/v1/webhooks/{hook['id']}"
    state = await wait_boxed(mock, hook["id"])
    data = state["penalty_box_data"]
    assert data["retry_count"] == 3 and "503" in data["cause"]
    assert json.loads(data["payload"])["type"] == "INVOICE.CREATED"
    attempts = [a for a in await deliveries(mock) if a["webhook_id"] == hook["id"]]
    assert [(a["event_type"], a["attempt"], a["status"]) for a in attempts] == [
        ("INVOICE.CREATED", 1, 503), ("INVOICE.CREATED", 2, 503), ("INVOICE.CREATED", 3, 503)]
    lines = {w["webhook_id"]: w for w in await delivery_state(mock)}
    assert lines[hook["id"]]["queued"] == 2 and lines[hook["id"]]["penalty_box"]["retry_count"] == 3

    receiver.failing = False
    await sentinel(mock, receiver, "other", platform="plat_s", event_type="CUSTOMER.CREATED")
    assert receiver.types() == ["INVOICE.CREATED"] * 3  # later events wait behind the held one

    receiver.failing = True
    still = await mock.post(f"{path}/send-penalty-box-payload", headers=AUTH)
    assert (await still.json())["successful"] is False
    assert (await (await mock.get(path, headers=AUTH)).json())["penalty_box_data"]["retry_count"] == 4
    receiver.failing = False
    released = await mock.post(f"{path}/send-penalty-box-payload", headers=AUTH)
    assert released.status == 200 and (await released.json())["successful"] is True
    await sentinel(mock, receiver)
    assert receiver.types()[:-1] == ["INVOICE.CREATED"] * 5 + ["INVOICE.UPDATED", "INVOICE.PAID"]
    state = await (await mock.get(path, headers=AUTH)).json()
    assert state["penalty_box"] is None and state["penalty_box_data"] is None
    again = await mock.post(f"{path}/send-penalty-box-payload", headers=AUTH)
    assert again.status == 409


async def test_two_concurrent_releases_deliver_the_held_event_once(mock, receiver):
    hook = await register(mock, receiver)
    receiver.failing = True
    await emit(mock, "INVOICE.CREATED")
    await wait_boxed(mock, hook["id"])
    receiver.failing = False
    receiver.gate = asyncio.Event()
    before = len(receiver.received)
    release = f"/v1/webhooks/{hook['id']}/send-penalty-box-payload"
    first = asyncio.create_task(mock.post(release, headers=AUTH))
    await until(lambda: len(receiver.received) == before + 1)  # the first release is at the receiver
    try:
        second = await asyncio.wait_for(mock.post(release, headers=AUTH), 5)
    finally:
        receiver.gate.set()
    await api_error(second, 409, "INVALID_OPERATION")
    done = await first
    assert done.status == 200 and (await done.json())["successful"] is True
    assert len(receiver.received) == before + 1  # both answers are in: no release can still send
    held = [a for a in await deliveries(mock) if a["attempt"] == 4]
    assert len(held) == 1 and held[0]["status"] == 204


async def test_a_held_queue_is_bounded_and_counts_what_it_dropped(make_client, receiver):
    mock = await make_client(fast_retries=True, delivery_timeout_s=2, delivery_queue_limit=3)
    hook = await register(mock, receiver)
    receiver.failing = True
    await emit(mock, "INVOICE.CREATED")
    await wait_boxed(mock, hook["id"])
    for i in range(5):
        await emit(mock, "INVOICE.UPDATED", {"n": i})
    line = (await delivery_state(mock))[0]
    assert (line["webhook_id"], line["queued"], line["dropped"]) == (hook["id"], 3, 2)
    assert line["penalty_box"] is not None and "tenant" in line and "test-key" not in json.dumps(line)
    receiver.failing = False
    resp = await mock.post(f"/v1/webhooks/{hook['id']}/send-penalty-box-payload", headers=AUTH)
    assert (await resp.json())["successful"] is True
    await sentinel(mock, receiver)
    updates = [r["json"]["data"]["n"] for r in receiver.at() if r["json"]["type"] == "INVOICE.UPDATED"]
    assert updates == [0, 1, 2]
    line = (await delivery_state(mock))[0]
    assert (line["queued"], line["dropped"], line["penalty_box"]) == (0, 2, None)


# ------------------------------------------------------------------ test calls


async def test_send_test_and_test_connection_really_call_the_url(mock, receiver):
    hook = await register(mock, receiver)
    resp = await mock.post(f"/v1/webhooks/{hook['id']}/send-test", headers=AUTH)
    result = await resp.json()
    assert resp.status == 200 and result == {"successful": True, "message": "delivered: HTTP 204"}
    assert not list(OPS["postWebhooksByResourceIdSendTest"].responses[200].validator.iter_errors(result))
    assert verify(hook["secret_key"], receiver.received[0]["body"], receiver.received[0]["headers"])
    resp = await mock.post("/v1/webhooks/test-connection", json=minimal(url=receiver.url), headers=AUTH)
    assert (await resp.json())["successful"] is True and len(receiver.received) == 2
    receiver.failing = True
    resp = await mock.post("/v1/webhooks/test-connection", json=minimal(url=receiver.url), headers=AUTH)
    result = await resp.json()
    assert resp.status == 200 and result["successful"] is False and "503" in result["message"]


async def test_send_test_sends_the_first_event_the_webhook_selects(mock, receiver):
    hook = await register(mock, receiver, included_actions=["INVOICE.CREATED"], active=False)
    resp = await mock.post(f"/v1/webhooks/{hook['id']}/send-test", headers=AUTH)
    assert resp.status == 200 and (await resp.json())["successful"] is True
    assert json.loads(receiver.received[-1]["body"])["type"] == "INVOICE.CREATED"
    everything = await register(mock, receiver)
    await mock.post(f"/v1/webhooks/{everything['id']}/send-test", headers=AUTH)
    assert json.loads(receiver.received[-1]["body"])["type"] != "INVOICE.CREATED"  # the catalogue's first


async def test_unknown_event_types_are_refused(mock):
    resp = await mock.post("/__mock/events", json={"type": "INVOICE.EXPLODED"})
    body = await resp.json()
    assert resp.status == 400 and body["code"] == "BAD_REQUEST" and "INVOICE.CREATED" in body["message"]
    resp = await mock.post("/__mock/events", json={"nope": 1})
    body = await resp.json()
    assert resp.status == 400 and body["field"] == "type"
    assert 'such as "CUSTOMER.CREATED"' in body["message"]  # the catalogue's first event type, from the overlay


# ------------------------------------------------------------------ secrets


async def test_during_a_roll_both_secrets_sign(mock, receiver):
    hook = await register(mock, receiver)
    rolled = await (await mock.patch(f"/v1/webhooks/{hook['id']}/secret-key", headers=AUTH)).json()
    await emit(mock, "INVOICE.CREATED")
    await until(lambda: len(receiver.received) == 1)
    got = receiver.received[0]
    assert verify(rolled["secret_key"], got["body"], got["headers"])
    assert verify(hook["secret_key"], got["body"], got["headers"])
    assert got["headers"]["X-Webhook-Signature"].count("v1=") == 2


async def test_dropping_the_previous_secret_clears_its_signing_protocol_too(mock, receiver):
    hook = await register(mock, receiver, signing_protocol="HmacSHA256")
    path = f"/v1/webhooks/{hook['id']}/secret-key"
    rolled = await (await mock.patch(path, headers=AUTH)).json()
    assert rolled["previous_signing_protocol"] == "HmacSHA256"
    dropped = await (await mock.delete(path, headers=AUTH)).json()
    assert dropped["previous_secret_key"] is None and dropped["previous_signing_protocol"] is None
    again = await (await mock.get(f"/v1/webhooks/{hook['id']}", headers=AUTH)).json()
    assert again["previous_signing_protocol"] is None
    await emit(mock, "INVOICE.CREATED")
    await until(lambda: len(receiver.received) == 1)
    assert receiver.received[0]["headers"]["X-Webhook-Signature"].count("v1=") == 1


def test_verify_rejects_stale_tampered_and_unsigned_bodies():
    body = b'{"type":"INVOICE.CREATED"}'
    headers = signature_headers(SIGNING, ["whsec_a"], body, timestamp=1_000_000)
    assert verify("whsec_a", body, headers, now=1_000_100)
    assert not verify("whsec_a", body, headers, now=1_000_400)
    assert verify("whsec_a", body, headers, tolerance_s=1000, now=1_000_400)
    assert not verify("whsec_a", body + b" ", headers, now=1_000_100)
    assert not verify("whsec_a", body, {}, now=1_000_100)
    assert headers["X-Webhook-Signature"] == sign(SIGNING, "whsec_a", 1_000_000, body)
    lower = {k.lower(): v for k, v in headers.items()}
    assert verify("whsec_a", body, lower, now=1_000_000)


def test_the_bundled_scheme_is_the_documented_hmac_of_timestamp_dot_body():
    body = b'{"type":"INVOICE.CREATED"}'
    expected = hmac.new(b"whsec_a", b"1000000." + body, hashlib.sha256).hexdigest()
    assert sign(SIGNING, "whsec_a", 1_000_000, body) == f"v1={expected}"
    assert verify("whsec_a", body, {"X-Webhook-Timestamp": "1000000", "X-Webhook-Signature": f"v1={expected}"},
                  now=1_000_000)


def test_verify_takes_another_contract_s_scheme():
    scheme = replace(SIGNING, signature_header="Sig", signed="{body}|{timestamp}", encoding="base64",
                     entry="s={signature}", separator=" ")
    body = b"{}"
    headers = signature_headers(scheme, ["k1", "k2"], body, timestamp=7)
    mac = base64.b64encode(hmac.new(b"k2", b"{}|7", hashlib.sha256).digest()).decode()
    assert headers["Sig"].split(" ")[1] == f"s={mac}"
    assert verify("k2", body, headers, now=7, scheme=scheme)
    assert not verify("k2", body, headers, now=7)  # the bundled scheme looks for other headers


# ------------------------------------------------------------------ the contract is data


async def test_headers_envelope_and_attempts_come_from_the_contract(make_client, receiver, tmp_path):
    overlay = yaml.safe_load((SPEC / "overlays" / "solvimon-webhooks.yaml").read_text())
    block = next(a for a in overlay["actions"] if a["target"] == "$")["update"]["x-mock"]["deliveries"]
    block["signing"]["signatureHeader"] = "X-Mock-Signature"
    block["retries"]["attempts"] = 2
    block["event"]["envelope"] = {"type": "event_type", "data": "data"}
    changed = tmp_path / "webhooks.yaml"
    changed.write_text(yaml.safe_dump(overlay, sort_keys=False))
    mock = await make_client(overlays=["solvimon", str(changed)], fast_retries=True, delivery_timeout_s=2)
    scheme = mock.server.app[MOCK].contract.deliveries.signing
    hook = await register(mock, receiver)
    receiver.failing = True
    await emit(mock, "INVOICE.CREATED")
    state = await wait_boxed(mock, hook["id"])
    assert state["penalty_box_data"]["retry_count"] == 2
    assert [(a["attempt"], a["status"]) for a in await deliveries(mock)] == [(1, 503), (2, 503)]
    assert len(receiver.received) == 2
    got = receiver.received[0]
    assert list(got["json"]) == ["event_type", "data"] and got["json"]["event_type"] == "INVOICE.CREATED"
    assert "X-Webhook-Signature" not in got["headers"] and "X-Mock-Signature" in got["headers"]
    assert verify(hook["secret_key"], got["body"], got["headers"], scheme=scheme)
    assert not verify(hook["secret_key"], got["body"], got["headers"])  # the bundled scheme's header is absent


async def test_a_contract_without_deliveries_serves_and_refuses_events(make_client):
    mock = await make_client(openapi=[DATA / "openapi" / "petstore.yaml"], scenarios_dir=None)
    engine = mock.server.app[MOCK].engine
    assert engine.contract.deliveries is None and engine.actions == {} and engine.presenters == {}
    resp = await mock.post("/__mock/events", json={"type": "PET.CREATED"})
    text = await resp.text()
    assert resp.status == 400 and "delivers no events" in text, text
    assert await (await mock.get("/__mock/deliveries")).json() == {"deliveries": [], "webhooks": []}
    assert (await mock.post("/__mock/reset")).status == 200


# ------------------------------------------------------------------ the reset barrier


async def test_a_delivery_in_flight_at_reset_is_not_recorded_and_nothing_queued_follows(mock, receiver):
    await register(mock, receiver)
    receiver.gate = asyncio.Event()
    await emit(mock, "INVOICE.CREATED")
    await emit(mock, "INVOICE.UPDATED")
    await until(lambda: len(receiver.received) == 1)  # the first is at the (slow) receiver
    assert (await mock.post("/__mock/reset")).status == 200
    assert await delivery_state(mock) == []
    receiver.gate.set()
    await register(mock, receiver, url=receiver.url_for("after"))
    marker = await sentinel(mock, receiver, "after")
    assert receiver.types() == ["INVOICE.CREATED"]  # the queued INVOICE.UPDATED never went out
    attempts = await deliveries(mock)
    assert [a["event_type"] for a in attempts] == ["INVOICE.CREATED"]
    assert len(receiver.at("after")) == 1 and receiver.at("after")[0]["json"]["data"]["sentinel"] == marker


async def test_a_release_in_flight_at_reset_leaves_no_trace(mock, receiver):
    hook = await register(mock, receiver)
    receiver.failing = True
    await emit(mock, "INVOICE.CREATED")
    await wait_boxed(mock, hook["id"])
    await emit(mock, "INVOICE.UPDATED")
    receiver.failing = False
    receiver.gate = asyncio.Event()
    before = len(receiver.received)
    release = asyncio.create_task(mock.post(f"/v1/webhooks/{hook['id']}/send-penalty-box-payload", headers=AUTH))
    await until(lambda: len(receiver.received) == before + 1)
    assert (await mock.post("/__mock/reset")).status == 200
    receiver.gate.set()
    await release
    await api_error(await mock.get(f"/v1/webhooks/{hook['id']}", headers=AUTH), 404, "RESOURCE_NOT_FOUND")
    await register(mock, receiver, url=receiver.url_for("after"))
    await sentinel(mock, receiver, "after")
    assert "INVOICE.UPDATED" not in receiver.types()
    assert [a["event_type"] for a in await deliveries(mock)] == ["INVOICE.CREATED"]  # only the sentinel's
    assert hook["id"] not in [w["webhook_id"] for w in await delivery_state(mock)]


async def test_a_send_test_in_flight_at_reset_is_not_recorded(mock, receiver):
    hook = await register(mock, receiver)
    receiver.gate = asyncio.Event()
    call = asyncio.create_task(mock.post(f"/v1/webhooks/{hook['id']}/send-test", headers=AUTH))
    await until(lambda: len(receiver.received) == 1)
    assert (await mock.post("/__mock/reset")).status == 200
    receiver.gate.set()
    assert (await call).status == 200
    assert await deliveries(mock) == []


# ------------------------------------------------------------------ where deliveries may go


async def test_deliveries_never_leave_the_machine_unless_allowed(mock):
    resp = await mock.post("/v1/webhooks/test-connection", json=minimal(url="https://example.com/hook"), headers=AUTH)
    result = await resp.json()
    assert result["successful"] is False and "not allowed" in result["message"]


async def test_a_refused_delivery_is_recorded_as_refused_not_retried_and_not_boxed(mock):
    hook = (await (await mock.post("/v1/webhooks", json=minimal(url="https://example.com/hook"),
                                   headers=AUTH)).json())
    first = await emit(mock, "INVOICE.CREATED")
    second = await emit(mock, "INVOICE.UPDATED")

    async def attempted(event_id: str) -> bool:
        return any(a["event_id"] == event_id for a in await deliveries(mock))

    deadline = time.monotonic() + 5
    while not await attempted(second["event_id"]):  # in order: the first was done with before
        assert time.monotonic() < deadline, await deliveries(mock)
        await asyncio.sleep(0.01)
    attempts = await deliveries(mock)
    assert [(a["event_id"], a["attempt"], a["refused"], a["status"]) for a in attempts] == [
        (first["event_id"], 1, True, None), (second["event_id"], 1, True, None)]
    assert "not allowed" in attempts[0]["error"]
    state = await (await mock.get(f"/v1/webhooks/{hook['id']}", headers=AUTH)).json()
    assert state["penalty_box"] is None and state["penalty_box_data"] is None


def _fake_lookup(table: dict[str, list[str]]):
    async def lookup(host: str) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        return table[host]
    return lookup


async def test_host_names_are_judged_by_the_addresses_they_resolve_to(aiohttp_client, receiver):
    mock = build_mock(scenarios_dir=SCENARIOS, hot_reload=False, fast_retries=True)
    mock.deliveries.lookup = _fake_lookup({"localhost.localdomain": ["192.0.2.7"],
                                           "receiver.test": ["127.0.0.1"],
                                           "split.test": ["127.0.0.1", "192.0.2.8"]})
    client = await aiohttp_client(create_app(mock=mock))
    port = receiver.url.split(":")[2].split("/")[0]

    async def connect(host: str) -> dict:
        resp = await client.post("/v1/webhooks/test-connection", json=minimal(url=f"http://{host}:{port}/hook"),
                                 headers=AUTH)
        assert resp.status == 200
        return await resp.json()

    for host in ("localhost.localdomain", "split.test", "nowhere.invalid"):
        result = await connect(host)
        assert result["successful"] is False and "not allowed" in result["message"], (host, result)
    assert receiver.received == []
    result = await connect("receiver.test")
    assert result["successful"] is True, result
    assert len(receiver.received) == 1


async def test_localhost_resolves_and_an_ipv6_loopback_url_is_accepted(mock, receiver, aiohttp_server):
    six = Receiver()
    server = await aiohttp_server(six.app, host="::1")
    port = receiver.url.split(":")[2].split("/")[0]
    for url in (f"http://[::1]:{server.port}/hook", f"http://localhost:{port}/hook"):
        resp = await mock.post("/v1/webhooks", json=minimal(url=url), headers=AUTH)
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["url"] == url
    await emit(mock, "INVOICE.CREATED")
    await until(lambda: len(six.received) == 1 and len(receiver.received) == 1)
    assert [a["status"] for a in await deliveries(mock)] == [204, 204]


@pytest.mark.parametrize("url", ["http://[::1/x", "http://[fe80::1%25eth0]/", "http://[not:an:ip]/", "http://[]/"])
async def test_malformed_ipv6_urls_are_refused(mock, url):
    await api_error(await mock.post("/v1/webhooks", json=minimal(url=url), headers=AUTH), 400, "INVALID_FIELD", "url")


# An address reserved for documentation (RFC 5737): no test ever sends anything to it. A refused
# delivery is decided before any connection is made; an allowed one is judged, not sent.
OFF_MACHINE = "192.0.2.10"


@pytest.mark.parametrize("allowed", [(), (OFF_MACHINE,), ("*",), ("other.example",)])
async def test_delivery_allow_host_decides_which_non_loopback_hosts_may_be_called(make_client, allowed):
    from mockserver.http import MOCK

    mock = await make_client(fast_retries=True, delivery_timeout_s=2, delivery_allowed_hosts=allowed)
    url = f"http://{OFF_MACHINE}:9/hook"
    deliveries = mock.server.app[MOCK].deliveries
    refusal = await deliveries._refusal({"url": url}, {})
    if allowed and allowed != ("other.example",):
        assert refusal is None
        assert deliveries.host_allowed(OFF_MACHINE)
        return
    assert refusal is not None and "not allowed" in refusal and "--delivery-allow-host" in refusal
    hook = await created(await mock.post("/v1/webhooks", json=minimal(url=url), headers=AUTH))
    result = await (await mock.post(f"/v1/webhooks/{hook['id']}/send-test", headers=AUTH)).json()
    assert result["successful"] is False and "not allowed" in result["message"]
    attempts = (await (await mock.get("/__mock/deliveries")).json())["deliveries"]
    assert [(a["refused"], a["status"]) for a in attempts] == [(True, None)]


# ------------------------------------------------------------------ which headers deliveries may carry


FORBIDDEN_HEADERS = ["Content-Length", "content-length", "Transfer-Encoding", "TRANSFER-ENCODING", "Connection",
                     "Host", "Upgrade", "TE", "te", "Trailer", "Keep-Alive", "Proxy-Authorization",
                     "proxy-connection", "X Key", "X-Key:", "X-Key\r\nX-Evil", "Bad(Header)", "", "Ключ"]


@pytest.mark.parametrize("name", FORBIDDEN_HEADERS)
async def test_api_header_field_must_be_a_safe_header_name(mock, receiver, name):
    body = minimal(url=receiver.url, authentication_type="API_KEY", api_header_field=name, api_key="5")
    error = await api_error(await mock.post("/v1/webhooks", json=body, headers=AUTH), 400, "INVALID_FIELD",
                            "api_header_field")
    assert "header name" in error["message"]
    await api_error(await mock.post("/v1/webhooks/test-connection", json=body, headers=AUTH), 400,
                    "INVALID_FIELD", "api_header_field")
    hook = await register(mock, receiver)
    await api_error(await mock.patch(f"/v1/webhooks/{hook['id']}", json={"api_header_field": name}, headers=AUTH),
                    400, "INVALID_FIELD", "api_header_field")
    assert receiver.received == []


@pytest.mark.parametrize("name", ["X-Receiver-Key", "Hostname", "TE-Extra", "X-Connection", "Proxy", "x~key!#$%&'*+.^_`|"])
async def test_a_custom_header_name_still_works(mock, receiver, name):
    await register(mock, receiver, authentication_type="API_KEY", api_header_field=name, api_key="rk-1")
    await emit(mock, "INVOICE.CREATED")
    await until(lambda: len(receiver.received) == 1)
    assert receiver.received[0]["headers"][name] == "rk-1"


async def test_a_stored_webhook_with_a_framing_header_is_refused_at_delivery(mock, receiver):
    hook = await register(mock, receiver, authentication_type="API_KEY", api_header_field="X-Key", api_key="5")
    engine = mock.server.app[MOCK].engine
    tenant = engine.tenant({"x-api-key": "test-key"})
    stored = await engine.store.get(tenant, "webhooks", hook["id"])
    assert stored is not None  # as a scripted answer could have stored it
    await engine.store.put(tenant, "webhooks", hook["id"], {**stored.body, "api_header_field": "Content-Length"})
    result = await (await mock.post(f"/v1/webhooks/{hook['id']}/send-test", headers=AUTH)).json()
    assert result["successful"] is False and "api_header_field" in result["message"]
    attempts = await deliveries(mock)
    assert len(attempts) == 1 and attempts[0]["refused"] is True
    assert receiver.received == []


# ------------------------------------------------------------------ the pytest plugin


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
