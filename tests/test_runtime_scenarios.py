"""Scenarios at run time: PUT, GET and DELETE /__mock/scenarios/{name}, through a real server.

A scenario put at run time is checked exactly as a file is, so the broken scenario files of
tests/data/bad_scenarios are put as request bodies here and must give the same one line.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from conftest import AUTH, DATA, SCENARIOS, api_error, created, minimal
from mockserver.errors import LoadErrors
from mockserver.scenarios import load_scenarios

from conftest import CONTRACT

YAML = {"Content-Type": "application/yaml"}
BAD = DATA / "bad_scenarios"
BAD_FILES = sorted(BAD.glob("*.yaml"))

BOOM_YAML = """\
description: every create fails once
rules:
  - times: 1
    match: {method: POST, path: /v1/webhooks}
    respond:
      status: 500
      body: {message: "put at run time"}
"""


async def put(client, name: str, body, content_type: str = "application/json"):
    data = json.dumps(body) if not isinstance(body, str) else body
    return await client.put(f"/__mock/scenarios/{name}", data=data.encode(), headers={"Content-Type": content_type})


async def create(client, scenario: str | None = None):
    headers = {**AUTH, "X-Mock-Scenario": scenario} if scenario else AUTH
    return await client.post("/v1/webhooks", json=minimal(), headers=headers)


async def listing(client) -> dict[str, dict]:
    return {s["name"]: s for s in (await (await client.get("/__mock/scenarios")).json())["scenarios"]}


# ------------------------------------------------------------------ PUT


async def test_a_scenario_put_as_json_answers_the_next_request(client):
    resp = await put(client, "boom", {"rules": [{"match": {"method": "POST"}, "respond": {"status": 401}}]})
    assert resp.status == 201, await resp.text()
    shown = await resp.json()
    assert (shown["name"], shown["origin"], shown["rules"][0]["answered"]) == ("boom", "runtime", 0)
    await api_error(await create(client, "boom"), 401, "UNAUTHORISED")
    await created(await create(client))  # only the request that chose it
    rules = (await (await client.get("/__mock/scenarios/boom")).json())["rules"]
    assert rules == [{"name": "rules[0]", "times": None, "answered": 1,
                      "match": {"method": "POST"}, "respond": {"status": 401}}]


@pytest.mark.parametrize("content_type", ["application/yaml", "text/yaml", "application/x-yaml; charset=utf-8"])
async def test_a_scenario_put_as_yaml_in_the_file_format_answers_the_next_request(client, content_type):
    resp = await put(client, "boom", BOOM_YAML, content_type)
    assert resp.status == 201, await resp.text()
    assert (await client.put("/__mock/scenario", json={"name": "boom"})).status == 200
    body = await api_error(await create(client), 500, "INTERNAL_ERROR")
    assert body["message"] == "put at run time"
    await created(await create(client))  # times: 1, then the contract's answer
    shown = await (await client.get("/__mock/scenarios/boom")).json()
    assert shown["description"] == "every create fails once"
    assert [(r["times"], r["answered"]) for r in shown["rules"]] == [(1, 1)]


async def test_a_put_replaces_a_run_time_scenario_at_once_even_while_it_is_selected(client):
    assert (await put(client, "boom", {"rules": [{"respond": {"status": 401}}]})).status == 201
    await client.put("/__mock/scenario", json={"name": "boom"})
    await api_error(await create(client), 401, "UNAUTHORISED")
    resp = await put(client, "boom", {"rules": [{"respond": {"status": 403}}]})
    assert resp.status == 200
    assert (await resp.json())["rules"][0]["answered"] == 0  # a new scenario counts afresh
    await api_error(await create(client), 403, "USER_NOT_ALLOWED")
    assert (await (await client.get("/__mock/scenario")).json())["active"] == "boom"


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
async def test_a_broken_body_gets_the_line_a_broken_file_gets(client, tmp_path, path):
    text = path.read_text()
    directory = tmp_path / "s"
    directory.mkdir()
    (directory / path.name).write_text(text)
    with pytest.raises(LoadErrors) as caught:
        load_scenarios(directory, CONTRACT)
    [as_file] = caught.value.errors
    resp = await put(client, path.stem, text, "application/yaml")
    body = await api_error(resp, 400, "BAD_REQUEST")
    where = f"scenario '{path.stem}' (request body)"
    expected = f"{where}:{as_file.line}: {as_file.message}" if as_file.line else f"{where}: {as_file.message}"
    if path.stem == "empty":
        expected = expected.replace("the file is empty", "the scenario is empty")
    assert body["message"] == expected
    assert path.stem not in await listing(client)


async def test_a_broken_json_body_names_the_line_within_the_body(client):
    text = '{\n  "rules": [\n    {"respond": {"status": 500}},\n    {"respond": {"status": 418}}\n  ]\n}'
    body = await api_error(await put(client, "x", text), 400, "BAD_REQUEST")
    assert body["message"] == ("scenario 'x' (request body):4: at rules.1.respond.status: status 418 is not a status "
                               "of the contract here; use one of 200, 201, 400, 401, 403, 404, 409, 500")
    body = await api_error(await put(client, "x", '{\n  "rules": [\n    oops\n  ]\n}'), 400, "BAD_REQUEST")
    assert body["message"].startswith("scenario 'x' (request body):3: invalid JSON: ")
    body = await api_error(await put(client, "x", {"rules": [{"respond": {"status": 201, "body": {"id": 5}}}]}),
                           400, "BAD_REQUEST")
    assert body["message"] == ("scenario 'x' (request body):1: at rules.0.respond.body.id: body breaks the "
                               "contract's 201 schema of postWebhooks: id: 5 is not of type 'string'")


async def test_a_body_naming_another_scenario_or_using_yaml_aliases_is_refused(client):
    body = await api_error(await put(client, "x", "rules: []\nname: y\n", "text/yaml"), 400, "BAD_REQUEST")
    assert body["message"] == ("scenario 'x' (request body):2: at name: 'y' is not the name this scenario is put "
                               "under ('x'); leave `name` out or make them the same")
    assert (await put(client, "x", {"name": "x", "rules": []})).status == 201
    bomb = "a: &a [1, 1, 1]\nb: &b [*a, *a, *a]\nrules: []\n"
    body = await api_error(await put(client, "y", bomb, "text/yaml"), 400, "BAD_REQUEST")
    assert body["message"].startswith("scenario 'y' (request body):2: YAML anchors and aliases")


async def test_a_put_is_refused_for_a_file_name_a_bad_name_a_bad_type_or_a_large_body(client):
    body = await api_error(await put(client, "flaky", {"rules": []}), 409, "INVALID_OPERATION", "name")
    assert str(SCENARIOS / "flaky.yaml") in body["message"]
    await api_error(await put(client, "has%20space", {"rules": []}), 400, "BAD_REQUEST", "name")
    await api_error(await put(client, "-dash-first", {"rules": []}), 400, "BAD_REQUEST", "name")
    await api_error(await put(client, "x", "rules: []\n", "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE")
    await api_error(await put(client, "x", "rules: []\n", "application/x-www-form-urlencoded"), 415,
                    "UNSUPPORTED_MEDIA_TYPE")
    await api_error(await put(client, "x", ""), 400, "BAD_REQUEST")
    big = {"description": "x" * (1024 * 1024), "rules": []}
    await api_error(await put(client, "x", big), 413, "BAD_REQUEST")
    # YAML is taken by this route only
    resp = await client.put("/__mock/scenario", data=b"name: flaky\n", headers={"Content-Type": "application/yaml"})
    await api_error(resp, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert [s for s in (await listing(client)).values() if s["origin"] == "runtime"] == []
    assert (await client.get("/v1/webhooks", headers={**AUTH, "X-Mock-Scenario": "flaky"})).status == 500


# ------------------------------------------------------------------ GET, DELETE, reset


async def test_the_listing_marks_file_and_run_time_scenarios(client):
    await put(client, "boom", BOOM_YAML, "application/yaml")
    shown = await listing(client)
    assert shown["boom"]["origin"] == "runtime" and shown["boom"]["source"] == "PUT /__mock/scenarios/boom"
    assert shown["boom"]["description"] == "every create fails once" and shown["boom"]["rules"] == 1
    assert shown["flaky"]["origin"] == "file" and shown["flaky"]["source"] == str(SCENARIOS / "flaky.yaml")
    one = await (await client.get("/__mock/scenarios/flaky")).json()
    assert (one["origin"], one["rules"][0]["times"], one["rules"][0]["answered"]) == ("file", 2, 0)
    await api_error(await client.get("/__mock/scenarios/nope"), 404, "RESOURCE_NOT_FOUND", "name")


async def test_delete_removes_a_run_time_scenario_and_what_chose_it(client):
    await put(client, "boom", {"rules": [{"respond": {"status": 401}}]})
    await client.put("/__mock/scenario", json={"name": "boom"})
    await client.put("/__mock/scenario", json={"name": "boom", "api_key": "other"})
    await api_error(await create(client), 401, "UNAUTHORISED")
    resp = await client.delete("/__mock/scenarios/boom")
    assert resp.status == 200
    assert await resp.json() == {"deleted": "boom", "scenario": {"active": None, "default": None, "bindings": []}}
    await created(await create(client))
    await api_error(await create(client, "boom"), 400, "BAD_REQUEST")
    await api_error(await client.delete("/__mock/scenarios/boom"), 404, "RESOURCE_NOT_FOUND")
    body = await api_error(await client.delete("/__mock/scenarios/flaky"), 409, "INVALID_OPERATION")
    assert "flaky.yaml" in body["message"]
    assert "flaky" in await listing(client)
    await api_error(await client.post("/__mock/scenarios/boom", json={}), 405, "INVALID_OPERATION")


async def test_reset_removes_run_time_scenarios_and_keeps_the_files(make_client, tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / "mine.yaml").write_text("rules:\n  - respond: {status: 403}\n")
    client = await make_client(scenarios_dir=own, scenario="mine")
    await put(client, "boom", BOOM_YAML, "application/yaml")
    await client.put("/__mock/scenario", json={"name": "boom"})
    await api_error(await create(client), 500, "INTERNAL_ERROR")
    reset = await (await client.post("/__mock/reset")).json()
    assert reset["scenario"]["active"] == "mine"  # the start-up choice, a file's
    assert {name: s["origin"] for name, s in (await listing(client)).items()} == {"mine": "file"}
    await api_error(await create(client), 403, "USER_NOT_ALLOWED")
    await api_error(await create(client, "boom"), 400, "BAD_REQUEST")
    assert (await put(client, "boom", BOOM_YAML, "text/yaml")).status == 201  # the name is free again


async def test_the_admin_token_guards_the_run_time_routes(make_client):
    client = await make_client(admin_token="s3cret")
    await api_error(await put(client, "boom", {"rules": []}), 401, "UNAUTHORISED")
    await api_error(await client.get("/__mock/scenarios/flaky"), 401, "UNAUTHORISED")
    await api_error(await client.delete("/__mock/scenarios/flaky"), 401, "UNAUTHORISED")
    resp = await client.put("/__mock/scenarios/boom", data=b"rules: []\n",
                            headers={"Content-Type": "text/yaml", "X-Admin-Token": "s3cret"})
    assert resp.status == 201


async def test_the_dashboards_uses_route_is_not_taken_for_a_scenario_name(client):
    await put(client, "boom", {"rules": [{"respond": {"status": 401}}]})
    await create(client, "boom")
    uses = (await (await client.get("/__mock/scenarios/uses")).json())["uses"]
    assert [(u["scenario"], u["used"]) for u in uses] == [("boom", 1)]


# ------------------------------------------------------------------ several directories


def write(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(textwrap.dedent(text))
    return directory


async def test_several_directories_load_beside_the_bundled_library(make_client, tmp_path):
    first = write(tmp_path / "a", teapot="rules:\n  - respond: {status: 403}\n")
    second = write(tmp_path / "b", other="rules:\n  - respond: {status: 401}\n")
    client = await make_client(scenarios_dir=[first, str(second)], bundled_scenarios=True)
    shown = await listing(client)
    assert {"teapot", "other", "internal-error", "flaky"} <= set(shown)
    assert shown["teapot"]["source"] == str(first / "teapot.yaml")
    await api_error(await create(client, "teapot"), 403, "USER_NOT_ALLOWED")
    await api_error(await create(client, "other"), 401, "UNAUTHORISED")
    await api_error(await create(client, "internal-error"), 500, "INTERNAL_ERROR")
    alone = await make_client(scenarios_dir=first)  # create_app loads only what it is given
    assert set(await listing(alone)) == {"teapot"}
