"""The bundled contract: the vendor's webhooks document, never edited, with the two overlays that
hold what the mock knows beyond it; and problems in documents and overlays are one line each."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil

import pytest
import yaml

from conftest import DATA, SPEC
from mockserver.cli import run
from mockserver.contract import load_contract
from mockserver.engine import Engine, MockRequest

VENDOR = DATA / "vendor" / "configuration-api.webhooks.json"


def test_the_bundled_document_is_the_vendors_exactly():
    bundled = SPEC / "openapi" / "configuration-api.webhooks.json"
    assert hashlib.sha256(bundled.read_bytes()).digest() == hashlib.sha256(VENDOR.read_bytes()).digest()


def test_bundled_contract_serves_every_operation_with_a_behaviour_from_the_overlay():
    contract = load_contract()
    by_id = {op.operation_id: op for op in contract.operations}
    assert {(op.method, op.path) for op in contract.operations} == {
        ("POST", "/v{version}/webhooks"), ("GET", "/v{version}/webhooks"),
        ("GET", "/v{version}/webhooks/{resourceId}"), ("PATCH", "/v{version}/webhooks/{resourceId}"),
        ("DELETE", "/v{version}/webhooks/{resourceId}"), ("PATCH", "/v{version}/webhooks/{resourceId}/secret-key"),
        ("DELETE", "/v{version}/webhooks/{resourceId}/secret-key"), ("GET", "/v{version}/webhooks/actions"),
        ("POST", "/v{version}/webhooks/test-connection"), ("POST", "/v{version}/webhooks/{resourceId}/send-test"),
        ("POST", "/v{version}/webhooks/{resourceId}/send-penalty-box-payload"),
    }
    assert all(op.behaviour is not None and op.behaviour_source == "overlay" for op in contract.operations)
    assert set(by_id["postWebhooks"].responses) == {201, 400, 401, 403, 500}
    assert by_id["postWebhooks"].permission == "WEBHOOK.CREATE"
    assert contract.write_only_fields() == {"password", "api_key"}
    assert set(contract.events) == {"INVOICE", "CUSTOMER", "SUBSCRIPTION"}
    assert contract.request_id.header == "X-REQUEST-ID" and contract.tenancy_header == "x-platform-id"


def test_credentials_are_never_part_of_an_answer():
    contract = load_contract()
    for op in contract.operations:
        for response in op.responses.values():
            properties = response.schema.get("properties", {})
            assert "password" not in properties and "api_key" not in properties, op.operation_id


def test_another_document_changes_the_mock_without_code(tmp_path):
    doc = json.loads(VENDOR.read_text())
    doc["paths"]["/v{version}/webhooks"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
        "type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}
    changed = tmp_path / "api.json"
    changed.write_text(json.dumps(doc))
    overlays = tmp_path / "overlays"
    shutil.copytree(SPEC / "overlays", overlays)
    solvimon = overlays / "solvimon.yaml"
    solvimon.write_text(solvimon.read_text().replace('schema: {enum: ["1"]}', 'schema: {enum: ["1", "2"]}'))
    contract = load_contract([changed], [solvimon])
    engine = Engine(contract)
    resp = asyncio.run(engine.handle(MockRequest("POST", "/v2/webhooks", {},
                                                 {"x-api-key": "k", "content-type": "application/json"},
                                                 b'{"url": "https://example.com"}')))
    assert resp.status == 201, resp.body


@pytest.mark.parametrize("edit,expected", [
    ("pattern", "pattern '([' does not compile"),
    ("faker", "x-faker needs a method Faker has"),
    ("behaviour", "behaviour key 'nope' is not a path parameter"),
])
def test_a_broken_overlay_value_is_one_line_from_check(tmp_path, edit, expected):
    overlay = tmp_path / "mine.yaml"
    update = {
        "pattern": {"target": "$.components.schemas.Webhook.properties.name", "update": {"pattern": "(["}},
        "faker": {"target": "$.components.schemas.Webhook.properties.name", "update": {"x-faker": {"method": "nope"}}},
        "behaviour": {"target": "$.paths['/v{version}/webhooks/{resourceId}'].get",
                      "update": {"x-mock": {"behaviour": {"kind": "read", "key": "nope"}}}},
    }[edit]
    overlay.write_text(yaml.safe_dump({"overlay": "1.0.0", "info": {"title": "t", "version": "1"}, "actions": [update]}))
    err = io.StringIO()
    code = run(["check", "--openapi", str(VENDOR), "--overlay", "solvimon", "--overlay", str(overlay)], io.StringIO(), err)
    assert code == 2
    lines = err.getvalue().strip().splitlines()
    # the overlay wrote the broken value: its file and line are named
    line = next(i for i, text in enumerate(overlay.read_text().splitlines(), 1)
                if any(word in text for word in ("pattern", "method", "key:")))
    assert len(lines) == 1 and lines[0].startswith(f"mockserver: error: {overlay}:{line}: "), err.getvalue()
    assert expected in lines[0]
