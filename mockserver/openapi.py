"""An OpenAPI 3.1 description of the served contract: what the mock really enforces and answers.

The document is built from the same resolved schemas the server validates with,
so it cannot disagree with the mock: a client generator, Schemathesis or a human
reading ``/__mock/openapi.json`` sees exactly what is enforced. Where the mock is
stricter or looser than the document it was loaded from, this description follows
the mock:

* a path parameter is a non-empty segment (the router matches ``[^/]+``), so its
  schema says ``minLength: 1`` and loses a default the router could never see;
* each response declares the media type the mock answers with, or no content when
  it answers none; a contract without an error shape of its own answers every error
  as RFC 9457 problem details;
* security schemes are described by how the credential travels (header, query,
  cookie, ``Authorization`` scheme), the way the mock checks them.

The loader inlines every ``$ref``, sharing one object for a schema used in many
places. Those shared objects come back here as ``components/schemas`` entries, so
a large document stays about the size of its source rather than growing with every
use of a common type; a recursive schema's ``$defs`` (which would otherwise resolve
against the document's root) become components too.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Iterable, Mapping

from .answers import PROBLEM
from .contract import Contract, Operation

# Keys whose values are data, not subschemas: never searched for schemas or references.
_DATA = frozenset({"const", "enum", "default", "examples", "example", "x-faker"})
# A shared schema smaller than this (as JSON) is cheaper to repeat than to refer to.
_HOIST_MIN_CHARS = 160
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_DEFAULT_STYLE = {"path": "simple", "header": "simple", "query": "form", "cookie": "form"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "field", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "field": {"type": ["string", "null"]},
                    "message": {"type": "string"},
                },
            },
        },
    },
}


def document(contract: Contract) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    rid = contract.request_id
    request_id_header = {
        "description": "Identifies this answer; quote it when reporting a problem.",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{re.escape(rid.prefix)}[A-Za-z0-9]{{{rid.length}}}$"},
    }
    components = _Components(_schema_roots(contract))
    paths: dict[str, dict[str, Any]] = {}
    schemes: dict[str, Any] = {}
    for op in contract.operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(
            op, rid.header, request_id_header, components, contract.error_shape.problem_details)
        for alternative in op.security:
            for scheme in (alternative, *alternative.also):
                schemes[_scheme_name(scheme)] = _scheme_object(scheme)
    out_components: dict[str, Any] = {"securitySchemes": schemes}
    if components.schemas:
        out_components["schemas"] = components.schemas
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": contract.title,
            "version": _version(),
            "description": (contract.description or "") + " Served by mockserver.",
        },
        "paths": paths,
        "components": out_components,
    }


def _operation(op: Operation, request_id_name: str, request_id_header: dict[str, Any],
               components: _Components, problem_style: bool) -> dict[str, Any]:
    parameters = []
    for location, params in (("path", op.path_params), ("query", op.query_params),
                             ("header", op.header_params), ("cookie", op.cookie_params)):
        for param in params.values():
            schema = components.inline(param.schema)
            if location == "path":
                schema = _non_empty_segment(schema)
            entry: dict[str, Any] = {
                "name": param.name,
                "in": location,
                "required": param.required,
                "schema": schema,
            }
            if param.description:
                entry["description"] = param.description
            # Only where they differ from OpenAPI's defaults for the location. Explode is only
            # read for query and cookie values (repeated keys or one comma-separated value).
            if param.style != _DEFAULT_STYLE[location]:
                entry["style"] = param.style
            if location in ("query", "cookie") and param.explode != (param.style == "form"):
                entry["explode"] = param.explode
            parameters.append(entry)
    responses = {}
    for status, resp in sorted(op.responses.items()):
        described: dict[str, Any] = {"description": resp.description, "headers": {request_id_name: request_id_header}}
        if problem_style and not 200 <= status < 300:
            # The mock answers every error of such a contract as problem details, whatever was declared.
            described["content"] = {PROBLEM: {"schema": copy.deepcopy(PROBLEM_SCHEMA)}}
        elif resp.content_type is not None:
            described["content"] = {resp.content_type: {"schema": components.use(resp.schema)}}
        responses[str(status)] = described
    out: dict[str, Any] = {"operationId": op.operation_id, "parameters": parameters, "responses": responses}
    if op.summary:
        out["summary"] = op.summary
    if op.security:
        out["security"] = [{_scheme_name(s): [] for s in (alternative, *alternative.also)}
                           for alternative in op.security]
    if op.request_body is not None:
        out["requestBody"] = {
            "required": op.request_body.required,
            # Written out at the operation (its parts may be references): it is what a client fills in.
            "content": {op.request_body.content_type: {"schema": components.inline(op.request_body.schema)}},
        }
    return out


def _schema_roots(contract: Contract) -> Iterable[tuple[Any, str]]:
    """Every schema the document will contain, in document order, with a name hint for each."""
    for op in contract.operations:
        for params in (op.path_params, op.query_params, op.header_params, op.cookie_params):
            for param in params.values():
                yield param.schema, f"{op.operation_id}_{param.name}"
        if op.request_body is not None:
            yield op.request_body.schema, f"{op.operation_id}Request"
        for status, resp in sorted(op.responses.items()):
            yield resp.schema, f"{op.operation_id}{status}"


def _non_empty_segment(schema: Any) -> Any:
    """A path parameter's schema as the router enforces it: at least one character."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return schema
    kinds = schema.get("type")
    if kinds is not None and "string" not in ([kinds] if isinstance(kinds, str) else kinds):
        return schema
    out = {**schema, "minLength": max(int(schema.get("minLength", 0)), 1)}
    # A path parameter's default is never used; one the router cannot match only misleads.
    if out.get("default") == "":
        del out["default"]
    return out


class _Components:
    """Shared schema objects and recursive definitions as ``components/schemas`` entries."""

    def __init__(self, roots: Iterable[tuple[Any, str]]) -> None:
        self.schemas: dict[str, Any] = {}
        self.refs: dict[int, str] = {}  # id of a shared schema object -> its component name
        self._keep: list[Any] = []  # the objects named in refs, so their ids stay theirs
        seen: dict[int, int] = {}
        hints: dict[int, str] = {}
        order: list[Any] = []
        for schema, hint in roots:
            self._count(schema, hint, seen, hints, order)
        for node in order:
            if seen[id(node)] > 1 and "$defs" not in node and _worth_a_name(node):
                self.refs[id(node)] = self._name(hints[id(node)])
                self._keep.append(node)
        for node in self._keep:
            self.schemas[self.refs[id(node)]] = self._clean(node, {}, top=id(node))

    def use(self, schema: Any) -> Any:
        """A schema for the document: shared parts (or the whole) as references."""
        return self._root(schema, top=None)

    def inline(self, schema: Any) -> Any:
        """Like ``use``, but the schema itself is written out (its parts may still be references)."""
        return self._root(schema, top=id(schema))

    def _root(self, schema: Any, top: int | None) -> Any:
        defs = schema.get("$defs") if isinstance(schema, dict) else None
        local: dict[str, str] = {}
        if isinstance(defs, dict):
            # `#/$defs/X` would resolve against the OpenAPI document's root, where there is no $defs.
            local = {name: self._name(name) for name in defs}
            for name, node in defs.items():
                self.schemas[local[name]] = self._clean(node, local, top=id(node))
        return self._clean(schema, local, top)

    def _count(self, node: Any, hint: str, seen: dict[int, int], hints: dict[int, str], order: list[Any]) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                self._count(item, f"{hint}{i}", seen, hints, order)
            return
        if not isinstance(node, dict):
            return
        key = id(node)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            return
        title = node.get("title")
        hints[key] = title if isinstance(title, str) and _NAME.match(title) else hint
        order.append(node)
        for k, v in node.items():
            if k in _DATA or k.startswith("x-"):
                continue
            if k in ("properties", "patternProperties", "$defs", "dependentSchemas") and isinstance(v, dict):
                for name, sub in v.items():
                    self._count(sub, _camel(name), seen, hints, order)
            else:
                self._count(v, hint + ("Item" if k in ("items", "prefixItems") else ""), seen, hints, order)

    def _name(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", hint) or "Schema"
        name, n = base, 1
        while name in self.schemas or name in self.refs.values():
            n += 1
            name = f"{base}{n}"
        self.schemas.setdefault(name, {})  # reserved; filled in when written out
        return name

    def _clean(self, schema: Any, local: Mapping[str, str], top: int | None) -> Any:
        """A copy without mockserver's own annotations (x-faker), with nullable formats made
        explicit, shared objects as references and local ``$defs`` references as components."""
        if isinstance(schema, list):
            return [self._clean(v, local, None) for v in schema]
        if not isinstance(schema, dict):
            return copy.deepcopy(schema)
        if id(schema) != top and id(schema) in self.refs:
            return {"$ref": f"#/components/schemas/{self.refs[id(schema)]}"}
        out: dict[str, Any] = {}
        for k, v in schema.items():
            if k == "x-faker" or k == "$defs":
                continue
            if k in _DATA:
                out[k] = copy.deepcopy(v)
            elif k == "$ref" and isinstance(v, str) and v.startswith("#/$defs/") and v[8:] in local:
                out[k] = f"#/components/schemas/{local[v[8:]]}"
            else:
                out[k] = self._clean(v, local, None)
        return _split_nullable_format(out)


def _worth_a_name(node: Any) -> bool:
    """Large enough to refer to, and free of references to a ``$defs`` it would leave behind."""
    text = json.dumps(node, default=str)
    return len(text) >= _HOIST_MIN_CHARS and '"#/$defs/' not in text


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part) or "Schema"


def _scheme_name(scheme: Any) -> str:
    if scheme.kind == "bearer":
        return "BearerAuth"
    if scheme.kind == "basic":
        return "BasicAuth"
    if scheme.kind == "http":
        return "HttpAuth"
    where = "" if scheme.location == "header" else f"{scheme.location}_"
    return f"ApiKeyAuth_{where}{re.sub(r'[^A-Za-z0-9_]', '_', scheme.header)}"


def _scheme_object(scheme: Any) -> dict[str, Any]:
    if scheme.kind == "bearer":  # OAuth 2 and OpenID Connect too: the mock checks only that a token is sent
        return {"type": "http", "scheme": "bearer"}
    if scheme.kind == "basic":
        return {"type": "http", "scheme": "basic"}
    if scheme.kind == "http":  # another Authorization scheme: any "<scheme> <credentials>" is accepted
        return {"type": "apiKey", "in": "header", "name": "Authorization"}
    return {"type": "apiKey", "in": scheme.location, "name": scheme.name}


def _split_nullable_format(schema: dict[str, Any]) -> dict[str, Any]:
    """``{"type": ["string", "null"], "format": F}`` -> ``anyOf`` of a formatted string and null.

    Both mean the same in JSON Schema, but test generators read the first as "any
    string, the format is optional", and so expect ``""`` to pass as a date-time.
    """
    types = schema.get("type")
    if not (isinstance(types, list) and "null" in types and "format" in schema):
        return schema
    non_null = [t for t in types if t != "null"]
    annotations = {k: schema[k] for k in ("title", "description", "readOnly", "writeOnly", "default") if k in schema}
    value = {k: v for k, v in schema.items() if k not in annotations and k != "type"}
    value["type"] = non_null[0] if len(non_null) == 1 else non_null
    return {**annotations, "anyOf": [value, {"type": "null"}]}


def _version() -> str:
    from . import __version__  # the package imports this module's importers: read it when asked

    return __version__
