"""The request journal and its admin routes."""

from __future__ import annotations

import json
import re

from conftest import AUTH, example, minimal
from mockserver.engine import MockRequest, MockResponse
from mockserver.journal import REDACTED, Journal, Redactor

KEYS = {"method", "path", "query", "headers", "body", "status", "scenario", "rule", "request_id",
        "received_at", "duration_ms"}


async def journal(client, **params):
    resp = await client.get("/__mock/requests", params=params)
    assert resp.status == 200
    return await resp.json()


async def test_every_contract_request_is_recorded_oldest_first_and_admin_calls_are_not(client):
    r1 = await client.post("/v1/webhooks?x=1", json=minimal(), headers=AUTH)
    await client.get("/__mock/health")
    r2 = await client.post("/nope", data=b"plain text", headers={"Content-Type": "text/plain"})
    r3 = await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "X-Mock-Scenario": "flaky"})
    data = await journal(client)
    assert data["dropped"] == 0
    entries = data["requests"]
    assert [e["request_id"] for e in entries] == [r.headers["X-REQUEST-ID"] for r in (r1, r2, r3)]
    assert all(KEYS <= set(e) for e in entries)
    first, second, third = entries
    assert (first["method"], first["path"], first["query"], first["status"]) == ("POST", "/v1/webhooks", {"x": "1"}, 201)
    assert first["body"] == minimal()
    assert first["scenario"] is None and first["rule"] is None
    assert second["body"] == "plain text" and second["status"] == 404
    assert (third["scenario"], third["rule"], third["status"]) == ("flaky", "first-two-fail", 500)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", first["received_at"])
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0


async def test_secrets_are_redacted_in_the_journal(client):
    await client.post("/v1/webhooks", json=example(), headers={"X-API-KEY": "header-secret"})
    await client.post("/v1/webhooks", json=minimal(password="pw-secret"), headers={"Authorization": "Bearer tok-secret"})
    await client.post("/v1/webhooks", data=b'{"password": "raw-secret", "api_key": "raw-key"',
                      headers={**AUTH, "Content-Type": "text/plain"})
    text = await (await client.get("/__mock/requests")).text()
    for secret in ("super_secure", "dfPNT2KBbdHEm05s3R1lS8PavuyDGR0eJZPwZzSh", "header-secret", "pw-secret",
                   "tok-secret", "raw-secret", "raw-key"):
        assert secret not in text, secret
    entries = json.loads(text)["requests"]
    assert entries[0]["body"]["password"] == REDACTED and entries[0]["body"]["api_key"] == REDACTED
    assert entries[0]["body"]["username"] == example()["username"]
    assert entries[0]["headers"]["x-api-key"].startswith(REDACTED)
    assert entries[1]["headers"]["authorization"].startswith(REDACTED)


async def test_journal_is_bounded_and_counts_what_it_dropped(make_client):
    client = await make_client(journal_limit=5)
    for i in range(8):
        await client.post("/v1/webhooks", json=minimal(name=f"n{i}"), headers=AUTH)
    data = await journal(client)
    assert data["dropped"] == 3
    assert [e["body"]["name"] for e in data["requests"]] == [f"n{i}" for i in range(3, 8)]


async def test_journal_filters_by_path_method_and_status(client):
    await client.post("/v1/webhooks", json=minimal(), headers=AUTH)
    await client.post("/v1/webhooks", json=minimal())
    await client.delete("/v1/webhooks")
    assert [e["status"] for e in (await journal(client, status="401"))["requests"]] == [401]
    assert [e["method"] for e in (await journal(client, method="delete"))["requests"]] == ["DELETE"]
    assert len((await journal(client, path="/v1/webhooks"))["requests"]) == 3
    assert (await journal(client, path="/other"))["requests"] == []
    resp = await client.get("/__mock/requests", params={"status": "abc"})
    assert resp.status == 400


async def test_delete_clears_the_journal(client):
    await client.post("/v1/webhooks", json=minimal(), headers=AUTH)
    resp = await client.delete("/__mock/requests")
    assert (await resp.json()) == {"cleared": 1}
    assert (await journal(client)) == {"requests": [], "dropped": 0}


async def test_admin_routes_answer_405_for_wrong_methods(client):
    resp = await client.post("/__mock/health")
    assert resp.status == 405
    body = await resp.json()
    assert body["code"] == "INVALID_OPERATION" and resp.headers["Allow"] == "GET"


async def test_health(client):
    resp = await client.get("/__mock/health")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}
    assert resp.headers["X-REQUEST-ID"].startswith("reqr_")


def test_deeply_nested_body_is_kept_as_text_not_walked():
    redactor = Redactor({"password"}, set())
    raw = b'{"a": ' + b"[" * 500 + b"]" * 500 + b', "password": "deep-secret"}'
    shown = redactor.body(raw)
    assert isinstance(shown, str) and "deep-secret" not in shown


def test_journal_entries_are_invisible_to_the_garbage_collector():
    import gc
    j = Journal(limit=2)
    j.record(MockRequest("POST", "/v1/webhooks", {"a": "1"}, {"x": "y"}, b"{}"), MockResponse(201, b"{}", "reqr_x"), 0.0, 1.0)
    gc.collect()
    gc.collect()  # inner tuples are untracked by the first pass, the entry itself by the next
    assert not gc.is_tracked(j.entries[0])


def test_recording_keeps_only_the_start_of_huge_bodies():
    j = Journal(limit=2)
    big = b'{"name": "' + b"x" * 200_000 + b'"}'
    j.record(MockRequest("POST", "/v1/webhooks", {}, {}, big), MockResponse(400, b"{}", "reqr_x"), 0.0, 1.0)
    assert len(j.entries[0][4]) <= 64 * 1024
    assert isinstance(j.snapshot()[0]["body"], str)
