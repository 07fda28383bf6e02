"""Server-managed webhook state (the penalty box) belongs to the deliveries, not to the body a
client writes; delivery lines end with their webhook. Checked through a real HTTP server, and
by a stateful property test that drives random sequences of every webhook operation."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule,
                                 run_state_machine_as_test)

from conftest import AUTH, CONTRACT, minimal

OPS = {op.operation_id: op for op in CONTRACT.operations}


# ------------------------------------------------------------------ helpers for aiohttp_client tests


class Receiver:
    def __init__(self) -> None:
        self.received: list[dict] = []
        self.failing = False
        self.app = web.Application()
        self.app.router.add_post("/{name}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append({"path": request.match_info["name"], "json": json.loads(await request.read())})
        return web.Response(status=503 if self.failing else 204)


@pytest.fixture
async def receiver(aiohttp_server):
    rec = Receiver()
    server = await aiohttp_server(rec.app)
    rec.url = f"http://127.0.0.1:{server.port}/hook"
    return rec


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def answered(resp, operation: str, status: int = 200) -> dict:
    body = await resp.json()
    assert resp.status == status, body
    errors = list(OPS[operation].responses[status].validator.iter_errors(body))
    assert not errors, errors
    return body


async def boxed_webhook(client, receiver) -> dict:
    hook = await answered(await client.post("/v1/webhooks", json=minimal(url=receiver.url), headers=AUTH),
                          "postWebhooks", 201)
    receiver.failing = True
    assert (await client.post("/__mock/events", json={"type": "INVOICE.CREATED"})).status == 202
    deadline = time.monotonic() + 5
    while (await (await client.get(f"/v1/webhooks/{hook['id']}", headers=AUTH)).json())["penalty_box"] is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    return hook


# ------------------------------------------------------------------ the penalty box is server state


async def test_a_client_cannot_write_the_penalty_box(make_client, receiver):
    client = await make_client(fast_retries=True, delivery_timeout_s=2)
    fake = {"retry_count": 7, "retry_at": "2030-01-01T00:00:00Z", "cause": "forged", "payload": "{}"}
    hook = await answered(await client.post("/v1/webhooks", json=minimal(url=receiver.url, penalty_box_data=fake),
                                            headers=AUTH), "postWebhooks", 201)
    assert hook["penalty_box"] is None and hook["penalty_box_data"] is None
    path = f"/v1/webhooks/{hook['id']}"
    patched = await answered(await client.patch(path, json={"penalty_box_data": fake}, headers=AUTH), "patchWebhooksByResourceId")
    assert patched["penalty_box_data"] is None
    assert (await answered(await client.get(path, headers=AUTH), "getWebhooksByResourceId"))["penalty_box_data"] is None
    listed = await answered(await client.get("/v1/webhooks", headers=AUTH), "getWebhooks")
    assert [h["penalty_box_data"] for h in listed["data"]] == [None]
    resp = await client.post(f"{path}/send-penalty-box-payload", headers=AUTH)
    assert resp.status == 409


async def test_a_boxed_webhook_survives_any_patch_of_its_penalty_box_data(make_client, receiver):
    client = await make_client(fast_retries=True, delivery_timeout_s=2)
    hook = await boxed_webhook(client, receiver)
    path = f"/v1/webhooks/{hook['id']}"
    truth = (await answered(await client.get(path, headers=AUTH), "getWebhooksByResourceId"))["penalty_box_data"]
    assert truth["retry_count"] == 3 and json.loads(truth["payload"])["type"] == "INVOICE.CREATED"
    for forged in ({"retry_count": None}, None, {"retry_count": 99, "cause": "forged", "payload": "x"}):
        patched = await answered(await client.patch(path, json={"penalty_box_data": forged, "penalty_box": None},
                                                    headers=AUTH), "patchWebhooksByResourceId")
        assert patched["penalty_box"] is not None and patched["penalty_box_data"] == truth
    rolled = await answered(await client.patch(f"{path}/secret-key", headers=AUTH), "patchWebhooksByResourceIdSecretKey")
    assert rolled["penalty_box_data"] == truth
    listed = await answered(await client.get("/v1/webhooks", headers=AUTH), "getWebhooks")
    assert listed["data"][0]["penalty_box_data"] == truth
    resp = await client.post(f"{path}/send-penalty-box-payload", headers=AUTH)
    failed = await answered(resp, "postWebhooksByResourceIdSendPenaltyBoxPayload")  # still failing: a 200 that says so
    assert failed["successful"] is False
    after = (await answered(await client.get(path, headers=AUTH), "getWebhooksByResourceId"))["penalty_box_data"]
    assert after["retry_count"] == 4 and after["payload"] == truth["payload"]
    receiver.failing = False
    released = await answered(await client.post(f"{path}/send-penalty-box-payload", headers=AUTH),
                              "postWebhooksByResourceIdSendPenaltyBoxPayload")
    assert released["successful"] is True
    state = await answered(await client.get(path, headers=AUTH), "getWebhooksByResourceId")
    assert state["penalty_box"] is None and state["penalty_box_data"] is None


# ------------------------------------------------------------------ lines end with their webhook


def _worker_tasks() -> int:
    return sum(1 for t in asyncio.all_tasks() if not t.done() and "Deliveries" in repr(t.get_coro()))


async def test_delivery_lines_and_their_tasks_end_with_their_webhook(make_client, receiver):
    client = await make_client(fast_retries=True, delivery_timeout_s=2, store_limit=5)
    ids = []
    for i in range(30):  # the store keeps 5: each create past that evicts the oldest
        hook = await answered(await client.post("/v1/webhooks", json=minimal(url=receiver.url, name=f"n{i}"),
                                                headers=AUTH), "postWebhooks", 201)
        ids.append(hook["id"])
        assert (await client.post("/__mock/events", json={"type": "INVOICE.CREATED", "data": {"i": i}})).status == 202
    await until(lambda: any(r["json"]["data"].get("i") == 29 for r in receiver.received))
    listing = (await (await client.get("/__mock/deliveries")).json())["webhooks"]
    assert {line["webhook_id"] for line in listing} <= set(ids[-5:])
    await until(lambda: _worker_tasks() == 0)  # idle lines hold no task

    receiver.failing = True
    boxed = await boxed_webhook(client, receiver)
    for _ in range(3):
        assert (await client.post("/__mock/events", json={"type": "INVOICE.PAID"})).status == 202
    listing = {line["webhook_id"]: line for line in (await (await client.get("/__mock/deliveries")).json())["webhooks"]}
    assert listing[boxed["id"]]["penalty_box"] is not None and listing[boxed["id"]]["queued"] == 3
    assert (await client.delete(f"/v1/webhooks/{boxed['id']}", headers=AUTH)).status == 200
    listing = (await (await client.get("/__mock/deliveries")).json())["webhooks"]
    assert boxed["id"] not in {line["webhook_id"] for line in listing}
    assert (await client.post("/__mock/reset")).status == 200
    assert (await (await client.get("/__mock/deliveries")).json())["webhooks"] == []
    await until(lambda: _worker_tasks() == 0)


# ------------------------------------------------------------------ stateful: random sequences, real server


class FlakyReceiver:
    """A stdlib receiver in its own thread that fails whenever ``failing`` is set."""

    def __init__(self) -> None:
        self.failing = False
        self.count = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.count += 1
                self.send_response(503 if outer.failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=6)
PENALTY_DATA = st.one_of(
    JSON,
    st.none(),
    st.fixed_dictionaries({}, optional={"retry_count": st.none() | st.integers(-5, 5) | st.text(max_size=3),
                                        "retry_at": st.none() | st.text(max_size=5),
                                        "cause": st.none() | st.text(max_size=5),
                                        "payload": st.none() | st.text(max_size=5)}),
)
HEADER_NAMES = st.sampled_from(["X-Key", "Content-Length", "transfer-encoding", "Host", "X Key", "", None])
FIELDS = st.fixed_dictionaries({}, optional={
    "penalty_box_data": PENALTY_DATA,
    "penalty_box": JSON,
    "active": st.booleans() | JSON,
    "name": st.text(max_size=5) | JSON,
    "authentication_type": st.sampled_from(["API_KEY", "PASSWORD", "NONE", "OTHER"]),
    "api_header_field": HEADER_NAMES,
    "api_key": st.sampled_from(["k1", "5", None]),
    "included_actions": st.none() | st.lists(st.sampled_from(["INVOICE.CREATED", "INVOICE.PAID", "bad"]), max_size=2),
    "previous_signing_protocol": st.none() | st.sampled_from(["HmacSHA256"]) | JSON,
})
EVENTS = st.sampled_from(["INVOICE.CREATED", "INVOICE.PAID", "CUSTOMER.CREATED", "NOT.AN_EVENT"])


def test_random_webhook_sequences_never_fail_and_always_answer_the_contract(live):
    receiver = FlakyReceiver()
    server = live(fast_retries=True, delivery_timeout_s=2)
    host, port = server.url.removeprefix("http://").rsplit(":", 1)

    def call(method: str, path: str, body: Any = None, admin: bool = False) -> tuple[int, Any]:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            headers = {} if admin else dict(AUTH)
            payload = None
            if body is not None:
                payload = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            connection.request(method, path, body=payload, headers=headers)
            resp = connection.getresponse()
            raw = resp.read()
        finally:
            connection.close()
        assert resp.status < 500, (method, path, body, resp.status, raw)
        return resp.status, json.loads(raw) if raw else None

    def checked(operation: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, answer = call(method, path, body)
        op = OPS[operation]
        assert status in op.responses, (operation, status, answer)
        errors = [e.message for e in op.responses[status].validator.iter_errors(answer)]
        assert not errors, (operation, status, answer, errors)
        for hook in _webhooks(operation, status, answer):
            # Only the deliveries fill these: never a value a client sent.
            assert (hook["penalty_box"] is None) == (hook["penalty_box_data"] is None), hook
        return status, answer

    class Webhooks(RuleBasedStateMachine):
        hooks = Bundle("hooks")

        def __init__(self) -> None:
            super().__init__()
            self.boxed: set[str] = set()  # what the admin listing last said is in the penalty box

        @initialize()
        def clean_slate(self) -> None:
            receiver.failing = False
            assert call("POST", "/__mock/reset", admin=True)[0] == 200

        @rule(target=hooks, fields=FIELDS)
        def create(self, fields: dict[str, Any]) -> str:
            status, answer = checked("postWebhooks", "POST", "/v1/webhooks", {**minimal(url=receiver.url), **fields})
            return answer["id"] if status == 201 else "whk_missing"

        @rule(hook=hooks, page=st.integers(1, 3), limit=st.integers(1, 4))
        def read(self, hook: str, page: int, limit: int) -> None:
            checked("getWebhooksByResourceId", "GET", f"/v1/webhooks/{hook}")
            checked("getWebhooks", "GET", f"/v1/webhooks?page={page}&limit={limit}")

        @rule(target=hooks, actions=st.none() | st.lists(st.sampled_from(["INVOICE.CREATED", "INVOICE.PAID"]),
                                                         min_size=1, max_size=2))
        def create_valid(self, actions: list[str] | None) -> str:
            status, answer = checked("postWebhooks", "POST", "/v1/webhooks",
                                     minimal(url=receiver.url, included_actions=actions))
            assert status == 201
            return answer["id"]

        @rule(hook=hooks, fields=FIELDS)
        def patch(self, hook: str, fields: dict[str, Any]) -> None:
            checked("patchWebhooksByResourceId", "PATCH", f"/v1/webhooks/{hook}", fields)

        @rule(hook=hooks)
        def delete(self, hook: str) -> None:
            checked("deleteWebhooksByResourceId", "DELETE", f"/v1/webhooks/{hook}")

        @rule(hook=hooks)
        def roll(self, hook: str) -> None:
            checked("patchWebhooksByResourceIdSecretKey", "PATCH", f"/v1/webhooks/{hook}/secret-key")

        @rule(hook=hooks)
        def drop_previous(self, hook: str) -> None:
            status, answer = checked("deleteWebhooksByResourceIdSecretKey", "DELETE", f"/v1/webhooks/{hook}/secret-key")
            if status == 200:
                assert answer["previous_secret_key"] is None and answer["previous_signing_protocol"] is None

        @rule(hook=hooks)
        def send_test(self, hook: str) -> None:
            checked("postWebhooksByResourceIdSendTest", "POST", f"/v1/webhooks/{hook}/send-test")

        @rule(fields=FIELDS)
        def test_connection(self, fields: dict[str, Any]) -> None:
            checked("postWebhooksTestConnection", "POST", "/v1/webhooks/test-connection",
                    {**minimal(url=receiver.url), **fields})

        @rule(hook=hooks)
        def release(self, hook: str) -> None:
            checked("postWebhooksByResourceIdSendPenaltyBoxPayload", "POST", f"/v1/webhooks/{hook}/send-penalty-box-payload")

        @rule(event=EVENTS, data=st.none() | JSON)
        def emit(self, event: str, data: Any) -> None:
            status, _ = call("POST", "/__mock/events", {"type": event, "data": data}, admin=True)
            assert status in (202, 400)

        @rule(failing=st.booleans())
        def receiver_fails(self, failing: bool) -> None:
            receiver.failing = failing

        @rule()
        def outage(self) -> None:
            """The receiver goes down and an event comes: the webhooks that select it end in the box."""
            receiver.failing = True
            self.emit("INVOICE.CREATED", None)
            self.settle()

        @rule()
        def settle(self) -> None:
            """Let queued deliveries run their course (fast retries), so boxes really happen."""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                status, listing = call("GET", "/__mock/deliveries", admin=True)
                lines = listing.get("webhooks", [])
                if not any(line["delivering"] for line in lines):
                    self.boxed = {line["webhook_id"] for line in lines if line["penalty_box"] is not None}
                    return
                time.sleep(0.01)
            raise AssertionError(f"deliveries did not settle: {listing}")

        @precondition(lambda self: self.boxed)
        @rule(data=st.data(), fields=FIELDS)
        def patch_boxed(self, data: st.DataObject, fields: dict[str, Any]) -> None:
            hook = data.draw(st.sampled_from(sorted(self.boxed)))
            status, answer = checked("patchWebhooksByResourceId", "PATCH", f"/v1/webhooks/{hook}", fields)
            if status == 200:
                assert answer["penalty_box"] is not None, answer

        @precondition(lambda self: self.boxed)
        @rule(data=st.data(), recovered=st.booleans())
        def release_boxed(self, data: st.DataObject, recovered: bool) -> None:
            hook = data.draw(st.sampled_from(sorted(self.boxed)))
            receiver.failing = not recovered
            status, answer = checked("postWebhooksByResourceIdSendPenaltyBoxPayload", "POST",
                                     f"/v1/webhooks/{hook}/send-penalty-box-payload")
            if status == 200 and answer["successful"]:
                self.boxed.discard(hook)

        @invariant()
        def admin_listing_is_whole(self) -> None:
            status, listing = call("GET", "/__mock/deliveries", admin=True)
            assert status == 200 and isinstance(listing["deliveries"], list)
            for line in listing["webhooks"]:
                assert line["queued"] >= 0 and line["dropped"] >= 0

    try:
        run_state_machine_as_test(Webhooks, settings=settings(
            max_examples=50, stateful_step_count=25, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    finally:
        receiver.close()


def _webhooks(operation: str, status: int, answer: Any) -> list[dict[str, Any]]:
    if not 200 <= status < 300 or not isinstance(answer, dict):
        return []
    if operation == "getWebhooks":
        return list(answer["data"])
    return [answer] if answer.get("object_type") == "WEBHOOK" else []
