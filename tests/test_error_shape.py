"""The error shape is data: the solvimon overlay says how each kind of problem is written."""

from __future__ import annotations

import io

from mockserver.cli import run
from mockserver.contract.build import overlay_path

SOLVIMON = overlay_path("solvimon").read_text(encoding="utf-8")
KEY = {"X-API-KEY": "k"}


def _overlays(tmp_path, text: str) -> list[str]:
    changed = tmp_path / "solvimon.yaml"
    changed.write_text(text, encoding="utf-8")
    return [str(changed), "solvimon-webhooks"]


async def test_a_kind_renamed_in_the_overlay_is_answered_with_the_new_code(make_client, tmp_path):
    text = SOLVIMON.replace("missing-field: {type: INVALID_REQUEST, code: MISSING_FIELD}",
                            "missing-field: {type: INVALID_REQUEST, code: MISSING_REFERENCE}")
    assert text != SOLVIMON
    client = await make_client(overlays=_overlays(tmp_path, text))
    resp = await client.post("/v1/webhooks", json={"name": "n"}, headers=KEY)
    body = await resp.json()
    assert resp.status == 400, body
    assert body["code"] == "MISSING_REFERENCE" and body["type"] == "INVALID_REQUEST"
    assert {e["code"] for e in body["errors"]} == {"MISSING_REFERENCE"}


async def test_the_body_template_decides_the_members(make_client, tmp_path):
    text = SOLVIMON.replace("body: {type: $type, code: $code, field: $field, message: $message, errors: $violations}",
                            "body: {type: $type, code: $code, message: $message}")
    client = await make_client(overlays=_overlays(tmp_path, text))
    resp = await client.get("/v1/webhooks/nope", headers=KEY)
    assert resp.status == 404
    assert await resp.json() == {"type": "INVALID_REQUEST", "code": "RESOURCE_NOT_FOUND",
                                 "message": "No webhooks with id 'nope' here"}


def test_a_kind_whose_body_breaks_the_error_schema_is_one_line(tmp_path):
    text = SOLVIMON.replace("not-found: {type: INVALID_REQUEST, code: RESOURCE_NOT_FOUND}",
                            "not-found: {type: INVALID_REQUEST, code: 404}")
    overlays = _overlays(tmp_path, text)
    out, err = io.StringIO(), io.StringIO()
    assert run(["check", "--overlay", overlays[0], "--overlay", overlays[1]], out, err) == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    expected_line = text.splitlines().index(
        next(line for line in text.splitlines() if "not-found: {type: INVALID_REQUEST, code: 404}" in line)) + 1
    assert lines[0].startswith(f"mockserver: error: {overlays[0]}:{expected_line}: an error of kind not-found "
                               f"breaks the error schema"), lines[0]


def test_a_kind_left_out_is_checked_at_every_status_it_could_answer_with(tmp_path):
    # Left out, not-found falls back to what its status stands for: at 404 that is not-found again,
    # which the mapping no longer gives, so a 404 would have had no type and no code.
    line = next(line for line in SOLVIMON.splitlines() if "not-found: {type: INVALID_REQUEST" in line)
    overlays = _overlays(tmp_path, SOLVIMON.replace(line + "\n", ""))
    out, err = io.StringIO(), io.StringIO()
    assert run(["check", "--overlay", overlays[0], "--overlay", overlays[1]], out, err) == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and "an error of kind not-found breaks the error schema" in lines[0], lines


def test_a_parameter_naming_an_unknown_kind_is_one_line(tmp_path):
    text = SOLVIMON.replace("x-mock: {errorKind: unsupported-version}", "x-mock: {errorKind: unsupported-versoin}")
    overlays = _overlays(tmp_path, text)
    out, err = io.StringIO(), io.StringIO()
    assert run(["check", "--overlay", overlays[0], "--overlay", overlays[1]], out, err) == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"mockserver: error: {overlays[0]}:") and "names error kind 'unsupported-versoin'" in lines[0]
