"""Each scenario shipped in scenarios/ does what its description says, through the HTTP server."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from conftest import AUTH, api_error, created, minimal


async def post(client, scenario, body=None, headers=None):
    return await client.post("/v1/webhooks", json=body or minimal(),
                             headers={**(headers or AUTH), "X-Mock-Scenario": scenario})


@pytest.mark.parametrize("scenario, status, code", [
    ("bad-request", 400, "BAD_REQUEST"),
    ("unauthorised", 401, "UNAUTHORISED"),
    ("missing-permission", 403, "USER_NOT_ALLOWED"),
    ("internal-error", 500, "INTERNAL_ERROR"),
])
async def test_error_status_scenarios(client, scenario, status, code):
    body = await api_error(await post(client, scenario), status, code)
    if status == 403:
        assert "WEBHOOK.CREATE" in body["message"]


async def test_flaky_fails_twice_then_creates(client):
    await client.put("/__mock/scenario", json={"name": "flaky"})
    for _ in range(2):
        body = await api_error(await client.post("/v1/webhooks", json=minimal(), headers=AUTH), 500, "INTERNAL_ERROR")
        assert "retry" in body["message"]
    await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))
    await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))


async def test_slow_answers_after_a_delay(client):
    started = time.monotonic()
    await created(await post(client, "slow"))
    assert time.monotonic() - started >= 1.5


async def test_slow_trips_a_client_timeout(client):
    with pytest.raises(TimeoutError):
        await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "X-Mock-Scenario": "slow"},
                          timeout=aiohttp.ClientTimeout(total=0.3))


@pytest.mark.parametrize("headers", [{"X-API-KEY": "revoked"}, {"Authorization": "Bearer revoked"}])
async def test_revoked_key(client, headers):
    body = await api_error(await post(client, "revoked-key", headers=headers), 401, "UNAUTHORISED")
    assert "revoked" in body["message"]
    await created(await post(client, "revoked-key"))


@pytest.mark.parametrize("url, message", [
    ("https://localhost/hook", "local"), ("https://127.0.0.1:8443/x", "local"), ("http://example.com/hook", "https"),
])
async def test_rejected_url(client, url, message):
    body = await api_error(await post(client, "rejected-url", minimal(url=url)), 400, "INVALID_FIELD", "url")
    assert message in body["message"]
    await created(await post(client, "rejected-url", minimal(url="https://example.com/hook")))


async def test_connection_reset(client):
    with pytest.raises(aiohttp.ClientError):
        await post(client, "connection-reset")
    await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))


async def test_malformed_response(client):
    resp = await post(client, "malformed-response")
    assert resp.status == 500
    with pytest.raises(ValueError):
        json.loads(await resp.read())
