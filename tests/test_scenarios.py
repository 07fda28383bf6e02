"""Scenario files: loading and checking, every key, selection, counters, reload."""

from __future__ import annotations

import asyncio
import logging
import os
import textwrap
import time
from pathlib import Path

import pytest

from conftest import CONTRACT, AUTH, DATA, SPEC, api_error, created, minimal
from mockserver.cli import run
from mockserver.contract import load_contract
from mockserver.errors import LoadErrors
from mockserver.scenarios import ScenarioBook, Subject, fingerprint, load_scenarios, unsafe_pattern

BAD = DATA / "bad_scenarios"
BAD_FILES = sorted(BAD.glob("*.yaml"))


def write(directory: Path, **files: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.yaml").write_text(textwrap.dedent(text))
    return directory


@pytest.fixture
def scripted(make_client, tmp_path):
    """A server whose scenario directory holds the given files."""
    async def make(scenario: str | None = None, **files: str):
        return await make_client(scenarios_dir=write(tmp_path / "scenarios", **files), scenario=scenario)
    return make


# ------------------------------------------------------------------ loading


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_broken_scenario_file_gives_its_expected_line(tmp_path, path):
    directory = tmp_path / "s"
    directory.mkdir()
    (directory / path.name).write_bytes(path.read_bytes())
    with pytest.raises(LoadErrors) as caught:
        load_scenarios(directory, CONTRACT)
    [error] = caught.value.errors
    expected = path.with_suffix(".expected").read_text().strip()
    assert str(error) == f"{directory}/{expected}"


def test_check_reports_every_broken_scenario_file_at_once():
    import io
    err = io.StringIO()
    code = run(["check", "--scenarios-dir", str(BAD)], io.StringIO(), err)
    assert code == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == len(BAD_FILES)
    assert all(line.startswith(f"mockserver: error: {BAD}/") for line in lines)
    assert "Traceback" not in err.getvalue()


def test_serve_refuses_a_broken_scenario_with_one_line(tmp_path):
    import io
    directory = write(tmp_path / "s", broken="rules:\n  - respond: {status: 418}\n")
    out, err = io.StringIO(), io.StringIO()
    code = run(["serve", "--port", "0", "--scenarios-dir", str(directory)], out, err)
    assert code == 2
    assert err.getvalue().strip() == (f"mockserver: error: {directory}/broken.yaml:2: at rules.0.respond.status: "
                                      "status 418 is not a status of the contract here; use one of 200, 201, 400, 401, 403, 404, 409, 500")


def test_name_defaults_to_the_file_stem_and_duplicates_are_refused(tmp_path):
    contract = CONTRACT
    directory = write(tmp_path / "s", first="rules: []\n", second="name: first\nrules: []\n")
    with pytest.raises(LoadErrors, match="already used"):
        load_scenarios(directory, contract)
    directory = write(tmp_path / "t", plain="description: d\nrules: []\n")
    assert list(load_scenarios(directory, contract)) == ["plain"]


def test_shipped_library_loads():
    names = set(load_scenarios(Path(__file__).parent.parent / "scenarios", CONTRACT))
    assert {"bad-request", "unauthorised", "missing-permission", "internal-error", "flaky", "slow",
            "revoked-key", "rejected-url", "connection-reset", "malformed-response"} <= names


@pytest.mark.parametrize("pattern, safe", [
    ("revoked", True), ("(?i)bearer +revoked", True), ("[a-z]+@[a-z]+\\.com", True), ("(ab)?c", True),
    # RE2 runs these in linear time, so the nested quantifiers that stall Python's re are fine.
    ("(a+)+", True), ("(a*)*b", True), ("(?:x+y?)*", True), ("((a|b)+)+", True), ("(a|a)*b", True),
    (".*.*.*.*=x", True), ("a" * 1000, True),
    ("(", False), ("(a)\\1", False), ("(?=a)", False), ("(?<=a)b", False), ("(?>(a+)+b)", False), ("a" * 1001, False),
])
def test_regexes_are_refused_only_when_re2_cannot_compile_them_or_they_are_too_long(pattern, safe):
    assert (unsafe_pattern(pattern) is None) == safe


# ------------------------------------------------------------------ matching and responding

REVOKED = """
name: revoked-key
description: Requests made with the key "revoked" are refused.
rules:
  - match:
      headers: {X-API-KEY: revoked}
    respond:
      status: 401
      body: {message: "API key has been revoked"}
  - match:
      body: {url: "https://down.example.com/hook"}
    respond: {status: 500}
  - times: 2
    respond: {status: 500}
  - respond:
      status: 201
      body: {active: false}
      headers: {X-Extra: "1"}
      delay_ms: 250
"""


async def test_the_issue_example_scenario_runs_rule_by_rule(scripted):
    client = await scripted(scenario="revoked-key", revoked=REVOKED)
    body = await api_error(await client.post("/v1/webhooks", json=minimal(), headers={"x-api-key": "revoked"}),
                           401, "UNAUTHORISED")
    assert body["message"] == "API key has been revoked"
    await api_error(await client.post("/v1/webhooks", json=minimal(url="https://down.example.com/hook"),
                                      headers=AUTH), 500, "INTERNAL_ERROR")
    for _ in range(2):
        await api_error(await client.post("/v1/webhooks", json=minimal(), headers=AUTH), 500, "INTERNAL_ERROR")
    started = time.monotonic()
    resp = await client.post("/v1/webhooks", json=minimal(), headers=AUTH)
    assert time.monotonic() - started >= 0.25
    body = await created(resp)
    assert body["active"] is False
    assert resp.headers["X-Extra"] == "1"


async def test_header_names_match_case_insensitively_and_values_by_regex(scripted):
    client = await scripted(scenario="s", s="""
        rules:
          - match: {headers: {x-platform-ID: {regex: "plat_[0-9]+"}}}
            respond: {status: 403}
        """)
    await api_error(await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "X-Platform-Id": "plat_42"}),
                    403, "USER_NOT_ALLOWED")
    await created(await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "X-Platform-Id": "plat_x"}))


async def test_body_matches_as_a_nested_subset(scripted):
    client = await scripted(scenario="s", s="""
        rules:
          - match:
              body:
                penalty_box_data: {cause: {regex: "time.*"}}
                included_actions: [INVOICE.CREATED]
            respond: {status: 400}
        """)
    hit = minimal(penalty_box_data={"cause": "timeout", "retry_count": 1}, included_actions=["INVOICE.CREATED"])
    await api_error(await client.post("/v1/webhooks", json=hit, headers=AUTH), 400, "BAD_REQUEST")
    miss = minimal(penalty_box_data={"cause": "refused"}, included_actions=["INVOICE.CREATED"])
    await created(await client.post("/v1/webhooks", json=miss, headers=AUTH))
    miss = minimal(penalty_box_data={"cause": "timeout"}, included_actions=["INVOICE.CREATED", "INVOICE.PAID"])
    await created(await client.post("/v1/webhooks", json=miss, headers=AUTH))


async def test_query_and_version_can_be_matched(scripted):
    client = await scripted(scenario="s", s="""
        rules:
          - match: {query: {fail: "yes"}}
            respond: {status: 500}
          - match: {version: "9"}
            respond: {status: 401}
        """)
    await api_error(await client.post("/v1/webhooks?fail=yes", json=minimal(), headers=AUTH), 500, "INTERNAL_ERROR")
    await created(await client.post("/v1/webhooks?fail=no", json=minimal(), headers=AUTH))
    await api_error(await client.post("/v9/webhooks", json=minimal(), headers=AUTH), 401, "UNAUTHORISED")
    await api_error(await client.post("/v8/webhooks", json=minimal(), headers=AUTH), 400, "UNSUPPORTED_VERSION")


async def test_a_scripted_error_wins_over_every_check(scripted):
    client = await scripted(scenario="s", s="rules:\n  - respond: {status: 500}\n")
    for path, kwargs in [("/v1/webhooks", {"json": minimal()}),
                         ("/v2/webhooks", {"json": minimal(), "headers": AUTH}),
                         ("/v1/webhooks", {"data": b"{nope", "headers": {**AUTH, "Content-Type": "application/json"}}),
                         ("/v1/webhooks", {"json": {"url": 1}, "headers": AUTH})]:
        await api_error(await client.post(path, **kwargs), 500, "INTERNAL_ERROR")


async def test_routing_still_comes_before_the_scenario(scripted):
    client = await scripted(scenario="s", s="rules:\n  - respond: {status: 500}\n")
    await api_error(await client.post("/nope", json=minimal(), headers=AUTH), 404, "RESOURCE_NOT_FOUND")
    await api_error(await client.delete("/v1/webhooks", headers=AUTH), 405, "INVALID_OPERATION")


async def test_a_body_that_is_not_json_matches_no_body_rule(scripted):
    client = await scripted(scenario="s", s="""
        rules:
          - match: {body: {name: x}}
            respond: {status: 500}
        """)
    await api_error(await client.post("/v1/webhooks", data=b"{", headers={**AUTH, "Content-Type": "application/json"}),
                    400, "UNABLE_TO_PROCESS_INSTRUCTIONS")


async def test_a_scripted_201_goes_only_to_a_valid_request(scripted):
    client = await scripted(scenario="s", s="""
        rules:
          - respond: {status: 201, body: {disabled_reason: "scripted"}}
        """)
    await api_error(await client.post("/v1/webhooks", json={"url": "x"}, headers=AUTH), 400, "MISSING_FIELD")
    await api_error(await client.post("/v1/webhooks", json=minimal()), 401, "UNAUTHORISED")
    body = await created(await client.post("/v1/webhooks", json=minimal(name="echoed"), headers=AUTH))
    assert body["disabled_reason"] == "scripted" and body["name"] == "echoed"


@pytest.mark.parametrize("status, code, type_", [
    (400, "BAD_REQUEST", "INVALID_REQUEST"), (401, "UNAUTHORISED", "INVALID_REQUEST"),
    (403, "USER_NOT_ALLOWED", "INVALID_REQUEST"), (500, "INTERNAL_ERROR", "API_ERROR"),
])
async def test_default_error_bodies_per_status(scripted, status, code, type_):
    client = await scripted(scenario="s", s=f"rules:\n  - respond: {{status: {status}}}\n")
    body = await api_error(await client.post("/v1/webhooks", json=minimal(), headers=AUTH), status, code)
    assert body["type"] == type_
    if status == 403:
        assert "WEBHOOK.CREATE" in body["message"]


async def test_scripted_error_body_is_merged_over_the_default(scripted):
    client = await scripted(scenario="s", s="""
        rules:
          - respond: {status: 400, body: {code: INVALID_FIELD, field: url, message: "url is blocked"}}
        """)
    body = await api_error(await client.post("/v1/webhooks", json=minimal(), headers=AUTH), 400, "INVALID_FIELD", "url")
    assert body == {"type": "INVALID_REQUEST", "code": "INVALID_FIELD", "field": "url", "message": "url is blocked"}


async def test_faults(scripted):
    client = await scripted(s="""
        rules:
          - match: {headers: {x-fault: reset}}
            respond: {fault: reset}
          - match: {headers: {x-fault: empty}}
            respond: {status: 500, fault: empty}
          - match: {headers: {x-fault: malformed}}
            respond: {status: 500, fault: malformed}
        """)
    import aiohttp
    import json as jsonlib
    with pytest.raises(aiohttp.ClientError):
        await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "X-Mock-Scenario": "s", "x-fault": "reset"})
    resp = await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "X-Mock-Scenario": "s", "x-fault": "empty"})
    assert resp.status == 500 and await resp.read() == b""
    assert resp.headers["X-REQUEST-ID"].startswith("reqr_")
    resp = await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "X-Mock-Scenario": "s", "x-fault": "malformed"})
    assert resp.status == 500
    with pytest.raises(ValueError):
        jsonlib.loads(await resp.read())
    await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))


async def test_times_counts_only_answers_of_that_rule(scripted):
    client = await scripted(scenario="s", s="""
        rules:
          - match: {headers: {x-api-key: a}}
            times: 1
            respond: {status: 401}
          - times: 2
            respond: {status: 500}
        """)
    statuses = []
    for key in ["b", "a", "a", "b", "b"]:
        resp = await client.post("/v1/webhooks", json=minimal(), headers={"X-API-KEY": key})
        statuses.append(resp.status)
    assert statuses == [500, 401, 500, 201, 201]


def subject(method: str, path: str, **headers: str) -> Subject:
    return Subject(method, path, {"version": "1"}, headers, {}, lambda: (True, minimal()))


async def test_a_rule_applies_only_where_the_operation_has_its_status_and_only_then_is_counted(tmp_path):
    contract = CONTRACT
    directory = write(tmp_path / "s", s="""
        rules:
          - match: {headers: {x-fault: reset}}
            respond: {fault: reset}
          - times: 1
            respond: {status: 404}
          - respond: {status: 500}
        """)
    book = ScenarioBook(load_scenarios(directory, contract), default="s")
    create, get = (next(op for op in contract.operations if op.operation_id == name)
                   for name in ("postWebhooks", "getWebhooksByResourceId"))
    choice = await book.choose(None, [])
    assert choice is not None

    async def label(op, path: str, **headers: str) -> str | None:
        rule = await book.answer(choice, subject(op.method, path, **headers), op.responses)
        return rule.label if rule else None

    # postWebhooks lists no 404: the times rule is skipped, not used up, and the next rule answers.
    assert [await label(create, "/v1/webhooks") for _ in range(3)] == ["rules[2]"] * 3
    assert await label(get, "/v1/webhooks/x") == "rules[1]"
    assert await label(get, "/v1/webhooks/x") == "rules[2]"
    # A reset needs no status, so it applies everywhere.
    assert (await book.answer(choice, subject("POST", "/v1/webhooks", **{"x-fault": "reset"}), ())).label == "rules[0]"
    assert await book.answer(choice, subject("POST", "/v1/webhooks"), ()) is None
    assert await book.counters() == {("s", None): {0: 1, 1: 1, 2: 4}}


async def test_a_times_rule_is_not_used_up_by_an_operation_without_its_status(scripted):
    client = await scripted(scenario="s", s="""
        rules:
          - times: 1
            respond: {status: 404}
        """)
    hook = await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))
    await api_error(await client.get(f"/v1/webhooks/{hook['id']}", headers=AUTH), 404, "RESOURCE_NOT_FOUND")
    resp = await client.get(f"/v1/webhooks/{hook['id']}", headers=AUTH)
    assert resp.status == 200, await resp.text()


async def test_unmatched_request_gets_normal_behaviour(scripted):
    client = await scripted(scenario="s", s="rules:\n  - match: {headers: {x-api-key: z}}\n    respond: {status: 500}\n")
    await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))
    await api_error(await client.post("/v1/webhooks", json=minimal()), 401, "UNAUTHORISED")


# ------------------------------------------------------------------ choosing


async def test_x_mock_scenario_header_picks_a_scenario_for_one_request(client):
    await api_error(await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "X-Mock-Scenario": "internal-error"}),
                    500, "INTERNAL_ERROR")
    await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))


async def test_unknown_scenario_in_header_is_a_400_not_a_fall_through(client):
    body = await api_error(await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "X-Mock-Scenario": "nope"}),
                           400, "BAD_REQUEST")
    assert "nope" in body["message"] and "internal-error" in body["message"]


@pytest.mark.parametrize("status, code", [(400, "BAD_REQUEST"), (401, "UNAUTHORISED"), (403, "USER_NOT_ALLOWED"),
                                          (500, "INTERNAL_ERROR")])
async def test_prefer_code_answers_the_contracts_default_for_that_status(client, status, code):
    await api_error(await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "Prefer": f"code={status}"}),
                    status, code)


async def test_prefer_code_201_still_needs_a_valid_request(client):
    await created(await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "Prefer": "code=201"}))
    await api_error(await client.post("/v1/webhooks", json={}, headers={**AUTH, "Prefer": "code=201"}), 400, "MISSING_FIELD")


async def test_prefer_code_is_granted_only_with_credentials_but_a_scenario_error_answers_anyway(client):
    body = await api_error(await client.post("/v1/webhooks", json=minimal(), headers={"Prefer": "code=403"}),
                           401, "UNAUTHORISED")
    assert "403" not in body["message"]
    await api_error(await client.post("/v1/webhooks", json=minimal(), headers={"Prefer": "code=500"}),
                    401, "UNAUTHORISED")
    await api_error(await client.post("/v1/webhooks", json=minimal(), headers={"X-Mock-Scenario": "internal-error"}),
                    500, "INTERNAL_ERROR")


async def test_prefer_code_outside_the_contract_is_a_400(client):
    body = await api_error(await client.post("/v1/webhooks", json=minimal(), headers={**AUTH, "Prefer": "code=418"}),
                           400, "BAD_REQUEST")
    assert "418" in body["message"]


async def test_server_wide_scenario_from_start_up_and_admin(make_client):
    client = await make_client(scenario="unauthorised")
    await api_error(await client.post("/v1/webhooks", json=minimal(), headers=AUTH), 401, "UNAUTHORISED")
    resp = await client.put("/__mock/scenario", json={"name": None})
    assert resp.status == 200 and (await resp.json())["active"] is None
    await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))
    resp = await client.put("/__mock/scenario", json={"name": "internal-error"})
    assert (await resp.json())["active"] == "internal-error"
    await api_error(await client.post("/v1/webhooks", json=minimal(), headers=AUTH), 500, "INTERNAL_ERROR")
    state = await (await client.get("/__mock/scenario")).json()
    assert state == {"active": "internal-error", "default": "unauthorised", "bindings": []}
    await client.post("/__mock/reset")
    assert (await (await client.get("/__mock/scenario")).json())["active"] == "unauthorised"


async def test_admin_refuses_unknown_scenarios_clearly(client):
    resp = await client.put("/__mock/scenario", json={"name": "nope"})
    body = await api_error(resp, 400, "BAD_REQUEST", "name")
    assert "nope" in body["message"]
    for bad in [b"{", b"[]", b'{"nam": "x"}', b'{"name": 5}', b'{"name": "flaky", "api_key": ""}',
                b'{"name": "flaky", "api_key": "a", "token": "b"}']:
        await api_error(await client.put("/__mock/scenario", data=bad, headers={"Content-Type": "application/json"}),
                        400, "BAD_REQUEST")
    assert (await (await client.get("/__mock/scenario")).json())["active"] is None


async def test_scenarios_are_listed_with_descriptions(client):
    listing = (await (await client.get("/__mock/scenarios")).json())["scenarios"]
    by_name = {s["name"]: s for s in listing}
    assert "WEBHOOK.CREATE" in by_name["missing-permission"]["description"]
    assert by_name["flaky"]["rules"] == 1


async def test_bindings_apply_to_one_client_and_show_a_fingerprint(client):
    await client.put("/__mock/scenario", json={"name": "unauthorised", "api_key": "key-a"})
    await client.put("/__mock/scenario", json={"name": "internal-error", "token": "tok-b"})
    await api_error(await client.post("/v1/webhooks", json=minimal(), headers={"X-API-KEY": "key-a"}), 401, "UNAUTHORISED")
    await api_error(await client.post("/v1/webhooks", json=minimal(), headers={"Authorization": "Bearer tok-b"}),
                    500, "INTERNAL_ERROR")
    await created(await client.post("/v1/webhooks", json=minimal(), headers={"X-API-KEY": "key-c"}))
    text = await (await client.get("/__mock/scenario")).text()
    assert "key-a" not in text and "tok-b" not in text and "sha256:" in text
    await client.put("/__mock/scenario", json={"name": None, "api_key": "key-a"})
    await created(await client.post("/v1/webhooks", json=minimal(), headers={"X-API-KEY": "key-a"}))


async def test_precedence_header_then_binding_then_server_wide(client):
    await client.put("/__mock/scenario", json={"name": "bad-request"})
    await client.put("/__mock/scenario", json={"name": "unauthorised", "api_key": "bound"})
    await api_error(await client.post("/v1/webhooks", json=minimal(), headers={"X-API-KEY": "other"}), 400, "BAD_REQUEST")
    await api_error(await client.post("/v1/webhooks", json=minimal(), headers={"X-API-KEY": "bound"}), 401, "UNAUTHORISED")
    await api_error(await client.post("/v1/webhooks", json=minimal(),
                                      headers={"X-API-KEY": "bound", "X-Mock-Scenario": "missing-permission"}),
                    403, "USER_NOT_ALLOWED")


async def test_counters_live_per_client_binding(client):
    await client.put("/__mock/scenario", json={"name": "flaky", "api_key": "a"})
    await client.put("/__mock/scenario", json={"name": "flaky", "api_key": "b"})
    seen = {"a": [], "b": []}
    for key in ["a", "a", "b", "a", "b", "b"]:
        resp = await client.post("/v1/webhooks", json=minimal(), headers={"X-API-KEY": key})
        seen[key].append(resp.status)
    assert seen == {"a": [500, 500, 201], "b": [500, 500, 201]}


async def test_reset_clears_counters_bindings_and_journal(client):
    await client.put("/__mock/scenario", json={"name": "flaky"})
    await client.put("/__mock/scenario", json={"name": "unauthorised", "api_key": "x"})
    await client.post("/v1/webhooks", json=minimal(), headers=AUTH)
    resp = await client.post("/__mock/reset")
    assert resp.status == 200
    assert (await (await client.get("/__mock/requests")).json()) == {"requests": [], "dropped": 0}
    assert (await (await client.get("/__mock/scenario")).json())["bindings"] == []
    await created(await client.post("/v1/webhooks", json=minimal(), headers={"X-API-KEY": "x"}))


async def test_two_bound_clients_hammering_concurrently_see_only_their_own_answers(client):
    await client.put("/__mock/scenario", json={"name": "unauthorised", "api_key": "alice"})
    await client.put("/__mock/scenario", json={"name": "missing-permission", "token": "bob"})

    async def hammer(headers, expected):
        for _ in range(100):
            resp = await client.post("/v1/webhooks", json=minimal(), headers=headers)
            assert resp.status == expected
            await resp.read()

    await asyncio.gather(*(hammer({"X-API-KEY": "alice"}, 401) for _ in range(4)),
                         *(hammer({"Authorization": "Bearer bob"}, 403) for _ in range(4)),
                         *(hammer({"X-API-KEY": "carol"}, 201) for _ in range(2)))


# ------------------------------------------------------------------ hot reload


def touch(path: Path, text: str | None = None) -> None:
    """Write (if given) and move the mtime forward, so the change is seen even on coarse clocks."""
    if text is not None:
        path.write_text(textwrap.dedent(text))
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))


def reloading_book(directory: Path, **options) -> ScenarioBook:
    contract = CONTRACT
    return ScenarioBook(load_scenarios(directory, contract), directory=directory, contract=contract, **options)


async def test_changed_scenario_file_is_reloaded_and_a_broken_edit_keeps_the_last_good(tmp_path, caplog):
    directory = write(tmp_path / "s", live="rules:\n  - respond: {status: 500}\n")
    book = reloading_book(directory)
    assert book.scenarios["live"].rules[0].respond.status == 500
    touch(directory / "live.yaml", "rules:\n  - respond: {status: 401}\n")
    assert await book.refresh() == ["live"]
    assert book.scenarios["live"].rules[0].respond.status == 401
    with caplog.at_level(logging.WARNING, logger="mockserver.scenarios"):
        touch(directory / "live.yaml", "rules:\n  - respond: {status: 999}\n")
        assert await book.refresh() == []
    assert book.scenarios["live"].rules[0].respond.status == 401
    assert "live.yaml:2" in caplog.text and "last good" in caplog.text
    assert await book.refresh() == []


async def test_refresh_reads_and_checks_files_off_the_event_loop(tmp_path, monkeypatch):
    import threading
    from mockserver import scenarios
    directory = write(tmp_path / "s", live="rules:\n  - respond: {status: 500}\n")
    book = reloading_book(directory)
    seen = []

    def spy(name):
        real = getattr(scenarios, name)

        def record(*args, **kwargs):
            seen.append((name, threading.current_thread() is threading.main_thread()))
            return real(*args, **kwargs)
        monkeypatch.setattr(scenarios, name, record)

    spy("scenario_files")
    spy("load_scenario_file")
    touch(directory / "live.yaml", "rules:\n  - respond: {status: 401}\n")
    assert await book.refresh() == ["live"]
    assert seen == [("scenario_files", False), ("load_scenario_file", False)]


async def test_a_deleted_scenario_file_drops_the_scenario_its_counters_and_what_chose_it(tmp_path, caplog):
    directory = write(tmp_path / "s", gone="rules:\n  - times: 5\n    respond: {status: 500}\n",
                      kept="rules:\n  - times: 5\n    respond: {status: 401}\n")
    book = reloading_book(directory, default="gone")
    await book.select("gone", "api_key", "key-a")
    await book.select("kept", "api_key", "key-b")
    for key in ["key-a", "key-b", "key-c"]:
        choice = await book.choose(None, [("api_key", key)])
        assert await book.answer(choice, subject("POST", "/v1/webhooks")) is not None
    (directory / "gone.yaml").unlink()
    with caplog.at_level(logging.WARNING, logger="mockserver.scenarios"):
        assert await book.refresh() == []
    assert sorted(book.scenarios) == ["kept"]
    assert await book.state() == {"active": None, "default": None, "bindings": [
        {"name": "kept", "api_key": fingerprint("key-b")}]}
    assert [k[0] for k in await book.counters()] == ["kept"]
    assert await book.choose(None, [("api_key", "key-a")]) is None
    assert "gone" in caplog.text and "server-wide" in caplog.text and "bound" in caplog.text
    assert "key-a" not in caplog.text
    await book.reset()
    assert (await book.state())["active"] is None


async def test_a_renamed_scenario_file_loads_under_its_new_source(tmp_path):
    directory = write(tmp_path / "s", old="name: same\nrules:\n  - respond: {status: 500}\n",
                      stem="rules:\n  - respond: {status: 401}\n")
    book = reloading_book(directory, default="same")
    (directory / "old.yaml").rename(directory / "new.yaml")
    (directory / "stem.yaml").rename(directory / "renamed.yaml")
    assert sorted(await book.refresh()) == ["renamed", "same"]
    assert sorted(book.scenarios) == ["renamed", "same"]
    assert book.scenarios["same"].source == str(directory / "new.yaml")
    # The name came back in the same look, so choosing it by that name still works.
    assert (await book.state())["active"] == "same"


async def test_a_name_freed_by_an_edit_or_a_deletion_lets_a_waiting_file_in(tmp_path, caplog):
    directory = write(tmp_path / "s", first="name: shared\nrules:\n  - respond: {status: 500}\n")
    book = reloading_book(directory)
    write(directory, second="name: shared\nrules:\n  - respond: {status: 401}\n")
    with caplog.at_level(logging.WARNING, logger="mockserver.scenarios"):
        assert await book.refresh() == []
    assert "already used" in caplog.text
    touch(directory / "first.yaml", "name: other\nrules:\n  - respond: {status: 500}\n")
    assert sorted(await book.refresh()) == ["other", "shared"]
    assert book.scenarios["shared"].source == str(directory / "second.yaml")
    assert book.scenarios["other"].source == str(directory / "first.yaml")
    write(directory, third="name: other\nrules:\n  - respond: {status: 403}\n")
    assert await book.refresh() == []
    (directory / "first.yaml").unlink()
    assert await book.refresh() == ["other"]
    assert book.scenarios["other"].rules[0].respond.status == 403


async def test_hot_reload_reaches_a_running_server(make_client, tmp_path, monkeypatch):
    from mockserver import app as app_module
    monkeypatch.setattr(app_module, "RELOAD_INTERVAL_S", 0.05)
    directory = write(tmp_path / "s", live="rules:\n  - respond: {status: 500}\n")
    client = await make_client(scenarios_dir=directory, scenario="live", hot_reload=True)
    await api_error(await client.post("/v1/webhooks", json=minimal(), headers=AUTH), 500, "INTERNAL_ERROR")
    path = directory / "live.yaml"
    path.write_text("rules:\n  - respond: {status: 403}\n")
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))
    for _ in range(100):
        await asyncio.sleep(0.05)
        resp = await client.post("/v1/webhooks", json=minimal(), headers=AUTH)
        if resp.status == 403:
            break
    await api_error(resp, 403, "USER_NOT_ALLOWED")


async def test_a_scripted_success_whose_operation_fails_is_not_used_up(make_client, tmp_path):
    directory = tmp_path / "s"
    directory.mkdir()
    (directory / "once.yaml").write_text(
        "rules:\n  - match: {method: GET}\n    times: 1\n    respond: {status: 200, headers: {X-Scripted: 'yes'}}\n")
    client = await make_client(scenarios_dir=directory, scenario="once")
    hook = await (await client.post("/v1/webhooks", json=minimal(), headers=AUTH)).json()
    assert (await client.get("/v1/webhooks/whk_missing", headers=AUTH)).status == 404
    first = await client.get(f"/v1/webhooks/{hook['id']}", headers=AUTH)
    assert first.status == 200 and first.headers.get("X-Scripted") == "yes"
    second = await client.get(f"/v1/webhooks/{hook['id']}", headers=AUTH)
    assert second.status == 200 and "X-Scripted" not in second.headers


def test_a_rule_for_a_literal_path_is_held_to_the_operation_the_router_picks(tmp_path):
    from mockserver.scenarios import load_scenarios

    (tmp_path / "actions.yaml").write_text(
        "rules:\n  - match: {method: GET, path: /v1/webhooks/actions}\n"
        "    respond:\n      status: 200\n      body: {data: []}\n")
    scenarios = load_scenarios(tmp_path, CONTRACT)
    assert "actions" in scenarios  # not refused as a body of getWebhooksByResourceId


# ------------------------------------------------------------------ several directories, run-time scenarios


def test_several_directories_load_in_order_and_the_same_one_twice_is_read_once(tmp_path):
    first = write(tmp_path / "a", one="rules: []\n")
    second = write(tmp_path / "b", two="rules: []\n")
    assert sorted(load_scenarios([first, second, tmp_path / "a" / ".." / "a"], CONTRACT)) == ["one", "two"]
    with pytest.raises(LoadErrors) as caught:
        load_scenarios([first, tmp_path / "gone", tmp_path / "gone2"], CONTRACT)
    assert [str(e) for e in caught.value.errors] == [f"{tmp_path}/gone: scenarios directory not found",
                                                     f"{tmp_path}/gone2: scenarios directory not found"]
    write(second, clash="name: one\nrules: []\n")
    with pytest.raises(LoadErrors) as caught:
        load_scenarios([first, second], CONTRACT)
    assert [str(e) for e in caught.value.errors] == [
        f"{second}/clash.yaml:1: scenario name 'one' is already used by {first}/one.yaml"]


async def test_refresh_follows_every_directory_and_keeps_one_that_cannot_be_listed(tmp_path):
    first = write(tmp_path / "a", one="rules:\n  - respond: {status: 500}\n")
    second = write(tmp_path / "b", two="rules:\n  - respond: {status: 500}\n")
    book = ScenarioBook(load_scenarios([first, second], CONTRACT), directory=[first, second], contract=CONTRACT)
    touch(second / "two.yaml", "rules:\n  - respond: {status: 401}\n")
    write(first, new="rules:\n  - respond: {status: 403}\n")
    assert sorted(await book.refresh()) == ["new", "two"]
    assert book.scenarios["two"].rules[0].respond.status == 401
    second.rename(tmp_path / "moved")  # cannot be listed: its scenarios stay until it is back
    assert await book.refresh() == []
    assert sorted(book.scenarios) == ["new", "one", "two"]


async def test_a_file_whose_name_a_run_time_scenario_holds_waits_until_it_is_gone(tmp_path, caplog):
    from mockserver.scenarios import RUNTIME, NameTaken, ScriptChecker, load_scenario_text

    directory = write(tmp_path / "s", kept="rules:\n  - respond: {status: 500}\n")
    book = reloading_book(directory)

    def runtime(name: str, status: int):
        return load_scenario_text(f"rules:\n  - respond: {{status: {status}}}\n", "body", ScriptChecker(CONTRACT),
                                  name=name, origin=RUNTIME, source="test")

    with pytest.raises(NameTaken, match="kept.yaml"):
        await book.put(runtime("kept", 401))
    assert await book.put(runtime("live", 401)) is False
    write(directory, live="rules:\n  - respond: {status: 403}\n")
    with caplog.at_level(logging.WARNING, logger="mockserver.scenarios"):
        assert await book.refresh() == []
    assert "already used by test" in caplog.text
    assert book.scenarios["live"].origin == RUNTIME
    await book.reset()  # removes the run-time one; the next look lets the file in
    assert await book.refresh() == ["live"]
    assert (book.scenarios["live"].origin, book.scenarios["live"].rules[0].respond.status) == ("file", 403)
    with pytest.raises(NameTaken):
        await book.remove("live")


async def test_answered_counts_every_client_and_survives_a_binding_change(tmp_path):
    directory = write(tmp_path / "s", s="rules:\n  - times: 1\n    respond: {status: 401}\n  - respond: {status: 500}\n")
    book = reloading_book(directory)
    await book.select("s", "api_key", "a")
    await book.select("s")
    for key in ["a", "a", "b"]:
        assert await book.answer(await book.choose(None, [("api_key", key)]), subject("POST", "/v1/webhooks")) is not None
    await book.select(None, "api_key", "a")  # unbinding starts that client's `times` again...
    assert await book.answered("s") == [2, 1]  # ...but what answered stays answered
    assert (await book.view("s"))["rules"][0] == {"name": "rules[0]", "times": 1, "answered": 2, "match": None,
                                          "respond": {"status": 401}}
    await book.reset()
    assert await book.answered("s") == [0, 0]
