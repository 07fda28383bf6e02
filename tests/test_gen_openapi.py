"""bench/gen_openapi.py: a valid, exact and reproducible OpenAPI 3.1 document at the Configuration API's size."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

ROOT = Path(__file__).resolve().parent.parent
VENDOR = Path(__file__).resolve().parent / "data" / "vendor"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _load_generator():
    # bench/ is not a package; the module is loaded from its file, as `python bench/gen_openapi.py` runs it.
    spec = importlib.util.spec_from_file_location("gen_openapi", ROOT / "bench" / "gen_openapi.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def default_text() -> str:
    return gen.dumps(gen.generate())


@pytest.fixture(scope="module")
def default_doc(default_text: str) -> dict[str, Any]:
    return json.loads(default_text)


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()
            if method in METHODS]


def nodes(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for child in value.values():
            yield from nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from nodes(child)


def resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    target: Any = doc
    for token in ref[2:].split("/"):
        target = target[token.replace("~1", "/").replace("~0", "~")]
    return target


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = gen.run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_the_default_document_is_valid_openapi_3_1(default_doc):
    # The full size takes a few seconds to validate (4-7 s here): affordable, and it is the
    # document the benchmark uses, so it is the one checked.
    assert default_doc["openapi"] == "3.1.0"
    validate(default_doc, cls=OpenAPIV31SpecValidator)


def test_a_small_instance_with_another_seed_is_valid_too():
    validate(gen.generate(60, 240, seed=7), cls=OpenAPIV31SpecValidator)


@pytest.mark.parametrize(("ops", "schemas"), [(300, 1200), (60, 240), (301, 1201), (7, 60), (1, 20)])
def test_exactly_the_requested_operations_and_schemas(ops, schemas):
    doc = gen.generate(ops, schemas)
    assert len(operations(doc)) == ops
    assert len(doc["components"]["schemas"]) == schemas


def test_the_default_size_is_about_sixty_resources_with_crud_list_and_actions(default_doc):
    ops = operations(default_doc)
    collections = {path for path, method, _ in ops if method == "get" and path.count("/") in (2, 3)
                   and not path.endswith("}") and any(p == path + "/{resourceId}" for p, _, _ in ops)}
    assert 45 <= len(collections) <= 65
    methods = {m: sum(1 for _, method, _ in ops if method == m) for m in ("get", "post", "patch", "delete")}
    assert all(methods.values()), methods
    assert any("/{resourceId}/" in path and not path.endswith("}") for path, _, _ in ops)  # item actions
    assert any(p.count("{") == 3 for p, _, _ in ops)  # sub-resource items: version, resourceId, sub id


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not(default_text):
    assert gen.dumps(gen.generate()) == default_text
    code, out, _ = run_cli()
    assert code == 0 and out == default_text
    assert gen.dumps(gen.generate(seed=gen.DEFAULT_SEED + 1)) != default_text


def test_every_ref_resolves_and_every_schema_is_used(default_doc):
    schemas = default_doc["components"]["schemas"]
    refs = [node["$ref"] for node in nodes(default_doc) if "$ref" in node]
    assert len(refs) > 2000
    for ref in refs:
        assert isinstance(resolve(default_doc, ref), dict), ref
    # Every schema is reachable from an operation, as in the vendor's documents: nothing the
    # mock compiles at start-up is dead weight the real API would not have.
    seen: set[str] = set()
    todo = [ref for _, _, op in operations(default_doc) for ref in
            (node["$ref"] for node in nodes(op) if "$ref" in node)]
    while todo:
        name = todo.pop().rsplit("/", 1)[-1]
        if name not in seen:
            seen.add(name)
            todo += [node["$ref"] for node in nodes(schemas[name]) if "$ref" in node]
    assert seen == set(schemas)


def test_the_shapes_follow_the_vendor_documents(default_doc):
    vendor = json.loads((VENDOR / "identity-api.json").read_text())
    assert default_doc["components"]["securitySchemes"] == vendor["components"]["securitySchemes"]
    for path, _, op in operations(default_doc):
        assert path.startswith("/v{version}/")
        params = {(p["in"], p["name"]): p for p in op["parameters"]}
        assert params[("path", "version")]["schema"] == {"default": "1", "type": "string"}
        assert params[("header", "X-API-KEY")]["required"] is True
        assert params[("header", "x-platform-id")]["required"] is False
        assert {"401", "403"} <= set(op["responses"])
    for name, schema in default_doc["components"]["schemas"].items():
        assert schema["title"] == name and "type" in schema
    names = default_doc["components"]["schemas"]
    assert any(n.endswith("CreateRequest") for n in names) and any(n.endswith("UpdateRequest") for n in names)
    assert any(n.endswith("ResponseWrapper") for n in names)
    assert names["ApiError"]["required"] == ["type", "code", "message"]


def test_cycles_and_composition_are_present_but_rare(default_doc):
    stats = gen.measure(default_doc)
    assert 1 <= stats["self-referencing schemas"] <= 5
    assert 1 <= stats["cycles of 2+ schemas"] <= 2
    for keyword in ("allOf", "anyOf", "discriminator"):
        assert 1 <= stats[keyword] <= 5, keyword
    assert stats["oneOf [$ref, null]"] > 200  # the vendor's way of writing a nullable reference
    assert stats["unresolved $ref"] == 0


def test_measure_reports_the_vendor_figures_the_generator_was_modelled_on():
    event = gen.measure(json.loads((VENDOR / "event-api.json").read_text()))
    identity = gen.measure(json.loads((VENDOR / "identity-api.json").read_text()))
    assert (identity["operations"], identity["schemas"], event["operations"], event["schemas"]) == (43, 73, 27, 407)
    assert (event["schemas enum"], event["oneOf [$ref, null]"], event["longest $ref chain (schemas)"]) == (140, 165, 19)
    for stats in (event, identity):
        assert stats["self-referencing schemas"] == stats["cycles of 2+ schemas"] == 0
        assert "allOf" not in stats and "anyOf" not in stats and "discriminator" not in stats


def test_cli_writes_the_file_it_is_asked_for(tmp_path):
    out = tmp_path / "small.json"
    code, stdout, stderr = run_cli("--operations", "60", "--schemas", "240", "--out", str(out))
    assert (code, stdout, stderr) == (0, "", "")
    assert out.read_text() == gen.dumps(gen.generate(60, 240))


def test_cli_says_how_many_schemas_the_operations_need():
    code, stdout, stderr = run_cli("--operations", "300", "--schemas", "10")
    assert code == 2 and stdout == ""
    assert "300 operations need at least" in stderr and "asked for 10" in stderr


def test_cli_measure_prints_a_column_per_document():
    code, stdout, _ = run_cli("--measure", str(VENDOR / "event-api.json"), "--operations", "20", "--schemas", "80")
    assert code == 0
    header, *rows = stdout.splitlines()
    assert "event-api" in header and "generated" in header
    assert any(row.split() == ["operations", "27", "20"] for row in rows)
