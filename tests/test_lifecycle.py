"""The rest of the webhooks resource: stored per tenant, every answer checked against its schema."""

from __future__ import annotations

import pytest

from conftest import AUTH, CONTRACT, api_error, minimal

OPS = {op.operation_id: op for op in CONTRACT.operations}


async def ok(resp, operation: str, status: int = 200) -> dict:
    body = await resp.json()
    assert resp.status == status, body
    assert resp.headers["X-REQUEST-ID"].startswith("reqr_")
    errors = list(OPS[operation].responses[status].validator.iter_errors(body))
    assert not errors, errors
    return body


async def create(client, headers=None, **changes) -> dict:
    return await ok(await client.post("/v1/webhooks", json=minimal(**changes), headers=headers or AUTH),
                    "postWebhooks", 201)


async def test_created_webhook_can_be_read_updated_listed_and_deleted(client):
    hook = await create(client, name="first", password="pw")
    path = f"/v1/webhooks/{hook['id']}"
    assert await ok(await client.get(path, headers=AUTH), "getWebhooksByResourceId") == hook
    updated = await ok(await client.patch(path, json={"name": "renamed", "active": False, "id": "ignored"},
                                          headers=AUTH), "patchWebhooksByResourceId")
    assert updated["name"] == "renamed" and updated["active"] is False and updated["id"] == hook["id"]
    assert updated["url"] == hook["url"]
    listing = await ok(await client.get("/v1/webhooks", headers=AUTH), "getWebhooks")
    assert [h["id"] for h in listing["data"]] == [hook["id"]]
    deleted = await ok(await client.delete(path, headers=AUTH), "deleteWebhooksByResourceId")
    assert deleted["name"] == "renamed"
    await api_error(await client.get(path, headers=AUTH), 404, "RESOURCE_NOT_FOUND")
    await api_error(await client.delete(path, headers=AUTH), 404, "RESOURCE_NOT_FOUND")


async def test_a_scripted_201_is_stored_as_it_was_answered(make_client, tmp_path):
    directory = tmp_path / "s"
    directory.mkdir()
    (directory / "inactive.yaml").write_text("rules:\n  - match: {method: POST}\n    respond: {status: 201, body: {active: false}}\n")
    client = await make_client(scenarios_dir=directory, scenario="inactive")
    hook = await create(client)
    assert hook["active"] is False
    assert (await ok(await client.get(f"/v1/webhooks/{hook['id']}", headers=AUTH), "getWebhooksByResourceId"))["active"] is False


async def test_unknown_ids_are_404_on_every_operation(client):
    for method, suffix in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("PATCH", "/secret-key"),
                           ("DELETE", "/secret-key"), ("POST", "/send-test"), ("POST", "/send-penalty-box-payload")]:
        resp = await client.request(method, f"/v1/webhooks/whk_nope{suffix}", json={}, headers=AUTH)
        await api_error(resp, 404, "RESOURCE_NOT_FOUND")


async def test_update_validates_its_body_and_never_returns_secrets(client):
    hook = await create(client)
    path = f"/v1/webhooks/{hook['id']}"
    await api_error(await client.patch(path, json={"url": "ftp://x"}, headers=AUTH), 400, "INVALID_FIELD", "url")
    text = await (await client.patch(path, json={"password": "s3cret-pw", "api_key": "s3cret-key"}, headers=AUTH)).text()
    assert "s3cret" not in text


async def test_list_pages_count_from_one_with_links(client):
    ids = [(await create(client, name=f"n{i}"))["id"] for i in range(5)]
    page = await ok(await client.get("/v1/webhooks?limit=2&page=2", headers=AUTH), "getWebhooks")
    assert [h["id"] for h in page["data"]] == ids[2:4]
    assert (page["limit"], page["page"], page["total_number_of_pages"]) == (2, 2, 3)
    assert page["links"]["previous"].endswith("page=1") and page["links"]["next"].endswith("page=3")
    assert "page=1" in page["links"]["first"] and "page=2" in page["links"]["current"]
    last = await ok(await client.get("/v1/webhooks?limit=2&page=3", headers=AUTH), "getWebhooks")
    assert last["links"]["next"] is None and [h["id"] for h in last["data"]] == ids[4:]
    default = await ok(await client.get("/v1/webhooks", headers=AUTH), "getWebhooks")
    assert default["limit"] == 20 and default["links"]["previous"] is None
    await api_error(await client.get("/v1/webhooks?limit=0", headers=AUTH), 400, "INVALID_FIELD", "limit")
    await api_error(await client.get("/v1/webhooks?limit=abc", headers=AUTH), 400, "INVALID_FIELD", "limit")


async def test_list_orders_by_a_field_in_either_direction(client):
    for name in ["b", "c", "a"]:
        await create(client, name=name)
    up = await ok(await client.get("/v1/webhooks?order_by=name&order_direction=ASC", headers=AUTH), "getWebhooks")
    assert [h["name"] for h in up["data"]] == ["a", "b", "c"]
    down = await ok(await client.get("/v1/webhooks?order_by=name&order_direction=desc", headers=AUTH), "getWebhooks")
    assert [h["name"] for h in down["data"]] == ["c", "b", "a"]
    newest = await ok(await client.get("/v1/webhooks?order_direction=DESC", headers=AUTH), "getWebhooks")
    assert [h["name"] for h in newest["data"]] == ["a", "c", "b"]
    await api_error(await client.get("/v1/webhooks?order_direction=sideways", headers=AUTH), 400, "INVALID_FIELD",
                    "order_direction")


async def test_webhooks_are_kept_per_platform_and_per_key(client):
    a = await create(client, headers={**AUTH, "x-platform-id": "plat_a"})
    await create(client, headers={**AUTH, "x-platform-id": "plat_b"})
    other_key = await create(client, headers={"X-API-KEY": "other"})
    listing = await ok(await client.get("/v1/webhooks", headers={**AUTH, "x-platform-id": "plat_a"}), "getWebhooks")
    assert [h["id"] for h in listing["data"]] == [a["id"]]
    await api_error(await client.get(f"/v1/webhooks/{a['id']}", headers={**AUTH, "x-platform-id": "plat_b"}),
                    404, "RESOURCE_NOT_FOUND")
    mine = await ok(await client.get("/v1/webhooks", headers={"X-API-KEY": "other"}), "getWebhooks")
    assert [h["id"] for h in mine["data"]] == [other_key["id"]]
    await client.post("/__mock/reset")
    empty = await ok(await client.get("/v1/webhooks", headers={"X-API-KEY": "other"}), "getWebhooks")
    assert empty["data"] == []


async def test_secret_key_roll_keeps_the_previous_one_until_removed(client):
    hook = await create(client, signing_protocol="HmacSHA256")
    path = f"/v1/webhooks/{hook['id']}/secret-key"
    rolled = await ok(await client.patch(path, headers=AUTH), "patchWebhooksByResourceIdSecretKey")
    assert rolled["secret_key"] != hook["secret_key"] and rolled["secret_key"].startswith("whsec_")
    assert rolled["previous_secret_key"] == hook["secret_key"]
    assert rolled["previous_signing_protocol"] == "HmacSHA256" and rolled["secret_rolled_at"]
    dropped = await ok(await client.delete(path, data=b"ignored", headers=AUTH), "deleteWebhooksByResourceIdSecretKey")
    assert dropped["previous_secret_key"] is None and dropped["secret_key"] == rolled["secret_key"]


async def test_actions_are_listed_from_the_spec(client):
    body = await ok(await client.get("/v1/webhooks/actions", headers=AUTH), "getWebhooksActions")
    by_type = {group["object_type"]: group["actions"] for group in body["data"]}
    assert "INVOICE.CREATED" in by_type["INVOICE"] and "CUSTOMER.CREATED" in by_type["CUSTOMER"]


async def test_lifecycle_operations_need_credentials_and_version(client):
    await api_error(await client.get("/v1/webhooks"), 401, "UNAUTHORISED")
    await api_error(await client.get("/v2/webhooks/actions", headers=AUTH), 400, "UNSUPPORTED_VERSION")


async def test_not_in_the_penalty_box_is_a_409(client):
    hook = await create(client)
    await api_error(await client.post(f"/v1/webhooks/{hook['id']}/send-penalty-box-payload", headers=AUTH),
                    409, "INVALID_OPERATION")


async def test_scenarios_can_target_one_lifecycle_operation(make_client, tmp_path):
    directory = tmp_path / "s"
    directory.mkdir()
    (directory / "gone.yaml").write_text(
        "rules:\n  - match: {method: GET, path: {regex: '/v1/webhooks/whk_.*'}}\n    respond: {status: 404}\n")
    client = await make_client(scenarios_dir=directory, scenario="gone")
    hook = await create(client)
    await api_error(await client.get(f"/v1/webhooks/{hook['id']}", headers=AUTH), 404, "RESOURCE_NOT_FOUND")
    await ok(await client.get("/v1/webhooks", headers=AUTH), "getWebhooks")


@pytest.mark.parametrize("status", [404, 409])
def test_scenario_statuses_follow_the_operation_they_target(tmp_path, status):
    from mockserver.scenarios import load_scenarios
    directory = tmp_path / "s"
    directory.mkdir()
    (directory / "x.yaml").write_text(
        f"rules:\n  - match: {{method: POST, path: /v1/webhooks/whk_1/send-penalty-box-payload}}\n"
        f"    respond: {{status: {status}}}\n")
    assert "x" in load_scenarios(directory, CONTRACT)


async def test_the_store_is_bounded_and_forgets_the_oldest_first():
    from mockserver.state.store import MemoryStore
    store = MemoryStore(limit=3)
    forgotten = []
    store.on_forget(lambda *key: forgotten.append(key))
    for i in range(5):
        await store.put("t", "webhooks", f"w{i}", {"id": f"w{i}"})
    assert [b["id"] for b in (await store.page("t", "webhooks", 1, 10))[0]] == ["w2", "w3", "w4"]
    assert store.dropped == 2
    await store.delete("t", "webhooks", "w3")
    await store.put("t", "webhooks", "w5", {"id": "w5"})
    assert [b["id"] for b in (await store.page("t", "webhooks", 1, 10))[0]] == ["w2", "w4", "w5"]
    assert forgotten == [("t", "webhooks", "w0"), ("t", "webhooks", "w1"), ("t", "webhooks", "w3")]


async def test_a_read_is_a_copy_that_cannot_change_the_store():
    from mockserver.state.store import MemoryStore
    store = MemoryStore()
    await store.put("t", "webhooks", "w1", {"id": "w1", "nested": {"n": 1}}, {"password": "p"})
    first = await store.get("t", "webhooks", "w1")
    first.body["nested"]["n"] = 2
    first.secrets["password"] = "changed"
    again = await store.get("t", "webhooks", "w1")
    assert again.body == {"id": "w1", "nested": {"n": 1}} and again.secrets == {"password": "p"}


async def test_tenants_vanish_when_their_last_resource_goes():
    from mockserver.state.store import MemoryStore
    store = MemoryStore(limit=2)
    await store.put("a", "webhooks", "w1", {"id": "w1"})
    await store.put("b", "webhooks", "w2", {"id": "w2"})
    await store.delete("a", "webhooks", "w1")
    assert store.tenants() == 1
    await store.put("c", "webhooks", "w3", {"id": "w3"})
    await store.put("d", "webhooks", "w4", {"id": "w4"})  # evicts b's only webhook
    assert store.tenants() == 2


def test_openapi_describes_every_served_operation():
    from mockserver.openapi import document
    doc = document(CONTRACT)
    described = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert described == {(op.method, op.path) for op in CONTRACT.operations}
    list_op = doc["paths"]["/v{version}/webhooks"]["get"]
    assert {p["name"] for p in list_op["parameters"] if p["in"] == "query"} == {"limit", "page", "order_by",
                                                                               "order_direction"}


def test_a_stored_webhook_costs_its_json_size_not_a_serialiser_buffer():
    import sys
    from mockserver.state.store import _Entry
    body = {"id": "whk_1", "name": "n" * 100}
    assert sys.getsizeof(_Entry(body, {}).raw) < 512
