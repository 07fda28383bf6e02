"""``mockserver verify`` against real HTTP servers: the bundled mock, and the same mock drifted."""

from __future__ import annotations

import io
import json
import re
import socket
import urllib.request
import xml.etree.ElementTree as ET
from typing import Any, Iterator

import pytest

from conftest import DATA
from drifted import (
    DISCONNECT,
    DROP_REQUIRED,
    EXTRA_PROPERTY,
    PROBLEM_JSON,
    RENAME_CODE,
    SERVER_ERROR,
    SLOW,
    Drift,
    DriftedProvider,
)
from mockserver.cli import run

KEY = "sk_sandbox_7Qm2VxR9tLp4"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.verify-token.c2lnbmF0dXJl"
PETSTORE = DATA / "openapi" / "petstore.yaml"
VERDICT = re.compile(r"^(?P<label>\S+ .+?)\s{2,}.*\s(?P<verdict>same|DIFFERS|skipped)$")


def verify(*argv: str) -> tuple[int, str, str]:
    """``mockserver verify ...`` through the command line's own entry point."""
    out, err = io.StringIO(), io.StringIO()
    code = run(["verify", *argv], out, err)
    return code, out.getvalue(), err.getvalue()


def verdicts(out: str) -> dict[str, str]:
    """Probe label -> verdict, from the table."""
    found = {}
    for line in out.splitlines():
        m = VERDICT.match(line)
        if m and not line.startswith("PROBE"):
            found[m.group("label").strip()] = m.group("verdict")
    return found


def details(out: str, label: str) -> list[str]:
    """The difference lines printed under one probe's row."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(label + " "))
    found = []
    for line in lines[start + 1:]:
        if not line.startswith("    - "):
            break
        found.append(line[6:])
    return found


def differing(out: str) -> set[str]:
    return {label for label, verdict in verdicts(out).items() if verdict == "DIFFERS"}


def get(url: str, key: str = KEY) -> Any:
    request = urllib.request.Request(url, headers={"X-API-KEY": key})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def journal(url: str) -> list[dict[str, Any]]:
    return get(f"{url}/__mock/requests")["requests"]


def stored_webhooks(url: str) -> list[dict[str, Any]]:
    return get(f"{url}/v1/webhooks?limit=100")["data"]


@pytest.fixture
def provider() -> Iterator[Any]:
    started: list[DriftedProvider] = []

    def start(*drifts: Drift, **settings: Any) -> DriftedProvider:
        made = DriftedProvider(*drifts, seed=3, **settings).start()
        started.append(made)
        return made

    yield start
    for made in started:
        made.stop()


# ------------------------------------------------------------------ the bundled mock as the upstream

def test_the_bundled_mock_as_upstream_agrees_on_every_probe_and_nothing_is_left_behind(live):
    server = live(scenarios_dir=None)
    code, out, err = verify("--upstream", server.url, "--api-key", KEY)
    assert code == 0, out + err
    table = verdicts(out)
    operations = {op.operation_id for op in server.mock.contract.operations}
    assert {label.split()[0] for label in table} == operations
    assert set(table.values()) == {"same"}, out
    for kind in ("valid", "no credentials", "wrong content type", "missing required field", "invalid field",
                 "unknown id"):
        assert any(label.split(" ", 1)[1].startswith(kind) for label in table), kind
    assert out.rstrip().splitlines()[-1] == f"{len(table)} probe(s): {len(table)} same, 0 differ, 0 skipped"
    assert err == ""
    # The id the create answered was used by every probe on one webhook, and the delete probe removed it.
    entries = journal(server.url)
    created = [e for e in entries if e["operation"] == "postWebhooks" and e["status"] == 201]
    assert len(created) == 1
    ids = {e["path"].split("/")[3] for e in entries
           if e["path"].count("/") >= 3 and e["path"].split("/")[3].startswith("whk_") and e["status"] == 200}
    assert len(ids) == 1, ids  # every probe that found a webhook found the one the create made
    assert any(e["operation"] == "deleteWebhooksByResourceId" and e["status"] == 200 for e in entries)
    assert stored_webhooks(server.url) == []


def test_a_bearer_token_works_as_well_and_never_shows(live, tmp_path):
    server = live(scenarios_dir=None, api_keys=[TOKEN])
    report = tmp_path / "verify.xml"
    code, out, err = verify("--upstream", server.url, "--token", TOKEN, "--junit", str(report))
    assert code == 0, out + err
    for text in (out, err, report.read_text()):
        assert TOKEN not in text


# ------------------------------------------------------------------ drifts

def test_a_422_problem_json_instead_of_the_contracts_400_is_reported_per_probe(provider):
    upstream = provider(Drift(PROBLEM_JSON, operation="postWebhooks"))
    code, out, err = verify("--upstream", upstream.url, "--api-key", KEY)
    assert code == 1, out + err
    assert differing(out) == {"postWebhooks wrong content type (text/plain)",
                              "postWebhooks missing required field (url)",
                              "postWebhooks invalid field (url: an integer)"}
    lines = details(out, "postWebhooks missing required field (url)")
    assert "status 422 vs 400 (upstream vs mock)" in lines
    assert "code (missing) vs MISSING_FIELD (upstream vs mock)" in lines
    assert any(line.startswith("upstream answered 422 (application/problem+json), which the contract does not "
                               "list for postWebhooks") for line in lines), lines
    row = next(line for line in out.splitlines() if line.startswith("postWebhooks missing required field"))
    assert "422" in row and "400 INVALID_REQUEST MISSING_FIELD url" in row and row.endswith("DIFFERS")


def test_a_required_response_property_dropped_names_the_field(provider):
    upstream = provider(Drift(DROP_REQUIRED, operation="getWebhooksByResourceId", field="secret_key"))
    code, out, _ = verify("--upstream", upstream.url, "--api-key", KEY)
    assert code == 1
    assert differing(out) == {"getWebhooksByResourceId valid"}
    assert details(out, "getWebhooksByResourceId valid") == [
        "upstream answer breaks the 200 schema at secret_key: required, but missing"]


def test_an_error_code_renamed_outside_the_enum_is_a_difference_and_breaks_the_schema(provider):
    upstream = provider(Drift(RENAME_CODE, operation="getWebhooksByResourceId", status=404, value="NOT_THERE"))
    code, out, _ = verify("--upstream", upstream.url, "--api-key", KEY)
    assert code == 1
    assert differing(out) == {"getWebhooksByResourceId unknown id"}
    lines = details(out, "getWebhooksByResourceId unknown id")
    assert lines[0] == "code NOT_THERE vs RESOURCE_NOT_FOUND (upstream vs mock)"
    assert re.fullmatch(r"upstream answer breaks the 404 schema at code: a value outside the \d+ the schema allows",
                        lines[1]), lines


def test_an_unknown_extra_response_property_is_not_a_drift(provider):
    upstream = provider(Drift(EXTRA_PROPERTY))
    code, out, err = verify("--upstream", upstream.url, "--api-key", KEY)
    assert code == 0, out + err
    assert set(verdicts(out).values()) == {"same"}
    assert any(kind == EXTRA_PROPERTY for kind, _, _ in upstream.applied)  # it really added the property


def test_a_500_is_reported_with_both_statuses(provider):
    upstream = provider(Drift(SERVER_ERROR, operation="getWebhooksActions", forward=False))
    code, out, _ = verify("--upstream", upstream.url, "--api-key", KEY)
    assert code == 1
    assert differing(out) == {"getWebhooksActions valid", "getWebhooksActions no credentials",
                              "getWebhooksActions invalid field (query limit=?)"}
    assert details(out, "getWebhooksActions valid") == ["status 500 vs 200 (upstream vs mock)"]
    assert "code INTERNAL_ERROR vs UNAUTHORISED (upstream vs mock)" in details(out, "getWebhooksActions no credentials")


def test_an_answer_after_the_timeout_is_no_answer(provider):
    upstream = provider(Drift(SLOW, operation="getWebhooksActions", status=200, times=1))
    code, out, _ = verify("--upstream", upstream.url, "--api-key", KEY, "--timeout", "1")
    assert code == 1
    assert differing(out) == {"getWebhooksActions valid"}
    assert details(out, "getWebhooksActions valid") == [
        "the upstream gave no answer within 1 s (--timeout); the mock answered 200"]
    row = next(line for line in out.splitlines() if line.startswith("getWebhooksActions valid"))
    assert re.search(r"\bno answer\s+200\s+DIFFERS$", row), row


def test_a_dropped_connection_is_reported(provider):
    upstream = provider(Drift(DISCONNECT, operation="getWebhooksByResourceId"))
    code, out, _ = verify("--upstream", upstream.url, "--api-key", KEY)
    assert code == 1
    assert differing(out) == {"getWebhooksByResourceId valid", "getWebhooksByResourceId no credentials",
                              "getWebhooksByResourceId unknown id"}
    assert details(out, "getWebhooksByResourceId valid") == [
        "the upstream dropped the connection without answering; the mock answered 200"]


# ------------------------------------------------------------------ bad input

def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_upstream_is_one_line_and_exit_2(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    code, out, err = verify("--upstream", url, "--api-key", KEY, "--junit", str(tmp_path / "v.xml"))
    assert code == 2
    assert out == ""
    assert err == f"mockserver verify: error: cannot reach the upstream at {url}: connection refused\n"
    assert "Traceback" not in err and KEY not in err
    suite = ET.parse(tmp_path / "v.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"


def test_a_host_name_that_does_not_resolve_is_unreachable():
    code, out, err = verify("--upstream", "https://no-such-host.invalid", "--api-key", KEY)
    assert code == 2 and out == ""
    assert err.startswith("mockserver verify: error: cannot reach the upstream at https://no-such-host.invalid: "
                          "the host name does not resolve") and err.count("\n") == 1, err


@pytest.mark.parametrize("argv, expected", [
    (["--upstream", "api.example.com", "--api-key", KEY], "--upstream must be an absolute http or https URL"),
    (["--upstream", "http://", "--api-key", KEY], "--upstream must be an absolute http or https URL"),
    (["--upstream", "http://127.0.0.1:99999", "--api-key", KEY], "is not a URL"),
    (["--upstream", "http://127.0.0.1:1"], "give the upstream's credentials with --api-key KEY or --token TOKEN"),
    (["--upstream", "http://127.0.0.1:1", "--api-key", KEY, "--only", "nope"], "--only nope: no such operation"),
    (["--upstream", "http://127.0.0.1:1", "--api-key", KEY, "--timeout", "0"], "--timeout must be a positive"),
])
def test_bad_input_is_one_line_and_exit_2(argv, expected):
    code, out, err = verify(*argv)
    assert code == 2
    assert out == "" and err.count("\n") == 1 and expected in err, err
    assert KEY not in err


# ------------------------------------------------------------------ plan, selection, reports, cleanup

def test_dry_run_prints_the_plan_and_calls_nothing(provider):
    upstream = provider()
    code, out, err = verify("--upstream", upstream.url, "--dry-run")
    assert code == 0, err
    assert upstream.requests == 0
    operations = {op.operation_id for op in upstream.mock.contract.operations}
    planned = {line.split()[0] for line in out.splitlines() if line.startswith("  ")}
    assert planned == operations
    assert "  postWebhooks missing required field (url)" in out
    assert re.search(r"getWebhooksByResourceId valid\s+GET /v1/webhooks/\{resourceId\}\s+resourceId = the id "
                     r"postWebhooks answered", out)
    assert out.splitlines()[0].startswith("plan: ") and "nothing is called" in out.splitlines()[0]
    assert "cleanup: whatever the run creates in webhooks upstream is deleted with deleteWebhooksByResourceId" in out
    assert upstream.requests == 0


def test_only_narrows_the_plan_and_the_create_it_needs_runs_as_setup_and_is_deleted(provider):
    upstream = provider()
    code, out, _ = verify("--upstream", upstream.url, "--api-key", KEY, "--only", "getWebhooksByResourceId",
                          "--dry-run")
    assert code == 0
    planned = [line.split()[0:2] for line in out.splitlines() if line.startswith("  ")]
    assert planned[0] == ["setup:", "postWebhooks"]
    assert {p[0] for p in planned[1:]} == {"getWebhooksByResourceId"}
    code, out, err = verify("--upstream", upstream.url, "--api-key", KEY, "--only", "getWebhooksByResourceId")
    assert code == 0, out + err
    assert set(verdicts(out)) == {"getWebhooksByResourceId valid", "getWebhooksByResourceId no credentials",
                                  "getWebhooksByResourceId unknown id"}
    assert "cleanup: deleted what the run created upstream: 1 in webhooks" in out
    assert stored_webhooks(upstream.url) == []


def test_junit_has_one_case_per_probe_and_the_failures(provider, tmp_path):
    upstream = provider(Drift(SERVER_ERROR, operation="getWebhooksActions", forward=False))
    report = tmp_path / "reports" / "verify.xml"
    code, out, _ = verify("--upstream", upstream.url, "--api-key", KEY, "--junit", str(report))
    assert code == 1
    text = report.read_text()
    assert KEY not in text
    suite = ET.fromstring(text).find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(verdicts(out)) == int(suite.get("tests", "-1"))
    failed = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("failures", "-1")) == len(failed) == 3
    assert {c.get("classname") for c in failed} == {"verify.getWebhooksActions"}
    valid = next(c for c in failed if c.get("name") == "valid")
    failure = valid.find("failure")
    assert failure is not None and failure.get("message") == "status 500 vs 200 (upstream vs mock)"
    assert "upstream: 500 API_ERROR INTERNAL_ERROR" in (failure.text or "")


def test_what_the_run_created_is_deleted_even_when_the_delete_probe_fails(provider):
    # The delete probe gets a 500 and deletes nothing; cleanup at the end still removes the webhook.
    upstream = provider(Drift(SERVER_ERROR, operation="deleteWebhooksByResourceId", forward=False,
                              on_stored=True, times=1))
    code, out, err = verify("--upstream", upstream.url, "--api-key", KEY)
    assert code == 1
    assert differing(out) == {"deleteWebhooksByResourceId valid"}
    assert "cleanup: deleted what the run created upstream: 1 in webhooks" in out
    assert stored_webhooks(upstream.url) == []
    created = [e for e in journal(upstream.url) if e["operation"] == "postWebhooks" and e["status"] == 201]
    deleted = [e for e in journal(upstream.url) if e["operation"] == "deleteWebhooksByResourceId"
               and e["status"] == 200]
    assert len(created) == len(deleted) == 1
    assert err == ""


def test_a_resource_that_cannot_be_deleted_is_named_on_stderr(provider):
    upstream = provider(Drift(DISCONNECT, operation="deleteWebhooksByResourceId", forward=False))
    code, out, err = verify("--upstream", upstream.url, "--api-key", KEY)
    assert code == 1
    left = stored_webhooks(upstream.url)
    assert len(left) == 1
    assert (f"mockserver verify: warning: could not delete webhooks {left[0]['id']} on the upstream "
            f"(deleteWebhooksByResourceId): dropped the connection without answering") in err


def test_the_key_never_appears_in_the_output_or_the_junit_file(provider, tmp_path):
    # A provider that echoes the key back in its error code: what verify prints of it is redacted.
    upstream = provider(Drift(PROBLEM_JSON), Drift(RENAME_CODE, status=401, value=f"bad key {KEY}"))
    report = tmp_path / "verify.xml"
    code, out, err = verify("--upstream", upstream.url, "--api-key", KEY, "--junit", str(report))
    assert code == 1
    assert "code bad key [redacted] vs UNAUTHORISED (upstream vs mock)" in out
    # The upstream journaled the key (redacted there too): it was really sent.
    assert any(e["headers"].get("x-api-key") for e in journal(upstream.url))
    for text in (out, err, report.read_text()):
        assert KEY not in text


def test_another_contract_is_selected_with_openapi(live):
    server = live(openapi=[PETSTORE], scenarios_dir=None)
    code, out, err = verify("--upstream", server.url, "--api-key", KEY, "--openapi", str(PETSTORE))
    assert code == 0, out + err
    assert {label.split()[0] for label in verdicts(out)} >= {"createPet", "getPet", "listPets"}
    assert set(verdicts(out).values()) == {"same"}
