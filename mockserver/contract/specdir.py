"""The older contract format: a ``spec/`` directory of our own.

The spec directory holds:

* ``contract.json``: contract-wide facts (the error schema, the request-id header);
* ``schemas/*.json``: JSON Schema (Draft 2020-12) documents;
* ``operations/*.json``: one file per operation (method, path, parameters,
  security, request body, responses), checked against a shipped meta-schema.

Everything after this module works on fully resolved schemas (no ``$ref`` left),
so validation, generation and the OpenAPI document never touch the registry or
the files again. A problem in any file raises :class:`LoadError` naming the
file and the line.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Mapping

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from ..errors import INVALID_FIELD, LoadError, LoadErrors, format_path, line_of
from ..generation import faker_has
from .model import (
    _ANNOTATIONS,
    _DATA_KEYWORDS,
    Behaviour,
    Contract,
    Operation,
    Page,
    Parameter,
    RequestBody,
    RequestId,
    Response,
    SecurityScheme,
    Validator,
    _closed,
    _path_regex,
    _short,
    _walk_key,
    compile_validator,
    deepest_error,
    shipped_validator,
)

_BASE_URI = "https://spec.mockserver.invalid/"


def default_spec_dir() -> Path:
    """The bundled contract: inside the installed package, or ``spec/`` of a source checkout."""
    bundled = Path(str(resources.files("mockserver"))) / "_bundled" / "spec"
    if bundled.is_dir():
        return bundled
    return Path(__file__).resolve().parents[2] / "spec"



def load_contract(spec_dir: Path | str | None = None) -> Contract:
    """Load and check a spec directory; raise LoadError on the first problem."""
    return _SpecLoader(Path(spec_dir) if spec_dir else default_spec_dir()).load()


def check_spec(spec_dir: Path | str | None = None) -> list[LoadError]:
    """Every problem of a spec directory (empty when it loads)."""
    try:
        load_contract(spec_dir)
    except LoadErrors as many:
        return many.errors
    except LoadError as one:
        return [one]
    return []


class _SpecLoader:
    """One pass over a spec directory; keeps the texts so errors can name lines."""

    def __init__(self, spec_dir: Path) -> None:
        self.dir = spec_dir
        self.texts: dict[str, str] = {}
        self.docs: dict[str, Any] = {}
        self.checked: set[str] = set()
        self.compiled: dict[tuple[str, bool | None], Validator] = {}

    def load(self) -> Contract:
        if not self.dir.is_dir():
            raise LoadError(self.dir, "spec directory not found")
        # openapi/ holds the vendor's own documents, read by the OpenAPI loader, not by this one
        files = sorted(p for p in self.dir.rglob("*.json")
                       if p.is_file() and p.relative_to(self.dir).parts[0] != "openapi")
        errors: list[LoadError] = []
        for path in files:
            try:
                self._read(path)
            except LoadError as exc:
                errors.append(exc)
        if errors:
            raise LoadErrors(errors)
        if "contract.json" not in self.docs:
            raise LoadError(self.dir / "contract.json", "missing: the spec needs a contract.json")
        op_names = [n for n in self.docs if n.startswith("operations/")]
        if not op_names:
            raise LoadError(self.dir / "operations", "no operation files (operations/*.json) found")
        for name, doc in self.docs.items():
            try:
                self._check_document(name, doc)
            except LoadError as exc:
                errors.append(exc)
        if errors:
            raise LoadErrors(errors)
        registry = Registry().with_resources(
            (_BASE_URI + name, DRAFT202012.create_resource(doc)) for name, doc in self.docs.items()
            if not name.startswith("data/")
        )
        meta = self.docs["contract.json"]
        error_schema = self._resolve_at(registry, "contract.json", ("errorSchema",), meta["errorSchema"])
        operations = tuple(self._operation(registry, name) for name in sorted(op_names))
        self._check_unique(operations)
        schemas = {
            name: self._resolve_at(registry, name, (), doc)
            for name, doc in self.docs.items() if name.startswith("schemas/")
        }
        rid = meta["requestId"]
        return Contract(
            spec_dir=self.dir,
            title=meta["title"],
            description=meta.get("description"),
            operations=operations,
            error_schema=error_schema,
            request_id=RequestId(rid["header"], rid["prefix"], rid["length"]),
            schemas=schemas,
            tenancy_header=meta.get("tenancy", {}).get("header", "").lower() or None,
            events={name.rsplit("/", 1)[1].removesuffix(".json").upper(): schema
                    for name, schema in schemas.items() if name.startswith("schemas/events/")},
        )

    def _read(self, path: Path) -> None:
        name = path.relative_to(self.dir).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LoadError(path, f"cannot read: {exc}") from None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LoadError(path, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
        self.texts[name] = text
        self.docs[name] = doc

    def _error(self, name: str, path: tuple[Any, ...], message: str) -> LoadError:
        return LoadError(self.dir / name, message, line_of(self.texts.get(name, ""), path))

    def _check_document(self, name: str, doc: Any) -> None:
        if name.startswith("data/"):
            return  # data an operation answers with, not a schema
        if name == "contract.json":
            self._check_against(name, doc, shipped_validator("contract.schema.json"))
        elif name.startswith("operations/"):
            self._check_against(name, doc, shipped_validator("operation.schema.json"))
            for where, schema in _operation_schemas(doc):
                self._check_schema(name, where, schema)
        else:
            self._check_schema(name, (), doc)

    def _check_against(self, name: str, doc: Any, meta: Draft202012Validator) -> None:
        error = deepest_error(meta, doc)
        if error is not None:
            where = format_path(error.absolute_path) or "the document"
            raise self._error(name, tuple(error.absolute_path), f"at {where}: {_short(error.message)}")

    def _check_schema(self, name: str, where: tuple[Any, ...], schema: Any) -> None:
        if not isinstance(schema, dict):
            raise self._error(name, where, "a schema must be a JSON object")
        fingerprint = json.dumps(schema, sort_keys=True)
        if fingerprint in self.checked:  # operations repeat the same small schemas many times
            return
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            path = where + tuple(exc.absolute_path)
            shown = format_path(path) or "the schema"
            raise self._error(name, path, f"not a valid JSON Schema at {shown}: {_short(exc.message)}") from None
        for path, faker in _walk_key(schema, "x-faker"):
            if not (isinstance(faker, dict) and isinstance(faker.get("method"), str)):
                raise self._error(name, where + path, 'x-faker must be {"method": NAME, "args": {...}}')
            if not faker_has(faker["method"]):
                raise self._error(name, where + path, f"x-faker method {faker['method']!r} is not a Faker provider")
        for path, pattern in _walk_key(schema, "pattern"):
            if isinstance(pattern, str):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise self._error(name, where + path, f"invalid pattern {pattern!r}: {exc}") from None
        self.checked.add(fingerprint)

    def _resolve_at(self, registry: Registry, name: str, where: tuple[Any, ...], node: Any) -> Any:
        resolver = registry.resolver(base_uri=_BASE_URI + name)
        return _Resolver(self, name).resolve(node, resolver, where, 0)

    def _operation(self, registry: Registry, name: str) -> Operation:
        doc = self.docs[name]
        source = str(self.dir / name)
        params: dict[str, dict[str, Parameter]] = {}
        for location in ("path", "query", "header"):
            declared = doc.get("parameters", {}).get(location, {})
            params[location] = {
                pname: self._parameter(registry, name, location, pname, spec)
                for pname, spec in declared.items()
            }
        regex, literals = _path_regex(doc["path"])
        missing = set(regex.groupindex) - set(params["path"])
        if missing:
            raise self._error(name, ("path",), f"path parameter(s) {sorted(missing)} have no entry in parameters.path")
        body = None
        if "requestBody" in doc:
            rb = doc["requestBody"]
            schema = self._resolve_at(registry, name, ("requestBody", "schema"), rb["schema"])
            body = RequestBody(
                content_type=rb["contentType"].lower(),
                schema=schema,
                validator=self._validator(schema, fast=True),
                strict_validator=self._validator(_closed(schema), fast=None),
                required=rb.get("required", True),
            )
        responses = {}
        for status, spec in doc["responses"].items():
            schema = self._resolve_at(registry, name, ("responses", status, "schema"), spec["schema"])
            responses[int(status)] = Response(int(status), spec["description"], schema, self._validator(schema))
        security = tuple(
            SecurityScheme("apiKey", s["name"].lower(), s["name"]) if s["type"] == "apiKey"
            else SecurityScheme("bearer", "authorization", "Authorization")
            for s in doc.get("security", [])
        )
        return Operation(
            operation_id=doc["operationId"],
            method=doc["method"],
            path=doc["path"],
            path_regex=regex,
            literal_segments=literals,
            summary=doc.get("summary"),
            permission=doc.get("permission"),
            path_params=params["path"],
            query_params=params["query"],
            header_params={k.lower(): v for k, v in params["header"].items()},
            security=security,
            request_body=body,
            responses=responses,
            source=source,
            behaviour=self._behaviour(name, doc, params["path"]),
        )

    def _behaviour(self, name: str, doc: dict[str, Any], path_params: Mapping[str, Parameter]) -> Behaviour | None:
        spec = doc.get("behaviour")
        if spec is None:
            return None
        if spec.get("key") and spec["key"] not in path_params:
            raise self._error(name, ("behaviour", "key"), f"behaviour.key {spec['key']!r} is not a path parameter")
        data = None
        if "data" in spec:
            data_name = "data/" + spec["data"]
            if data_name not in self.docs:
                raise self._error(name, ("behaviour", "data"), f"no file {data_name} in the spec")
            data = self.docs[data_name]
        page = None
        if "page" in spec:
            p = spec["page"]
            page = Page(p["items"], p["limit"], p["page"], p["pages"], p["links"], p["limitParam"], p["pageParam"],
                        p["defaultLimit"], p["linkNames"], p.get("orderParam"), p.get("directionParam"))
        return Behaviour(kind=spec["kind"], collection=spec.get("collection"), id_field=spec.get("idField"),
                         key=spec.get("key"), action=spec.get("action"), data=data, page=page)

    def _parameter(self, registry: Registry, name: str, location: str, pname: str,
                   spec: dict[str, Any]) -> Parameter:
        schema = self._resolve_at(registry, name, ("parameters", location, pname, "schema"), spec["schema"])
        return Parameter(
            name=pname,
            schema=schema,
            validator=self._validator(schema),
            required=spec.get("required", location == "path"),
            error_code=spec.get("errorCode", INVALID_FIELD),
            description=spec.get("description"),
        )

    def _validator(self, schema: dict[str, Any], fast: bool | None = False) -> Validator:
        """One compiled validator per distinct schema: operations share many (errors, bodies)."""
        key = (json.dumps(schema, sort_keys=True), fast)
        found = self.compiled.get(key)
        if found is None:
            found = self.compiled[key] = compile_validator(schema, fast)
        return found

    def _check_unique(self, operations: tuple[Operation, ...]) -> None:
        seen: dict[tuple[str, str], Operation] = {}
        for op in operations:
            key = (op.method, re.sub(r"\{[^}]+\}", "{}", op.path))
            if key in seen:
                raise LoadError(op.source, f"{op.method} {op.path} is already defined in {seen[key].source}")
            seen[key] = op


class _Resolver:
    """Inline every $ref; annotation siblings override, other siblings are combined with allOf."""

    def __init__(self, loader: _SpecLoader, name: str) -> None:
        self.loader = loader
        self.name = name

    def resolve(self, node: Any, resolver: Any, where: tuple[Any, ...], depth: int) -> Any:
        if depth > 64:
            raise self.loader._error(self.name, where, "$ref chain too deep (a cycle?)")
        if isinstance(node, list):
            return [self.resolve(v, resolver, where + (i,), depth + 1) for i, v in enumerate(node)]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            ref = node["$ref"]
            try:
                found = resolver.lookup(ref)
            except Unresolvable:
                raise self.loader._error(self.name, where + ("$ref",), f"cannot resolve $ref {ref!r}") from None
            target = self.resolve(found.contents, found.resolver, where, depth + 1)
            siblings = {k: self._value(k, v, resolver, where, depth) for k, v in node.items() if k != "$ref"}
            return _merge_ref(target, siblings)
        return {
            k: self._value(k, v, resolver, where, depth)
            for k, v in node.items() if k not in ("$defs", "$schema", "$id", "definitions")
        }

    def _value(self, key: str, value: Any, resolver: Any, where: tuple[Any, ...], depth: int) -> Any:
        if key in _DATA_KEYWORDS:
            return value
        return self.resolve(value, resolver, where + (key,), depth + 1)


def _merge_ref(target: Any, siblings: dict[str, Any]) -> Any:
    if not siblings:
        return target
    if not isinstance(target, dict):
        return {"allOf": [target], **siblings}
    if all(k in _ANNOTATIONS for k in siblings):
        return {**target, **siblings}
    return {"allOf": [target, siblings]}



def _operation_schemas(doc: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    for location, declared in doc.get("parameters", {}).items():
        for pname, spec in declared.items():
            yield ("parameters", location, pname, "schema"), spec["schema"]
    if "requestBody" in doc:
        yield ("requestBody", "schema"), doc["requestBody"]["schema"]
    for status, spec in doc["responses"].items():
        yield ("responses", status, "schema"), spec["schema"]


