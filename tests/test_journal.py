"""The request journal and its admin routes."""

from __future__ import annotations

import gc
import hashlib
import json
import re

import pytest

from conftest import AUTH, created, example, minimal
from mockserver.engine import MockRequest, MockResponse
from mockserver.journal import REDACTED, Journal, Redactor, SecretSet

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
    assert second["body"] == omitted(b"plain text", "text/plain") and second["status"] == 404
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


def test_deeply_nested_body_is_described_not_walked():
    redactor = Redactor({"password"}, set())
    raw = b'{"a": ' + b"[" * 500 + b"]" * 500 + b', "password": "deep-secret"}'
    assert redactor.body(raw, "application/json") == omitted(raw, "application/json", "nested too deeply")


@pytest.mark.parametrize("body", [b"{}", b"not json"])
async def test_journal_entries_are_invisible_to_the_garbage_collector(body):
    j = Journal(limit=2)
    await j.record(MockRequest("POST", "/v1/webhooks", {"a": "1"}, {"x": "y"}, body), MockResponse(201, b"{}", "reqr_x"), 0.0, 1.0)
    gc.collect()
    gc.collect()  # inner tuples are untracked by the first pass, the entry itself by the next
    assert not gc.is_tracked(j.entries[0])


async def test_huge_bodies_are_described_not_kept():
    j = Journal(limit=2)
    big = b'{"name": "' + b"x" * 200_000 + b'"}'
    await j.record(MockRequest("POST", "/v1/webhooks", {}, {}, big), MockResponse(400, b"{}", "reqr_x"), 0.0, 1.0)
    assert not isinstance(j.entries[0][4], bytes)
    assert (await j.snapshot())[0]["body"] == omitted(big, None, "too large to keep")


# ------------------------------------------------------------------ bodies that are not JSON objects

SECRET = "hunter2-Zq71"


def omitted(raw: bytes, media_type: str | None, why: str = "not a JSON object") -> dict:
    return {"omitted": why, "length": len(raw), "media_type": media_type,
            "sha256": hashlib.sha256(raw).hexdigest()[:16]}


NOT_OBJECTS = {
    "form": ("application/x-www-form-urlencoded", f"password={SECRET}&x=1".encode()),
    "single-quoted": ("application/json", f"{{'password': '{SECRET}'}}".encode()),
    "truncated": ("application/json; charset=utf-8", f'{{"url": "https://example.com/h", "password": "{SECRET}"'.encode()),
    "escaped-key": ("application/json", f'{{"p\\u0061ssword": "{SECRET}",}}'.encode()),
    "not-utf-8": ("text/plain", f'{{"password": "{SECRET}"}}'.encode() + b"\xff"),
    "array": ("application/json", f'[{{"password": "{SECRET}"}}]'.encode()),
    "no-content-type": (None, f"password={SECRET}".encode()),
}


@pytest.mark.parametrize("content_type, raw", NOT_OBJECTS.values(), ids=NOT_OBJECTS.keys())
async def test_a_body_that_is_not_a_json_object_is_journaled_without_its_content(client, content_type, raw):
    headers = {**AUTH, "Content-Type": content_type} if content_type else AUTH
    await client.post("/v1/webhooks", data=raw, headers=headers, skip_auto_headers=["Content-Type"])
    text = await (await client.get("/__mock/requests")).text()
    assert SECRET not in text and "hunter2" not in text
    [entry] = json.loads(text)["requests"]
    assert entry["body"] == omitted(raw, content_type and content_type.split(";")[0])


async def test_bodies_too_large_to_keep_or_to_read_are_described(make_client):
    client = await make_client(max_body_bytes=200_000)
    big = json.dumps(minimal(name="x" * 100_000, password=SECRET)).encode()
    huge = json.dumps(minimal(name="x" * 300_000, password=SECRET)).encode()
    for body in (big, huge):
        await client.post("/v1/webhooks", data=body, headers={**AUTH, "Content-Type": "application/json"})
    text = await (await client.get("/__mock/requests")).text()
    assert SECRET not in text
    kept, unread = (e["body"] for e in json.loads(text)["requests"])
    assert kept == omitted(big, "application/json", "too large to keep")
    # The mock stopped reading: the length is what the client declared, and there is nothing to hash.
    assert unread == {"omitted": "larger than the mock accepts", "length": len(huge),
                      "media_type": "application/json", "sha256": None}


async def test_a_secret_learnt_from_one_request_is_scrubbed_wherever_it_turns_up(client):
    password, key, token = "pw-Learnt-41", "key-Learnt-42", "tok-Learnt-43"
    await client.get("/v1/webhooks", params={"q": password}, headers=AUTH)  # before the mock knows it
    await created(await client.post("/v1/webhooks", json=minimal(password=password), headers={"X-API-KEY": key}))
    await client.post("/v1/webhooks", json=minimal(name=f"about {password}"), headers={"Authorization": f"Bearer {token}"})
    await client.get(f"/v1/webhooks/{key}", params={"q": f"x{password}x", "t": token},
                     headers={**AUTH, "X-Note": f"see {token} and {key}"})
    await client.post("/v1/webhooks", data=f"note={password}".encode(),
                      headers={**AUTH, "Content-Type": f"text/{key}"})
    text = await (await client.get("/__mock/requests")).text()
    for secret in (password, key, token):
        assert secret not in text, secret
    first, _, third, fourth, fifth = json.loads(text)["requests"]
    assert first["query"] == {"q": REDACTED}
    assert third["body"]["name"] == f"about {REDACTED}"
    assert fourth["path"] == f"/v1/webhooks/{REDACTED}"
    assert fourth["query"] == {"q": f"x{REDACTED}x", "t": REDACTED}
    assert fourth["headers"]["x-note"] == f"see {REDACTED} and {REDACTED}"
    assert fifth["body"]["media_type"] == f"text/{REDACTED}"


async def test_a_learnt_secret_is_scrubbed_from_the_path_it_was_percent_encoded_into(client):
    password = "pw/Learnt#46!"
    await created(await client.post("/v1/webhooks", json=minimal(password=password), headers=AUTH))
    for path in ("/v1/webhooks/pw%2FLearnt%2346%21", "/v1/webhooks/pw%2FLearnt%2346!"):
        await client.get(path, headers=AUTH)
    _, first, second = (await journal(client))["requests"]
    assert first["path"] == second["path"] == f"/v1/webhooks/{REDACTED}"


async def test_known_secrets_survive_clearing_the_journal(client):
    await client.post("/v1/webhooks", json=minimal(password="pw-Kept-44"), headers=AUTH)
    await client.delete("/__mock/requests")
    await client.get("/v1/webhooks", params={"q": "pw-Kept-44"}, headers=AUTH)
    [entry] = (await journal(client))["requests"]
    assert entry["query"] == {"q": REDACTED}


# ------------------------------------------------------------------ the set of known secrets


def test_secret_set_is_bounded_ignores_short_values_and_keeps_recent_ones():
    secrets = SecretSet(limit=3, min_length=4)
    for value in ("abc", "old-1", "kept-2", "new-3"):
        secrets.add(value)
    secrets.add("old-1")  # seen again: the most recent now
    secrets.add("new-4")  # so "kept-2" is the one forgotten
    assert secrets.scrub("abc old-1 kept-2 new-3 new-4") == f"abc {REDACTED} kept-2 {REDACTED} {REDACTED}"


def test_secret_set_prefers_the_longest_overlapping_secret_and_handles_any_text():
    secrets = SecretSet()
    long = "L" * 1000
    for value in ("abcd", "abcdef", "x.y*z", "ünï\\code", "ab\ncd", long, "bad\udcffbytes"):
        secrets.add(value)
    for i in range(100):  # enough to go past the values it checks one by one
        secrets.add(f"filler-{i:03d}")
    text = f"abcdef abcd xxyyz x.y*z ünï\\code ab\ncd filler-042 {long} bad\udcffbytes"
    assert secrets.scrub(text) == " ".join([REDACTED, REDACTED, "xxyyz", REDACTED, REDACTED, REDACTED, REDACTED,
                                            REDACTED, REDACTED])
    assert secrets.scrub(f"{long[:-1]} \udcff") == f"{long[:-1]} \udcff"
    clean = "nothing to see"
    assert secrets.scrub(clean) is clean
