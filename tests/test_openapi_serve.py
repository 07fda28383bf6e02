"""Any OpenAPI document, with no overlay: routed, checked, answered and remembered by convention."""

from __future__ import annotations

import base64
import io
import json

import pytest
from jsonschema import Draft202012Validator

from conftest import DATA
from mockserver.cli import run
from mockserver.contract.build import load_openapi

PETSTORE = DATA / "openapi" / "petstore.yaml"
KEY = {"X-Api-Key": "k"}
CONTRACT = load_openapi([PETSTORE])
OPS = {op.operation_id: op for op in CONTRACT.operations}


@pytest.fixture
async def pets(make_client):
    return await make_client(openapi=[PETSTORE], scenarios_dir=None)


async def answered(resp, operation: str, status: int) -> object:
    text = await resp.text()
    assert resp.status == status, text
    body = json.loads(text) if text else None
    schema = OPS[operation].responses[status].schema
    errors = list(Draft202012Validator(schema).iter_errors(body))
    assert not errors, errors
    return body


async def problem(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Type"] == "application/problem+json"
    body = await resp.json()
    assert body["status"] == status and body["type"] == "about:blank" and body["title"]
    return body


async def test_create_read_list_update_delete_by_convention(pets):
    created = await answered(await pets.post("/pets", json={"name": "Rex", "tag": None}, headers=KEY), "createPet", 201)
    assert created["name"] == "Rex" and created["id"]
    read = await answered(await pets.get(f"/pets/{created['id']}", headers=KEY), "getPet", 200)
    assert read == created
    listed = await answered(await pets.get("/pets", headers=KEY), "listPets", 200)
    assert [p["id"] for p in listed["items"]] == [created["id"]]
    updated = await answered(await pets.patch(f"/pets/{created['id']}", json={"name": "Max"}, headers=KEY),
                             "updatePet", 200)
    assert updated["name"] == "Max" and updated["id"] == created["id"]
    resp = await pets.delete(f"/pets/{created['id']}", headers=KEY)
    assert resp.status == 204 and await resp.read() == b""
    assert (await pets.get(f"/pets/{created['id']}", headers=KEY)).status == 404


async def test_a_list_is_paged_by_its_paging_parameters(pets):
    for i in range(5):
        await pets.post("/pets", json={"name": f"p{i}"}, headers=KEY)
    page = await answered(await pets.get("/pets", params={"limit": "2", "page": "3"}, headers=KEY), "listPets", 200)
    assert [p["name"] for p in page["items"]] == ["p4"] and page["page"] == 3


async def test_unknown_ids_and_methods(pets):
    body = await problem(await pets.get("/pets/nope", headers=KEY), 404)
    assert "nope" in body["detail"]
    resp = await pets.put("/pets", json={}, headers=KEY)
    body = await problem(resp, 405)
    assert resp.headers["Allow"] == "GET, POST"


async def test_every_violation_is_listed_as_problem_details(pets):
    body = await problem(await pets.post("/pets", json={"tag": 5, "age": 0}, headers=KEY), 400)
    fields = sorted(e["field"] for e in body["errors"])
    assert fields == ["age", "name", "tag"]


async def test_security_alternatives_header_key_or_basic(pets):
    await problem(await pets.get("/pets"), 401)
    basic = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
    assert (await pets.get("/pets", headers=basic)).status == 200
    await problem(await pets.get("/pets", headers={"Authorization": "Bearer t"}), 401)


async def test_query_arrays_and_cookie_parameters_are_checked(pets):
    assert (await pets.get("/pets", params={"tags": "a,b"}, headers=KEY)).status == 200
    await problem(await pets.get("/pets", params={"limit": "0"}, headers=KEY), 400)
    await problem(await pets.get("/pets/1/family", headers=KEY), 400)
    body = await problem(await pets.get("/pets/1/family", headers={**KEY, "Cookie": "session=ab"}), 400)
    assert body["errors"][0]["field"] == "session"
    created = await answered(await pets.post("/pets", json={"name": "Rex"}, headers=KEY), "createPet", 201)
    tree = await answered(await pets.get(f"/pets/{created['id']}/family", headers={**KEY, "Cookie": "session=abc"}),
                          "getFamily", 200)
    assert isinstance(tree["name"], str)


@pytest.mark.parametrize(("query", "status", "field"), [
    ("ages=1&ages=2", 200, None), ("ages=1&ages=x", 400, "ages"), ("ages=-1", 400, "ages"),
    ("owners=ann|bob", 200, None), ("owners=ann|b", 400, "owners"), ("owners=an|bo|cy|di", 400, "owners"),
    ("filter[name]=Rex&filter[older_than]=2", 200, None), ("filter[older_than]=x", 400, "filter"),
    ("filter[name]=R", 400, "filter"), ("filter[colour]=red", 400, "filter"),
])
async def test_exploded_delimited_and_deep_object_query_parameters(pets, query, status, field):
    resp = await pets.get(f"/pets?{query}", headers=KEY)
    if status == 200:
        await answered(resp, "listPets", 200)
    else:
        body = await problem(resp, status)
        assert body["errors"][0]["field"] == field, body


async def test_an_operation_under_an_item_answers_404_when_the_item_is_unknown_or_deleted(pets):
    cookie = {**KEY, "Cookie": "session=abc"}
    await problem(await pets.get("/pets/1/family", headers=cookie), 404)
    created = await answered(await pets.post("/pets", json={"name": "Rex"}, headers=KEY), "createPet", 201)
    await answered(await pets.get(f"/pets/{created['id']}/family", headers=cookie), "getFamily", 200)
    assert (await pets.delete(f"/pets/{created['id']}", headers=KEY)).status in (200, 204)
    await problem(await pets.get(f"/pets/{created['id']}/family", headers=cookie), 404)


async def test_a_client_never_chooses_the_id_of_what_it_creates_or_updates(make_client):
    """The vendor's create and update bodies have an ``id``; the mock decides it all the same."""
    client = await make_client(openapi=[DATA / "vendor" / "configuration-api.webhooks.json"], overlays=["solvimon"],
                               scenarios_dir=None)
    key = {"X-API-KEY": "k"}
    resp = await client.post("/v1/webhooks", json={"id": ".", "name": "n", "reference": "r", "url": "https://a.example"}, headers=key)
    created = await resp.json()
    assert resp.status in (200, 201), created
    assert created["id"] not in (".", None, "None")
    resp = await client.patch(f"/v1/webhooks/{created['id']}", json={"id": "other", "name": "m"}, headers=key)
    updated = await resp.json()
    assert resp.status == 200, updated
    assert updated["id"] == created["id"] and updated["name"] == "m"
    assert (await client.get("/v1/webhooks/other", headers=key)).status == 404
    assert (await client.get(f"/v1/webhooks/{created['id']}", headers=key)).status == 200


def test_openapi_3_0_is_read_as_json_schema_2020_12():
    schema = OPS["createPet"].request_body.schema
    assert schema["properties"]["tag"]["type"] == ["string", "null"]
    assert schema["properties"]["age"]["exclusiveMinimum"] == 0 and "minimum" not in schema["properties"]["age"]


def test_a_recursive_schema_is_kept_as_a_definition():
    schema = OPS["getFamily"].responses[200].schema
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Tree"}
    assert Draft202012Validator(schema).is_valid({"name": "a", "children": [{"name": "b", "children": []}]})
    assert not Draft202012Validator(schema).is_valid({"name": "a", "children": [{"children": []}]})


def test_routes_names_each_behaviour_and_where_it_came_from():
    out, err = io.StringIO(), io.StringIO()
    assert run(["routes", "--openapi", str(PETSTORE)], out, err) == 0, err.getvalue()
    rows = {tuple(line.split()[:2]): line.split()[2:] for line in out.getvalue().splitlines()[1:]}
    assert rows[("POST", "/pets")] == ["createPet", "create", "convention"]
    assert rows[("GET", "/pets/{petId}")] == ["getPet", "read", "convention"]
    assert rows[("GET", "/pets/{petId}/family")] == ["getFamily", "generate", "(404", "unless", "petId", "is",
                                                      "stored)", "convention"]


VENDOR = DATA / "vendor"


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), out, err)
    return code, out.getvalue(), err.getvalue()


def test_check_accepts_each_vendor_document_with_the_solvimon_overlay():
    for name in ("configuration-api.webhooks.json", "identity-api.json", "event-api.json"):
        code, out, err = cli("check", "--openapi", str(VENDOR / name), "--overlay", "solvimon")
        assert code == 0, err
        assert out.startswith("ok: ") and "operation(s)" in out


def test_an_overlay_target_that_matches_nothing_is_one_line_from_check_and_serve(tmp_path):
    overlay = tmp_path / "renamed.yaml"
    overlay.write_text("overlay: 1.0.0\ninfo: {title: t, version: '1'}\nactions:\n"
                       "  - target: $.components.schemas.Gadget\n    update: {description: gone}\n")
    code, _, err = cli("check", "--openapi", str(PETSTORE), "--overlay", str(overlay))
    assert code == 2
    assert err.strip() == f"mockserver: error: {overlay}:4: target $.components.schemas.Gadget matches nothing"
    code, out, serve_err = cli("serve", "--port", "0", "--openapi", str(PETSTORE), "--overlay", str(overlay))
    assert code == 2 and serve_err == err and "listening" not in out


def test_a_document_that_is_not_openapi_is_one_line(tmp_path):
    broken = tmp_path / "api.yaml"
    broken.write_text("openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      responses:\n"
                      "        '200': {content: {}}\n")
    code, _, err = cli("check", "--openapi", str(broken))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mockserver: error: {broken}:"), err
    assert "Traceback" not in err


def test_diff_reports_breaking_changes_and_exits_1(tmp_path):
    doc = json.loads((VENDOR / "configuration-api.webhooks.json").read_text())
    del doc["components"]["schemas"]["Webhook"]["properties"]["url"]
    changed = tmp_path / "new.json"
    changed.write_text(json.dumps(doc))
    code, out, err = cli("diff", "bundled", str(changed), "--format", "json")
    assert code == 1, err
    report = json.loads(out)
    assert report["breaking"] >= 1
    assert any(c["kind"] == "property-removed" and "url" in c["location"] for c in report["changes"])
    assert cli("diff", "bundled", "bundled")[0] == 0


async def test_prefer_example_and_static_answers(pets):
    created = await answered(await pets.post("/pets", json={"name": "Max"}, headers=KEY), "createPet", 201)
    resp = await pets.get(f"/pets/{created['id']}", headers={**KEY, "Prefer": "example=rex"})
    body = await answered(resp, "getPet", 200)
    assert body["name"] == "Rex" and body["tag"] == "dog"
    body = await problem(await pets.get(f"/pets/{created['id']}", headers={**KEY, "Prefer": "example=nope"}), 400)
    assert "rex" in body["detail"]
    static = await answered(await pets.post("/pets", json={"name": "Tom"}, headers={**KEY, "Prefer": "dynamic=false"}),
                            "createPet", 201)
    assert static["tag"] == "cat"  # the example the schema gives, not a generated string


async def test_an_integer_beyond_64_bits_is_kept_exactly(pets):
    big = 2 ** 64 + 1
    resp = await pets.post("/pets", data=f'{{"name": "Big", "age": {big}}}', headers={**KEY, "Content-Type": "application/json"})
    text = await resp.text()
    assert resp.status == 201, text
    assert json.loads(text)["age"] == big
    stored = await pets.get(f"/pets/{json.loads(text)['id']}", headers=KEY)
    assert json.loads(await stored.text())["age"] == big


async def test_a_scripted_error_in_a_contract_without_an_error_shape_is_problem_details(make_client, tmp_path):
    (tmp_path / "down.yaml").write_text("name: down\nrules:\n  - match: {method: GET, path: /pets/1}\n"
                                        "    respond: {status: 404}\n")
    client = await make_client(openapi=[PETSTORE], scenarios_dir=tmp_path, scenario="down")
    body = await problem(await client.get("/pets/1", headers=KEY), 404)
    assert body["status"] == 404 and body["title"] == "Not Found" and body["code"] == "not-found"
