"""Shared helpers: a real HTTP server per test (pytest-aiohttp), request builders, shape checks."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from mockserver import build_mock, create_app, load_contract  # noqa: F401

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec"
SCENARIOS = ROOT / "scenarios"
DATA = Path(__file__).resolve().parent / "data"
REQUEST_ID = re.compile(r"^reqr_[A-Za-z0-9]{20}$")

VENDOR_EXAMPLE: dict[str, Any] = {
    "url": "https://webhook.site", "name": "Invoice finalised", "reference": "invoice_finalised",
    "username": "banking_as_a_service@solvimon.com", "password": "super_secure",
    "api_header_field": "X-API-KEY", "api_key": "dfPNT2KBbdHEm05s3R1lS8PavuyDGR0eJZPwZzSh",
    "included_actions": ["INVOICE.STATUS_TO_FINAL"], "excluded_actions": ["INVOICE.PAID"],
    "active": True, "signing_protocol": "HmacSHA256", "previous_signing_protocol": "HmacSHA256",
    "secret_rolled_at": "2024-04-12T15:22:37Z", "include_previous_data": True,
    "email": "banking_client@bigbank.com",
}
MINIMAL: dict[str, Any] = {"url": "https://example.com/hook", "name": "Hook", "reference": "hook_1"}
AUTH = {"X-API-KEY": "test-key"}


def example() -> dict[str, Any]:
    return copy.deepcopy(VENDOR_EXAMPLE)


def minimal(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(MINIMAL)
    body.update(changes)
    return body


CONTRACT = build_mock(scenarios_dir=None).contract  # the bundled contract: the vendor's document + overlays
CREATE = next(op for op in CONTRACT.operations if op.method == "POST" and op.path == "/v{version}/webhooks")
ERROR_VALIDATOR = Draft202012Validator(CONTRACT.error_schema)


async def api_error(resp: Any, status: int, code: str, field: Any = ...) -> dict[str, Any]:
    """Assert an answer is the contract's ApiError with this status, code (and field)."""
    text = await resp.text()
    assert resp.status == status, text
    assert resp.headers["Content-Type"] == "application/json"
    assert REQUEST_ID.match(resp.headers["X-REQUEST-ID"]), resp.headers
    body = json.loads(text)
    errors = list(ERROR_VALIDATOR.iter_errors(body))
    assert not errors, errors
    assert body["code"] == code, body
    assert body["type"] == ("API_ERROR" if status >= 500 else "INVALID_REQUEST")
    if field is not ...:
        assert body["field"] == field, body
    return body


async def created(resp: Any) -> dict[str, Any]:
    """Assert a 201 whose body is valid against the contract's Webhook schema."""
    text = await resp.text()
    assert resp.status == 201, text
    assert resp.headers["Content-Type"] == "application/json"
    assert REQUEST_ID.match(resp.headers["X-REQUEST-ID"])
    body = json.loads(text)
    errors = list(CREATE.responses[201].validator.iter_errors(body))
    assert not errors, errors
    return body


@pytest.fixture
def make_client(aiohttp_client: Any) -> Any:
    """Start a real mock server on a free port with the given options; returns its client."""
    async def make(**options: Any) -> Any:
        options.setdefault("scenarios_dir", SCENARIOS)
        options.setdefault("hot_reload", False)
        return await aiohttp_client(create_app(**options))
    return make


@pytest.fixture
async def client(make_client: Any) -> Any:
    return await make_client()


@pytest.fixture
def live():
    """A real mock served from a thread with mockserver's own runner; stopped after the test."""
    from mockserver.server import ServerThread

    servers = []

    def start(idle_timeout: float = 15.0, **options: Any) -> ServerThread:
        options.setdefault("scenarios_dir", SCENARIOS)
        options.setdefault("hot_reload", False)
        server = ServerThread(create_app(**options), idle_timeout=idle_timeout).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def request_bodies() -> list[tuple[str, Any]]:
    """(name, operation) once per JSON request body schema of the bundled contract, the petstore
    and two vendor documents: the bodies the validators are checked over."""
    from mockserver.contract.build import load_openapi

    contracts = [("bundled", CONTRACT), ("petstore", load_openapi([DATA / "openapi" / "petstore.yaml"]))]
    for name in ("identity-api.json", "event-api.json"):
        contracts.append((name, load_openapi([DATA / "vendor" / name], ["solvimon"])))
    seen: set[int] = set()
    out = []
    for label, contract in contracts:
        for op in contract.operations:
            body = op.request_body
            if body is None or not body.json or id(body.schema) in seen:
                continue
            seen.add(id(body.schema))
            out.append((f"{label}:{op.operation_id}", op))
    return out
