"""Makers found again by content give exactly what a fresh compilation gives.

A loader inlines a schema afresh wherever a recursive one lies below it, so a document holds
many equal copies of one schema; makers are kept by content as well as by identity so that the
copies are compiled once. These tests hold that reuse to one rule: whatever was compiled
before, a schema's values for a seed are the ones a compilation from nothing gives, and stay
valid against the schema and the root it is compiled against.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

import mockserver.generation as generation
from mockserver.contract.build import load_openapi
from mockserver.generation import MAX_DEPTH, BodyPlan, GenerationError, Generator, compile_maker
from test_generation_schemas import assert_valid

ROOT = Path(__file__).resolve().parent.parent
SEEDS = range(6)


def forget() -> None:
    """Every schema-keyed table emptied: what follows compiles from nothing."""
    generation._MAKERS.clear()
    generation._PLANS.clear()
    generation._FAKER_SEEN.clear()
    generation._FAKER_CHECKED.clear()
    generation._forget()


def values(make: Callable[[Generator], Any]) -> str:
    return json.dumps([make(Generator(seed)) for seed in SEEDS])


def fresh(schema: Any, **options: Any) -> str:
    forget()
    return values(compile_maker(copy.deepcopy(schema), **options))


def tree(leaf: dict[str, Any]) -> dict[str, Any]:
    """A response whose recursive part stays a $ref into the root's $defs, as the loader leaves it."""
    return {
        "type": "object",
        "required": ["id", "root"],
        "properties": {"id": {"type": "string", "minLength": 3}, "root": {"$ref": "#/$defs/Node"}},
        "$defs": {"Node": {"type": "object", "required": ["leaf"],
                           "properties": {"leaf": leaf, "children": {"type": "array",
                                                                     "items": {"$ref": "#/$defs/Node"}}}}},
    }


CORPUS: list[Any] = [
    tree({"type": "string", "enum": ["A", "B", "C"]}),
    tree({"type": "integer", "minimum": 5, "maximum": 9}),
    {"type": "object", "properties": {"a": {"const": 1}, "b": {"const": 1.0}, "c": {"const": True},
                                      "d": {"type": ["string", "null"]}, "e": {"default": [1, 2]}}},
    {"oneOf": [
        {"type": "object", "properties": {"a": {"type": "string"}}},
        {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"]},
    ]},
    {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}},
     "oneOf": [{"properties": {"kind": {"const": "a"}}}, {"properties": {"kind": {"const": "b"}}}]},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "string", "pattern": "^[a-z]{4,8}$"}},
                "required": ["a"]},
               {"properties": {"a": {"maxLength": 6}, "b": {"type": "number", "multipleOf": 0.5}}}]},
    {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 2, "uniqueItems": True},
    {"type": "object", "properties": {"n": {"type": "string", "not": {"$ref": "#/$defs/Short"}}},
     "required": ["n"], "$defs": {"Short": {"maxLength": 3}}},
    {"type": "string", "x-faker": {"method": "bothify", "args": {"text": "ID-####"}}},
]


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_values_are_the_same_whatever_was_compiled_before(index):
    schema = CORPUS[index]
    for options in ({}, {"dynamic": False}, {"prefer_null": False}):
        expected = fresh(schema, **options)
        for other in CORPUS:  # equal copies and unrelated schemas, compiled first
            compile_maker(copy.deepcopy(other), **options)
        again = compile_maker(copy.deepcopy(schema), **options)
        assert values(again) == expected
        assert_valid(schema, json.loads(expected))


def test_equal_copies_under_a_recursive_schema_are_compiled_once(monkeypatch):
    forget()
    compiled: list[Any] = []
    typed = generation._Compiler._typed

    def spy(self: Any, node: Any, minimal: bool) -> Any:
        compiled.append(node)
        return typed(self, node, minimal)

    monkeypatch.setattr(generation._Compiler, "_typed", spy)
    schema = tree({"type": "object", "properties": {"x": {"type": "string"}, "y": {"type": "integer"}}})
    first = BodyPlan(schema)
    once = len(compiled)
    copies = [BodyPlan(copy.deepcopy(schema)) for _ in range(5)]
    assert len(compiled) == once  # five copies, nothing compiled again
    expected = [first.render(Generator(seed), {}) for seed in SEEDS]
    for plan in copies:
        assert [plan.render(Generator(seed), {}) for seed in SEEDS] == expected
    assert_valid(schema, expected)


def test_the_same_ref_into_different_definitions_is_compiled_for_each():
    forget()
    digits = tree({"type": "string", "pattern": "^[0-9]{6}$"})
    letters = tree({"type": "string", "pattern": "^[a-z]{6}$"})
    assert digits["properties"] == letters["properties"]  # equal up to the root's $defs
    first = [compile_maker(digits)(Generator(seed)) for seed in SEEDS]
    second = [compile_maker(letters)(Generator(seed)) for seed in SEEDS]
    assert_valid(digits, first)
    assert_valid(letters, second)
    assert json.dumps(second) == fresh(letters)


def test_a_validator_reads_the_definitions_of_its_own_root():
    forget()
    node = {"type": "string", "minLength": 2, "maxLength": 5, "not": {"$ref": "#/$defs/Bad"}}
    short = {"type": "object", "required": ["n"], "properties": {"n": node}, "$defs": {"Bad": {"maxLength": 3}}}
    long = {"type": "object", "required": ["n"], "properties": {"n": copy.deepcopy(node)},
            "$defs": {"Bad": {"minLength": 4}}}
    made = [compile_maker(short)(Generator(seed)) for seed in SEEDS]
    other = [compile_maker(long)(Generator(seed)) for seed in SEEDS]
    assert all(len(v["n"]) >= 4 for v in made) and all(len(v["n"]) <= 3 for v in other)
    assert_valid(short, made)
    assert_valid(long, other)


def test_recursion_depth_still_decides_where_a_tree_ends():
    """The same node met at another depth is made as that depth asks (here: smallest, no children)."""
    forget()
    schema = tree({"type": "string"})
    schema["$defs"]["Node"]["properties"]["children"]["minItems"] = 1

    def depth(node: dict[str, Any]) -> int:
        return 1 + max((depth(child) for child in node.get("children") or ()), default=0)

    for _ in range(3):
        bodies = [compile_maker(copy.deepcopy(schema))(Generator(seed)) for seed in SEEDS]
        assert {depth(body["root"]) for body in bodies} == {MAX_DEPTH + 1}
    assert json.dumps(bodies) == fresh(schema)


def test_scalars_equal_in_python_are_different_schemas():
    forget()
    made = [compile_maker({"const": value})(Generator(0)) for value in (1, 1.0, True, -0.0, 0.0)]
    assert json.dumps(made) == "[1, 1.0, true, -0.0, 0.0]"


def test_a_failure_is_not_kept_for_a_root_where_the_schema_can_be_made():
    forget()
    missing = {"type": "object", "required": ["a"], "properties": {"a": {"$ref": "#/$defs/A"}}}
    with pytest.raises(GenerationError):
        compile_maker(missing)
    present = {**copy.deepcopy(missing), "$defs": {"A": {"const": "here"}}}
    assert compile_maker(present)(Generator(0)) == {"a": "here"}


def test_closed_oneof_branches_told_apart_by_required_names_are_not_sampled(monkeypatch):
    forget()
    checked: list[str] = []
    original = generation._Compiler.checked
    monkeypatch.setattr(generation._Compiler, "checked",
                        lambda self, make, check, what: checked.append(what) or original(self, make, check, what))
    schema = {"oneOf": [
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False},
        {"type": "object", "properties": {"b": {"type": "integer"}}, "required": ["b"], "additionalProperties": False},
    ]}
    made = [compile_maker(schema)(Generator(seed)) for seed in range(30)]
    assert not checked
    assert_valid(schema, made)
    assert {next(iter(v)) for v in made} == {"a", "b"}
    open_branch = copy.deepcopy(schema)
    del open_branch["oneOf"][0]["additionalProperties"]  # may carry "b": told apart only by trying
    compile_maker(open_branch)
    assert checked == ["oneOf (branches that overlap)"]


def _generated_document() -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("gen_openapi", ROOT / "bench" / "gen_openapi.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name].generate(operations=60, schemas=240)


def test_a_generated_document_gives_the_bodies_of_a_compilation_from_nothing(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(_generated_document()))
    contract = load_openapi([path])
    answers = [(op, status) for op in contract.operations for status in op.responses if 200 <= status < 300]
    assert any("$defs" in (op.responses[status].schema or {}) for op, status in answers)  # copies to share

    def render_all(each_from_nothing: bool) -> list[Any]:
        out = []
        for op, status in answers:
            if each_from_nothing:
                forget()
            plan = generation.response_plan(op, status)
            out.append([plan.render(Generator(seed), {}) for seed in range(3)])
        return out

    forget()
    warm = render_all(False)
    assert render_all(True) == warm
    for (op, status), bodies in zip(answers, warm):
        assert_valid(op.responses[status].schema, bodies)


def test_importing_generation_does_not_import_faker():
    code = "import sys, mockserver.generation; print('faker' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
