"""Loading spec/: the bundled contract loads, and every broken file is one clear line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from conftest import DATA, SPEC
from mockserver.contract import check_spec, load_contract
from mockserver.errors import LoadError, LoadErrors

CASES = yaml.safe_load((DATA / "broken_specs.yaml").read_text())


def test_bundled_spec_loads_with_its_operation():
    contract = load_contract(SPEC)
    [op] = contract.operations
    assert (op.method, op.path) == ("POST", "/v{version}/webhooks")
    assert set(op.responses) == {201, 400, 401, 403, 500}
    assert contract.write_only_fields() == {"password", "api_key"}


def test_resolved_schemas_hold_no_refs():
    contract = load_contract(SPEC)
    assert "$ref" not in repr(contract.operations[0].responses[201].schema)
    assert "$ref" not in repr(contract.operations[0].request_body.schema)


def _broken(tmp_path: Path, case: dict) -> Path:
    spec = tmp_path / "spec"
    shutil.copytree(SPEC, spec)
    if "delete" in case:
        (spec / case["delete"]).unlink()
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
    spec = tmp_path / "spec"
    shutil.copytree(SPEC, spec)
    op = spec / "operations" / "createWebhook.json"
    op.write_text(op.read_text().replace('"enum": ["1"]', '"enum": ["1", "2"]'))
    req = spec / "schemas" / "WebhookCreateRequest.json"
    req.write_text(req.read_text().replace('"required": ["url", "name", "reference"]', '"required": ["url"]'))
    contract = load_contract(spec)
    from mockserver.engine import Engine, MockRequest
    engine = Engine(contract)
    resp = engine.handle(MockRequest("POST", "/v2/webhooks", {}, {"x-api-key": "k", "content-type": "application/json"},
                                     b'{"url": "https://example.com"}'))
    assert resp.status == 201, resp.body
