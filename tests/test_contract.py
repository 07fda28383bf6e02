"""Loading spec/: the bundled contract loads, and every broken file is one clear line."""

from __future__ import annotations

import asyncio

import shutil
from pathlib import Path

import pytest
import yaml

from conftest import DATA, SPEC
from mockserver.contract import check_spec, load_contract
from mockserver.errors import LoadError, LoadErrors

CASES = yaml.safe_load((DATA / "broken_specs.yaml").read_text())


def test_bundled_spec_loads_with_every_operation():
    contract = load_contract(SPEC)
    by_id = {op.operation_id: op for op in contract.operations}
    assert {(op.method, op.path) for op in contract.operations} == {
        ("POST", "/v{version}/webhooks"), ("GET", "/v{version}/webhooks"), ("GET", "/v{version}/webhooks/{id}"),
        ("PATCH", "/v{version}/webhooks/{id}"), ("DELETE", "/v{version}/webhooks/{id}"),
        ("PATCH", "/v{version}/webhooks/{id}/secret-key"), ("DELETE", "/v{version}/webhooks/{id}/secret-key"),
        ("GET", "/v{version}/webhooks/actions"), ("POST", "/v{version}/webhooks/test-connection"),
        ("POST", "/v{version}/webhooks/{id}/send-test"), ("POST", "/v{version}/webhooks/{id}/send-penalty-box-payload"),
    }
    assert set(by_id["createWebhook"].responses) == {201, 400, 401, 403, 500}
    assert contract.write_only_fields() == {"password", "api_key"}


def test_resolved_schemas_hold_no_refs():
    contract = load_contract(SPEC)
    assert "$ref" not in repr(contract.operations[0].responses[201].schema)
    assert "$ref" not in repr(contract.operations[0].request_body.schema)


def _broken(tmp_path: Path, case: dict) -> Path:
    spec = tmp_path / "spec"
    shutil.copytree(SPEC, spec)
    if "delete" in case:
        target = spec / case["delete"]
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    else:
        target = spec / case["file"]
        text = target.read_text()
        old, new = case["replace"]
        assert old in text, f"case {case['case']} no longer applies to {case['file']}"
        target.write_text(text.replace(old, new, 1))
    return spec


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_broken_spec_is_one_line_naming_file_and_line(tmp_path, case):
    spec = _broken(tmp_path, case)
    errors = check_spec(spec)
    assert len(errors) == 1, errors
    line = str(errors[0])
    assert "\n" not in line
    assert line.startswith(str(spec / "x")[:-1] + case["expected"]), line


def test_missing_spec_dir_is_reported(tmp_path):
    with pytest.raises(LoadError, match="spec directory not found"):
        load_contract(tmp_path / "nowhere")


def test_every_broken_file_is_reported_at_once(tmp_path):
    spec = tmp_path / "spec"
    shutil.copytree(SPEC, spec)
    (spec / "schemas" / "Webhook.json").write_text("{")
    (spec / "schemas" / "ApiError.json").write_text("[1,")
    with pytest.raises(LoadErrors) as caught:
        load_contract(spec)
    assert len(caught.value.errors) == 2


def test_another_contract_of_the_same_shape_changes_the_mock_without_code(tmp_path):
    import json
    spec = tmp_path / "spec"
    shutil.copytree(SPEC, spec)
    op_file = spec / "operations" / "createWebhook.json"
    op = json.loads(op_file.read_text())
    op["parameters"]["path"]["version"]["schema"]["enum"] = ["1", "2"]
    op_file.write_text(json.dumps(op))
    req_file = spec / "schemas" / "WebhookCreateRequest.json"
    req = json.loads(req_file.read_text())
    req["required"] = ["url"]
    req_file.write_text(json.dumps(req))
    contract = load_contract(spec)
    from mockserver.engine import Engine, MockRequest
    engine = Engine(contract)
    resp = asyncio.run(engine.handle(MockRequest("POST", "/v2/webhooks", {}, {"x-api-key": "k", "content-type": "application/json"},
                                     b'{"url": "https://example.com"}')))
    assert resp.status == 201, resp.body
