"""OpenAPI 3.0 / 3.1 documents (overlays already applied) -> the compiled :class:`Contract`.

Every ``$ref`` is inlined once, here, so that validation and generation work on plain schemas.
A schema that refers to itself (a tree, a linked list) cannot be inlined: the repeated
reference becomes ``{"$ref": "#/$defs/<name>"}`` and the definition travels in the ``$defs``
of the schema that uses it, which every JSON Schema validator understands.

OpenAPI 3.0's dialect is translated to JSON Schema 2020-12 on the way (``nullable``, boolean
``exclusiveMinimum``/``exclusiveMaximum``, ``example``), so everything after this module
speaks one dialect.

What the mock does with each operation comes from an overlay's ``x-mock-behaviour`` where one
says so, else from ``conventions``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urljoin

from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from ..errors import INVALID_FIELD, KINDS, KNOWN_STATUSES, PROBLEM_DETAILS, ErrorShape, LoadError, LoadErrors, Violation, line_in, line_of, problem
from ..generation import faker_has
from . import conventions
from .deliveries import compile_deliveries
from .model import (
    _ANNOTATIONS,
    _DATA_KEYWORDS,
    Contract,
    Operation,
    Parameter,
    RequestBody,
    RequestId,
    Response,
    SecurityScheme,
    Validator,
    _closed,
    _path_regex,
    LazyValidator,
    compile_validator,
)

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_JSON = re.compile(r"^application/(?:[\w.+-]+\+)?json$", re.I)
DEFAULT_REQUEST_ID = RequestId("X-Request-Id", "req_", 20, declared=False)


@dataclass(frozen=True)
class Document:
    """One OpenAPI document as loaded: where it came from, its text (for lines) and its data."""

    path: Path
    data: dict[str, Any]
    text: str = ""
    origins: Mapping[Any, tuple[Path, Any]] = field(default_factory=dict)  # what overlays wrote (overlay.apply)

    def locate(self, where: Sequence[Any]) -> tuple[Path, int | None]:
        """File and line of the node at ``where``: the overlay that wrote it, else this document."""
        node: Any = self.data
        written: tuple[Path, Any] | None = None
        rest: Sequence[Any] = where
        for depth in range(len(where) + 1):
            origin = self.origins.get(id(node)) if isinstance(node, (dict, list)) else None
            if origin is not None:
                written, rest = origin, where[depth:]
            if depth == len(where):
                break
            if isinstance(node, dict) and (id(node), where[depth]) in self.origins:
                written, rest = self.origins[(id(node), where[depth])], where[depth + 1:]
            try:
                node = node[where[depth]]
            except (KeyError, IndexError, TypeError):
                break
        if written is not None:
            return written[0], line_in(written[1], list(rest))
        return self.path, line_of(self.text, list(where)) if self.text else None


def compile_documents(documents: Sequence[Document], registry: Registry | None = None) -> Contract:
    """Compile every operation of every document into one contract; LoadErrors lists every problem."""
    if registry is None:
        registry = Registry()
    for doc in documents:
        uri = doc.path.resolve().as_uri()
        if uri not in registry:
            registry = registry.with_resource(uri, Resource(contents=doc.data, specification=DRAFT202012))
    operations: list[Operation] = []
    errors: list[LoadError] = []
    schemas: dict[str, dict[str, Any]] = {}
    kind_uses: list[tuple[str, LoadError]] = []
    for doc in documents:
        compiler = _Compiler(doc, registry)
        errors.extend(_check_extensions(doc))
        try:
            operations.extend(compiler.operations())
        except LoadError as exc:
            errors.append(exc)
        errors.extend(compiler.errors)
        kind_uses.extend(compiler.kind_uses)
    if errors:
        raise LoadErrors(errors)
    _check_unique(operations)
    operations = _stateful_collections_only(operations)
    first = documents[0]
    info = first.data.get("info", {})
    mock = first.data.get("x-mock", {}) if isinstance(first.data.get("x-mock"), dict) else {}
    rid = mock.get("requestId")
    error_schema, error_shape = _error_shape(_Compiler(first, registry), mock.get("errors"))
    unknown = {str(problem): problem for kind, problem in kind_uses if kind not in {*KINDS, *error_shape.kinds}}
    if unknown:  # one line per place, however many operations share the parameter
        raise LoadErrors(list(unknown.values()))
    return Contract(
        source=first.path,
        title=str(info.get("title", first.path.name)),
        description=info.get("description"),
        operations=tuple(operations),
        error_schema=error_schema,
        error_shape=error_shape,
        request_id=RequestId(rid["header"], rid["prefix"], int(rid["length"])) if rid else DEFAULT_REQUEST_ID,
        schemas=schemas,
        tenancy_header=(mock.get("tenancy", {}).get("header") or "").lower() or None,
        null_when_unsaid=bool(mock.get("nullWhenUnsaid", False)),
        events={str(kind): _Compiler(first, registry).resolve(schema, ("x-mock", "events", kind))
                for kind, schema in (mock.get("events") or {}).items()},
        deliveries=compile_deliveries(
            mock.get("deliveries"),
            lambda where, message: _Compiler(first, registry).error(("x-mock", "deliveries", *where), message)),
    )


def _error_shape(compiler: "_Compiler", spec: Any) -> tuple[dict[str, Any], ErrorShape]:
    """The contract's error shape (x-mock ``errors``), each kind's body checked against its
    schema now; without one, RFC 9457 problem details."""
    where = ("x-mock", "errors")
    if spec is None:
        shape, schema = PROBLEM_DETAILS, {}
    else:
        if not isinstance(spec, Mapping) or not all(isinstance(spec.get(k), Mapping) for k in ("schema", "body")):
            raise compiler.error(where, "x-mock errors needs a schema and a body template (objects)")
        kinds = spec.get("kinds") or {}
        if not isinstance(kinds, Mapping) or not all(isinstance(v, Mapping) for v in kinds.values()):
            raise compiler.error((*where, "kinds"), "x-mock errors kinds maps each kind of problem to its values")
        schema = compiler.resolve(spec["schema"], (*where, "schema"))
        shape = ErrorShape(dict(spec["body"]), dict(spec.get("violation") or {}), {k: dict(v) for k, v in kinds.items()})
        validator = compile_validator(schema)
        # A kind the mapping leaves out takes what its status stands for: every kind is tried at
        # every status with a meaning of its own, so none becomes a body the schema refuses.
        for kind in sorted({*KINDS, *kinds}):
            for status in KNOWN_STATUSES:
                sample = problem(status, kind, "m", "f", (Violation(kind, "f", "m"), Violation(kind, "g", "n")))
                broken = next(iter(validator.iter_errors(shape.body(sample))), None)
                if broken is not None:
                    at = (*where, "kinds", kind) if kind in kinds else (*where, "body")
                    reason = broken.message if len(broken.message) <= 200 else broken.message[:200] + " ..."
                    raise compiler.error(at, f"an error of kind {kind} breaks the error schema: {reason}")
    return schema, shape


def _check_extensions(doc: Document) -> list[LoadError]:
    """Patterns the validator cannot compile and ``x-faker`` methods Faker does not have: found
    now, with the place they are written, instead of as a 500 on the first request."""
    found: list[LoadError] = []

    def error(path: tuple[Any, ...], message: str) -> LoadError:
        file, line = doc.locate(path)
        return LoadError(file, f"at {'.'.join(map(str, path))}: {message}", line)

    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc.data, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                at = (*path, key)
                if key == "pattern" and isinstance(value, str):
                    try:
                        re.compile(value)
                    except re.error as exc:
                        found.append(error(at, f"pattern {value!r} does not compile: {exc}"))
                elif key == "x-faker":
                    method = value.get("method") if isinstance(value, dict) else None
                    if not isinstance(method, str) or not faker_has(method):
                        found.append(error(at, f"x-faker needs a method Faker has (such as {{method: company}}), "
                                               f"not {value!r}"))
                elif key not in ("example", "examples", "default", "enum", "const"):
                    stack.append((value, at))
        elif isinstance(node, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(node))
    return found


def _stateful_collections_only(operations: list[Operation]) -> list[Operation]:
    """Conventions keep state only for collections something creates: without a create, a read
    would always be a 404 and a list always empty, where a generated answer serves better.
    An operation under an item of such a collection (``/things/{id}/archive``) answers 404
    when that item is unknown, unless its behaviour already reads the item itself."""
    created = {op.behaviour.collection for op in operations
               if op.behaviour is not None and op.behaviour.kind == "create"}
    out = []
    for op in operations:
        if op.behaviour_source == "convention" and op.behaviour.collection not in created:
            op = _with(op, behaviour=None, behaviour_source=None)
        parent = conventions.parent_of(op.path)
        reads_it = (op.behaviour is not None and parent is not None and op.behaviour.key == parent[1]
                    and op.behaviour.collection == parent[0])
        if parent is not None and parent[0] in created and not reads_it:
            op = _with(op, parent=parent)
        out.append(op)
    return out


class _Compiler:
    def __init__(self, doc: Document, registry: Registry) -> None:
        self.doc = doc
        self.data = doc.data
        self.base = doc.path.resolve().as_uri()
        self.registry = registry
        self.errors: list[LoadError] = []
        self.openapi_30 = str(self.data.get("openapi", "")).startswith("3.0")
        self.validators: dict[tuple[str, bool | None], Validator] = {}
        self.memo: dict[str, Any] = {}
        self.keep: list[Any] = []
        # Error kinds that parameters name (x-mock errorKind), checked once the contract's kinds are known.
        self.kind_uses: list[tuple[str, LoadError]] = []

    # ------------------------------------------------------------ errors and references

    def error(self, where: Sequence[Any], message: str) -> LoadError:
        file, line = self.doc.locate(where)
        return LoadError(file, message, line)

    def resolve(self, node: Any, where: Sequence[Any]) -> Any:
        """The node with every $ref inlined (recursive ones as $defs), in JSON Schema 2020-12."""
        inliner = _Inliner(self, where)
        out = inliner.inline(node, self.registry.resolver(base_uri=self.base), (), 0)
        if inliner.defs and isinstance(out, dict):
            out = {**out, "$defs": inliner.defs}
        return out

    def deref(self, node: Any, where: Sequence[Any]) -> Any:
        """A $ref'd object (parameter, response, request body), one level."""
        seen = 0
        resolver = self.registry.resolver(base_uri=self.base)
        while isinstance(node, dict) and "$ref" in node:
            seen += 1
            if seen > 32:
                raise self.error(where, "$ref chain too long (a cycle?)")
            try:
                found = resolver.lookup(node["$ref"])
            except Unresolvable:
                raise self.error([*where, "$ref"], f"$ref {node['$ref']!r} does not resolve") from None
            node, resolver = found.contents, found.resolver
        return node

    def validator(self, schema: dict[str, Any], fast: bool | None = False) -> Validator:
        # Inlined schemas are shared objects, so identity finds the repeats (error bodies,
        # common parameters) without serialising every schema to compare it.
        key = (id(schema), fast)
        found = self.validators.get(key)
        if found is None:
            found = compile_validator(schema, fast)
            self.validators[key] = found
            self.keep.append(schema)  # ids stay unique while the schema lives
        return found

    # ------------------------------------------------------------ operations

    def operations(self) -> Iterable[Operation]:
        paths = self.data.get("paths") or {}
        for template, item in paths.items():
            where_item = ("paths", template)
            item = self.deref(item, where_item)
            if not isinstance(item, dict):
                continue
            shared = item.get("parameters", [])
            for method in METHODS:
                if method not in item:
                    continue
                try:
                    yield self.operation(template, method, item[method], shared, (*where_item, method))
                except LoadError as exc:
                    self.errors.append(exc)

    def operation(self, template: str, method: str, op: dict[str, Any], shared: list[Any],
                  where: tuple[Any, ...]) -> Operation:
        params: dict[str, dict[str, Parameter]] = {"path": {}, "query": {}, "header": {}, "cookie": {}}
        declared: dict[tuple[str, str], tuple[Any, tuple[Any, ...]]] = {}
        for i, raw in enumerate(shared):
            declared[self._param_key(raw, (*where[:2], "parameters", i))] = (raw, (*where[:2], "parameters", i))
        for i, raw in enumerate(op.get("parameters", [])):
            declared[self._param_key(raw, (*where, "parameters", i))] = (raw, (*where, "parameters", i))
        for (location, name), (raw, at) in declared.items():
            if location in params:
                params[location][name if location != "header" else name.lower()] = self.parameter(raw, at)
        regex, literals = _path_regex(template)
        missing = set(regex.groupindex) - set(params["path"])
        for name in sorted(missing):  # an undeclared path parameter: any non-empty segment
            params["path"][name] = Parameter(name, {"type": "string"}, self.validator({"type": "string"}), True,
                                             INVALID_FIELD, None)
        body = self.request_body(op.get("requestBody"), (*where, "requestBody"))
        responses = self.responses(op.get("responses") or {}, (*where, "responses"))
        security = self.security(op.get("security", self.data.get("security", [])), where)
        operation_id = str(op.get("operationId") or _derived_id(method, template))
        mock = op.get("x-mock", {}) if isinstance(op.get("x-mock"), dict) else {}
        compiled = Operation(
            operation_id=operation_id,
            method=method.upper(),
            path=template,
            path_regex=regex,
            literal_segments=literals,
            summary=op.get("summary"),
            permission=mock.get("permission"),
            path_params=params["path"],
            query_params=params["query"],
            header_params=params["header"],
            security=security,
            request_body=body,
            responses=responses,
            source=f"{self.doc.path}",
            cookie_params=params["cookie"],
        )
        behaviour = mock.get("behaviour")
        if behaviour is not None:
            return _with(compiled, behaviour=conventions.behaviour_from(behaviour, compiled, self.error,
                                                                        (*where, "x-mock", "behaviour")),
                         behaviour_source=str(mock.get("source", "overlay")))
        inferred = conventions.infer(compiled)
        return _with(compiled, behaviour=inferred, behaviour_source="convention" if inferred else None)

    def _param_key(self, raw: Any, where: tuple[Any, ...]) -> tuple[str, str]:
        param = self.deref(raw, where)
        if not isinstance(param, dict) or "name" not in param or "in" not in param:
            raise self.error(where, "a parameter needs name and in")
        name = str(param["name"])
        return str(param["in"]), name.lower() if param["in"] == "header" else name

    def parameter(self, raw: Any, where: tuple[Any, ...]) -> Parameter:
        param = self.deref(raw, where)
        schema_node = param.get("schema")
        if schema_node is None and isinstance(param.get("content"), dict) and param["content"]:
            schema_node = next(iter(param["content"].values())).get("schema")
        schema = self.resolve(schema_node if schema_node is not None else {}, (*where, "schema"))
        mock = param.get("x-mock", {}) if isinstance(param.get("x-mock"), dict) else {}
        if "errorKind" in mock:
            self.kind_uses.append((str(mock["errorKind"]), self.error(
                (*where, "x-mock", "errorKind"), f"parameter {param.get('name')} names error kind "
                                                 f"{mock['errorKind']!r}, which the contract does not know "
                                                 f"(x-mock errors kinds)")))
        return Parameter(
            name=str(param["name"]),
            schema=schema,
            validator=self.validator(schema),
            required=bool(param.get("required", param["in"] == "path")),
            error_kind=str(mock.get("errorKind", INVALID_FIELD)),
            description=param.get("description"),
            style=str(param.get("style", "form" if param["in"] in ("query", "cookie") else "simple")),
            explode=bool(param.get("explode", param.get("style", "form") == "form")),
        )

    def request_body(self, raw: Any, where: tuple[Any, ...]) -> RequestBody | None:
        if raw is None:
            return None
        body = self.deref(raw, where)
        content = body.get("content") or {}
        media = next((m for m in content if _JSON.match(m.split(";")[0].strip())), None)
        media = media or next(iter(content), None)
        if media is None:
            return None
        schema_node = (content[media] or {}).get("schema", {})
        schema = self.resolve(schema_node, (*where, "content", media, "schema"))
        json_body = bool(_JSON.match(media.split(";")[0].strip()))
        return RequestBody(
            content_type=media.lower(),
            schema=schema,
            validator=self.validator(schema, fast=None if json_body else False),  # compiled by Engine.warm_up
            strict_validator=LazyValidator(lambda: compile_validator(_closed(schema), fast=None)),
            required=bool(body.get("required", False)),
            json=json_body,
        )

    def responses(self, raw: Mapping[str, Any], where: tuple[Any, ...]) -> dict[int, Response]:
        out: dict[int, Response] = {}
        for status, spec in raw.items():
            code = _status(status)
            if code is None:
                continue
            spec = self.deref(spec, (*where, status))
            content = spec.get("content") or {}
            media = next((m for m in content if _JSON.match(m.split(";")[0].strip())), None)
            media = media or next(iter(content), None)
            schema_node = (content.get(media) or {}).get("schema") if media else None
            schema = self.resolve(schema_node, (*where, status, "content", media, "schema")) \
                if schema_node is not None else ({} if media else {"type": "null"})
            examples = _examples(content.get(media) or {}) if media else {}
            out[code] = Response(code, str(spec.get("description", "")), schema, self.validator(schema),
                                 content_type=media, examples=examples)
        return out

    def security(self, requirements: Any, where: tuple[Any, ...]) -> tuple[SecurityScheme, ...]:
        """Alternatives (any one suffices); each may combine several schemes (all needed)."""
        schemes = (self.data.get("components") or {}).get("securitySchemes") or {}
        out: list[SecurityScheme] = []
        for requirement in requirements or []:
            if not requirement:  # {} in the list: anonymous access is one of the alternatives
                return ()
            parts = []
            for name in requirement:
                raw = schemes.get(name)
                if raw is None:
                    raise self.error(where, f"security scheme {name!r} is not in components.securitySchemes")
                scheme = _scheme(self.deref(raw, ("components", "securitySchemes", name)))
                if scheme is not None:
                    parts.append(scheme)
            if parts:
                first, *rest = parts
                out.append(_with(first, also=tuple(rest)))
        return tuple(out)

    def component_schemas(self) -> dict[str, dict[str, Any]]:
        found = ((self.data.get("components") or {}).get("schemas")) or {}
        return {f"#/components/schemas/{name}": self.resolve(node, ("components", "schemas", name))
                for name, node in found.items()}


class _Inliner:
    """Inlines $refs; a reference already being inlined further up becomes a $defs entry."""

    def __init__(self, compiler: _Compiler, where: Sequence[Any]) -> None:
        self.compiler = compiler
        self.where = tuple(where)
        self.defs: dict[str, Any] = {}
        self.names: dict[str, str] = {}
        self.cycles = 0

    def inline(self, node: Any, resolver: Any, stack: tuple[str, ...], depth: int) -> Any:
        if depth > 200:
            raise self.compiler.error(self.where, "schema nested too deeply")
        if isinstance(node, list):
            return [self.inline(v, resolver, stack, depth + 1) for v in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node and isinstance(node["$ref"], str):
            ref = node["$ref"]
            try:
                found = resolver.lookup(ref)
            except Unresolvable:
                raise self.compiler.error(self.where, f"$ref {ref!r} does not resolve") from None
            uri = _uri_of(found.resolver, ref, resolver)
            siblings = {k: self._value(k, v, resolver, stack, depth) for k, v in node.items() if k != "$ref"}
            if uri in stack:
                self.cycles += 1
                name = self._name(uri)
                if name not in self.defs:
                    self.defs[name] = {}  # placed first, so the recursion below sees it
                    self.defs[name] = self.inline(found.contents, found.resolver, (uri,), depth + 1)
                return _merge(({"$ref": f"#/$defs/{name}"}), siblings)
            # A schema referred to from many places is inlined once and shared (the results are
            # never changed afterwards), unless a cycle ran through it: then its shape depends
            # on where it was reached from.
            memo = self.compiler.memo
            target = memo.get(uri)
            if target is None:
                cycles = self.cycles
                target = self.inline(found.contents, found.resolver, (*stack, uri), depth + 1)
                if self.cycles == cycles:
                    memo[uri] = target
            return _merge(target, siblings)
        out = {k: self._value(k, v, resolver, stack, depth) for k, v in node.items()
               if k not in ("$schema", "$id", "definitions", "$defs")}
        return _flatten_all_of(_dialect(out, self.compiler.openapi_30))

    def _value(self, key: str, value: Any, resolver: Any, stack: tuple[str, ...], depth: int) -> Any:
        if key in _DATA_KEYWORDS or key.startswith("x-"):
            return value
        if key == "properties" and isinstance(value, dict):  # property names are not keywords
            return {k: self.inline(v, resolver, stack, depth + 1) for k, v in value.items()}
        return self.inline(value, resolver, stack, depth + 1)

    def _name(self, uri: str) -> str:
        name = self.names.get(uri)
        if name is None:
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", uri.rsplit("/", 1)[-1]) or "def"
            name = base if base not in self.names.values() else f"{base}_{len(self.names)}"
            self.names[uri] = name
        return name


def _uri_of(found_resolver: Any, ref: str, resolver: Any) -> str:
    """The absolute address of a reference: the same schema reached from two files is one."""
    return _join(str(getattr(resolver, "_base_uri", "")), ref)


@lru_cache(maxsize=65536)
def _join(base: str, ref: str) -> str:
    return urljoin(base, ref)


def _merge(target: Any, siblings: dict[str, Any]) -> Any:
    if not siblings:
        return target
    if not isinstance(target, dict):
        return {"allOf": [target], **siblings}
    if all(k in _ANNOTATIONS or k.startswith("x-") for k in siblings):
        return {**target, **siblings}
    return {"allOf": [target, siblings]}


def _dialect(schema: dict[str, Any], openapi_30: bool) -> dict[str, Any]:
    """OpenAPI 3.0's schema dialect in JSON Schema 2020-12 terms (3.1 documents pass through)."""
    if "example" in schema and "examples" not in schema:
        schema["examples"] = [schema["example"]]
    schema.pop("example", None)
    if not openapi_30:
        return schema
    if schema.pop("nullable", False) is True:
        kind = schema.get("type")
        if isinstance(kind, str):
            schema["type"] = [kind, "null"]
        elif "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        elif kind is None:
            schema = {"anyOf": [schema, {"type": "null"}]}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if schema.get(exclusive) is True and bound in schema:
            schema[exclusive] = schema.pop(bound)
        elif schema.get(exclusive) is False:
            schema.pop(exclusive)
    return schema


_OBJECT_PART = frozenset({"type", "properties", "required", "title", "description", "additionalProperties"})


def _flatten_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    """``allOf`` of plain object schemas as the one object they describe together.

    The meaning is the same when no property is declared twice; as one object, what an
    answer echoes, requires and generates can be read off its properties.
    """
    parts = schema.get("allOf")
    if not isinstance(parts, list) or not parts:
        return schema
    if not all(isinstance(p, dict) and set(p) <= _OBJECT_PART and p.get("type", "object") == "object"
               and "additionalProperties" not in p for p in parts):
        return schema
    names = [n for p in parts for n in (p.get("properties") or {})]
    if len(names) != len(set(names)):
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    if merged.get("type", "object") != "object" or set(merged) - _OBJECT_PART - {"readOnly", "writeOnly"}:
        return schema
    properties = {**(merged.get("properties") or {})}
    required = list(merged.get("required") or [])
    for part in parts:
        properties.update(part.get("properties") or {})
        required.extend(r for r in part.get("required") or [] if r not in required)
    merged.update(type="object", properties=properties)
    if required:
        merged["required"] = required
    return merged


def _scheme(raw: Mapping[str, Any]) -> SecurityScheme | None:
    kind = raw.get("type")
    if kind == "apiKey":
        name = str(raw.get("name", ""))
        return SecurityScheme("apiKey", name.lower(), name, location=str(raw.get("in", "header")))
    if kind == "http":
        scheme = str(raw.get("scheme", "")).lower()
        if scheme == "bearer":
            return SecurityScheme("bearer", "authorization", "Authorization")
        if scheme == "basic":
            return SecurityScheme("basic", "authorization", "Authorization")
        return SecurityScheme("http", "authorization", "Authorization")
    if kind in ("oauth2", "openIdConnect"):
        return SecurityScheme("bearer", "authorization", "Authorization")
    return None  # mutualTLS: nothing to check at this level


def _examples(media: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "example" in media:
        out["default"] = media["example"]
    for name, example in (media.get("examples") or {}).items():
        if isinstance(example, dict) and "value" in example:
            out[str(name)] = example["value"]
    return out


def _status(key: Any) -> int | None:
    text = str(key)
    if text.isdigit() and len(text) == 3:
        return int(text)
    return None  # "default" and "2XX" ranges: no concrete status to answer with


def _derived_id(method: str, template: str) -> str:
    words = [w for w in re.split(r"[^A-Za-z0-9]+", template) if w]
    return method.lower() + "".join(w[:1].upper() + w[1:] for w in words)


def _with(value: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(value, **changes)


def _check_unique(operations: Sequence[Operation]) -> None:
    seen: dict[tuple[str, str], Operation] = {}
    for op in operations:
        key = (op.method, re.sub(r"\{[^}]+\}", "{}", op.path))
        if key in seen:
            raise LoadError(op.source, f"{op.method} {op.path} is defined twice (also in {seen[key].source})")
        seen[key] = op
