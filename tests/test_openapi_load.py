"""Loading OpenAPI documents: the vendor documents load, $refs resolve across files, and every
broken file is one line naming the file and the line (the cases are files beside their
``.expected`` line under tests/data/openapi_load/)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import DATA
from mockserver.contract import load as openapi_load
from mockserver.errors import LoadError, LoadErrors
from mockserver.contract.load import load_documents, read_document

HERE = DATA / "openapi_load"
GOOD = HERE / "good"
BROKEN = HERE / "broken"  # broken whichever check runs
FULL = HERE / "full"  # only openapi-spec-validator's full check sees what is wrong
VENDOR = [DATA / "vendor" / name for name in
          ("configuration-api.webhooks.json", "identity-api.json", "event-api.json")]


def _cases(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".json"))


def _only_error(paths: list[Path], full_check: bool) -> str:
    with pytest.raises(LoadErrors) as caught:
        load_documents(paths, full_check=full_check)
    assert len(caught.value.errors) == 1, caught.value
    line = str(caught.value.errors[0])
    assert "\n" not in line
    return line


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


# ---------------------------------------------------------------- documents that load


@pytest.mark.parametrize("full_check", [False, True], ids=["fast", "full"])
@pytest.mark.parametrize("path", VENDOR, ids=[p.stem for p in VENDOR])
def test_vendor_documents_load_and_their_refs_resolve_through_the_registry(path, full_check):
    loaded = load_documents([path], full_check=full_check)
    (root,) = loaded.roots
    assert root.path == path
    assert loaded.version(root) == "3.1"
    assert list(loaded.files) == [root.uri]  # no sibling files
    resolver = loaded.registry.resolver(base_uri=root.uri)
    refs = set(_refs(root.data))
    assert refs
    for ref in refs:
        assert isinstance(resolver.lookup(ref).contents, dict), ref


@pytest.mark.parametrize("full_check", [False, True], ids=["fast", "full"])
def test_refs_to_sibling_files_resolve_relative_to_the_file_that_holds_them(full_check):
    loaded = load_documents([GOOD / "petstore.yaml", GOOD / "events.yaml"], full_check=full_check)
    petstore, events = loaded.roots
    assert (loaded.version(petstore), loaded.version(events)) == ("3.0", "3.1")
    assert sorted(Path(s.path).relative_to(GOOD).as_posix() for s in loaded.files.values()) == [
        "common.yaml", "events.yaml", "parts/event-paths.yaml", "petstore.yaml", "schemas/error.json",
    ]
    pet = loaded.registry.resolver(base_uri=petstore.uri).lookup("common.yaml#/components/schemas/Pet")
    assert pet.contents["required"] == ["name"]
    # a $ref inside a sibling is relative to the sibling, for later stages too
    assert pet.resolver.lookup(pet.contents["properties"]["parent"]["$ref"]).contents is pet.contents
    error = loaded.registry.resolver(base_uri=petstore.uri).lookup("./schemas/error.json")
    code = error.resolver.lookup(error.contents["properties"]["code"]["$ref"])
    assert code.contents["enum"] == ["NOT_FOUND", "INTERNAL"]
    event = loaded.registry.resolver(base_uri=events.uri).lookup("parts/event-paths.yaml#/Event")
    assert event.resolver.lookup("#/Event").contents is event.contents


def test_parts_of_a_sibling_file_no_ref_reaches_are_not_required():
    # common.yaml's `Unused` refers to a file that does not exist; nothing refers to `Unused`
    assert "this-file-does-not-exist.yaml" in (GOOD / "common.yaml").read_text()
    loaded = load_documents([GOOD / "petstore.yaml"], full_check=True)
    assert len(loaded.roots) == 1


def test_yaml_is_read_as_the_json_it_stands_for():
    data = read_document(GOOD / "petstore.yaml").data
    responses = data["paths"]["/pets/{id}"]["get"]["responses"]
    assert list(responses) == ["200", "default"]  # `200:` is a string key, as in JSON
    example = responses["200"]["content"]["application/json"]["example"]
    # a date stays a string; a $ref inside an example is data, left alone and never followed
    assert example == {"$ref": "this is an example, not a reference", "born": "2020-01-31"}


def test_json_and_yaml_are_told_apart_by_content(tmp_path):
    looks_like_json = tmp_path / "api.yaml"
    looks_like_json.write_text(json.dumps({"openapi": "3.1.0", "info": {"title": "t", "version": "1"}}))
    assert read_document(looks_like_json).data["info"]["title"] == "t"
    yaml_with_flow_mapping = tmp_path / "flow.yaml"
    yaml_with_flow_mapping.write_text("{openapi: 3.1.0, info: {title: t, version: '1'}}\n")
    assert read_document(yaml_with_flow_mapping).data["openapi"] == "3.1.0"


# ---------------------------------------------------------------- broken documents


@pytest.mark.parametrize("full_check", [False, True], ids=["fast", "full"])
@pytest.mark.parametrize("path", _cases(BROKEN), ids=[p.name for p in _cases(BROKEN)])
def test_broken_document_is_one_line_naming_file_and_line(path, full_check):
    expected = path.with_suffix(".expected").read_text().strip()
    assert _only_error([path], full_check) == f"{BROKEN}/{expected}"


@pytest.mark.parametrize("path", _cases(FULL), ids=[p.name for p in _cases(FULL)])
def test_full_check_finds_what_the_openapi_schema_cannot(path):
    expected = path.with_suffix(".expected").read_text().strip()
    assert load_documents([path], full_check=False).roots  # serve starts
    assert _only_error([path], full_check=True) == f"{FULL}/{expected}"  # check does not


@pytest.mark.parametrize("path", _cases(BROKEN), ids=[p.name for p in _cases(BROKEN)])
def test_without_jsonschema_rs_the_errors_are_the_same(monkeypatch, path):
    monkeypatch.setattr(openapi_load, "jsonschema_rs", None)  # jsonschema, the slow fallback
    expected = path.with_suffix(".expected").read_text().strip()
    assert _only_error([path], False) == f"{BROKEN}/{expected}"


def test_every_broken_root_is_reported_at_once_and_a_shared_sibling_once(tmp_path):
    (tmp_path / "shared.yaml").write_text("Ok:\n  description: ok\n  content: [\n")
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(
            "openapi: 3.1.0\ninfo: {title: t, version: '1'}\n"
            "paths:\n  /x:\n    get:\n      responses:\n        '200': {$ref: 'shared.yaml#/Ok'}\n")
    roots = [GOOD / "petstore.yaml", BROKEN / "swagger-2.yaml", tmp_path / "a.yaml", tmp_path / "b.yaml",
             BROKEN / "missing-component.yaml"]
    with pytest.raises(LoadErrors) as caught:
        load_documents(roots, full_check=False)
    assert [re.sub(r":.*", "", str(e)) for e in caught.value.errors] == [
        str(BROKEN / "swagger-2.yaml"), str(tmp_path / "shared.yaml"), str(BROKEN / "missing-component.yaml"),
    ]


def test_a_file_that_cannot_be_read_is_one_line(tmp_path):
    with pytest.raises(LoadError, match=r"nowhere\.yaml: cannot read: file not found$"):
        read_document(tmp_path / "nowhere.yaml")
    (tmp_path / "latin1.yaml").write_bytes("openapi: 3.1.0\ninfo: {title: caf\xe9}\n".encode("latin-1"))
    with pytest.raises(LoadError, match=r"latin1\.yaml: cannot read: not UTF-8 text"):
        read_document(tmp_path / "latin1.yaml")


# ---------------------------------------------------------------- start-up time


def _big_document() -> dict[str, Any]:
    """~300 operations and ~1,200 schemas: paths of event-api.json copied 12 times over
    three renamed copies of its 407 schemas."""
    source = json.loads((DATA / "vendor" / "event-api.json").read_text())

    def renamed(node: Any, schemas: str, ops: str) -> Any:
        if isinstance(node, dict):
            return {k: (v + ops if k == "operationId"
                        else re.sub(r"^(#/components/schemas/[^/]+)", r"\g<1>" + schemas, v) if k == "$ref"
                        else renamed(v, schemas, ops)) for k, v in node.items()}
        if isinstance(node, list):
            return [renamed(v, schemas, ops) for v in node]
        return node

    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for copy in range(12):
        suffix = f"_{copy % 3}"
        for name, schema in source["components"]["schemas"].items():
            schemas[name + suffix] = renamed(schema, suffix, "")
        for path, item in source["paths"].items():
            paths[f"/c{copy}{path}"] = renamed(item, suffix, f"_{copy}")
    return {**source, "paths": paths, "components": {**source["components"], "schemas": schemas}}


@pytest.mark.slow
def test_a_300_operation_document_loads_well_within_the_start_up_budget(tmp_path):
    doc = _big_document()
    assert sum(len(item) for item in doc["paths"].values()) >= 300
    assert len(doc["components"]["schemas"]) >= 1200
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc, indent=1))
    load_documents([VENDOR[0]], full_check=False)  # validators built once per process
    started = time.perf_counter()
    load_documents([path], full_check=False)
    assert time.perf_counter() - started < 1.5  # measured ~0.25 s; start-up must stay under 3 s
