"""A web page in the developer's browser must not be able to drive the mock: CSRF through
simple requests, reads through DNS rebinding, and webhooks registered from a page."""

from __future__ import annotations

import json

import pytest

from conftest import AUTH, api_error, minimal


async def test_an_admin_write_with_a_non_json_body_is_refused(client):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        resp = await client.post("/__mock/reset", data=b'{"x": 1}', headers={"Content-Type": content_type})
        await api_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE")
        resp = await client.post("/__mock/events", data=b'{"type": "INVOICE.CREATED"}',
                                 headers={"Content-Type": content_type})
        await api_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE")
        resp = await client.put("/__mock/scenario", data=b'{"name": null}', headers={"Content-Type": content_type})
        await api_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE")


async def test_a_bodyless_admin_write_needs_no_content_type(client):
    resp = await client.post("/__mock/reset")
    assert resp.status == 200, await resp.text()
    resp = await client.post("/__mock/reset", data=b'{}', headers={"Content-Type": "application/json"})
    assert resp.status == 200


@pytest.mark.parametrize("method,path", [
    ("POST", "/__mock/reset"), ("GET", "/__mock/requests"), ("POST", "/v1/webhooks"), ("GET", "/__mock/health"),
])
async def test_a_foreign_origin_is_refused_on_every_route(client, method, path):
    resp = await client.request(method, path, json=minimal(),
                                headers={**AUTH, "Origin": "http://evil.example"})
    body = await api_error(resp, 403, "USER_NOT_ALLOWED")
    assert "evil.example" in body["message"] and "--cors-allow-origin" in body["message"]
    assert "Access-Control-Allow-Origin" not in resp.headers
    journal = await (await client.get("/__mock/requests")).json()
    assert journal["requests"] == []  # refused before anything happened


async def test_the_mocks_own_origin_is_accepted(client):
    own = f"http://{client.server.host}:{client.server.port}"
    resp = await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "Origin": own})
    assert resp.status == 201, await resp.text()


async def test_an_opaque_null_origin_is_refused(client):
    resp = await client.post("/__mock/reset", headers={"Origin": "null"})
    await api_error(resp, 403, "USER_NOT_ALLOWED")


async def test_an_allowed_origin_gets_cors_headers_and_preflights(make_client):
    client = await make_client(cors_allow_origins=["http://localhost:3000"])
    resp = await client.options("/v1/webhooks", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-api-key"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert resp.headers["Access-Control-Allow-Headers"] == "content-type, x-api-key"
    resp = await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "Origin": "http://localhost:3000"})
    assert resp.status == 201
    assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "X-REQUEST-ID" in resp.headers["Access-Control-Expose-Headers"]
    resp = await client.options("/v1/webhooks", headers={
        "Origin": "http://localhost:4000", "Access-Control-Request-Method": "POST"})
    await api_error(resp, 403, "USER_NOT_ALLOWED")


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "192.168.1.10:80", "127.0.0.1.nip.io"])
async def test_a_foreign_host_on_a_loopback_connection_is_refused(client, host):
    """DNS rebinding: the page's own name now resolves to 127.0.0.1, so Origin and Host agree."""
    resp = await client.get("/__mock/requests", headers={"Host": host, "Origin": f"http://{host}"})
    body = await api_error(resp, 403, "USER_NOT_ALLOWED")
    assert "DNS rebinding" in body["message"]
    resp = await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "Host": host})
    await api_error(resp, 403, "USER_NOT_ALLOWED")


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1", "127.0.0.2:1", "[::1]:8080",
                                  "app.localhost"])
async def test_loopback_names_and_addresses_are_accepted(client, host):
    resp = await client.get("/__mock/health", headers={"Host": host})
    assert resp.status == 200, await resp.text()


async def test_an_oversized_admin_body_gets_an_api_error_not_plain_text(client):
    resp = await client.put("/__mock/scenario", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                            headers={"Content-Type": "application/json"})
    await api_error(resp, 413, "BAD_REQUEST")
    assert (await client.get("/__mock/health")).status == 200


@pytest.mark.parametrize("status", ["²", "٣٠٠", "20", "abc", "2000"])
async def test_a_journal_status_filter_that_is_not_a_status_is_a_400(client, status):
    resp = await client.get("/__mock/requests", params={"status": status})
    body = await api_error(resp, 400, "BAD_REQUEST", "status")
    assert json.dumps(body)


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
async def test_a_cross_site_request_without_origin_is_refused_unless_a_navigation(client, site):
    resp = await client.get("/__mock/requests", headers={"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors"})
    await api_error(resp, 403, "USER_NOT_ALLOWED")
    resp = await client.post("/__mock/reset", headers={"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors"})
    await api_error(resp, 403, "USER_NOT_ALLOWED")
    resp = await client.get("/__mock/health", headers={"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "navigate"})
    assert resp.status == 200
    resp = await client.get("/__mock/health", headers={"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "no-cors"})
    assert resp.status == 200
