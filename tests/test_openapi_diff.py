"""``mockserver diff``: what changed between two OpenAPI documents, and whether it breaks a client."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from mockserver.contract.diff import Change, diff, render_json, render_table, run_diff

HERE = Path(__file__).parent
VENDOR = HERE / "data" / "vendor" / "configuration-api.webhooks.json"
DATA = HERE / "data" / "diff"

WEBHOOKS = "/v{version}/webhooks"
POST = "POST /v{version}/webhooks (postWebhooks)"
GET_ONE = "GET /v{version}/webhooks/{resourceId} (getWebhooksByResourceId)"


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return json.loads(VENDOR.read_text(encoding="utf-8"))


@pytest.fixture
def old(base: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(base)


@pytest.fixture
def new(base: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(base)


def schemas(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["components"]["schemas"]


def only(changes: list[Change], operation: str, location: str) -> Change:
    """The one change at this operation and location (fails if there are none or several)."""
    found = [c for c in changes if c.operation == operation and c.location == location]
    assert len(found) == 1, f"expected one change at {operation} / {location}, got {found} among {changes}"
    return found[0]


def test_identical_documents_have_no_changes(old, new, tmp_path):
    assert diff(old, new) == []
    path = tmp_path / "same.json"
    path.write_text(json.dumps(old), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert run_diff(path, path, "table", out, err) == 0
    assert out.getvalue().splitlines()[-1] == "0 changes, 0 breaking"
    assert err.getvalue() == ""


def test_a_removed_operation_breaks_and_an_added_one_does_not(old, new):
    del new["paths"][f"{WEBHOOKS}/{{resourceId}}/send-test"]
    new["paths"][WEBHOOKS]["put"] = {"operationId": "putWebhooks", "responses": {"204": {"description": "ok"}}}
    changes = diff(old, new)
    assert [(c.operation, c.kind, c.breaking) for c in changes] == [
        ("POST /v{version}/webhooks/{resourceId}/send-test (postWebhooksByResourceIdSendTest)",
         "operation-removed", True),
        ("PUT /v{version}/webhooks (putWebhooks)", "operation-added", False),
    ]


def test_a_renamed_path_parameter_is_a_parameter_change_not_a_removed_operation(old, new):
    item = new["paths"].pop(f"{WEBHOOKS}/{{resourceId}}")
    for op in item.values():
        for param in op["parameters"]:
            if param["name"] == "resourceId":
                param["name"] = "id"
    new["paths"][f"{WEBHOOKS}/{{id}}"] = item
    changes = diff(old, new)
    assert {c.kind for c in changes} == {"parameter-renamed"}
    assert len(changes) == 3  # GET, PATCH and DELETE
    renamed = only(changes, "GET /v{version}/webhooks/{id} (getWebhooksByResourceId)", "parameter path id")
    assert not renamed.breaking and "{resourceId}" in renamed.detail


def test_a_new_required_request_property_breaks_and_an_optional_one_does_not(old, new):
    create = schemas(new)["WebhookCreateRequest"]
    create["properties"]["region"] = {"type": "string"}
    create["properties"]["tags"] = {"type": "array", "items": {"type": "string"}}
    create["required"].append("region")
    changes = diff(old, new)
    region = only(changes, POST, "request body: region")
    tags = only(changes, POST, "request body: tags")
    assert (region.kind, region.breaking) == ("property-added", True)
    assert "required" in region.detail
    assert (tags.kind, tags.breaking) == ("property-added", False)


def test_an_existing_request_property_becoming_required_breaks(old, new):
    schemas(new)["WebhookCreateRequest"]["required"].append("active")
    change = only(diff(old, new), POST, "request body: active")
    assert (change.kind, change.breaking) == ("required-added", True)


def test_a_removed_request_property_breaks_as_what_clients_send_is_no_longer_read(old, new):
    del schemas(new)["WebhookCreateRequest"]["properties"]["username"]
    change = only(diff(old, new), POST, "request body: username")
    assert (change.kind, change.breaking) == ("property-removed", True)


def test_a_read_only_property_is_not_part_of_a_request(old, new):
    create = schemas(new)["WebhookCreateRequest"]
    create["properties"]["id"] = {"type": ["string", "null"], "readOnly": True}
    create["required"].append("id")
    assert [c for c in diff(old, new) if c.operation == POST] == [
        Change(POST, "request body: id", "property-removed", True, "'id' is no longer accepted"),
    ]


def test_a_removed_response_property_breaks_and_an_added_one_does_not(old, new):
    webhook = schemas(new)["Webhook"]["properties"]
    del webhook["username"]
    webhook["created_at"] = {"type": "string", "format": "date-time"}
    changes = diff(old, new)
    removed = only(changes, GET_ONE, "response 200: username")
    added = only(changes, GET_ONE, "response 200: created_at")
    assert (removed.kind, removed.breaking) == ("property-removed", True)
    assert (added.kind, added.breaking) == ("property-added", False)
    # the list answer carries the same schema inside its items
    listed = only(changes, "GET /v{version}/webhooks (getWebhooks)", "response 200: data[].username")
    assert listed.breaking


def test_a_response_property_that_became_optional_breaks(old, new):
    schemas(old)["Webhook"]["required"] = ["id", "url"]
    schemas(new)["Webhook"]["required"] = ["id"]
    change = only(diff(old, new), GET_ONE, "response 200: url")
    assert (change.kind, change.breaking) == ("required-removed", True)


def test_a_type_change_is_reported_with_both_types(old, new):
    schemas(new)["PenaltyBoxData"]["properties"]["retry_count"]["type"] = ["string", "null"]
    change = only(diff(old, new), GET_ONE, "response 200: penalty_box_data.retry_count")
    assert (change.kind, change.breaking) == ("type-changed", True)
    assert change.detail == "type changed from integer to string"


def test_a_widened_request_type_is_fine_but_the_same_widening_of_a_response_breaks(old, new):
    for name in ("PenaltyBoxDataCreateRequest", "PenaltyBoxData"):
        schemas(new)[name]["properties"]["retry_count"]["type"] = ["number", "null"]
    changes = diff(old, new)
    request = only(changes, POST, "request body: penalty_box_data.retry_count")
    response = only(changes, POST, "response 201: penalty_box_data.retry_count")
    assert (request.kind, request.breaking) == ("type-changed", False)
    assert (response.kind, response.breaking) == ("type-changed", True)


def test_a_request_enum_value_removed_breaks_and_one_added_does_not(old, new):
    schemas(new)["WebhookCreateRequestAuthenticationType"]["enum"] = ["PASSWORD", "API_KEY", "OAUTH2"]
    changes = [c for c in diff(old, new) if c.location == "request body: authentication_type"]
    assert [(c.operation, c.kind, c.breaking, c.detail) for c in changes if c.operation == POST] == [
        (POST, "enum-value-removed", True, 'enum value "NONE" was removed'),
        (POST, "enum-value-added", False, 'enum value "OAUTH2" was added'),
    ]


def test_a_response_enum_value_added_breaks_because_a_client_switch_may_not_handle_it(old, new):
    schemas(new)["WebhookAuthenticationType"]["enum"].append("OAUTH2")
    change = only(diff(old, new), GET_ONE, "response 200: authentication_type")
    assert (change.kind, change.breaking) == ("enum-value-added", True)


def test_a_response_property_becoming_nullable_breaks_and_the_reverse_does_not(old, new):
    schemas(new)["Webhook"]["properties"]["active"] = {"type": ["boolean", "null"]}
    schemas(new)["Webhook"]["properties"]["url"] = {"type": "string"}
    changes = diff(old, new)
    active = only(changes, GET_ONE, "response 200: active")
    url = only(changes, GET_ONE, "response 200: url")
    assert (active.kind, active.breaking, active.detail) == ("nullable-changed", True, "became nullable")
    assert (url.kind, url.breaking) == ("nullable-changed", False)


def test_null_in_a_union_is_the_same_nullability_as_a_type_array(old, new):
    # penalty_box_data is `oneOf: [PenaltyBoxData, {type: null}]`; the same thing written
    # another way is no change, dropping the null branch is one
    props = schemas(new)["Webhook"]["properties"]
    props["penalty_box_data"] = {"anyOf": [{"type": "null"}, {"$ref": "#/components/schemas/PenaltyBoxData"}]}
    assert diff(old, new) == []
    props["penalty_box_data"] = {"$ref": "#/components/schemas/PenaltyBoxData"}
    change = only(diff(old, new), GET_ONE, "response 200: penalty_box_data")
    assert (change.kind, change.breaking) == ("nullable-changed", False)


def test_a_parameter_made_required_breaks(old, new):
    limit = next(p for p in new["paths"][WEBHOOKS]["get"]["parameters"] if p["name"] == "limit")
    limit["required"] = True
    change = only(diff(old, new), "GET /v{version}/webhooks (getWebhooks)", "parameter query limit")
    assert (change.kind, change.breaking) == ("parameter-required-changed", True)


def test_parameters_added_and_removed(old, new):
    params = new["paths"][WEBHOOKS]["get"]["parameters"]
    params[:] = [p for p in params if p["name"] != "order_direction"]
    params.append({"in": "query", "name": "q", "required": False, "schema": {"type": "string"}})
    params.append({"in": "header", "name": "X-Tenant", "required": True, "schema": {"type": "string"}})
    changes = diff(old, new)
    get = "GET /v{version}/webhooks (getWebhooks)"
    assert [(c.location, c.kind, c.breaking) for c in changes if c.operation == get] == [
        ("parameter query order_direction", "parameter-removed", True),
        ("parameter query q", "parameter-added", False),
        ("parameter header X-Tenant", "parameter-added", True),
    ]


def test_a_removed_success_status_breaks_and_a_removed_error_status_does_not(old, new):
    responses = new["paths"][WEBHOOKS]["post"]["responses"]
    responses["200"] = responses.pop("201")
    del responses["500"]
    changes = diff(old, new)
    assert [(c.location, c.kind, c.breaking) for c in changes] == [
        ("response 201", "response-status-removed", True),
        ("response 500", "response-status-removed", False),
        ("response 200", "response-status-added", False),
    ]


def test_a_self_referencing_schema_terminates_and_changes_below_it_are_found():
    old = yaml.safe_load((DATA / "tree-old.yaml").read_text(encoding="utf-8"))
    new = yaml.safe_load((DATA / "tree-new.yaml").read_text(encoding="utf-8"))
    changes = diff(old, new)
    assert [(c.operation, c.location, c.kind, c.breaking) for c in changes] == [
        ("GET /nodes/{id} (getNode)", "parameter path id", "parameter-renamed", False),
        ("GET /nodes/{id} (getNode)", "response 200: label", "nullable-changed", True),
        ("GET /nodes/{id} (getNode)", "response 200: folder.files[].size", "type-changed", True),
        ("PUT /nodes/{id} (putNode)", "parameter path id", "parameter-renamed", False),
        ("PUT /nodes/{id} (putNode)", "request body: label", "nullable-changed", False),
        ("PUT /nodes/{id} (putNode)", "request body: folder.files[].size", "type-changed", False),
    ]


def test_a_schema_that_becomes_self_referencing_terminates():
    def doc(node: dict[str, Any]) -> dict[str, Any]:
        return {"openapi": "3.1.0", "paths": {"/n": {"get": {"responses": {"200": {"content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/N"}}}}}}}},
            "components": {"schemas": {"N": node}}}

    old = doc({"type": "object", "properties": {"next": {"type": "object"}}})
    new = doc({"type": "object", "properties": {"next": {"$ref": "#/components/schemas/N"},
                                                  "also": {"oneOf": [{"$ref": "#/components/schemas/N"}]}}})
    changes = diff(old, new)
    # old `next` was an object with no properties listed; the new one lists N's, once
    assert [(c.location, c.kind, c.breaking) for c in changes] == [
        ("response 200: next.next", "property-added", False),
        ("response 200: next.also", "property-added", False),
        ("response 200: also", "property-added", False),
    ]


def test_a_change_inside_a_cycle_is_reported_for_every_operation_that_reaches_it():
    def doc(extra: bool) -> dict[str, Any]:
        a = {"type": "object", "properties": {"b": {"$ref": "#/components/schemas/B"}}}
        b = {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/A"}}}
        if extra:
            a["properties"]["extra"] = {"type": "string"}
        ops = {f"/{name.lower()}": {"get": {"responses": {"200": {"content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{name}"}}}}}}} for name in ("A", "B")}
        return {"openapi": "3.1.0", "paths": ops, "components": {"schemas": {"A": a, "B": b}}}

    assert [(c.operation, c.location) for c in diff(doc(False), doc(True))] == [
        ("GET /a", "response 200: extra"),
        ("GET /b", "response 200: a.extra"),
    ]


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc) if path.suffix == ".json" else yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_run_diff_returns_1_and_prints_a_table_when_something_breaks(old, new, tmp_path):
    del schemas(new)["Webhook"]["properties"]["username"]
    schemas(new)["Webhook"]["properties"]["created_at"] = {"type": "string"}
    out, err = io.StringIO(), io.StringIO()
    code = run_diff(write(tmp_path / "old.json", old), write(tmp_path / "new.yaml", new), "table", out, err)
    assert code == 1 and err.getvalue() == ""
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["OPERATION", "WHERE", "CHANGE", "BREAKING", "DETAIL"]
    row = next(line for line in lines if GET_ONE in line and "response 200: username" in line)
    assert "property-removed" in row and " yes " in row
    total = len(diff(old, new))
    breaking = sum(c.breaking for c in diff(old, new))
    assert lines[-1] == f"{total} changes, {breaking} breaking"
    assert len(lines) == total + 2


def test_run_diff_json_has_every_change_and_the_breaking_count(old, new, tmp_path):
    schemas(new)["WebhookCreateRequestAuthenticationType"]["enum"].append("OAUTH2")  # request: fine
    out, err = io.StringIO(), io.StringIO()
    code = run_diff(write(tmp_path / "old.yaml", old), write(tmp_path / "new.json", new), "json", out, err)
    assert code == 0
    body = json.loads(out.getvalue())
    assert body["breaking"] == 0
    assert len(body["changes"]) == 2  # POST /webhooks and POST /webhooks/test-connection
    assert body["changes"][0] == {"operation": POST, "location": "request body: authentication_type",
                                  "kind": "enum-value-added", "breaking": False,
                                  "detail": 'enum value "OAUTH2" was added'}


def test_render_json_counts_breaking_changes():
    changes = [Change("GET /a", "response 200: x", "property-removed", True, "gone"),
               Change("GET /a", "response 200: y", "property-added", False, "new")]
    assert json.loads(render_json(changes))["breaking"] == 1
    assert render_table(changes).splitlines()[-1] == "2 changes, 1 breaking"


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("paths: [unclosed", "not valid YAML"),
    ("- a list", "not an OpenAPI document"),
    ("swagger: '2.0'\npaths: {}\n", "found swagger 2.0"),
])
def test_run_diff_reports_a_bad_file_in_one_line_and_returns_2(old, tmp_path, content, message):
    bad = tmp_path / "bad.yaml"
    if content is not None:
        bad.write_text(content, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    assert run_diff(write(tmp_path / "old.json", old), bad, "table", out, err) == 2
    assert out.getvalue() == ""
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and message in lines[0]


def test_run_diff_reports_a_reference_it_cannot_follow(old, new, tmp_path):
    schemas(new)["Webhook"]["properties"]["url"] = {"$ref": "#/components/schemas/Missing"}
    out, err = io.StringIO(), io.StringIO()
    assert run_diff(write(tmp_path / "old.json", old), write(tmp_path / "new.json", new), "json", out, err) == 2
    assert "#/components/schemas/Missing does not resolve" in err.getvalue()
