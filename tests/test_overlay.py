"""Overlay 1.0.0: loading and checking overlay files, and applying their actions in order."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from conftest import DATA
from mockserver.errors import LoadErrors
from mockserver.contract.overlay import Overlay, apply, load_overlay

OVERLAYS = DATA / "overlays"
BAD = OVERLAYS / "bad"
BAD_FILES = sorted(p for p in BAD.iterdir() if p.suffix in (".yaml", ".json"))


def base() -> dict[str, Any]:
    return yaml.safe_load((OVERLAYS / "base.yaml").read_text())


def applied(*names: str, document: dict[str, Any] | None = None) -> dict[str, Any]:
    return apply(document if document is not None else base(), [load_overlay(OVERLAYS / n) for n in names])


def operation(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return doc["paths"][path][method]


def parameter_names(doc: dict[str, Any], path: str) -> list[str]:
    return [p["name"] for p in operation(doc, path, "get")["parameters"]]


# ------------------------------------------------------------------ loading


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.name for p in BAD_FILES])
def test_broken_overlay_gives_its_expected_lines(path):
    with pytest.raises(LoadErrors) as caught:
        load_overlay(path)
    expected = path.with_suffix(".expected").read_text().splitlines()
    assert [str(e) for e in caught.value.errors] == [f"{BAD}/{line}" for line in expected]


def test_overlay_keeps_its_source_title_and_action_lines():
    overlay = load_overlay(OVERLAYS / "misses.yaml")
    assert overlay.source == OVERLAYS / "misses.yaml"
    assert (overlay.title, overlay.version, overlay.extends) == ("Targets the vendor renamed", "1", None)
    assert [(a.index, a.target, a.line) for a in overlay.actions] == [
        (0, "$.components.schemas.Gadget", 6),
        (1, "$.components.schemas", 9),
        (2, "$.components.schemas.Widget", 12),
        (3, "$.paths['/gadgets'].get", 16),
    ]
    assert [(a.has_update, a.remove, a.update_line) for a in overlay.actions] == [
        (True, False, 7), (True, False, 10), (True, False, 14), (False, True, None)]
    assert overlay.actions[2].description == "Exists thanks to the action before; must not be reported."


def test_json_overlay_with_a_later_patch_version_and_extensions_loads():
    overlay = load_overlay(OVERLAYS / "root.json")
    assert (overlay.title, overlay.extends, overlay.actions[0].line) == ("A JSON overlay on the root", "./base.yaml", 6)
    # x- keys are allowed at the top and on actions, and carry no meaning
    assert len(load_overlay(OVERLAYS / "vendor-webhooks.yaml").actions) == 1


def test_every_bad_file_has_its_expected_text():
    assert {p.stem for p in BAD_FILES} == {p.stem for p in BAD.glob("*.expected")}


def test_the_shipped_schema_is_valid_draft_2020_12():
    from importlib import resources

    from jsonschema import Draft202012Validator
    schema = json.loads(resources.files("mockserver").joinpath("schemas", "overlay.schema.json").read_text())
    Draft202012Validator.check_schema(schema)


# ------------------------------------------------------------------ update


def test_update_merges_recursively_into_an_object():
    thing = applied("merge.yaml")["components"]["schemas"]["Thing"]
    assert thing["description"] == "A thing."
    # nested objects merge: what the update does not name survives
    assert thing["properties"]["created_at"] == {"type": "string", "format": "date-time"}
    assert thing["properties"]["meta"] == {"type": "object", "properties": {"note": {"type": "string", "maxLength": 200}}}
    assert thing["properties"]["id"] == {"type": "string"}
    assert thing["properties"]["name"] == {"type": "string"}
    # any other value replaces, arrays included (1.0.0; 1.1 would concatenate)
    assert thing["required"] == ["id", "created_at"]


def test_update_into_an_array_appends_one_entry_to_each_selected_array():
    doc = applied("append.yaml")
    assert [t["name"] for t in doc["tags"]] == ["things", "internal", "admin", "internal", "mock"]
    assert parameter_names(doc, "/things") == ["limit", "dummy", "cursor", "dummy", "x-trace"]
    assert parameter_names(doc, "/things/{id}") == ["id", "dummy", "x-trace"]
    # one copy per array: changing one must not change the other
    operation(doc, "/things", "get")["parameters"][-1]["in"] = "query"
    assert operation(doc, "/things/{id}", "get")["parameters"][-1]["in"] == "header"


def test_update_on_the_root_merges_into_the_whole_document():
    doc = applied("root.json")
    assert doc["info"] == {"title": "Things", "version": "1", "x-overlay-applied": "root"}
    assert doc["servers"] == [{"url": "http://localhost"}]


def test_update_that_does_not_fit_what_it_selects_is_reported_at_its_line(tmp_path):
    path = tmp_path / "misfit.yaml"
    path.write_text("overlay: 1.0.0\ninfo: {title: t, version: '1'}\nactions:\n"
                    "  - target: $.info\n    update: a string\n"
                    "  - target: $..properties.*.type\n    update: {format: date-time}\n")
    with pytest.raises(LoadErrors) as caught:
        apply(base(), [load_overlay(path)])
    assert [str(e) for e in caught.value.errors] == [
        f"{path}:5: update is a string, but target $.info selects an object at $['info']; "
        "what is merged into an object must be an object",
        f"{path}:6: target $..properties.*.type selects a string at "
        "$['components']['schemas']['Thing']['properties']['id']['type'] (and 3 more); "
        "update needs objects or arrays: target the object that holds the value",
    ]


# ------------------------------------------------------------------ remove


def test_remove_deletes_object_members_and_every_array_element_a_filter_selects():
    doc = applied("remove.yaml")
    assert list(doc["paths"]["/things"]) == ["get"]
    assert list(doc["components"]["schemas"]["Thing"]["properties"]) == ["id", "created_at"]
    # elements 1 and 3 of the same array: removing 1 first must not shift 3 onto "admin"
    assert [t["name"] for t in doc["tags"]] == ["things", "admin"]
    assert parameter_names(doc, "/things") == ["limit", "cursor"]
    assert parameter_names(doc, "/things/{id}") == ["id"]


@pytest.mark.parametrize("target, left", [
    ("$.tags[0,0]", ["internal", "admin", "internal"]),             # one node selected twice is removed once
    ("$.tags[1,3,1]", ["things", "admin"]),
    ("$.tags[-1]", ["things", "internal", "admin"]),
    ("$..[?@.name == 'internal' || @.name == 'admin']", ["things"]),
])
def test_remove_by_index_and_selection_removes_exactly_the_selected_elements(tmp_path, target, left):
    path = tmp_path / "o.yaml"
    path.write_text(f'overlay: 1.0.0\ninfo: {{title: t, version: "1"}}\nactions:\n  - target: "{target}"\n    remove: true\n')
    assert [t["name"] for t in apply(base(), [load_overlay(path)])["tags"]] == left


def test_remove_of_a_node_and_something_inside_it_in_one_action(tmp_path):
    path = tmp_path / "nested.yaml"
    path.write_text("overlay: 1.0.0\ninfo: {title: t, version: '1'}\nactions:\n"
                    "  - target: $..[?@.operationId == 'listThings' || @.name == 'cursor']\n    remove: true\n")
    doc = apply(base(), [load_overlay(path)])
    assert list(doc["paths"]["/things"]) == ["post"]
    assert parameter_names(doc, "/things/{id}") == ["id", "dummy"]


# ------------------------------------------------------------------ order and queries


def test_actions_apply_in_order_and_later_overlays_see_earlier_results():
    doc = applied("order.yaml", "order-next.yaml")
    assert operation(doc, "/things", "post") == {
        "operationId": "createThingAgain",
        "summary": "Re-created by the previous action",
        "x-mock-behaviour": "create",
    }


def test_descendant_and_filter_queries_select_every_matching_node():
    doc = applied("queries.yaml")
    schemas = doc["components"]["schemas"]
    flagged = [(name, prop) for name, schema in schemas.items()
               for prop, value in schema["properties"].items() if value.get("x-string")]
    assert flagged == [("Thing", "id"), ("Thing", "created_at")]
    # $.. also reaches the nested properties object; `next` is of type [string, null], not 'string'
    assert schemas["Thing"]["properties"]["meta"]["properties"]["note"]["x-string"] is True
    assert "x-string" not in schemas["Page"]["properties"]["next"]
    assert operation(doc, "/things/{id}", "get")["x-mock-behaviour"] == "read"
    assert "x-mock-behaviour" not in operation(doc, "/things", "get")


# ------------------------------------------------------------------ the input


def test_the_input_document_and_the_overlay_are_never_changed():
    document = base()
    before = copy.deepcopy(document)
    overlays = [load_overlay(OVERLAYS / n) for n in ("merge.yaml", "append.yaml", "order.yaml", "remove.yaml", "queries.yaml")]
    updates = copy.deepcopy([a.update for o in overlays for a in o.actions])
    first = apply(document, overlays)
    assert document == before
    # what was inserted is a copy of the overlay's value, not the value itself
    first["components"]["schemas"]["Thing"]["properties"]["created_at"]["format"] = "date"
    first["tags"][-1]["name"] = "changed"
    assert [a.update for o in overlays for a in o.actions] == updates
    assert apply(document, overlays) != first
    assert document == before


def test_what_no_action_touches_is_shared_not_copied():
    document = base()
    doc = applied("merge.yaml", document=document)
    assert doc is not document
    assert doc["components"]["schemas"]["Thing"] is not document["components"]["schemas"]["Thing"]
    assert doc["paths"] is document["paths"]
    assert doc["components"]["schemas"]["Page"] is document["components"]["schemas"]["Page"]
    assert doc["components"]["schemas"]["Thing"]["properties"]["id"] is document["components"]["schemas"]["Thing"]["properties"]["id"]


def test_no_overlays_gives_an_equal_new_document():
    document = base()
    doc = apply(document, [])
    assert doc == document and doc is not document


# ------------------------------------------------------------------ targets that match nothing


def test_a_target_that_matches_nothing_names_the_file_and_line_of_the_target():
    path = OVERLAYS / "misses.yaml"
    with pytest.raises(LoadErrors) as caught:
        apply(base(), [load_overlay(path)])
    # the Widget action runs after the miss before it, so it finds what the action before it made
    assert [str(e) for e in caught.value.errors] == [
        f"{path}:6: target $.components.schemas.Gadget matches nothing",
        f"{path}:16: target $.paths['/gadgets'].get matches nothing",
    ]


def test_every_miss_of_every_overlay_is_reported_at_once():
    first, second = OVERLAYS / "misses.yaml", OVERLAYS / "order-next.yaml"
    with pytest.raises(LoadErrors) as caught:
        apply(base(), [load_overlay(first), load_overlay(second)])
    assert str(caught.value).splitlines() == [
        f"{first}:6: target $.components.schemas.Gadget matches nothing",
        f"{first}:16: target $.paths['/gadgets'].get matches nothing",
        f"{second}:6: target $.paths.*[?@.operationId == 'createThingAgain'] matches nothing",
    ]


# ------------------------------------------------------------------ a vendor document


def test_vendor_webhooks_document_gets_a_format():
    vendor = json.loads((DATA / "vendor" / "configuration-api.webhooks.json").read_text())
    before = copy.deepcopy(vendor)
    doc = applied("vendor-webhooks.yaml", document=vendor)
    assert doc["components"]["schemas"]["Webhook"]["properties"]["secret_rolled_at"] == {
        "type": ["string", "null"], "format": "date-time"}
    assert vendor == before
    # only the path to the changed node was copied
    assert doc["paths"] is vendor["paths"]
    changed = {name for name, schema in doc["components"]["schemas"].items()
               if schema is not vendor["components"]["schemas"][name]}
    assert changed == {"Webhook"}
    assert isinstance(load_overlay(OVERLAYS / "vendor-webhooks.yaml"), Overlay)
