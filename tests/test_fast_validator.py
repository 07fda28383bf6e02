"""The fast path (jsonschema-rs) and the reference (jsonschema) judge every request body alike.

For every request body schema of the bundled contract, of the shared vendor documents and of
the test petstore, Hypothesis starts from a valid body (generated from the schema) and
changes it the ways clients get bodies wrong: a required field dropped, a field replaced by
any JSON value, strings that differ between regular expression dialects (a trailing newline,
non-ASCII digits and letters), numbers at the edges of the integer formats, an unknown field.
Whatever the result, both validators must give the same verdict.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import request_bodies
from mockserver import jsoncodec
from mockserver.contract.model import FAST_SCHEMA_BUDGET, Validator
from mockserver.generation import Generator, compile_maker


BODIES = [(name, op.request_body.schema) for name, op in request_bodies()]
TRICKY_STRINGS = ["abc\n", "\n", "١٢٣", "ａｂｃ", "é", "x" * 300, "", " ", "2024-02-30T00:00:00Z",
                  "2024-01-01T00:00:60Z", "https://example.com", "not a url", "0", "-1"]
EDGE_NUMBERS = [2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 + 1, -(2 ** 63) - 1, 0, -1, 1.5,
                1e300]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(TRICKY_STRINGS) | st.text(max_size=12) | st.sampled_from(EDGE_NUMBERS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def _mutate(data: st.DataObject, value: Any, schema: Any, depth: int = 0) -> Any:
    """One change somewhere in ``value``, guided by the schema's properties where it has them."""
    if isinstance(value, dict) and value and depth < 4:
        key = data.draw(st.sampled_from(sorted(value)))
        how = data.draw(st.sampled_from(["drop", "replace", "descend", "add"]))
        out = dict(value)
        if how == "drop":
            del out[key]
        elif how == "replace":
            out[key] = data.draw(JSON)
        elif how == "add":
            out[data.draw(st.text(min_size=1, max_size=8))] = data.draw(JSON)
        else:
            sub = (schema.get("properties") or {}).get(key, {}) if isinstance(schema, dict) else {}
            out[key] = _mutate(data, value[key], sub, depth + 1)
        return out
    if isinstance(value, list) and value and depth < 4:
        index = data.draw(st.integers(0, len(value) - 1))
        out = list(value)
        out[index] = _mutate(data, value[index], schema.get("items", {}) if isinstance(schema, dict) else {},
                             depth + 1)
        return out
    return data.draw(JSON)


@pytest.mark.parametrize(("name", "schema"), BODIES, ids=[name for name, _ in BODIES])
def test_the_fast_path_and_the_reference_agree(name, schema):
    validator = Validator(schema, fast=True)
    if len(jsoncodec.dumps(schema)) > FAST_SCHEMA_BUDGET * 1.5:
        # Far over the budget (its expanded size): the reference alone decides, by design.
        assert not validator.fast, f"{name}: a schema this large must stay with the reference"
    elif len(jsoncodec.dumps(schema)) < FAST_SCHEMA_BUDGET / 1.5:
        assert validator.fast, f"{name}: the fast validator could not compile this schema"
    make = compile_maker(schema)

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def agree(data):
        body = make(Generator(seed=data.draw(st.integers(0, 1000))))
        assert validator.is_valid(body) and validator.reference.is_valid(body), name  # generated bodies are valid
        changed = _mutate(data, body, schema)
        assert validator.is_valid(changed) == validator.reference.is_valid(changed), (name, changed)

    agree()


@pytest.mark.parametrize(("pattern", "value", "valid"), [
    ("^abc$", "abc\n", False), ("^abc$", "abc", True), (r"^\d+$", "١٢٣", False), (r"^\d+$", "123", True),
    (r"^[\w-]+$", "é", False), (r"^[\d$]+$", "1$", True),
])
def test_patterns_are_read_as_ecma_262_by_both(pattern, value, valid):
    validator = Validator({"type": "string", "pattern": pattern}, fast=True)
    assert validator.is_valid(value) is valid
    assert validator.reference.is_valid(value) is valid
