"""An invalid body is explained from jsonschema-rs's errors, with the reference's answer.

``Validator.explain`` maps jsonschema-rs's ``iter_errors`` onto what the reference
(python-jsonschema, with the contract's formats and ECMA-262 patterns) reports: the same errors,
each with the same path, keyword, keyword value, instance and subschema, in the same order.
Where it cannot be sure of that it answers None and the reference explains. Here every
explanation is compared with the reference's, error by error, and ``body_violations`` (the
answer a client gets) with the one the reference alone gives, over hand-written schemas that use
every keyword the mapping follows (nested objects and arrays, formats, patterns that the two
regular expression engines could read differently, oneOf/anyOf/allOf/not, enum and const,
additionalProperties closed and as a schema) and over the request bodies of the bundled, test
and vendor contracts, in lenient and strict mode.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CREATE, request_bodies
from mockserver import jsoncodec
from mockserver.contract.model import FAST_SCHEMA_BUDGET, Validator
from mockserver.errors import INVALID_FIELD, Violation
from mockserver.formats import ecma_pattern
from mockserver.generation import Generator, compile_maker
from mockserver.validation import body_violations

TRICKY_STRINGS = [
    "", " ", "abc", "abc\n", "a\u2028b", "a\rb", "\ufeff", "\x1c", "a.b", "axb", "\t \u00a0", "١٢٣", "ａｂｃ", "é",
    "e\u0301", "\U0001F600", "x" * 7, "ACTIVE", "PAUSED", "1", "webhook", "INVOICE.CREATED", "invoice.created",
    "https://example.com/a", "ftp://example.com", "not a uri", "http://[::1]:80/", "http://[zz]/",
    "2024-02-29T10:00:00Z", "2023-02-29T10:00:00Z", "2024-01-01T00:00:60+01:00", "2024-01-01", "a@b.co",
    "no-at-sign", "123e4567-e89b-12d3-a456-426614174000", "1234AB", "1234ab", "+316123", "content-length",
    "x-api-key", "Proxy-Foo",
]
NUMBERS = [0, 1, -1, 2, 10, 11, 1.0, 0.5, 0.01, 0.3, 1.13, 2.5, 3, 9.0, 2 ** 31 - 1, 2 ** 31, -(2 ** 31) - 1,
           2 ** 53, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64, 2 ** 64 + 1, float(2 ** 64), 10 ** 30, 1e30, 1e300,
           -1e300, 5e-324, 10 ** 400]
# Among the names: some jsonschema-rs writes in its paths as numbers ("0", "01", "+1") or
# leaves out (""), which the mapping must notice and leave to the reference.
KEYS = st.sampled_from(["a", "b", "name", "extra", "zz", "é", "0", "01", "+1", ""]) | st.text(max_size=3)
SCALARS = (st.none() | st.booleans() | st.sampled_from(TRICKY_STRINGS) | st.sampled_from(NUMBERS)
           | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5))
ANY = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                   max_leaves=6)
TRICKY_KEY = re.compile(r"\+?[0-9]+|")

LINE = {
    "type": "object",
    "properties": {"sku": {"type": "string", "minLength": 2}, "qty": {"type": "integer", "minimum": 1}},
    "required": ["sku", "qty"],
    "additionalProperties": False,
}
PROPERTIES: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 5},
    "url": {"type": "string", "format": "uri", "pattern": "^[hH][tT][tT][pP][sS]?://[A-Za-z0-9\\-._~%!$&'()*+,;=:@/]+$",
            "description": "An http or https URL"},
    "when": {"type": ["string", "null"], "format": "date-time"},
    "email": {"type": "string", "format": "email", "description": "Where the answer goes."},
    "id": {"type": "string", "format": "uuid"},
    "count": {"type": "integer", "format": "int32", "minimum": 0},
    "big": {"format": "int64"},
    "price": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e30, "multipleOf": 0.01},
    "huge": {"type": "number", "minimum": 2 ** 64, "exclusiveMaximum": 10 ** 30},
    "small": {"type": "integer", "minimum": -1, "maximum": 10},
    "status": {"enum": ["ACTIVE", "PAUSED", None]},
    "level": {"enum": [1, 2.5, True, 2 ** 64, "1"]},
    "kind": {"const": "webhook"},
    "version": {"const": 2 ** 64},
    "tags": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*\\.[A-Z][A-Z0-9_]*$"},
             "uniqueItems": True, "maxItems": 3},
    "numbers": {"type": "array", "uniqueItems": True},
    "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string", "format": "date-time"}],
             "items": {"type": "boolean"}, "minItems": 2},
    "address": {"type": "object", "properties": {"street": {"type": "string"},
                                                 "zip": {"type": "string", "pattern": "^\\d{4}[A-Z]{2}$"}},
                "required": ["street"], "additionalProperties": False},
    "lines": {"type": "array", "items": LINE},
    "metadata": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}, "maxProperties": 3},
    "payment": {"oneOf": [
        {"type": "object", "properties": {"card": {"type": "string"}}, "required": ["card"]},
        {"type": "object", "properties": {"iban": {"type": "string"}}, "required": ["iban"]},
    ]},
    "contact": {"anyOf": [{"type": "string", "format": "email"}, {"type": "string", "pattern": "^\\+[0-9]+$"}]},
    "limits": {"allOf": [{"type": "object", "properties": {"low": {"type": "integer"}}},
                         {"properties": {"high": {"type": "integer", "maximum": 10}}, "required": ["high"]}]},
    "present": {"not": {"type": "null"}},
    # Patterns the two engines could read apart (lookahead, ".", "\s", "\D" in a class, a
    # "$" before a final newline): judged in Python, as the reference judges them.
    "header": {"type": "string", "pattern": "^(?!content-length$)[a-z-]+(?![\\s\\S])"},
    "dotted": {"type": "string", "pattern": "^a.b$"},
    "blank": {"type": "string", "pattern": "^\\s*$"},
    "digitless": {"type": "string", "pattern": "^[\\D]+$"},
    "ended": {"type": "string", "pattern": "^abc$"},
    "0": {"type": "string"},
}
# A plain object (explained per property, as body_violations does for such schemas).
PLAIN = {"type": "object", "properties": PROPERTIES, "required": ["name", "url"], "additionalProperties": False}
# The same, not plain, keywords in another order: the top level's errors come in that order.
REORDERED = {"additionalProperties": False, "minProperties": 2, "required": ["name", "url"], "properties": PROPERTIES,
             "type": "object"}
OPEN_MAP = {"type": "object", "properties": {"a": {"type": "string"}},
            "additionalProperties": {"type": "integer", "maximum": 3}}
LIST = {"type": "array", "items": LINE, "minItems": 1, "maxItems": 3}
SCALAR = {"type": "string", "enum": ["ACTIVE", "PAUSED"], "maxLength": 5}
CHOICE = {"oneOf": [{"type": "integer"}, {"type": "number", "multipleOf": 0.5}, {"type": "string"}]}
MAPPED = {"plain": PLAIN, "reordered": REORDERED, "open-map": OPEN_MAP, "list": LIST, "scalar": SCALAR,
          "choice": CHOICE}

# What the mapping leaves to the reference, whatever the body.
NODE = {"type": "object", "properties": {"v": {"type": "integer"}, "kids": {"type": "array",
                                                                           "items": {"$ref": "#/$defs/Node"}}}}
UNMAPPED = {
    "recursive": {"type": "object", "properties": {"root": {"$ref": "#/$defs/Node"}}, "$defs": {"Node": NODE}},
    "pattern-properties": {"type": "object", "patternProperties": {"^x-": {"type": "string"}},
                           "additionalProperties": False},
    "if-then": {"if": {"type": "string"}, "then": {"minLength": 3}, "else": {"type": "integer"}},
    "dependent": {"type": "object", "dependentRequired": {"a": ["b"]}},
    "dependencies": {"type": "object", "dependencies": {"a": ["b"]}},
    "property-names": {"type": "object", "propertyNames": {"maxLength": 2}},
    "empty-name": {"type": "object", "properties": {"": {"type": "string"}}},
    "false-items": {"type": "array", "items": False},
}


def guided(schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """JSON values near what ``schema`` accepts: mostly its shape, with wrong values mixed in."""
    if not isinstance(schema, dict) or depth > 5:
        return ANY
    options = []
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "string" in types or "format" in schema or "pattern" in schema:
        options.append(st.sampled_from(TRICKY_STRINGS))
    if "integer" in types or "number" in types or "format" in schema:
        options.append(st.sampled_from(NUMBERS) | st.integers(-3, 12))
    if "boolean" in types:
        options.append(st.booleans())
    if "null" in types:
        options.append(st.none())
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if "const" in schema:
        options.append(st.just(schema["const"]))
    if isinstance(schema.get("pattern"), str):
        try:
            options.append(st.from_regex(ecma_pattern(schema["pattern"])))
        except Exception:  # not every pattern can be generated from
            pass
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"} & set(schema):
        options.append(st.sampled_from(NUMBERS))
    props = schema.get("properties")
    extra = schema.get("additionalProperties", True)
    if isinstance(props, dict):
        fixed = st.fixed_dictionaries({}, optional={name: guided(sub, depth + 1) for name, sub in props.items()})
        extras = st.dictionaries(KEYS, guided(extra, depth + 1) if isinstance(extra, dict) else ANY, max_size=2)
        options.append(st.tuples(fixed, extras).map(lambda both: {**both[1], **both[0]}))
        options.append(fixed)
    elif isinstance(extra, dict):
        options.append(st.dictionaries(KEYS, guided(extra, depth + 1), max_size=4))
    if "prefixItems" in schema or "items" in schema:
        head = st.tuples(*(guided(sub, depth + 1) for sub in schema.get("prefixItems", [])))
        tail = st.lists(guided(schema.get("items", {}), depth + 1), max_size=4)
        options.append(st.tuples(head, tail).map(lambda both: [*both[0], *both[1]]))
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            options.extend(guided(sub, depth + 1) for sub in schema[key])
    return st.one_of([ANY, *options, *options])  # near the schema more often than not


def described(errors: Any) -> list[tuple[Any, ...]]:
    """What each error says, comparable across the two: the value and the subschema by identity,
    since both must be the very objects of the body and the schema."""
    return [(list(e.absolute_path), e.validator, e.validator_value, id(e.instance), id(e.schema)) for e in errors]


def plain_keys(value: Any) -> bool:
    if isinstance(value, dict):
        return all(not TRICKY_KEY.fullmatch(k) and plain_keys(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain_keys(v) for v in value)
    return True


def check_explained(validator: Validator, value: Any) -> None:
    try:
        expected = list(validator.reference.iter_errors(value))
    except Exception:  # the reference gives up (a huge integer against a float multipleOf)
        assert validator.explain(value) is None
        return
    explained = validator.explain(value)
    if explained is None:  # only for names jsonschema-rs cannot write back, or a schema left to the reference
        assert not plain_keys(value) or len(jsoncodec.dumps(validator.schema)) > FAST_SCHEMA_BUDGET, value
        return
    assert described(explained) == described(expected), value


def outcome(op: Any, body: Any, strict: bool = False) -> Any:
    """body_violations's answer, or the kind of exception it raised."""
    try:
        return body_violations(op, body, strict)
    except Exception as exc:  # the reference gives up on some bodies; so must the explainer then
        return type(exc)


def reference_violations(monkeypatch: pytest.MonkeyPatch, op: Any, body: Any, strict: bool = False) -> Any:
    """What body_violations answers from the reference alone."""
    with monkeypatch.context() as patched:
        patched.setattr(Validator, "explain", lambda self, instance: None)
        return outcome(op, body, strict)


def operation(schema: dict[str, Any]) -> Any:
    validator = Validator(schema, fast=True)
    return SimpleNamespace(request_body=SimpleNamespace(validator=validator, strict_validator=validator))


SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.mark.parametrize("name", sorted(MAPPED))
def test_explanations_are_the_references(name, monkeypatch):
    op = operation(MAPPED[name])
    validator = op.request_body.validator

    @SETTINGS
    @given(guided(MAPPED[name]))
    def agree(value):
        check_explained(validator, value)
        assert outcome(op, value) == reference_violations(monkeypatch, op, value), value

    agree()


# One keyword at a time, on a property and on array items, with values at its edges.
KEYWORDS = [
    {"multipleOf": 0.01}, {"multipleOf": 3}, {"multipleOf": 2.5}, {"uniqueItems": True}, {"not": {"type": "null"}},
    {"minimum": 2 ** 64}, {"minimum": 2 ** 64 + 1}, {"maximum": 1e30}, {"maximum": 10 ** 30},
    {"exclusiveMinimum": 0.5}, {"exclusiveMinimum": 1e30}, {"exclusiveMaximum": 2 ** 53}, {"maximum": 10},
    {"enum": [1, True, 2 ** 64, 1e30, "1", None, [1], {"a": 1}]}, {"enum": ["a", "b", None]},
    {"const": 2 ** 64}, {"const": [1, {"a": True}]}, {"const": "a"}, {"format": "int32"}, {"format": "int64"},
    {"format": "uri"}, {"format": "date-time"}, {"format": "email"}, {"format": "no-such-format"},
    {"pattern": "^a.b$"}, {"pattern": "^\\s*$"}, {"pattern": "^[\\D]+$"}, {"pattern": "^abc$"},
    {"pattern": "^(?!x)"}, {"pattern": "\\bword\\b"}, {"pattern": "^[\\w-]+$"}, {"pattern": "^\\d+$"},
    {"pattern": "^[^a]$"}, {"pattern": "^é+$"}, {"pattern": "^[\\s]+$"}, {"pattern": "^[\\W]+$"},
    {"pattern": "^[a-c]{2,3}?$"}, {"pattern": "^(a|b)*\\.$"},
    {"minLength": 2}, {"maxLength": 1}, {"type": "integer"}, {"type": ["number", "null"]},
    {"minItems": 2}, {"maxProperties": 1}, {"anyOf": [{"type": "string"}, {"minimum": 3}]},
    {"oneOf": [{"type": "integer"}, {"multipleOf": 0.5}]},
    # The reference raises on 10 ** 400 here (too large a float to divide), inside a branch:
    {"anyOf": [{"multipleOf": 0.01}, {"type": "string"}]},
]
EDGE_VALUES = [*TRICKY_STRINGS, *NUMBERS, True, False, None, [], {}, [1, 1.0], [1, True], [2 ** 64, float(2 ** 64)],
               [0.1, 0.1], [[1], [1.0]], [{"a": 1}, {"a": 1.0}], ["a", "b"], {"a": 1}, [1, {"a": True}], "word",
               "a word here"]
EDGES = st.sampled_from(EDGE_VALUES)
NEAR = st.one_of(EDGES, EDGES, SCALARS, st.lists(EDGES, max_size=3),
                 st.lists(st.sampled_from([1, 1.0, True, 2 ** 64, float(2 ** 64), "a", None, [1]]), max_size=3))


@pytest.mark.parametrize("keyword", KEYWORDS, ids=[str(k)[:40] for k in KEYWORDS])
def test_each_keyword_at_its_edges_is_explained_as_by_the_reference(keyword, monkeypatch):
    schema = {"type": "object", "properties": {"v": keyword, "w": {"type": "array", "items": keyword}}}
    op = operation(schema)
    for value in EDGE_VALUES:
        body = {"v": value, "w": [value, "a", value]}
        check_explained(op.request_body.validator, body)
        assert outcome(op, body) == reference_violations(monkeypatch, op, body), body


@pytest.mark.parametrize("keyword", KEYWORDS, ids=[str(k)[:40] for k in KEYWORDS])
def test_each_keyword_is_explained_as_by_the_reference(keyword, monkeypatch):
    schema = {"type": "object", "properties": {"v": keyword, "w": {"type": "array", "items": keyword}}}
    op = operation(schema)
    validator = op.request_body.validator

    @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(st.fixed_dictionaries({}, optional={"v": NEAR, "w": st.lists(NEAR, max_size=3)}))
    def agree(value):
        check_explained(validator, value)
        assert outcome(op, value) == reference_violations(monkeypatch, op, value), value

    agree()


@pytest.mark.parametrize("name", sorted(UNMAPPED))
def test_what_the_mapping_does_not_follow_stays_with_the_reference(name, monkeypatch):
    op = operation(UNMAPPED[name])
    validator = op.request_body.validator

    @settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(guided(UNMAPPED[name]))
    def agree(value):
        assert validator.explain(value) is None
        assert outcome(op, value) == reference_violations(monkeypatch, op, value), value

    agree()


BODIES = request_bodies()  # (name, operation) of every JSON request body


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize(("name", "op"), BODIES, ids=[name for name, _ in BODIES])
def test_contract_bodies_are_explained_as_by_the_reference(name, op, strict, monkeypatch):
    validator = op.request_body.strict_validator if strict else op.request_body.validator
    make = compile_maker(op.request_body.schema)

    @settings(max_examples=25, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def agree(data):
        value = data.draw(st.one_of(
            st.integers(0, 1000).map(lambda seed: mutated(make(Generator(seed=seed)), data)),
            guided(validator.schema)))
        check_explained(validator, value)
        assert outcome(op, value, strict) == reference_violations(monkeypatch, op, value, strict), value

    agree()


def mutated(body: Any, data: st.DataObject) -> Any:
    """A valid body with one or two fields replaced, dropped or added."""
    if not isinstance(body, dict) or not body:
        return data.draw(ANY)
    out = dict(body)
    for _ in range(data.draw(st.integers(1, 2))):
        key = data.draw(st.sampled_from(sorted(out) or ["extra"]))
        how = data.draw(st.sampled_from(["drop", "replace", "add"]))
        if how == "drop":
            out.pop(key, None)
        elif how == "replace":
            out[key] = data.draw(SCALARS | st.lists(SCALARS, max_size=2))
        else:
            out[data.draw(KEYS)] = data.draw(SCALARS)
    return out


def test_the_bench_body_is_explained_without_the_reference(monkeypatch):
    body = {"url": "ftp://example.com", "name": 42, "reference": "invoices", "included_actions": ["INVOICE.CREATED"]}
    explained = CREATE.request_body.validator.explain(body)
    assert explained is not None
    assert [(e.absolute_path, e.validator) for e in explained] == [(["name"], "type"), (["url"], "pattern")]
    assert body_violations(CREATE, body) == reference_violations(monkeypatch, CREATE, body) == [
        Violation(INVALID_FIELD, "name", "name must be a string"),
        Violation(INVALID_FIELD, "url", "url must be an absolute http or https URL with a host name, an IPv4 "
                                        "address or an IPv6 address in brackets"),
    ]


@pytest.mark.parametrize(("body", "expected"), [
    ({"name": "n", "url": "https://a.b", "lines": [{"sku": "ab", "qty": 1}, {"sku": "x", "qty": 0, "note": 1}]},
     [("lines.1.sku", "lines.1.sku must be at least 2 characters long"),
      ("lines.1.qty", "lines.1.qty must satisfy minimum 1"),
      ("lines.1.note", "lines.1.note is not a field of this request")]),
    ({"name": "n", "url": "https://a.b", "address": {"zip": "1234ab"}},
     [("address.street", "address.street is required"),
      ("address.zip", "address.zip must match the pattern ^\\d{4}[A-Z]{2}$")]),
    ({"name": "n", "url": "https://a.b/ c", "email": "no-at-sign", "count": 2 ** 31, "when": "2023-02-29T10:00:00Z"},
     [("url", "url must be an http or https URL"), ("when", "when must be a valid date-time"),
      ("email", "email must be where the answer goes"), ("count", "count must be a valid int32")]),
    ({"name": "n", "url": "https://a.b", "status": "GONE", "payment": {"card": "c", "iban": "i"}, "dotted": "a\u2028b",
      "ended": "abc\n"},
     [("status", 'status must be one of "ACTIVE", "PAUSED", null'),
      ("payment", "payment does not satisfy the contract's 'oneOf' rule"),
      ("ended", "ended must match the pattern ^abc$")]),
    ({"name": "n", "url": "https://a.b", "metadata": {"k": "long", "j": 1}, "tags": ["A.B", "a.b", "A.B"]},
     [("tags.1", "tags.1 must match the pattern ^[A-Z][A-Z0-9_]*\\.[A-Z][A-Z0-9_]*$"),
      ("tags", "tags must satisfy uniqueItems true"), ("metadata.k", "metadata.k must be at most 3 characters long"),
      ("metadata.j", "metadata.j must be a string")]),
])
def test_violations_name_the_field_and_the_rule(body, expected, monkeypatch):
    op = operation(PLAIN)
    assert op.request_body.validator.explain(body) is not None
    found = body_violations(op, body)
    assert found == reference_violations(monkeypatch, op, body)
    assert sorted((v.field, v.message) for v in found) == sorted(expected)


def test_extra_properties_come_in_the_references_order(monkeypatch):
    op = operation(OPEN_MAP)
    body = {name: 10 for name in ("zeta", "alpha", "mid", "b", "q")}
    explained = op.request_body.validator.explain(body)
    assert explained is not None and len(explained) == 5
    assert described(explained) == described(op.request_body.validator.reference.iter_errors(body))
    assert body_violations(op, body) == reference_violations(monkeypatch, op, body)


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [3, 60, 65, 200, 300, 950])
def test_deeply_nested_values_are_left_to_the_reference(levels, monkeypatch):
    """The reference writes a failing value into its message and gives up on one nested deep
    enough for that to overflow Python's stack (the engine answers that the body is nested too
    deeply): how deep depends on its stack, so past a fixed depth the explainer steps aside."""
    body = {"url": "ftp://example.com", "name": nested(levels), "reference": "r"}
    explained = CREATE.request_body.validator.explain(body)
    assert (explained is not None) is (levels <= 64)
    assert outcome(CREATE, body) == reference_violations(monkeypatch, CREATE, body)
    listed = operation(LIST)
    assert outcome(listed, nested(levels)) == reference_violations(monkeypatch, listed, nested(levels))
