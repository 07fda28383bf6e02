"""The fast path's valid/invalid decision is the reference's, also where jsonschema-rs reads a
keyword otherwise.

jsonschema-rs and python-jsonschema (the reference, with the contract's formats and ECMA-262
patterns) answer differently for float ``multipleOf``, integers beyond 2**53 against floats
(comparisons, ``enum``, ``const``, ``uniqueItems``), ``\\s``, ``[\\D]`` and ``[\\W]`` in patterns, and
``dependencies`` (which only jsonschema-rs applies under Draft 2020-12). ``Validator.is_valid``
judges such keywords in Python by the explainer's trust rules, so it answers as the reference
does: here case by case, then over Hypothesis-drawn values near those edges. The bundled
contract's request bodies stay on the fast path: decided by jsonschema-rs, never by the reference.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CONTRACT, CREATE, VENDOR_EXAMPLE
from mockserver.contract import model
from mockserver.contract.model import Validator, _closed
from mockserver.generation import Generator, compile_maker

BIG = 2 ** 64  # exactly a float too: BIG + 1 is not, and compares above float(BIG) only in Python

# (schema, instance, the reference's answer): jsonschema-rs alone answers otherwise for each.
DISAGREEMENTS = [
    ({"multipleOf": 0.1}, 0.3, False),
    ({"multipleOf": 0.01}, 1.13, False),
    ({"minimum": float(BIG)}, BIG + 1, True),
    ({"minimum": BIG + 1}, float(BIG), False),
    ({"maximum": float(BIG)}, BIG + 1, False),
    ({"maximum": BIG}, float(BIG), True),
    ({"exclusiveMinimum": BIG}, float(BIG), False),
    ({"exclusiveMaximum": float(BIG)}, BIG, False),
    ({"enum": [BIG]}, float(BIG), True),
    ({"enum": [float(BIG)]}, BIG, True),
    ({"const": BIG}, float(BIG), True),
    ({"const": float(BIG)}, BIG, True),
    ({"uniqueItems": True}, [BIG, float(BIG)], False),
    ({"pattern": "^\\s$"}, "\ufeff", False),
    ({"pattern": "^\\s$"}, "\x1c", True),
    ({"pattern": "^[\\s]+$"}, "\x1f", True),
    ({"pattern": "^\\S$"}, "\x1c", False),
    ({"pattern": "^[\\D]$"}, "\u0660", False),
    ({"pattern": "^[\\W]$"}, "é", False),
    ({"pattern": "^[\\W]+$"}, "ª", False),
    ({"type": "object", "dependencies": {"a": ["b"]}}, {"a": 1}, True),
    ({"type": "object", "dependencies": {"a": {"required": ["b"]}}}, {"a": 1}, True),
]
IDS = [f"{sorted(schema)[-1]}-{i}" for i, (schema, _, _) in enumerate(DISAGREEMENTS)]


def outcome(judge: Any, instance: Any) -> Any:
    """A yes or no, or the kind of exception raised (the reference gives up on some values)."""
    try:
        return judge(instance)
    except Exception as exc:
        return type(exc)


def placed(schema: dict[str, Any], instance: Any) -> list[tuple[dict[str, Any], Any]]:
    """The keyword at the top, on a property, on array items, inside anyOf, not and allOf, and
    behind a $ref: the decision must hold wherever the keyword stands."""
    return [
        (schema, instance),
        ({"type": "object", "properties": {"v": schema}}, {"v": instance}),
        ({"type": "array", "items": schema}, [instance]),
        ({"anyOf": [{"type": "boolean"}, schema]}, instance),
        ({"not": {"not": schema}}, instance),
        ({"allOf": [{}, {"properties": {"v": schema}}]}, {"v": instance}),
        ({"$defs": {"Kept": schema}, "type": "object", "properties": {"v": {"$ref": "#/$defs/Kept"}}}, {"v": instance}),
    ]


@pytest.mark.parametrize(("schema", "instance", "expected"), DISAGREEMENTS, ids=IDS)
def test_jsonschema_rs_alone_answers_otherwise(schema, instance, expected):
    """Each case is a real disagreement, so the next test guards something."""
    assert jsonschema_rs.Draft202012Validator(schema).is_valid(instance) is not expected


@pytest.mark.parametrize(("schema", "instance", "expected"), DISAGREEMENTS, ids=IDS)
def test_the_decision_is_the_references(schema, instance, expected):
    for where, value in placed(schema, instance):
        validator = Validator(where, fast=True)
        assert validator.fast, where
        assert validator.reference.is_valid(value) is expected, where
        assert validator.is_valid(value) is expected, where


@pytest.mark.parametrize(("schema", "instance"), [
    # Python's re reads patternProperties in the reference: Unicode \d, and $ before a final newline.
    ({"type": "object", "patternProperties": {"^\\d+$": {"type": "string"}}}, {"١٢٣": 1}),
    ({"type": "object", "patternProperties": {"^a$": {"type": "string"}}, "additionalProperties": False},
     {"a\n": "x"}),
    ({"type": "object", "patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False},
     {"x-a": "1", "b": 1}),
    # An int64 limit is no float, and a float of 2**63 is above it.
    ({"format": "int64"}, float(2 ** 63)),
    ({"format": "int64"}, 2 ** 63 - 1),
    ({"format": "int32"}, 2.0 ** 31),
    # The reference gives up (too large an integer for a float division), also under not.
    ({"multipleOf": 0.01}, 10 ** 400),
    ({"not": {"multipleOf": 0.01}}, 10 ** 400),
    ({"anyOf": [{"type": "string"}, {"multipleOf": 0.01}]}, 10 ** 400),
    # A lone surrogate (JSON can carry one), which jsonschema-rs cannot take at all.
    ({"type": "string", "minLength": 1}, "\ud800"),
    # Names that look like the keywords judged in Python, as properties, required names and
    # the target of a $ref.
    ({"type": "object", "dependentRequired": {"pattern": ["enum"]}, "properties": {"enum": {"multipleOf": 0.1}}},
     {"pattern": 1}),
    ({"type": "object", "dependentRequired": {"pattern": ["enum"]}, "properties": {"enum": {"multipleOf": 0.1}}},
     {"pattern": 1, "enum": 0.3}),
    ({"$defs": {"const": {"multipleOf": 0.1}}, "properties": {"a": {"$ref": "#/$defs/const"}}}, {"a": 0.3}),
], ids=["pattern-properties-digits", "pattern-properties-end", "pattern-properties-alike", "int64-float", "int64-int",
        "int32-float", "multipleOf-overflow", "not-multipleOf-overflow", "anyOf-multipleOf-overflow", "lone-surrogate",
        "names-required", "names-multipleOf", "names-ref"])
def test_other_edges_are_decided_as_by_the_reference(schema, instance):
    validator = Validator(schema, fast=True)
    assert outcome(validator.is_valid, instance) == outcome(validator.reference.is_valid, instance)


# A few schemas built from the keywords jsonschema-rs reads otherwise, beside ones it reads alike.
SCHEMAS = {
    "numbers": {"type": "object", "properties": {
        "tenth": {"type": "number", "multipleOf": 0.1},
        "cents": {"multipleOf": 0.01, "minimum": 0},
        "whole": {"type": "integer", "multipleOf": 3, "maximum": 100},
        "above": {"minimum": float(2 ** 53)},
        "below": {"exclusiveMaximum": float(BIG)},
        "huge": {"minimum": BIG + 1, "maximum": 10 ** 30},
        "choice": {"enum": [BIG, 1.5, "a", None]},
        "fixed": {"const": float(BIG)},
        "small": {"type": "integer", "format": "int32"},
        "long": {"format": "int64"},
    }},
    "arrays": {"type": "array", "uniqueItems": True, "items": {"anyOf": [{"type": "number"}, {"type": "array"}]},
               "maxItems": 4},
    "patterns": {"type": "object", "additionalProperties": False, "properties": {
        "blank": {"type": "string", "pattern": "^\\s*$"},
        "solid": {"type": "string", "pattern": "^\\S+$"},
        "digitless": {"type": "string", "pattern": "^[\\D]+$"},
        "wordless": {"pattern": "^[\\W]*$"},
        "word": {"type": "string", "pattern": "^[\\w-]+$"},
        "ended": {"pattern": "^abc$"},
    }},
    "dependencies": {"type": "object", "properties": {"a": {"type": "integer"}},
                     "dependencies": {"a": ["b"], "c": {"required": ["d"]}}, "dependentRequired": {"e": ["f"]}},
    "referenced": {"$defs": {"Amount": {"type": "number", "multipleOf": 0.1, "maximum": float(BIG)}},
                   "type": "object", "properties": {"amount": {"$ref": "#/$defs/Amount"},
                                                    "amounts": {"type": "array", "items": {"$ref": "#/$defs/Amount"}}}},
    "choices": {"oneOf": [{"multipleOf": 0.1}, {"const": BIG}, {"type": "string", "pattern": "^\\s+$"}]},
    "negated": {"not": {"anyOf": [{"enum": [float(BIG), 0.3]}, {"type": "string", "pattern": "[\\W]"}]}},
}
NUMBERS = [0, 1, 3, 0.1, 0.2, 0.3, 0.7, 1.1, 1.13, 2.5, 0.01, 2 ** 31, 2.0 ** 31, 2 ** 53, 2 ** 53 + 1, float(2 ** 53),
           2 ** 63 - 1, 2 ** 63, float(2 ** 63), BIG - 1, BIG, BIG + 1, float(BIG), 10 ** 30, 1e30, 10 ** 400, -1.5]
STRINGS = ["", " ", "abc", "abc\n", "a-b", "\ufeff", "\x1c", "\x1d", "\x1f", "\x85", "\u00a0", "\u2028", "\u0660",
           "١٢٣", "é", "ª", "²", "_", "!", "a b", "\t"]
CHARACTERS = [c for c in STRINGS if len(c) == 1]
# Equal in Python or not, depending on how exactly an integer meets a float.
TWINS = [BIG, float(BIG), BIG + 1, 2 ** 53 + 1, float(2 ** 53), 1, 1.0, True, 0.3, [BIG], [float(BIG)]]
EDGES = st.sampled_from(NUMBERS) | st.sampled_from(STRINGS) | st.lists(st.sampled_from(TWINS), max_size=3)
SCALARS = (EDGES | st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=4))
ANY = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner,
                                                                                           max_size=3), max_leaves=6)


def near(schema: Any, defs: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped like what ``schema`` accepts, at the edges of its keywords, with anything
    else now and then: a body is only decided by the edge when all the rest of it is valid."""
    if not isinstance(schema, dict) or depth > 4:
        return ANY
    if "$ref" in schema:
        return near(defs[schema["$ref"].rsplit("/", 1)[1]], defs, depth + 1)
    options = [EDGES]
    if {"multipleOf", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "format"} & set(schema):
        options.append(st.sampled_from(NUMBERS))
    if "pattern" in schema:
        options.append(st.sampled_from(STRINGS) | st.text(st.sampled_from(CHARACTERS), max_size=3))
    if "enum" in schema or "const" in schema:
        options.append(st.sampled_from([*schema.get("enum", ()), *TWINS]))
    props = schema.get("properties")
    if isinstance(props, dict):
        named = {name: st.one_of(EDGES, st.none()) for name in "abcdef"}
        named.update((name, near(sub, defs, depth + 1)) for name, sub in props.items())
        options.append(st.lists(st.sampled_from(sorted(named)), max_size=2, unique=True).flatmap(
            lambda names: st.fixed_dictionaries({name: named[name] for name in names})))
    if "items" in schema:
        options.append(st.lists(near(schema["items"], defs, depth + 1), max_size=4))
    for key in ("anyOf", "oneOf"):
        options.extend(near(sub, defs, depth + 1) for sub in schema.get(key, ()))
    if "not" in schema:
        options.append(near(schema["not"], defs, depth + 1))
    return st.one_of([*options, *options, *options, *options, ANY])


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_decision_is_the_references_near_the_edges(name):
    validator = Validator(SCHEMAS[name], fast=True)
    assert validator.fast

    @settings(max_examples=300, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(near(SCHEMAS[name], SCHEMAS[name].get("$defs", {})))
    def agree(value):
        assert outcome(validator.is_valid, value) == outcome(validator.reference.is_valid, value), value

    agree()


def _bodies() -> list[tuple[str, dict[str, Any]]]:
    seen: set[int] = set()
    out = []
    for op in CONTRACT.operations:
        body = op.request_body
        if body is None or not body.json or id(body.schema) in seen:
            continue
        seen.add(id(body.schema))
        out.append((op.operation_id, body.schema))
        out.append((f"{op.operation_id}:strict", _closed(body.schema)))
    return out


BODIES = _bodies()


class _NoReference:
    """Stands in for the reference of a validator that must decide without it."""

    def is_valid(self, instance: Any) -> bool:
        raise AssertionError(f"the reference was asked about {instance!r}")


@pytest.mark.parametrize(("name", "schema"), BODIES, ids=[name for name, _ in BODIES])
def test_the_bundled_bodies_are_decided_by_jsonschema_rs(name, schema, monkeypatch):
    """Never by the reference; and a keyword is judged in Python only where a body holds a
    value for it (the bundled contract has one: a pattern with lookaheads)."""
    calls: list[str] = []

    def counted(keyword: str, judged: type) -> type:
        class Counted(judged):  # type: ignore[misc, valid-type]
            def validate(self, instance: Any) -> None:
                calls.append(keyword)
                super().validate(instance)
        return Counted

    for keyword, judged in list(model._PYTHON_KEYWORDS.items()):
        monkeypatch.setitem(model._PYTHON_KEYWORDS, keyword, counted(keyword, judged))
    validator = Validator(schema, fast=True)
    assert validator.fast, name
    reference = validator.reference
    validator.reference = _NoReference()
    make = compile_maker(schema)
    for seed in range(40):
        body = make(Generator(seed=seed))
        calls.clear()
        assert validator.is_valid(body) and reference.is_valid(body), (name, body)
        assert all(keyword == model._IN_PYTHON["pattern"] for keyword in calls), (name, calls)
        for broken in ({**body, "name": 42}, {**body, "url": "ftp://example.com"}, {**body, "active": "yes"}):
            assert validator.is_valid(broken) == reference.is_valid(broken), (name, broken)
    bench = {"url": "https://example.com/hook", "name": "Invoices", "reference": "invoices",
             "included_actions": ["INVOICE.CREATED"], "active": True}
    calls.clear()
    assert validator.is_valid(bench) == reference.is_valid(bench)
    assert not calls, calls


def test_the_create_body_is_decided_without_the_reference():
    validator = CREATE.request_body.validator
    validator.warm()
    reference = validator.reference
    try:
        validator.reference = _NoReference()
        assert validator.is_valid(VENDOR_EXAMPLE)
        assert not validator.is_valid({**VENDOR_EXAMPLE, "api_header_field": "Content-Length"})
    finally:
        validator.reference = reference
