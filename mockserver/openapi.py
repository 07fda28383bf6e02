"""An OpenAPI 3.1 description of the served contract, generated from ``spec/``.

The document is built from the same resolved schemas the server validates with,
so it cannot disagree with the mock: a client generator, Schemathesis or a human
reading ``/__mock/openapi.json`` sees exactly what is enforced.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .contract import Contract, Operation

_SCHEME_NAMES = {"apiKey": "ApiKeyAuth", "bearer": "BearerAuth"}


def document(contract: Contract) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    rid = contract.request_id
    request_id_header = {
        "description": "Identifies this answer; quote it when reporting a problem.",
        "required": True,
        "schema": {"type": "string", "pattern": f"^{re.escape(rid.prefix)}[A-Za-z0-9]{{{rid.length}}}$"},
    }
    paths: dict[str, dict[str, Any]] = {}
    schemes: dict[str, Any] = {}
    for op in contract.operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, rid.header, request_id_header)
        for scheme in op.security:
            name = _scheme_name(scheme.kind, scheme.header)
            schemes[name] = (
                {"type": "apiKey", "in": "header", "name": scheme.name}
                if scheme.kind == "apiKey" else {"type": "http", "scheme": "bearer"}
            )
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": contract.title,
            "version": _version(),
            "description": (contract.description or "") + " Served by mockserver.",
        },
        "paths": paths,
        "components": {"securitySchemes": schemes},
    }


def _operation(op: Operation, request_id_name: str, request_id_header: dict[str, Any]) -> dict[str, Any]:
    parameters = []
    for location, params in (("path", op.path_params), ("query", op.query_params), ("header", op.header_params)):
        for param in params.values():
            entry: dict[str, Any] = {
                "name": param.name,
                "in": location,
                "required": param.required,
                "schema": _clean(param.schema),
            }
            if param.description:
                entry["description"] = param.description
            parameters.append(entry)
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "parameters": parameters,
        "responses": {
            str(status): {
                "description": resp.description,
                "headers": {request_id_name: request_id_header},
                "content": {"application/json": {"schema": _clean(resp.schema)}},
            }
            for status, resp in sorted(op.responses.items())
        },
    }
    if op.summary:
        out["summary"] = op.summary
    if op.security:
        out["security"] = [{_scheme_name(s.kind, s.header): []} for s in op.security]
    if op.request_body is not None:
        out["requestBody"] = {
            "required": op.request_body.required,
            "content": {op.request_body.content_type: {"schema": _clean(op.request_body.schema)}},
        }
    return out


def _scheme_name(kind: str, header: str) -> str:
    return _SCHEME_NAMES[kind] if kind == "bearer" else f"{_SCHEME_NAMES[kind]}_{header.replace('-', '_')}"


def _clean(schema: Any) -> Any:
    """A copy without mockserver's own annotations (x-faker), with nullable formats made explicit."""
    if isinstance(schema, list):
        return [_clean(v) for v in schema]
    if not isinstance(schema, dict):
        return copy.deepcopy(schema)
    out = {k: (copy.deepcopy(v) if k in ("const", "enum", "default", "examples") else _clean(v))
           for k, v in schema.items() if k != "x-faker"}
    return _split_nullable_format(out)


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
