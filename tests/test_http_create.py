"""POST /v{version}/webhooks through a real HTTP server: every row of the answer table."""

from __future__ import annotations

import json

import pytest

from conftest import AUTH, api_error, created, example, minimal

JSON_HEADERS = {**AUTH, "Content-Type": "application/json"}


async def test_vendor_example_is_created(client):
    resp = await client.post("/v1/webhooks", json=example(), headers=AUTH)
    body = await created(resp)
    assert body["name"] == "Invoice finalised"
    assert body["url"] == "https://webhook.site"


async def test_bearer_token_alone_is_enough(client):
    resp = await client.post("/v1/webhooks", json=minimal(), headers={"Authorization": "Bearer tok_123"})
    await created(resp)


async def test_platform_id_header_is_accepted(client):
    resp = await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "x-platform-id": "plat_1"})
    await created(resp)


@pytest.mark.parametrize("headers", [
    {},
    {"X-API-KEY": ""},
    {"X-API-KEY": "   "},
    {"Authorization": "Bearer "},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "tok_123"},
], ids=["none", "empty-key", "blank-key", "empty-bearer", "bearer-no-token", "basic", "no-scheme"])
async def test_missing_or_empty_credentials_are_401(client, headers):
    resp = await client.post("/v1/webhooks", json=minimal(), headers=headers)
    await api_error(resp, 401, "UNAUTHORISED", None)


@pytest.mark.parametrize("raw", [b"{", b"not json", b"\xff\xfe{}", b"", b'{"url": NaN}'],
                         ids=["truncated", "text", "invalid-utf8", "empty", "nan"])
async def test_body_that_is_not_json_is_400(client, raw):
    resp = await client.post("/v1/webhooks", data=raw, headers=JSON_HEADERS)
    await api_error(resp, 400, "UNABLE_TO_PROCESS_INSTRUCTIONS", None)


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null", b"true"])
async def test_json_that_is_not_an_object_is_400(client, raw):
    resp = await client.post("/v1/webhooks", data=raw, headers=JSON_HEADERS)
    await api_error(resp, 400, "UNABLE_TO_PROCESS_INSTRUCTIONS", None)


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/x-www-form-urlencoded", "application/xml"])
async def test_missing_or_wrong_content_type_is_400(client, content_type):
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type
    resp = await client.post("/v1/webhooks", data=json.dumps(minimal()).encode(), headers=headers,
                             skip_auto_headers=["Content-Type"])
    await api_error(resp, 400, "UNSUPPORTED_MEDIA_TYPE", None)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.api+json"])
async def test_json_media_type_variants_are_accepted(client, content_type):
    resp = await client.post("/v1/webhooks", data=json.dumps(minimal()).encode(),
                             headers={**AUTH, "Content-Type": content_type})
    await created(resp)


@pytest.mark.parametrize("field", ["url", "name", "reference"])
async def test_missing_required_field_is_named(client, field):
    body = minimal()
    del body[field]
    resp = await client.post("/v1/webhooks", json=body, headers=AUTH)
    await api_error(resp, 400, "MISSING_FIELD", field)


@pytest.mark.parametrize("changes, field", [
    ({"url": "not a url"}, "url"),
    ({"url": "ftp://example.com/hook"}, "url"),
    ({"url": "https://"}, "url"),
    ({"url": 42}, "url"),
    ({"name": 1}, "name"),
    ({"active": "yes"}, "active"),
    ({"include_previous_data": 1}, "include_previous_data"),
    ({"authentication_type": "OAUTH"}, "authentication_type"),
    ({"username": "has space"}, "username"),
    ({"password": "x" * 257}, "password"),
    ({"api_key": "k" * 257}, "api_key"),
    ({"api_header_field": ["X"]}, "api_header_field"),
    ({"included_actions": [1]}, "included_actions.0"),
    ({"included_actions": "INVOICE.CREATED"}, "included_actions"),
    ({"excluded_actions": ["INVOICE.PAID", "lowercase.action"]}, "excluded_actions.1"),
    ({"signing_protocol": 256}, "signing_protocol"),
    ({"secret_rolled_at": "2024-04-12"}, "secret_rolled_at"),
    ({"secret_rolled_at": "2024-13-45T99:00:00Z"}, "secret_rolled_at"),
    ({"secret_rolled_at": ""}, "secret_rolled_at"),
    ({"penalty_box_data": {"retry_count": "three"}}, "penalty_box_data.retry_count"),
    ({"penalty_box_data": []}, "penalty_box_data"),
])
async def test_schema_violation_is_invalid_field_with_dotted_path(client, changes, field):
    resp = await client.post("/v1/webhooks", json=minimal(**changes), headers=AUTH)
    body = await api_error(resp, 400, "INVALID_FIELD", field)
    assert "must" in body["message"]


async def test_messages_never_repeat_the_rejected_secret(client):
    secret = "p@ss word with spaces"
    resp = await client.post("/v1/webhooks", json=minimal(password=secret), headers=AUTH)
    body = await api_error(resp, 400, "INVALID_FIELD", "password")
    assert secret not in json.dumps(body)


async def test_several_violations_are_all_listed(client):
    resp = await client.post("/v1/webhooks", json={"url": "nope", "active": "x"}, headers=AUTH)
    body = await api_error(resp, 400, "MISSING_FIELD")
    listed = {(e["code"], e["field"]) for e in body["errors"]}
    assert {("MISSING_FIELD", "name"), ("MISSING_FIELD", "reference"),
            ("INVALID_FIELD", "url"), ("INVALID_FIELD", "active")} <= listed


@pytest.mark.parametrize("version", ["2", "0", "01", "1.0", "abc"])
async def test_other_versions_are_unsupported(client, version):
    resp = await client.post(f"/v{version}/webhooks", json=minimal(), headers=AUTH)
    await api_error(resp, 400, "UNSUPPORTED_VERSION", "version")


async def test_body_over_the_limit_is_400_naming_the_limit(make_client):
    client = await make_client(max_body_bytes=1000)
    big = minimal(name="x" * 2000)
    resp = await client.post("/v1/webhooks", json=big, headers=AUTH)
    body = await api_error(resp, 400, "BAD_REQUEST", None)
    assert "1000" in body["message"]
    resp = await client.post("/v1/webhooks", json=minimal(), headers=AUTH)
    await created(resp)


async def test_body_over_the_limit_without_content_length_is_400(make_client):
    client = await make_client(max_body_bytes=1000)

    async def chunks():
        for _ in range(10):
            yield b'{"name": "' + b"x" * 500 + b'", '

    resp = await client.post("/v1/webhooks", data=chunks(), headers=JSON_HEADERS)
    await api_error(resp, 400, "BAD_REQUEST", None)


@pytest.mark.parametrize("path", ["/", "/webhooks", "/v1/webhooks/", "/v1/webhook", "/v1/webhooks/a/b/c", "/__mock/nope"])
async def test_unknown_path_is_404(client, path):
    resp = await client.post(path, json=minimal(), headers=AUTH)
    await api_error(resp, 404, "RESOURCE_NOT_FOUND", None)


@pytest.mark.parametrize("method, path, allowed", [
    ("PUT", "/v1/webhooks", "GET, POST"), ("DELETE", "/v1/webhooks", "GET, POST"), ("PATCH", "/v1/webhooks", "GET, POST"),
    ("POST", "/v1/webhooks/whk_1", "DELETE, GET, PATCH"), ("GET", "/v1/webhooks/whk_1/send-test", "POST"),
    ("GET", "/v1/webhooks/test-connection", "POST"), ("DELETE", "/v1/webhooks/actions", "GET"),
])
async def test_wrong_method_is_405(client, method, path, allowed):
    resp = await client.request(method, path, json=minimal(), headers=AUTH)
    await api_error(resp, 405, "INVALID_OPERATION", None)
    assert resp.headers["Allow"] == allowed


@pytest.mark.parametrize("request_kwargs, status, code", [
    ({"path": "/nope", "headers": {}, "data": b"{"}, 404, "RESOURCE_NOT_FOUND"),
    ({"path": "/v1/webhooks", "headers": {"Content-Type": "text/plain"}, "data": b"{"}, 401, "UNAUTHORISED"),
    ({"path": "/v1/webhooks", "headers": {**AUTH, "Content-Type": "text/plain"}, "data": b"{"}, 400, "UNSUPPORTED_MEDIA_TYPE"),
    ({"path": "/v2/webhooks", "headers": JSON_HEADERS, "data": b"{"}, 400, "UNABLE_TO_PROCESS_INSTRUCTIONS"),
    ({"path": "/v2/webhooks", "headers": JSON_HEADERS, "data": b'{"url": 1}'}, 400, "UNSUPPORTED_VERSION"),
], ids=["route-first", "credentials-before-content-type", "content-type-before-json",
        "json-before-version", "version-before-schema"])
async def test_the_first_problem_in_documented_order_wins(client, request_kwargs, status, code):
    kwargs = dict(request_kwargs)
    resp = await client.post(kwargs.pop("path"), **kwargs)
    await api_error(resp, status, code)


async def test_server_keeps_serving_after_bad_input(client):
    for raw in [b"\x00" * 100, b"[" * 100_000, b'{"url": "\x00"}', "{\"name\": \"\ud800\"}".encode("utf-8", "surrogatepass")]:
        resp = await client.post("/v1/webhooks", data=raw, headers=JSON_HEADERS)
        assert resp.status == 400, await resp.text()
    await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))


async def test_every_answer_carries_a_fresh_request_id(client):
    ids = set()
    for path in ["/v1/webhooks", "/v2/webhooks", "/nope"]:
        resp = await client.post(path, json=minimal(), headers=AUTH)
        ids.add(resp.headers["X-REQUEST-ID"])
    assert len(ids) == 3


async def test_unknown_fields_are_ignored_by_default(client):
    resp = await client.post("/v1/webhooks", json=minimal(email="a@b.c", colour="blue"), headers=AUTH)
    body = await created(resp)
    assert "email" not in body and "colour" not in body


async def test_strict_mode_rejects_unknown_fields(make_client):
    client = await make_client(strict=True)
    resp = await client.post("/v1/webhooks", json=minimal(email="a@b.c"), headers=AUTH)
    await api_error(resp, 400, "INVALID_FIELD", "email")
    resp = await client.post("/v1/webhooks", json=minimal(penalty_box_data={"retry_count": 1, "extra": 2}), headers=AUTH)
    await api_error(resp, 400, "INVALID_FIELD", "penalty_box_data.extra")
    await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))


async def test_strict_mode_still_accepts_server_set_fields(make_client):
    client = await make_client(strict=True)
    resp = await client.post("/v1/webhooks", json=minimal(id="whk_mine", object_type="X"), headers=AUTH)
    body = await created(resp)
    assert body["id"] != "whk_mine"
    assert body["object_type"] == "WEBHOOK"


async def test_only_configured_keys_and_tokens_are_accepted_when_given(make_client):
    client = await make_client(api_keys=["good-key", "good-token"])
    await created(await client.post("/v1/webhooks", json=minimal(), headers={"X-API-KEY": "good-key"}))
    await created(await client.post("/v1/webhooks", json=minimal(), headers={"Authorization": "Bearer good-token"}))
    for headers in ({"X-API-KEY": "other"}, {"Authorization": "Bearer other"}, {}):
        await api_error(await client.post("/v1/webhooks", json=minimal(), headers=headers), 401, "UNAUTHORISED")
