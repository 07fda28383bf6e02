"""mockserver proxy --record: the upstream's answers as a scenario file that serve replays.

A session recorded through the proxy and replayed by the mock gives a client the same statuses
and bodies (secrets aside); secrets in answers are replaced by stand-ins of the same form, ids stay;
credentials and write-only values are never written; an answer that breaks the contract is recorded
with its violations as comments, and `check` reports it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from conftest import AUTH, CONTRACT, minimal
from mockserver import cli, create_app
from mockserver.contract import load_contract
from mockserver.engine import MockRequest
from mockserver.journal import SecretSet
from mockserver.proxy import create_proxy_app
from mockserver.record import RecordError, Recorder, answer_secrets
from mockserver.scenarios import Match, Respond, ScriptChecker, load_scenarios
from test_proxy import HOOK_PATH, WEBHOOK, answer, api_error_body, client_call, realistic_session

SECRET_FIELDS = sorted(answer_secrets(CONTRACT))
PASSWORD = "pw-Zq81-secret"  # the write-only value the realistic session sends


def masked(value: Any) -> Any:
    """A body with the values of secret fields replaced by a marker (null stays null)."""
    if isinstance(value, dict):
        return {k: ("<secret>" if k in SECRET_FIELDS and v is not None else masked(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def secrets_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [v for k, v in value.items() if k in SECRET_FIELDS and isinstance(v, str)] + \
            [s for v in value.values() for s in secrets_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in secrets_in(v)]
    return []


def check(directory: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(["check", "--scenarios-dir", str(directory)], out, err)
    return code, out.getvalue() + err.getvalue()


def test_the_contract_marks_the_secrets_of_an_answer():
    assert SECRET_FIELDS == ["previous_secret_key", "secret_key"]


async def test_a_recorded_session_replays_with_the_same_statuses_and_bodies(live, aiohttp_client, tmp_path):
    upstream = live(scenarios_dir=None)
    proxy = await aiohttp_client(create_proxy_app(upstream=upstream.url, record=tmp_path, seed=7))
    recorded = await realistic_session(client_call(proxy))
    await proxy.close()  # the proxy writes the last of the recording as it stops

    assert check(tmp_path) == (0, f"ok: {CONTRACT.source}: {len(CONTRACT.operations)} operation(s); "
                                  f"1 scenario(s) in {tmp_path}\n")
    replay = await aiohttp_client(create_app(scenarios_dir=tmp_path, scenario="recorded", hot_reload=False))
    replayed = await realistic_session(client_call(replay))
    assert [(step, status) for step, status, _ in replayed] == [(step, status) for step, status, _ in recorded]
    for (step, _, was), (_, _, now) in zip(recorded, replayed):
        assert masked(now) == masked(was), step

    # ids stay, secrets do not: each is replaced by one stand-in of the same form wherever it shows
    ids = {body["id"] for _, status, body in recorded if status == 201}
    assert ids == {body["id"] for _, status, body in replayed if status == 201}
    real = {s for _, _, body in recorded for s in secrets_in(body)}
    stand_ins = {s for _, _, body in replayed for s in secrets_in(body)}
    assert real and len(stand_ins) == len(real) and not real & stand_ins
    create = next(op for op in CONTRACT.operations if op.operation_id == "postWebhooks")
    assert create.responses[201].validator.is_valid(replayed[0][2])  # a stand-in has the secret's form
    created_secret = replayed[0][2]["secret_key"]
    rolled = next(body for step, _, body in replayed if step.endswith("/secret-key") and step.startswith("PATCH"))
    assert rolled["previous_secret_key"] == created_secret  # the same secret, the same stand-in

    text = (tmp_path / "recorded.yaml").read_text()
    assert PASSWORD not in text and AUTH["X-API-KEY"] not in text and "tok-Zq84-secret" not in text
    assert not any(s in text for s in real)


async def test_one_rule_per_operation_status_and_request_shape(aiohttp_server, aiohttp_client, tmp_path):
    async def handler(request: web.Request) -> web.StreamResponse:
        return answer(200, WEBHOOK)

    server = await aiohttp_server(_app(handler))
    proxy = await aiohttp_client(create_proxy_app(upstream=f"http://127.0.0.1:{server.port}", record=tmp_path))
    for path in (HOOK_PATH, HOOK_PATH, HOOK_PATH + "?x=1", "/v1/webhooks/whk_other"):
        assert (await proxy.get(path, headers=AUTH)).status == 200
    assert (await proxy.get(HOOK_PATH)).status == 200  # no credentials: another shape
    await proxy.close()
    doc = yaml.safe_load((tmp_path / "recorded.yaml").read_text())
    assert [(r["name"], r["match"]) for r in doc["rules"]] == [
        ("getWebhooksByResourceId 200 #2", {"method": "GET", "path": HOOK_PATH, "query": {"x": "1"},
                                            "headers": {"X-API-KEY": {"regex": ".+"}}}),
        ("getWebhooksByResourceId 200", {"method": "GET", "path": HOOK_PATH,
                                         "headers": {"X-API-KEY": {"regex": ".+"}}}),
        ("getWebhooksByResourceId 200 #3", {"method": "GET", "path": "/v1/webhooks/whk_other",
                                            "headers": {"X-API-KEY": {"regex": ".+"}}}),
        ("getWebhooksByResourceId 200 #4", {"method": "GET", "path": HOOK_PATH}),
    ]
    assert doc["rules"][0]["respond"]["body"]["id"] == WEBHOOK["id"]
    assert doc["rules"][0]["respond"]["body"]["secret_key"] != WEBHOOK["secret_key"]


async def test_answers_that_break_the_contract_are_recorded_with_their_violations_and_check_reports_them(
        aiohttp_server, aiohttp_client, tmp_path):
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            return answer(422, {"type": "about:blank", "status": 422, "detail": "url is required"},
                          content_type="application/problem+json")
        if request.path.endswith("unknown"):
            return answer(404, api_error_body("WEBHOOK_NOT_FOUND", "No such webhook"))
        return answer(200, {**WEBHOOK, "created_by_the_future": 1})

    server = await aiohttp_server(_app(handler))
    proxy = await aiohttp_client(create_proxy_app(upstream=f"http://127.0.0.1:{server.port}", record=tmp_path))
    await proxy.post("/v1/webhooks", json={"name": "n", "reference": "r"}, headers=AUTH)
    await proxy.get("/v1/webhooks/whk_unknown", headers=AUTH)
    await proxy.get(HOOK_PATH, headers=AUTH)
    await proxy.close()
    path = tmp_path / "recorded.yaml"
    text = path.read_text()
    assert ("# the upstream's answer breaks the contract:\n"
            "#   response -: status 422 is not a status of postWebhooks (the contract lists 201, 400, 401, 403, "
            "500); for this request the contract answers 400\n"
            "#   response Content-Type: Content-Type must be application/json for status 422, not "
            "application/problem+json\n") in text
    assert "#   response code: code must be one of \"RESOURCE_NOT_FOUND\"" in text
    assert "# left out, as the contract does not name them: created_by_the_future\n" in text
    assert "# mockserver check refuses this rule at respond.status: status 422 is not a status" in text
    code, said = check(tmp_path)
    assert code == 2
    lines = said.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mockserver: error: {path}:")  # the first broken rule, by line
    doc = yaml.safe_load(text)
    assert [r["respond"]["status"] for r in doc["rules"]] == [200, 422, 404]
    assert "created_by_the_future" not in doc["rules"][0]["respond"]["body"]

    # without the rules that break it, the recording loads and replays
    doc["rules"] = doc["rules"][:1]
    path.write_text(yaml.safe_dump(doc))
    assert check(tmp_path)[0] == 0


def test_a_recording_is_never_written_over_or_to_a_bad_place(tmp_path):
    (tmp_path / "recorded.yaml").write_text("rules: []\n")
    with pytest.raises(RecordError, match="already exists"):
        Recorder(CONTRACT, tmp_path)
    with pytest.raises(RecordError, match="is not a scenario name"):
        Recorder(CONTRACT, tmp_path, "../escape")
    (tmp_path / "file").write_text("")
    with pytest.raises(RecordError, match="not a directory"):
        Recorder(CONTRACT, tmp_path / "file")
    with pytest.raises(ValueError, match="already exists"):
        create_proxy_app(upstream="http://127.0.0.1:9", record=tmp_path)


async def test_an_empty_recording_is_written_too_and_loads(tmp_path):
    recorder = Recorder(CONTRACT, tmp_path / "new" / "dir", "nothing-yet")
    await recorder.flush()
    assert load_scenarios(tmp_path / "new" / "dir", CONTRACT)["nothing-yet"].rules == ()


def test_a_secret_is_what_the_contract_marks(tmp_path):
    overlay = tmp_path / "mark.yaml"
    overlay.write_text(
        "overlay: 1.0.0\ninfo: {title: marks, version: 1.0.0}\nactions:\n"
        "- target: $.components.schemas.Webhook.properties.username\n  update: {x-mock-secret: true}\n"
        "- target: $.components.schemas.Webhook.properties.api_header_field\n  update: {format: password}\n")
    contract = load_contract(None, ["solvimon", "solvimon-webhooks", overlay])
    assert sorted(answer_secrets(contract)) == ["api_header_field", "previous_secret_key", "secret_key", "username"]
    recorder = Recorder(contract, tmp_path / "out", secrets=SecretSet())
    op = next(o for o in contract.operations if o.operation_id == "getWebhooksByResourceId")
    body = {**WEBHOOK, "username": "alice-the-user", "api_header_field": "X-Hook-Key"}
    req = MockRequest("GET", HOOK_PATH, {}, {"x-api-key": "k"})
    assert recorder.add(op, req, 200, True, body)
    written = recorder.render()
    assert "alice-the-user" not in written and "X-Hook-Key" not in written and WEBHOOK["id"] in written
    rule = yaml.safe_load(written)["rules"][0]
    assert len(rule["respond"]["body"]["username"]) == len("alice-the-user")
    assert ScriptChecker(contract).problem(Respond(200, rule["respond"]["body"]),
                                           Match(method="GET", path=HOOK_PATH)) is None


def test_write_only_fields_and_known_secrets_never_reach_a_match(tmp_path):
    secrets = SecretSet()
    secrets.add("ak-known-credential")
    recorder = Recorder(CONTRACT, tmp_path, secrets=secrets)
    op = next(o for o in CONTRACT.operations if o.operation_id == "postWebhooks")
    sent = {**minimal(name="ak-known-credential"), "password": "pw-never", "api_key": "ak-never",
            "included_actions": ["INVOICE.PAID"], "extra": {"regex": "would be a pattern"}}
    req = MockRequest("POST", "/v1/webhooks", {"q": "ak-known-credential"},
                      {"authorization": "Bearer tok", "content-type": "application/json"}, json.dumps(sent).encode())
    assert recorder.add(op, req, 201, True, {**WEBHOOK, "url": minimal()["url"]})
    rule = yaml.safe_load(recorder.render())["rules"][0]
    assert rule["match"] == {
        "method": "POST", "path": "/v1/webhooks", "query": {"q": "[redacted]"},
        "body": {"url": minimal()["url"], "name": "[redacted]", "reference": minimal()["reference"],
                 "included_actions": ["INVOICE.PAID"]},
        "headers": {"Authorization": {"regex": ".+"}},
    }
    text = recorder.render()
    assert "pw-never" not in text and "ak-never" not in text and "ak-known-credential" not in text


def _app(handler: Any) -> web.Application:
    app = web.Application()
    app.router.add_route("*", r"/{tail:[\s\S]*}", handler)
    return app
