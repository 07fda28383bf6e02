"""Generation for any JSON Schema an OpenAPI 3.0/3.1 document uses: every body valid, seeded.

The vendor's Identity and Event documents are loaded with the contract loader (which inlines
``$ref``s and turns recursive ones into root ``$defs`` entries), and every 2xx response body
is generated and validated with Draft 2020-12 and a format checker for every format generation
writes. The targeted tests below take one keyword each.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from mockserver.contract.build import load_openapi
from mockserver.formats import FORMAT_CHECKER
from mockserver.generation import MAX_DEPTH, BodyPlan, GenerationError, Generator, compile_maker

VENDOR = Path(__file__).resolve().parent / "data" / "vendor"
SEEDS = range(20)

# --- a format checker for every format generation writes ------------------------------------
# Draft 2020-12's own checks, the project's stricter uri and date-time, and plain checks for the
# formats whose jsonschema check needs a package this project does not install (those would
# otherwise pass anything).
CHECKER = FormatChecker(())
CHECKER.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
for _name in ("uri", "date-time"):
    CHECKER.checkers[_name] = FORMAT_CHECKER.checkers[_name]

_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*$")


def _plain_check(name: str, test: Any) -> None:
    CHECKER.checkers[name] = (lambda value: not isinstance(value, str) or bool(test(value)), ())


_plain_check("hostname", _HOSTNAME.match)
_plain_check("idn-hostname", _HOSTNAME.match)
_plain_check("duration", re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$").match)
_plain_check("json-pointer", re.compile(r"^(/([^~/]|~[01])*)*$").match)
_plain_check("relative-json-pointer", re.compile(r"^(0|[1-9][0-9]*)(#|(/([^~/]|~[01])*)*)$").match)
_plain_check("uri-reference", lambda v: FORMAT_CHECKER.conforms(v, "uri"))
_plain_check("iri", lambda v: FORMAT_CHECKER.conforms(v, "uri"))
_plain_check("iri-reference", lambda v: FORMAT_CHECKER.conforms(v, "uri"))
_plain_check("uri-template", lambda v: FORMAT_CHECKER.conforms(re.sub(r"\{[^{}]*\}", "x", v), "uri"))


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        return False
    return len(value) % 4 == 0


_plain_check("byte", _is_base64)


def validator(schema: Any) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=CHECKER)


def assert_valid(schema: Any, values: list[Any]) -> None:
    check = validator(schema)
    for value in values:
        errors = list(check.iter_errors(value))
        assert not errors, (value, [(list(e.absolute_path), e.message[:200]) for e in errors[:3]])


def bodies(schema: Any, seeds: Any = SEEDS, **options: Any) -> list[Any]:
    make = compile_maker(schema, **options)
    return [make(Generator(seed)) for seed in seeds]


# --- the vendor documents, resolved by the contract loader ------------------------------------------

@lru_cache(maxsize=None)
def vendor_schemas(document: str) -> dict[str, Any]:
    """Every 2xx JSON response schema of a vendor document, as the loader hands it to the engine
    (``$ref``s inlined, recursive ones as root ``$defs``, OpenAPI 3.0 translated to 2020-12)."""
    contract = load_openapi([VENDOR / f"{document}.json"])
    return {f"{op.method.upper()} {op.path} {status}": response.schema
            for op in contract.operations for status, response in sorted(op.responses.items())
            if 200 <= status < 300 and response.schema}


VENDOR_RESPONSES = [(document, label) for document in ("identity-api", "event-api")
                    for label in vendor_schemas(document)]


def test_the_vendor_documents_have_the_responses_we_generate_for():
    counts = {document: len(vendor_schemas(document)) for document in ("identity-api", "event-api")}
    assert counts["identity-api"] >= 40 and counts["event-api"] >= 25, counts
    assert sum("oneOf" in json.dumps(schema) for schema in vendor_schemas("event-api").values()) > 20


MODES = {"nulls": {}, "values": {"prefer_null": False}, "static": {"prefer_null": False, "dynamic": False}}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("document,label", VENDOR_RESPONSES)
def test_every_vendor_response_body_is_valid(document, label, mode):
    schema = vendor_schemas(document)[label]
    plan = BodyPlan(schema, **MODES[mode])
    rendered = [plan.render(Generator(seed), {}) for seed in SEEDS]
    assert_valid(schema, rendered)
    assert [plan.render(Generator(seed), {}) for seed in SEEDS] == rendered  # same seed, same body


def test_vendor_bodies_carry_values_not_only_nulls():
    """With prefer_null=False the nullable fields of a vendor body get values of their other type."""
    schema = vendor_schemas("identity-api")["POST /v{version}/api-keys 201"]
    body = BodyPlan(schema, prefer_null=False).render(Generator(3), {})
    assert isinstance(body["id"], str) and body["id"] and isinstance(body["created_at"], str)
    nulls = BodyPlan(schema).render(Generator(3), {})
    assert nulls["id"] is None  # the default keeps the contract's rule: null where the type allows it


# --- strings ----------------------------------------------------------------------------------

def test_pattern_strings_match():
    schema = {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"}
    values = bodies(schema)
    assert all(re.fullmatch(r"[A-Z]{3}-[0-9]{4}", v) for v in values), values
    assert len(set(values)) > 15


@pytest.mark.parametrize("pattern", [
    r"^(foo|bar)-\d{2,3}(x|y)?$",  # alternation and groups: rstr
    r"^[a-f0-9]{128}$",  # a long run: the compiled fast path
    r"^(a|bc){150}$",  # a count above 100, which stock rstr cannot render
    r"^(?!admin$)[a-z]{3,6}$",  # a negative lookahead rstr ignores: checked and drawn again
    r"^[A-Z][A-Z0-9_]*\.[A-Z][A-Z0-9_]*$",
    r"[0-9]{2}",  # unanchored: search semantics
    r"^\w+@\w+\.com$",
    r"^(\d{3})-\1$",  # a backreference
])
def test_patterns_of_every_shape_give_matching_strings(pattern):
    schema = {"type": "string", "pattern": pattern}
    values = bodies(schema, range(40))
    assert all(re.search(pattern, v) for v in values), values
    assert_valid(schema, values)


def test_pattern_with_lengths():
    schema = {"type": "string", "pattern": "^[a-z]+$", "minLength": 20, "maxLength": 24}
    values = bodies(schema)
    assert all(20 <= len(v) <= 24 and v.isalpha() for v in values), values


def test_pattern_generation_is_seeded_through_our_random_only():
    schema = {"type": "string", "pattern": r"^(ab|cd)[0-9]{1,4}(x|yz)*$"}
    state = random.getstate()
    first = bodies(schema)
    assert random.getstate() == state  # rstr draws from the generator's Random, not the module's
    assert bodies(schema) == first
    assert len(set(first)) > 5


def test_lengths_without_pattern():
    for schema in ({"type": "string", "maxLength": 3}, {"type": "string", "minLength": 100},
                   {"type": "string", "minLength": 2, "maxLength": 2}):
        assert_valid(schema, bodies(schema))


FORMATS = ["date-time", "date", "time", "email", "idn-email", "uuid", "uri", "url", "iri", "uri-reference",
           "iri-reference", "uri-template", "hostname", "idn-hostname", "ipv4", "ipv6", "byte", "binary",
           "password", "duration", "regex", "json-pointer", "relative-json-pointer"]


BAD = {"regex": "((", "json-pointer": "a/b", "relative-json-pointer": "/a", "duration": "P",
       "byte": "abc", "email": "nobody", "idn-email": "nobody"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_formats(fmt):
    schema = {"type": "string", "format": fmt}
    values = bodies(schema)
    assert_valid(schema, values)
    assert len(set(values)) > 1
    if fmt not in ("binary", "password", "url"):  # any string is one: nothing to check
        assert not CHECKER.conforms(BAD.get(fmt, "not valid \x00"), fmt)  # the check can fail, so the test can


def test_format_with_lengths():
    for schema in ({"type": "string", "format": "byte", "minLength": 5, "maxLength": 10},
                   {"type": "string", "format": "email", "maxLength": 40},
                   {"type": "string", "format": "uuid", "minLength": 36}):
        assert_valid(schema, bodies(schema))
    with pytest.raises(GenerationError):
        compile_maker({"type": "string", "format": "date-time", "maxLength": 5})


# --- numbers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("schema", [
    {"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 8},  # 3.1
    {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.01},
    {"type": "integer", "minimum": -10, "maximum": -5},
    {"type": "number", "maximum": -1000.5},
    {"type": "integer", "minimum": 10**12},
    {"type": "integer", "multipleOf": 7, "minimum": 10, "maximum": 40},
    {"type": "number", "multipleOf": 0.1, "minimum": 0, "maximum": 2},
    {"type": "number", "multipleOf": 0.25, "exclusiveMinimum": 1, "maximum": 2},
    {"type": "integer", "multipleOf": 2.5},
    {"type": "integer", "format": "int32", "minimum": 2**31 - 5},
])
def test_numeric_bounds(schema):
    values = bodies(schema)
    assert_valid(schema, values)


def test_openapi_30_boolean_exclusive_bounds():
    schema = {"type": "number", "minimum": 0, "maximum": 1, "exclusiveMinimum": True, "exclusiveMaximum": True}
    values = bodies(schema, range(200))
    assert all(0 < v < 1 for v in values)
    ints = bodies({"type": "integer", "minimum": 1, "maximum": 3, "exclusiveMinimum": True,
                   "exclusiveMaximum": True}, range(30))
    assert set(ints) == {2}


def test_impossible_bounds_fail_at_compile_time():
    for schema in ({"type": "integer", "minimum": 5, "maximum": 4},
                   {"type": "integer", "exclusiveMinimum": 1, "exclusiveMaximum": 2},
                   {"type": "integer", "multipleOf": 10, "minimum": 1, "maximum": 9}):
        with pytest.raises(GenerationError):
            compile_maker(schema)


# --- nullable, types, enum, const -----------------------------------------------------------------

def test_openapi_30_nullable():
    schema = {"type": "object", "required": ["a", "b", "c"], "properties": {
        "a": {"type": "string", "nullable": True},
        "b": {"type": "string", "nullable": True, "enum": ["x", None]},
        "c": {"type": "integer", "nullable": True, "minimum": 3}}}
    for body in bodies(schema):
        assert body == {"a": None, "b": None, "c": None}  # the property rule: null where allowed
    for body in bodies(schema, prefer_null=False):
        assert isinstance(body["a"], str) and body["b"] in ("x", None) and body["c"] >= 3
    items = bodies({"type": "array", "minItems": 5, "items": {"type": "string", "nullable": True, "enum": [None]}})
    assert all(v is None for body in items for v in body)


def test_null_is_never_chosen_when_the_enum_forbids_it():
    schema = {"type": "object", "required": ["k"],
              "properties": {"k": {"type": ["string", "null"], "enum": ["A", "B"]}}}
    values = bodies(schema)
    assert_valid(schema, values)
    assert {body["k"] for body in values} == {"A", "B"}


def test_type_arrays_enum_and_const():
    for schema in ({"type": ["string", "integer", "null"]}, {"enum": ["a", 1, None, {"x": [1]}]},
                   {"const": {"deep": [1, 2]}}, {"type": "boolean"}, {"type": "null"}):
        values = bodies(schema)
        assert_valid(schema, values)
    assert len({json.dumps(v) for v in bodies({"enum": ["a", "b", "c", "d"]})}) == 4  # seeded choice
    assert {v for v in bodies({"enum": ["a", "b", "c"]}, dynamic=False)} == {"a"}
    with pytest.raises(GenerationError):
        compile_maker({"type": "string", "enum": [1, 2]})


# --- composition --------------------------------------------------------------------------------

def test_oneof_whose_branches_overlap_gives_values_matching_exactly_one():
    schema = {"oneOf": [
        {"type": "object", "properties": {"a": {"type": "string"}}},
        {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]},
    ]}
    values = bodies(schema)
    assert_valid(schema, values)
    numbers = {"oneOf": [{"type": "integer", "multipleOf": 3}, {"type": "integer", "multipleOf": 5}]}
    values = bodies(numbers, range(50))
    assert all((v % 3 == 0) != (v % 5 == 0) for v in values), values


def test_oneof_with_disjoint_branches_is_not_checked_per_value():
    """[X, null] (every nullable $ref of the vendor documents) is told apart by type: no check."""
    schema = {"oneOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                        {"type": "null"}]}
    values = bodies(schema, range(40))
    assert_valid(schema, values)
    assert None in values and any(isinstance(v, dict) for v in values)


def test_oneof_that_no_value_can_satisfy_fails_at_compile_time():
    with pytest.raises(GenerationError):
        compile_maker({"oneOf": [{"type": "string"}, {"type": "string", "minLength": 0}]})


def test_anyof_and_siblings():
    schema = {"anyOf": [{"type": "string", "minLength": 2}, {"type": "integer"}], "maxLength": 3}
    assert_valid(schema, bodies(schema))
    schema = {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}},
              "oneOf": [{"properties": {"kind": {"const": "a"}}}, {"properties": {"kind": {"const": "b"}}}]}
    values = bodies(schema)
    assert_valid(schema, values)
    assert {v["kind"] for v in values} == {"a", "b"}


def test_allof_deep_merges_properties_and_required():
    schema = {"allOf": [
        {"type": "object", "properties": {"a": {"type": "string", "minLength": 3}}, "required": ["a"]},
        {"properties": {"a": {"maxLength": 5}, "b": {"type": "integer", "minimum": 1}}, "required": ["b"]},
        {"properties": {"c": {"type": "array", "items": {"type": "string", "pattern": "^x"}}}},
    ]}
    values = bodies(schema)
    assert_valid(schema, values)
    assert all(3 <= len(v["a"]) <= 5 and v["b"] >= 1 for v in values)
    closed = {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
                        {"properties": {"b": {"type": "string"}}}]}
    assert_valid(closed, bodies(closed))  # b is forbidden by the first part, so left out
    with pytest.raises(GenerationError):
        compile_maker({"allOf": [{"type": "string"}, {"type": "integer"}]})


def test_allof_with_two_patterns():
    schema = {"allOf": [{"type": "string", "pattern": "^[a-z]{4,8}$"}, {"pattern": "a"}]}
    values = bodies(schema)
    assert_valid(schema, values)


def test_discriminator_sets_the_property_to_the_branch_name():
    schema = {
        "oneOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}, {"$ref": "#/$defs/Lizard"}],
        "discriminator": {"propertyName": "petType", "mapping": {"cat": "#/$defs/Cat", "dog": "#/$defs/Dog"}},
        "$defs": {
            "Cat": {"type": "object", "required": ["petType"], "additionalProperties": False,
                    "properties": {"petType": {"type": "string"}, "meow": {"type": "boolean"}}},
            "Dog": {"type": "object", "required": ["petType", "bark"], "additionalProperties": False,
                    "properties": {"petType": {"type": "string"}, "bark": {"type": "string"}}},
            "Lizard": {"title": "Lizard", "type": "object", "required": ["petType", "scales"],
                       "additionalProperties": False,
                       "properties": {"petType": {"type": "string"}, "scales": {"type": "integer"}}},
        },
    }
    values = bodies(schema, range(40))
    assert_valid(schema, values)
    expected = {"meow": "cat", "bark": "dog", "scales": "Lizard"}  # mapping key, else the schema's name
    for value in values:
        (field,) = set(value) - {"petType"}
        assert value["petType"] == expected[field], value
    assert {v["petType"] for v in values} == {"cat", "dog", "Lizard"}


def test_discriminator_only_branches_follow_openapi_and_say_so():
    """Branches that accept each other's values are told apart only by the discriminator: no
    value is valid for plain JSON Schema, so the tagged branch is answered (and noted)."""
    cat = {"type": "object", "required": ["petType"], "properties": {"petType": {"type": "string"}}}
    schema = {"oneOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}],
              "discriminator": {"propertyName": "petType"}, "$defs": {"Cat": cat, "Dog": cat}}
    plan = BodyPlan(schema)
    values = [plan.render(Generator(seed)) for seed in SEEDS]
    assert {v["petType"] for v in values} == {"Cat", "Dog"}
    assert_valid(cat, values)
    assert plan.notes and "discriminator" in plan.notes[0]


def test_recursive_tree_stops_at_the_depth_limit():
    schema = {"$ref": "#/$defs/Node", "$defs": {"Node": {
        "type": "object", "required": ["value", "children"],
        "properties": {"value": {"type": "integer"},
                       "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                       "parent": {"oneOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}}}}}

    def depth(node: Any) -> int:
        if not isinstance(node, dict):
            return 0
        nested = list(node["children"]) + ([node["parent"]] if node.get("parent") else [])
        return 1 + max((depth(child) for child in nested), default=0)

    values = bodies(schema, range(40))
    assert_valid(schema, values)
    assert max(depth(v) for v in values) <= MAX_DEPTH + 1
    assert max(depth(v) for v in values) >= 2  # it does recurse


def test_recursion_ends_with_the_smallest_valid_value():
    linked = {"$ref": "#/$defs/L", "$defs": {"L": {"type": "object", "required": ["next"],
                                                   "properties": {"next": {"anyOf": [{"$ref": "#/$defs/L"},
                                                                                     {"type": "null"}]},
                                                                  "label": {"type": "string"}}}}}
    values = bodies(linked)
    assert_valid(linked, values)

    def length(node: Any) -> int:
        return 0 if node is None else 1 + length(node["next"])

    assert max(length(v) for v in values) == MAX_DEPTH + 1  # past the limit, null: the smallest value
    with pytest.raises(GenerationError):  # every value needs a deeper one: none is finite
        compile_maker({"$ref": "#/$defs/Loop", "$defs": {"Loop": {"type": "object", "required": ["again"],
                                                                   "properties": {"again": {"$ref": "#/$defs/Loop"}}}}})
    lists = {"$ref": "#/$defs/T", "$defs": {"T": {"type": "array", "minItems": 1, "maxItems": 2,
                                                  "items": {"anyOf": [{"type": "integer"}, {"$ref": "#/$defs/T"}]}}}}
    assert_valid(lists, bodies(lists))


def test_ref_to_the_root():
    schema = {"type": "object", "properties": {"child": {"anyOf": [{"$ref": "#"}, {"type": "null"}]},
                                               "n": {"type": "integer"}}, "required": ["n", "child"]}
    assert_valid(schema, bodies(schema))


# --- arrays and objects ---------------------------------------------------------------------------

def test_unique_items():
    schema = {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 4}, "minItems": 3,
              "uniqueItems": True}
    values = bodies(schema, range(40))
    assert_valid(schema, values)
    assert all(len(set(v)) == len(v) >= 3 for v in values)
    booleans = {"type": "array", "items": {"type": "boolean"}, "minItems": 2, "maxItems": 2, "uniqueItems": True}
    assert_valid(booleans, bodies(booleans))
    with pytest.raises(GenerationError):
        compile_maker({"type": "array", "items": {"enum": [1, 2]}, "minItems": 3, "uniqueItems": True})


def test_array_counts_prefix_items_and_contains():
    for schema in (
        {"type": "array", "items": {"type": "string"}, "minItems": 4, "maxItems": 5},
        {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False, "minItems": 2},
        {"type": "array", "prefixItems": [{"const": "head"}], "items": {"type": "integer"}, "minItems": 3},
        {"type": "array", "items": {"type": "integer"}, "contains": {"minimum": 100}, "minItems": 1},
        {"type": "array", "items": [{"type": "string"}, {"type": "integer"}], "additionalItems": False},  # draft 4
    ):
        values = bodies(schema)
        if "additionalItems" in schema:
            schema = {"type": "array", "prefixItems": schema["items"], "items": False}
        assert_valid(schema, values)
    counts = {len(v) for v in bodies({"type": "array", "items": {"type": "integer"}}, range(40))}
    assert counts == {0, 1, 2}


def test_objects_get_required_and_optional_properties_never_optional_write_only():
    schema = {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string"}, "note": {"type": "string"},
        "secret": {"type": "string", "writeOnly": True}}}
    for value in bodies(schema):
        assert set(value) == {"id", "note"}
    plan = BodyPlan(schema)
    assert set(plan.render(Generator(1))) == {"id", "note"}


def test_additional_and_min_properties():
    for schema in (
        {"type": "object", "minProperties": 3, "properties": {"a": {"type": "string"}},
         "additionalProperties": {"type": "integer"}},
        {"type": "object", "required": ["x-extra"], "patternProperties": {"^x-": {"type": "boolean"}},
         "additionalProperties": False},
        {"type": "object", "maxProperties": 1, "properties": {"a": {"type": "string"}, "b": {"type": "string"}}},
        {"type": "object", "properties": {"id": {"type": "string"}}, "patternProperties": {"^i": {"minLength": 30}}},
    ):
        assert_valid(schema, bodies(schema))
    with pytest.raises(GenerationError):
        compile_maker({"type": "object", "minProperties": 2, "properties": {"a": {}}, "additionalProperties": False})


def test_keywords_construction_cannot_promise_are_checked():
    for schema in (
        {"type": "string", "not": {"enum": ["a", "b"]}, "maxLength": 1},
        {"type": "object", "properties": {"kind": {"enum": ["x", "y"]}, "n": {"type": "integer"}},
         "required": ["kind"], "if": {"properties": {"kind": {"const": "x"}}},
         "then": {"required": ["n"], "properties": {"n": {"minimum": 100}}}},
        {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
         "dependentRequired": {"a": ["b"]}, "propertyNames": {"maxLength": 1}},
    ):
        assert_valid(schema, bodies(schema, range(30)))


# --- examples, defaults, dynamic=False ----------------------------------------------------------------

def test_examples_with_dynamic_false():
    schema = {"type": "object", "required": ["id", "tags", "n"], "properties": {
        "id": {"type": "string", "example": "cus_123"},
        "tags": {"type": "array", "items": {"type": "string"}, "examples": [["a", "b"]]},
        "n": {"type": "integer", "minimum": 5, "example": 1, "default": 7},  # an invalid example is skipped
        "free": {"type": "string"}}}
    for value in bodies(schema, dynamic=False):
        assert value["id"] == "cus_123" and value["tags"] == ["a", "b"] and value["n"] == 7
    dynamic = bodies(schema)
    assert all(v["id"] != "cus_123" for v in dynamic)
    assert_valid(schema, dynamic)
    whole = {"type": "object", "properties": {"a": {"type": "string"}}, "example": {"a": "whole"}}
    plan = BodyPlan(whole, dynamic=False)
    assert plan.render(Generator(1)) == {"a": "whole"}
    assert plan.render(Generator(1)) is not plan.render(Generator(1))  # a copy per answer
    assert BodyPlan(whole).render(Generator(1)) != {"a": "whole"}


def test_dynamic_false_keeps_echo():
    response = {"type": "object", "properties": {"name": {"type": "string", "example": "Ex"},
                                                 "id": {"type": "string", "example": "id_1"}}}
    request = {"type": "object", "properties": {"name": {"type": "string"}}}
    plan = BodyPlan(response, request, dynamic=False)
    assert plan.render(Generator(1), {"name": "sent"}) == {"name": "sent", "id": "id_1"}
    assert plan.render(Generator(1), {}) == {"name": "Ex", "id": "id_1"}


def test_invalid_defaults_are_not_answered():
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer", "minimum": 1,
                                                                     "default": 0}}}
    assert all(v["n"] >= 1 for v in bodies(schema))


# --- plans, seeds ---------------------------------------------------------------------------------------

def test_same_seed_same_values_and_seeds_differ():
    schema = vendor_schemas("event-api")["GET /v{version}/events/{resourceId} 200"]
    plan = BodyPlan(schema, prefer_null=False)
    first = [plan.render(Generator(seed)) for seed in range(5)]
    again = BodyPlan(copy.deepcopy(schema), prefer_null=False)  # another object: compiled afresh
    assert again.generated is not plan.generated
    assert [again.render(Generator(seed)) for seed in range(5)] == first
    assert len({json.dumps(body, sort_keys=True) for body in first}) == 5
    g = Generator(9)
    sequence = [plan.render(g) for _ in range(3)]
    g.reseed()
    assert [plan.render(g) for _ in range(3)] == sequence


def test_plans_of_non_object_bodies():
    for schema in ({"type": "array", "items": {"type": "integer"}, "minItems": 1},
                   {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                   {"allOf": [{"$ref": "#/$defs/A"}], "$defs": {"A": {"type": "object", "required": ["a"],
                                                                       "properties": {"a": {"type": "string"}}}}}):
        plan = BodyPlan(schema)
        assert_valid(schema, [plan.render(Generator(seed)) for seed in SEEDS])


def test_top_level_ref_and_allof_keep_the_template_and_echo():
    schema = {"allOf": [{"$ref": "#/$defs/Base"}, {"properties": {"extra": {"const": "E"}}}],
              "$defs": {"Base": {"type": "object", "properties": {"name": {"type": "string"},
                                                                  "id": {"type": "string", "readOnly": True}}}}}
    request = {"type": "object", "properties": {"name": {"type": "string"}}}
    plan = BodyPlan(schema, request)
    assert plan.fallback is None
    assert [name for name, _ in plan.echoed] == ["name"]
    assert plan.template["extra"] == "E"
    body = plan.render(Generator(1), {"name": "mine"})
    assert body["name"] == "mine" and body["extra"] == "E" and isinstance(body["id"], str)


def test_unresolved_refs_fail_at_compile_time():
    with pytest.raises(GenerationError, match="resolved"):
        compile_maker({"$ref": "other.json#/X"})
    with pytest.raises(GenerationError, match="points at nothing"):
        compile_maker({"$ref": "#/$defs/Missing"})


def test_a_plan_built_again_for_the_same_schemas_is_the_one_compiled_before():
    """Scripted answers build their plan per request: it must not be compiled per request."""
    schema = vendor_schemas("event-api")["GET /v{version}/events/{resourceId} 200"]
    first, second = BodyPlan(schema), BodyPlan(schema)
    assert second.generated is first.generated and second.template is first.template
    assert BodyPlan(schema, prefer_null=False).generated is not first.generated
    assert second.render(Generator(4)) == first.render(Generator(4))
