"""The OpenAPI self-description, and Schemathesis run against the live server with it."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from conftest import CONTRACT
from mockserver.cli import run
from mockserver.formats import FORMAT_CHECKER
from mockserver.openapi import document


def test_document_describes_every_operation_with_its_responses_and_headers():
    doc = document(CONTRACT)
    assert doc["openapi"].startswith("3.1")
    op = doc["paths"]["/v{version}/webhooks"]["post"]
    version = next(p for p in op["parameters"] if p["name"] == "version")
    assert version["in"] == "path" and version["schema"]["enum"] == ["1"]
    assert any(p["name"] == "x-platform-id" and p["in"] == "header" for p in op["parameters"])
    assert op["security"] == [{"ApiKeyAuth_x_api_key": []}, {"BearerAuth": []}]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth_x_api_key"] == {"type": "apiKey", "in": "header", "name": "X-API-KEY"}
    assert schemes["BearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert set(op["responses"]) == {"201", "400", "401", "403", "500"}
    for response in op["responses"].values():
        assert response["headers"]["X-REQUEST-ID"]["required"] is True
        assert "application/json" in response["content"]
    assert "x-faker" not in json.dumps(doc)


def test_nullable_date_time_still_rejects_an_empty_string():
    doc = document(CONTRACT)
    schema = doc["paths"]["/v{version}/webhooks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    rolled = schema["properties"]["secret_rolled_at"]
    validator = Draft202012Validator(rolled, format_checker=FORMAT_CHECKER)
    assert validator.is_valid(None) and validator.is_valid("2024-04-12T15:22:37Z")
    assert not validator.is_valid("")
    assert {"type": "null"} in rolled["anyOf"]


def test_cli_prints_the_same_document_as_the_admin_route():
    out = io.StringIO()
    assert run(["openapi"], out, io.StringIO()) == 0
    assert json.loads(out.getvalue()) == document(CONTRACT)


async def test_admin_route_serves_the_document(client):
    resp = await client.get("/__mock/openapi.json")
    assert resp.status == 200
    assert await resp.json() == document(CONTRACT)


def _schemathesis() -> str:
    found = Path(sys.executable).parent / "schemathesis"
    return str(found) if found.exists() else shutil.which("schemathesis") or "schemathesis"


@pytest.mark.slow
def test_schemathesis_finds_no_contract_violation(live, tmp_path):
    """Positive data accepted, negative rejected, wrong credentials refused, every response
    conforming: fixed seed, bounded examples. The server accepts only the one key it is given,
    so Schemathesis's check that invalid credentials are refused applies too."""
    server = live(idle_timeout=5, api_keys=["schemathesis"])
    result = subprocess.run(
        [_schemathesis(), "run", f"{server.url}/__mock/openapi.json", "--checks", "all",
         "--max-examples", "20", "--seed", "20261129",
         # use_after_free reads DELETE /webhooks/{id}/secret-key as deleting the webhook; it
         # drops the previous signing secret, and the webhook rightly stays.
         "--exclude-checks", "use_after_free",
         "--header", "X-API-KEY: schemathesis", "--no-color", "--workers", "1",
         "--report-dir", str(tmp_path), "--generation-database", "none"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
