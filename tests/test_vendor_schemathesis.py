"""Schemathesis against each vendor document, served with only the ``solvimon`` overlay.

What holds for any Solvimon document (ApiError errors, X-REQUEST-ID, tenancy, API key or
bearer token, the statuses every operation can answer) comes from the overlay; everything
else (routes, parameters, bodies, what is stored and read back) from the document and the
conventions. Schemathesis reads the mock's own description of what it serves,
``/__mock/openapi.json``, and runs every check over it: schema-valid data is accepted,
schema-violating data is refused, missing or wrong credentials are refused (the server
accepts only the one key it is given), every answer conforms (status, headers, content
type, body), and nothing is a 5xx.

The runs are bounded so that the three documents together take about two minutes: a
fixed seed for both Schemathesis and the mock, a few examples per operation and one
worker, so that each run sends and answers the same sequence. One bound needs saying. The
coverage phase walks every boundary and every negative value of a request body, so its
cost grows with the size of the body's schema: for the event API's meter data bodies
(about 155 kB of schema each, taken by seven operations) it takes over three minutes per
operation. Operations with such a body skip that phase here and keep every other phase
(examples, fuzzing, stateful) with every check.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from conftest import DATA
from mockserver.contract.build import load_openapi
from mockserver.openapi import document

VENDOR = DATA / "vendor"
DOCUMENTS = ["configuration-api.webhooks.json", "identity-api.json", "event-api.json"]
KEY = "schemathesis"
SEED = "20261129"
MAX_EXAMPLES = "10"
# Request bodies whose schema (references expanded) is larger than this, as JSON, skip the
# coverage phase in the bounded run. The event API's largest other body is 33 kB.
LARGE_BODY_CHARS = 100_000


def _schemathesis() -> str:
    found = Path(sys.executable).parent / "schemathesis"
    return str(found) if found.exists() else shutil.which("schemathesis") or "schemathesis"


def _serve(live: Any, name: str) -> Any:
    return live(idle_timeout=5, openapi=[VENDOR / name], overlays=["solvimon"], scenarios_dir=None,
                api_keys=[KEY], seed=int(SEED))


def _described(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/__mock/openapi.json", timeout=30) as resp:
        doc = json.loads(resp.read())
    validate(doc)  # the self-description is itself a valid OpenAPI 3.1 document
    return doc


def _operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in doc["paths"].values() for op in item.values()]


def _expanded_chars(node: Any, schemas: dict[str, Any], memo: dict[str, int], stack: tuple[str, ...] = ()) -> int:
    """About how long ``node`` is as JSON with every component reference written out."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[-1]
            if name in stack:  # a recursive reference stays a reference
                return len(ref)
            if name not in memo:
                memo[name] = _expanded_chars(schemas[name], schemas, memo, (*stack, name))
            return memo[name]
        return sum(len(k) + 4 + _expanded_chars(v, schemas, memo, stack) for k, v in node.items())
    if isinstance(node, list):
        return sum(_expanded_chars(v, schemas, memo, stack) + 1 for v in node)
    return len(json.dumps(node))


def _large_bodies(doc: dict[str, Any]) -> dict[str, str]:
    """Operation id -> its request body (as JSON), for every body above LARGE_BODY_CHARS."""
    schemas = doc.get("components", {}).get("schemas", {})
    memo: dict[str, int] = {}
    return {op["operationId"]: json.dumps(op["requestBody"], sort_keys=True) for op in _operations(doc)
            if "requestBody" in op and _expanded_chars(op["requestBody"], schemas, memo) > LARGE_BODY_CHARS}


def _config(tmp_path: Path, without_coverage: list[str]) -> Path:
    lines = []
    if without_coverage:
        lines += ["[[operations]]", f"include-operation-id = {json.dumps(without_coverage)}",
                  "phases.coverage.enabled = false"]
    path = tmp_path / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _failures(result: subprocess.CompletedProcess) -> str:
    """Schemathesis's failures and summary, each line cut short: a reproduction can be a 100 kB curl line."""
    out = result.stdout
    start = out.find("= FAILURES =")
    lines = out[out.rfind("\n", 0, start) + 1 if start >= 0 else max(0, len(out) - 6000):].splitlines()
    return "\n".join(line if len(line) <= 400 else line[:400] + " ..." for line in lines) + result.stderr[-2000:]


def _run(url: str, tmp_path: Path, config: Path, *options: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_schemathesis(), "--config-file", str(config), "run", f"{url}/__mock/openapi.json",
         "--checks", "all", "--max-examples", MAX_EXAMPLES, "--seed", SEED,
         "--header", f"X-API-KEY: {KEY}", "--no-color", "--workers", "1",
         "--report-dir", str(tmp_path), "--generation-database", "none", *options],
        capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return own.union(*(_refs(v) for k, v in node.items() if k not in ("enum", "const", "default", "examples")))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


@pytest.mark.parametrize("path", [*(VENDOR / name for name in DOCUMENTS), DATA / "openapi" / "petstore.yaml"],
                         ids=lambda path: path.name)
def test_the_self_description_is_valid_compact_and_every_reference_resolves(path):
    doc = document(load_openapi([path], ["solvimon"] if path.parent == VENDOR else []))
    validate(doc)
    schemas = doc["components"].get("schemas", {})
    assert {ref for ref in _refs(doc) if ref.rsplit("/", 1)[-1] not in schemas} == set()
    assert "$defs" not in json.dumps(doc)  # `#/$defs/...` would resolve against the document's root
    if path.suffix == ".json":  # shared schemas are components, not copies: about the source's size
        assert len(json.dumps(doc)) < 1.5 * path.stat().st_size
    for op in _operations(doc):
        for param in op["parameters"]:
            if param["in"] == "path":  # the router matches a non-empty segment
                assert param["schema"].get("minLength", 0) >= 1 and param["schema"].get("default") != "", op


@pytest.mark.slow
@pytest.mark.parametrize("name", DOCUMENTS)
def test_schemathesis_finds_no_contract_violation_in_a_vendor_document(live, tmp_path, name):
    server = _serve(live, name)
    described = _described(server.url)
    config = _config(tmp_path, sorted(_large_bodies(described)))
    result = _run(server.url, tmp_path, config, timeout=600)
    assert result.returncode == 0, _failures(result)
    assert f"Tested: {len(_operations(described))}" in result.stdout, result.stdout[-3000:]
