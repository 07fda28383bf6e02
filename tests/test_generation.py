"""The 201 body: echo, defaults, generated fields, write-only fields, determinism."""

from __future__ import annotations

import asyncio

import dataclasses
import json
from datetime import datetime
from typing import Any, Literal, Optional, get_args, get_origin, get_type_hints

import pytest

from conftest import CONTRACT, AUTH, CREATE, SPEC, created, example, minimal
from mockserver.engine import Engine, MockRequest
from mockserver.generation import BodyPlan, Generator
from mockserver.contract import load_contract


@dataclasses.dataclass(frozen=True)
class PenaltyBoxData:
    retry_count: Optional[int]
    retry_at: Optional[str]
    cause: Optional[str]
    payload: Optional[str]


@dataclasses.dataclass(frozen=True)
class Webhook:
    """A strict client model of the vendor's Webhook, written from the API reference."""

    object_type: Literal["WEBHOOK"]
    id: str
    name: str
    reference: str
    url: str
    active: bool
    include_previous_data: bool
    authentication_type: Literal["PASSWORD", "API_KEY", "NONE"]
    username: Optional[str]
    api_header_field: Optional[str]
    included_actions: Optional[list]
    excluded_actions: Optional[list]
    penalty_box: Optional[str]
    secret_key: str
    signing_protocol: Optional[str]
    previous_secret_key: Optional[str]
    previous_signing_protocol: Optional[str]
    secret_rolled_at: Optional[str]
    penalty_box_data: Optional[PenaltyBoxData]
    disabled_reason: Optional[str]


def strict_parse(cls: type, data: Any) -> Any:
    """Parse like a strict client: unknown or missing keys and wrong types are errors."""
    assert isinstance(data, dict), data
    hints = get_type_hints(cls)
    assert set(data) == set(hints), set(data) ^ set(hints)
    values = {}
    for name, hint in hints.items():
        values[name] = _convert(hint, data[name], name)
    return cls(**values)


def _convert(hint: Any, value: Any, name: str) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        assert value in get_args(hint), (name, value)
        return value
    args = get_args(hint)
    if type(None) in args:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return strict_parse(hint, value)
    expected = origin or hint
    assert isinstance(value, expected) and not (expected is int and isinstance(value, bool)), (name, value)
    return value


async def test_created_body_parses_with_a_strict_client_model(client):
    for body in (example(), minimal(), minimal(penalty_box_data={"retry_count": 2, "retry_at": None,
                                                                  "cause": "timeout", "payload": "{}"})):
        resp = await client.post("/v1/webhooks", json=body, headers=AUTH)
        hook = strict_parse(Webhook, await created(resp))
        assert hook.object_type == "WEBHOOK"


async def test_write_only_fields_are_absent_not_null(client):
    resp = await client.post("/v1/webhooks", json=example(), headers=AUTH)
    text = await resp.text()
    body = json.loads(text)
    assert "password" not in body and "api_key" not in body
    assert "super_secure" not in text
    assert "dfPNT2KBbdHEm05s3R1lS8PavuyDGR0eJZPwZzSh" not in text


async def test_sent_fields_are_echoed(client):
    sent = example()
    body = await created(await client.post("/v1/webhooks", json=sent, headers=AUTH))
    for key in ("url", "name", "reference", "username", "api_header_field", "included_actions",
                "excluded_actions", "active", "signing_protocol", "previous_signing_protocol",
                "secret_rolled_at", "include_previous_data"):
        assert body[key] == sent[key], key


async def test_defaults_fill_what_was_not_sent(client):
    body = await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))
    assert body["active"] is True
    assert body["include_previous_data"] is False
    assert body["authentication_type"] == "NONE"
    assert body["signing_protocol"] == "HmacSHA256"
    for key in ("username", "api_header_field", "included_actions", "excluded_actions", "penalty_box",
                "previous_secret_key", "previous_signing_protocol", "secret_rolled_at", "penalty_box_data",
                "disabled_reason"):
        assert body[key] is None, key


async def test_server_set_fields_are_generated_not_echoed(client):
    sent = minimal(id="mine", secret_key="mine", object_type="MINE", penalty_box="x",
                   previous_secret_key="y", disabled_reason="z")
    body = await created(await client.post("/v1/webhooks", json=sent, headers=AUTH))
    assert body["id"].startswith("whk_") and body["id"] != "mine"
    assert body["secret_key"].startswith("whsec_")
    assert body["object_type"] == "WEBHOOK"
    assert body["penalty_box"] is None and body["previous_secret_key"] is None and body["disabled_reason"] is None


async def test_generated_ids_differ_between_requests(client):
    ids = set()
    for _ in range(5):
        body = await created(await client.post("/v1/webhooks", json=minimal(), headers=AUTH))
        ids.add((body["id"], body["secret_key"]))
    assert len(ids) == 5


def _run_sequence(seed: int) -> list[tuple[int, bytes, str]]:
    engine = Engine(CONTRACT, generator=Generator(seed))
    out = []
    for body in (minimal(), b"{", example(), minimal(url="bad")):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        resp = asyncio.run(engine.handle(MockRequest("POST", "/v1/webhooks", {},
                                                     {"x-api-key": "k", "content-type": "application/json"}, raw)))
        out.append((resp.status, resp.body, resp.request_id))
    return out


def test_same_seed_gives_byte_identical_answers():
    assert _run_sequence(7) == _run_sequence(7)
    assert _run_sequence(7) != _run_sequence(8)


async def test_seeded_server_is_reproducible_and_admin_calls_do_not_count(make_client):
    answers = []
    for with_admin in (False, True):
        client = await make_client(seed=42)
        run = []
        for body in (minimal(), example()):
            if with_admin:
                await client.get("/__mock/health")
                await client.get("/__mock/requests")
            resp = await client.post("/v1/webhooks", json=body, headers=AUTH)
            run.append((await resp.read(), resp.headers["X-REQUEST-ID"]))
        answers.append(run)
    assert answers[0] == answers[1]


@pytest.mark.parametrize("seed", range(20))
def test_generated_bodies_are_valid_for_any_seed(seed):
    plan = BodyPlan(CREATE.responses[201].schema, CREATE.request_body.schema)
    body = plan.render(Generator(seed), {})
    assert not list(CREATE.responses[201].validator.iter_errors(body))
    datetime.fromisoformat(Generator(seed).now().replace("Z", "+00:00"))
