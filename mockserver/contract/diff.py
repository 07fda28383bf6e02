"""What changed between two OpenAPI 3.0/3.1 documents, and whether it breaks a client.

``mockserver diff OLD NEW`` answers the question a team asks before upgrading a
provider's contract: "does anything my client relies on stop working?". The
classification follows oasdiff's breaking-change checks (its ERR and WARN levels
both count as breaking here); where oasdiff has no check, or its newest release
relaxed one, the rule below says what is done and why.

"Breaking" always means breaking **for a client** of the API. The two directions
of data are therefore judged in opposite ways: a client *sends* requests, so a
request schema may widen (accept more) but not narrow; a client *reads*
responses, so a response schema may narrow (promise more) but not widen.

=============================  ==================  ===================  ======================================
kind                           in a request        in a response        why
=============================  ==================  ===================  ======================================
operation-removed              breaking            (n/a)                calls now fail (404/405)
operation-added                no                  (n/a)
operation-id-changed           no                  (n/a)                nothing changes on the wire; generated
                                                                        clients may rename a method
parameter-removed              breaking            (n/a)                oasdiff WARN: what the client sends
                                                                        is silently ignored or rejected
parameter-added                breaking if         (n/a)                a client that does not send it is
                               required                                 rejected
parameter-required-changed     breaking when it    (n/a)
                               became required
parameter-renamed              no                  (n/a)                a path parameter's name never goes
                                                                        over the wire (``{id}`` vs
                                                                        ``{resourceId}``)
parameter-style-changed        breaking            (n/a)                the value is serialised differently
request-body-added             breaking if         (n/a)
                               required
request-body-removed           breaking            (n/a)                like a removed property: the body the
                                                                        client sends is no longer read
request-body-required-changed  breaking when it    (n/a)
                               became required
response-status-removed        (n/a)               breaking for 2xx     oasdiff: success status removed is
                                                                        ERR, an error status is INFO
response-status-added          (n/a)               no                   oasdiff INFO
media-type-removed             breaking            breaking
media-type-added               no                  no
property-removed               breaking            breaking             request: oasdiff WARN; response: the
                                                                        client reads a field that is gone
property-added                 breaking if         no
                               required
required-added                 breaking            no                   an existing property became required
required-removed               no                  breaking             a response property became optional
type-changed                   breaking unless     breaking unless      ``integer`` counts as a ``number``;
                               widened             narrowed             a removed ``type`` is a widening
format-changed                 breaking unless     breaking unless
                               format removed      format added
nullable-changed               breaking when it    breaking when it     3.0 ``nullable``, 3.1 ``type: [.., null]``
                               stopped being       became nullable      and ``oneOf/anyOf: [.., {type: null}]``
                               nullable                                 are one notion
enum-value-removed             breaking            no
enum-value-added               no                  breaking             a client ``switch`` may not handle it
                                                                        (oasdiff WARN)
enum-constraint-added          breaking            no                   a free value became an enum
enum-constraint-removed        no                  breaking
additional-properties-changed  breaking when       no                   extra response properties are like
                               forbidden                                added properties
subschema-added                oneOf/anyOf: no;    oneOf/anyOf:         a new union branch in a response is
                               allOf: breaking     breaking; allOf: no  like a new enum value
subschema-removed              oneOf/anyOf:        oneOf/anyOf: no;     a dropped ``allOf`` part may take
                               breaking; allOf: no allOf: breaking      guaranteed properties with it
=============================  ==================  ===================  ======================================

Deliberate differences from oasdiff (v1.30+): removing an *optional* response
property, and dropping an ``allOf`` part of a response, are breaking here (oasdiff
lowered both to INFO); a client that reads the field breaks either way.
Removing a deprecated operation is still breaking (oasdiff lowers it after its
sunset date, which this module does not read).

Schemas are walked recursively: ``properties``, ``required``, ``type``,
``format``, ``enum``/``const``, ``items``, ``additionalProperties`` and
``oneOf``/``anyOf``/``allOf`` (compared by index: nothing tries to pair a
reordered union; a plain schema that became a union, or the reverse, is compared
with the branch of the same ``$ref``, else the first). A ``readOnly`` property
is not part of a request, and a ``writeOnly`` one not part of a response.
Operations are matched by method and path template, with parameter names ignored
(``/w/{id}`` is ``/w/{resourceId}``); path parameters are matched by position.
Not compared: constraints (``minimum``, ``maxLength``, ``pattern``...), defaults,
security, response headers, callbacks and 3.1 ``webhooks``.

A change's ``location`` is where it sits, then the property path: ``request body:
penalty_box_data.retry_count``, ``response 200: data[].url`` (``[]`` is an array's
items, ``*`` an ``additionalProperties`` schema, ``oneOf[1]`` a branch),
``parameter query limit``. A media type other than ``application/json`` is named:
``response 200 (text/csv)``.

Internal ``$ref`` (``#/...``) are resolved as they are met. Each pair of
referenced schemas (the old ``$ref`` and the new one at the same place) is
compared once, and its changes are reported once per request body, response or
parameter: at the shortest path that reaches the pair. That is what stops a
self-referencing schema, keeps big documents linear, and still names every
operation a change reaches; a schema used twice in one answer (``billing`` and
``shipping`` both an ``Address``) has its changes reported at the first place.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, TextIO
from urllib.parse import unquote

import yaml

__all__ = ["Change", "DiffError", "diff", "render_json", "render_table", "run_diff"]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_JSON = "application/json"
_REQUEST = "request"
_RESPONSE = "response"
_TEMPLATE = re.compile(r"\{[^}/]*\}")


@dataclass(frozen=True)
class Change:
    """One difference between the two documents."""

    operation: str  # "POST /v{version}/webhooks (postWebhooks)"
    location: str  # "request body: penalty_box_data.retry_count", "parameter query limit", "response 201"
    kind: str  # a stable identifier from the module docstring's table
    breaking: bool  # for a client of the API
    detail: str  # one human sentence


class DiffError(ValueError):
    """A document cannot be compared (a ``$ref`` that does not resolve, say)."""


# --- the document walk ------------------------------------------------------


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every change from ``old`` to ``new``: removed and changed operations in ``old``'s order, then added ones."""
    return _Differ(old, new).run()


@dataclass(frozen=True)
class _Op:
    method: str
    path: str
    item: dict[str, Any]
    op: dict[str, Any]

    @property
    def label(self) -> str:
        op_id = self.op.get("operationId")
        return f"{self.method.upper()} {self.path}" + (f" ({op_id})" if op_id else "")


@dataclass(frozen=True)
class _Delta:
    """A change inside a schema, relative to where the schema sits."""

    path: str
    kind: str
    breaking: bool
    detail: str


_Key = tuple[str, str, str]  # old $ref, new $ref, direction


@dataclass(frozen=True)
class _Link:
    """Where a pair of referenced schemas sits; its changes are found once, by :meth:`_Differ._compare`."""

    path: str
    key: _Key


@dataclass
class _Schema:
    """One schema as the comparison sees it: references followed, null split off."""

    ref: str | None
    raw: dict[str, Any]
    types: frozenset[str] | None  # the non-null types; None: no type constraint
    nullable: bool
    enum: dict[str, Any] | None  # canonical JSON -> value, null excluded
    combinators: dict[str, list[Any]] = field(default_factory=dict)


class _Differ:
    def __init__(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.old = old
        self.new = new
        # a pair of referenced schemas (old $ref, new $ref, direction) is compared once per run
        self._pairs: dict[_Key, tuple[_Schema, _Schema]] = {}
        self._local: dict[_Key, tuple[_Delta | _Link, ...]] = {}

    def run(self) -> list[Change]:
        old_ops = _operations(self.old)
        new_ops = _operations(self.new)
        changes: list[Change] = []
        for key, old_op in old_ops.items():
            new_op = new_ops.get(key)
            if new_op is None:
                note = " (it was deprecated)" if old_op.op.get("deprecated") else ""
                changes.append(Change(old_op.label, "operation", "operation-removed", True,
                                      f"{old_op.method.upper()} {old_op.path} was removed{note}; calls to it fail"))
            else:
                changes.extend(self._operation(old_op, new_op))
        for key, new_op in new_ops.items():
            if key not in old_ops:
                changes.append(Change(new_op.label, "operation", "operation-added", False,
                                      f"{new_op.method.upper()} {new_op.path} was added"))
        return changes

    def _operation(self, old: _Op, new: _Op) -> Iterator[Change]:
        label = new.label
        old_id, new_id = old.op.get("operationId"), new.op.get("operationId")
        if old_id != new_id:
            yield Change(label, "operation", "operation-id-changed", False,
                         f"operationId changed from {old_id or 'none'} to {new_id or 'none'}; "
                         "generated client method names may change")
        for where, delta in self._parameters(old, new):
            yield Change(label, where, delta.kind, delta.breaking, delta.detail)
        for where, delta in self._request_body(old.op.get("requestBody"), new.op.get("requestBody")):
            yield Change(label, where, delta.kind, delta.breaking, delta.detail)
        for where, delta in self._responses(old.op.get("responses") or {}, new.op.get("responses") or {}):
            yield Change(label, where, delta.kind, delta.breaking, delta.detail)

    # parameters

    def _parameters(self, old: _Op, new: _Op) -> Iterator[tuple[str, _Delta]]:
        old_params = _parameters(self.old, old)
        new_params = _parameters(self.new, new)
        for key, old_p in old_params.items():
            new_p = new_params.get(key)
            if new_p is None:
                yield _param_where(old_p), _Delta("", "parameter-removed", True,
                                                  f"{old_p['in']} parameter '{old_p['name']}' was removed; "
                                                  "what clients send in it is no longer read")
                continue
            where = _param_where(new_p)
            if old_p["name"] != new_p["name"]:
                yield where, _Delta("", "parameter-renamed", False,
                                    f"path parameter {{{old_p['name']}}} is now called {{{new_p['name']}}}; "
                                    "the URL a client builds is the same")
            old_req, new_req = _param_required(old_p), _param_required(new_p)
            if old_req != new_req:
                yield where, _Delta("", "parameter-required-changed", new_req,
                                    "became required" if new_req else "became optional")
            if _param_style(old_p) != _param_style(new_p):
                yield where, _Delta("", "parameter-style-changed", True,
                                    "serialisation changed from style={}, explode={} to style={}, explode={}".format(
                                        *_param_style(old_p), *_param_style(new_p)))
            for delta in self._compare(_param_schema(old_p), _param_schema(new_p), _REQUEST):
                yield _at(where, delta.path), delta
        for key, new_p in new_params.items():
            if key not in old_params:
                required = _param_required(new_p)
                yield _param_where(new_p), _Delta(
                    "", "parameter-added", required,
                    f"new {'required' if required else 'optional'} {new_p['in']} parameter '{new_p['name']}'")

    # request body

    def _request_body(self, old_body: Any, new_body: Any) -> Iterator[tuple[str, _Delta]]:
        old_body = _deref(self.old, old_body)[1] if old_body is not None else None
        new_body = _deref(self.new, new_body)[1] if new_body is not None else None
        if old_body is None and new_body is None:
            return
        if old_body is None:
            required = bool(new_body.get("required"))
            yield "request body", _Delta("", "request-body-added", required,
                                         f"a {'required' if required else 'optional'} request body was added")
            return
        if new_body is None:
            yield "request body", _Delta("", "request-body-removed", True,
                                         "the request body was removed; what clients send is no longer read")
            return
        old_req, new_req = bool(old_body.get("required")), bool(new_body.get("required"))
        if old_req != new_req:
            yield "request body", _Delta("", "request-body-required-changed", new_req,
                                         "the request body became " + ("required" if new_req else "optional"))
        yield from self._content("request body", old_body.get("content") or {}, new_body.get("content") or {},
                                 _REQUEST)

    # responses

    def _responses(self, old: dict[Any, Any], new: dict[Any, Any]) -> Iterator[tuple[str, _Delta]]:
        old = {str(status): value for status, value in old.items()}  # YAML reads 200: as an int
        new = {str(status): value for status, value in new.items()}
        for status, old_resp in old.items():
            where = f"response {status}"
            if status not in new:
                success = status.startswith("2")
                yield where, _Delta("", "response-status-removed", success,
                                    f"status {status} is no longer returned"
                                    + ("; clients expecting it as the success answer break" if success else ""))
                continue
            old_resp = _deref(self.old, old_resp)[1]
            new_resp = _deref(self.new, new[status])[1]
            yield from self._content(where, old_resp.get("content") or {}, new_resp.get("content") or {}, _RESPONSE)
        for status in new:
            if status not in old:
                yield f"response {status}", _Delta("", "response-status-added", False,
                                                   f"status {status} may now be returned")

    def _content(self, base: str, old: dict[str, Any], new: dict[str, Any], ctx: str) -> Iterator[tuple[str, _Delta]]:
        for media, old_media in old.items():
            where = base if media == _JSON else f"{base} ({media})"
            if media not in new:
                yield where, _Delta("", "media-type-removed", True, f"{media} is no longer "
                                    + ("accepted" if ctx == _REQUEST else "returned"))
                continue
            old_schema = (old_media or {}).get("schema")
            new_schema = (new[media] or {}).get("schema")
            if old_schema is None and new_schema is None:
                continue
            for delta in self._compare({} if old_schema is None else old_schema,
                                       {} if new_schema is None else new_schema, ctx):
                yield _at(where, delta.path), delta
        for media in new:
            if media not in old:
                where = base if media == _JSON else f"{base} ({media})"
                yield where, _Delta("", "media-type-added", False, f"{media} is now "
                                    + ("accepted" if ctx == _REQUEST else "returned"))

    # schemas

    def _compare(self, old_node: Any, new_node: Any, ctx: str) -> list[_Delta]:
        """Every change between two schemas (a request body, a response, a parameter).

        Walked breadth first: each pair of referenced schemas is expanded once, at the
        shortest path that reaches it. That ends cycles, keeps big documents linear, and
        still reports every change reachable from this schema.
        """
        found: list[_Delta] = []
        expanded: set[_Key] = set()
        queue: deque[tuple[str, _Delta | _Link]] = deque(("", item) for item in self._nested("", old_node, new_node, ctx))
        while queue:
            prefix, item = queue.popleft()
            if isinstance(item, _Delta):
                found.append(_Delta(_join(prefix, item.path), item.kind, item.breaking, item.detail))
            elif item.key not in expanded:
                expanded.add(item.key)
                queue.extend((_join(prefix, item.path), sub) for sub in self._pair(item.key))
        return found

    def _pair(self, key: _Key) -> tuple[_Delta | _Link, ...]:
        if key not in self._local:
            old, new = self._pairs[key]
            self._local[key] = tuple(self._schema(old, new, key[2], nullability=False))
        return self._local[key]

    def _nested(self, segment: str, old_node: Any, new_node: Any, ctx: str) -> Iterator[_Delta | _Link]:
        """The changes at ``segment``; below a pair of references, only a link to the pair."""
        old = _view(self.old, old_node)
        new = _view(self.new, new_node)
        if old.ref is None or new.ref is None:
            items: Iterable[_Delta | _Link] = self._schema(old, new, ctx)
        else:
            # nullability belongs to the place (`oneOf: [$ref, null]`), not to the pair
            key = (old.ref, new.ref, ctx)
            self._pairs.setdefault(key, (old, new))
            items = [*_nullable(old, new, ctx == _REQUEST), _Link("", key)]
        for item in items:
            yield replace(item, path=_join(segment, item.path))

    def _schema(self, old: _Schema, new: _Schema, ctx: str, nullability: bool = True) -> Iterator[_Delta | _Link]:
        request = ctx == _REQUEST
        if nullability:
            yield from _nullable(old, new, request)
        if (lifted := self._lifted(old, new, ctx)) is not None:
            yield from lifted
            return
        yield from _types(old, new, request)
        yield from _format(old, new, request)
        yield from _enum(old, new, request)
        yield from self._properties(old, new, ctx)
        yield from self._additional(old, new, ctx)
        old_items, new_items = old.raw.get("items"), new.raw.get("items")
        if old_items is not None or new_items is not None:
            yield from self._nested("[]", _or_any(old_items), _or_any(new_items), ctx)
        yield from self._combinators(old, new, ctx)

    def _lifted(self, old: _Schema, new: _Schema, ctx: str) -> Iterator[_Delta | _Link] | None:
        """A plain schema on one side and a union on the other: the plain one is compared as a one-branch union.

        Without this, ``X`` becoming ``oneOf: [X, Y]`` would read as every property of
        ``X`` removed; it is one branch added. The plain schema is paired with the
        branch that has the same ``$ref``, else with the first.
        """
        for keyword in ("oneOf", "anyOf"):
            if _pure_union(new, keyword) and not old.combinators:
                return self._one_against_many(keyword, old, new.combinators[keyword], self.new, ctx, True)
            if _pure_union(old, keyword) and not new.combinators:
                return self._one_against_many(keyword, new, old.combinators[keyword], self.old, ctx, False)
        return None

    def _one_against_many(self, keyword: str, single: _Schema, branches: list[Any], doc: dict[str, Any],
                          ctx: str, grew: bool) -> Iterator[_Delta | _Link]:
        refs = [_deref(doc, branch)[0] for branch in branches]
        match = refs.index(single.ref) if single.ref is not None and single.ref in refs else 0
        node = {"$ref": single.ref} if single.ref is not None else single.raw
        pair = (node, branches[match]) if grew else (branches[match], node)
        yield from self._nested(f"{keyword}[{match}]", *pair, ctx)
        request = ctx == _REQUEST
        for index in range(len(branches)):
            if index == match:
                continue
            if grew:
                yield _Delta(f"{keyword}[{index}]", "subschema-added", not request,
                             f"became a {keyword} with a new subschema at index {index}")
            else:
                yield _Delta(f"{keyword}[{index}]", "subschema-removed", request,
                             f"is no longer a {keyword}; the subschema at index {index} is gone")

    def _properties(self, old: _Schema, new: _Schema, ctx: str) -> Iterator[_Delta | _Link]:
        request = ctx == _REQUEST
        old_props = self._visible(self.old, old, ctx)
        new_props = self._visible(self.new, new, ctx)
        hidden = (set(_properties(old)) - set(old_props)) | (set(_properties(new)) - set(new_props))
        old_required = _required(old) - hidden
        new_required = _required(new) - hidden
        for name, old_prop in old_props.items():
            if name not in new_props:
                yield _Delta(name, "property-removed", True,
                             f"'{name}' is no longer " + ("accepted" if request else "returned"))
                continue
            if name in old_required and name not in new_required:
                yield _Delta(name, "required-removed", not request,
                             f"'{name}' became optional" + ("" if request else "; it may be missing"))
            elif name in new_required and name not in old_required:
                yield _Delta(name, "required-added", request, f"'{name}' became required")
            yield from self._nested(name, old_prop, new_props[name], ctx)
        for name in new_props:
            if name not in old_props:
                required = name in new_required
                yield _Delta(name, "property-added", request and required,
                             f"new {'required' if required else 'optional'} property '{name}'")
        # required names declared elsewhere (an allOf part, say)
        for name in sorted((old_required ^ new_required) - set(old_props) - set(new_props)):
            if name in new_required:
                yield _Delta(name, "required-added", request, f"'{name}' became required")
            else:
                yield _Delta(name, "required-removed", not request, f"'{name}' is no longer required")

    def _visible(self, doc: dict[str, Any], schema: _Schema, ctx: str) -> dict[str, Any]:
        """The properties that take part in this direction: readOnly ones are not sent, writeOnly ones not returned."""
        hidden_flag = "readOnly" if ctx == _REQUEST else "writeOnly"
        return {name: prop for name, prop in _properties(schema).items()
                if not (isinstance(p := _deref(doc, prop)[1], dict) and p.get(hidden_flag) is True)}

    def _additional(self, old: _Schema, new: _Schema, ctx: str) -> Iterator[_Delta | _Link]:
        old_ap = old.raw.get("additionalProperties", True)
        new_ap = new.raw.get("additionalProperties", True)
        if (old_ap is False) != (new_ap is False):
            forbidden = new_ap is False
            yield _Delta("", "additional-properties-changed", forbidden and ctx == _REQUEST,
                         "properties not listed are now " + ("rejected" if forbidden else "allowed"))
        elif old_ap is not False and (isinstance(old_ap, dict) or isinstance(new_ap, dict)):
            yield from self._nested("*", _or_any(old_ap), _or_any(new_ap), ctx)

    def _combinators(self, old: _Schema, new: _Schema, ctx: str) -> Iterator[_Delta | _Link]:
        request = ctx == _REQUEST
        for keyword in ("oneOf", "anyOf", "allOf"):
            old_list = old.combinators.get(keyword, [])
            new_list = new.combinators.get(keyword, [])
            for index in range(min(len(old_list), len(new_list))):
                yield from self._nested(f"{keyword}[{index}]", old_list[index], new_list[index], ctx)
            # a union branch widens, an allOf part narrows
            widens = keyword != "allOf"
            for index in range(len(old_list), len(new_list)):
                yield _Delta(f"{keyword}[{index}]", "subschema-added", widens != request,
                             f"{keyword} gained a subschema at index {index}")
            for index in range(len(new_list), len(old_list)):
                yield _Delta(f"{keyword}[{index}]", "subschema-removed", widens == request,
                             f"{keyword} lost its subschema at index {index}")


def _types(old: _Schema, new: _Schema, request: bool) -> Iterator[_Delta]:
    if old.types == new.types:
        return
    widened = _covers(new.types, old.types)
    narrowed = _covers(old.types, new.types)
    yield _Delta("", "type-changed", not widened if request else not narrowed,
                 f"type changed from {_type_name(old.types)} to {_type_name(new.types)}")


def _nullable(old: _Schema, new: _Schema, request: bool) -> Iterator[_Delta]:
    if old.nullable == new.nullable:
        return
    # a request may start accepting null, a response may stop sending it
    breaking = not new.nullable if request else new.nullable
    yield _Delta("", "nullable-changed", breaking, "became nullable" if new.nullable else "is no longer nullable")


def _format(old: _Schema, new: _Schema, request: bool) -> Iterator[_Delta]:
    old_format, new_format = old.raw.get("format"), new.raw.get("format")
    if old_format == new_format:
        return
    if request:
        breaking = new_format is not None
    else:
        breaking = old_format is not None
    yield _Delta("", "format-changed", breaking, f"format changed from {old_format or 'none'} to {new_format or 'none'}")


def _enum(old: _Schema, new: _Schema, request: bool) -> Iterator[_Delta]:
    if old.enum is None and new.enum is None:
        return
    if old.enum is None:
        yield _Delta("", "enum-constraint-added", request,
                     "now limited to " + ", ".join(new.enum or {}))
        return
    if new.enum is None:
        yield _Delta("", "enum-constraint-removed", not request, "no longer limited to a list of values")
        return
    for text in old.enum:
        if text not in new.enum:
            yield _Delta("", "enum-value-removed", request, f"enum value {text} was removed")
    for text in new.enum:
        if text not in old.enum:
            yield _Delta("", "enum-value-added", not request, f"enum value {text} was added")


def _covers(wide: frozenset[str] | None, narrow: frozenset[str] | None) -> bool:
    """Whether every value of type ``narrow`` is also of type ``wide``."""
    if wide is None:
        return True
    if narrow is None:
        return False
    return all(t in wide or (t == "integer" and "number" in wide) for t in narrow)


def _type_name(types: frozenset[str] | None) -> str:
    if types is None:
        return "any"
    return "|".join(sorted(types)) or "nothing"


# --- schema views -----------------------------------------------------------

# keywords that make a schema more than a wrapper around one union branch
_OWN = ("type", "properties", "items", "enum", "const", "additionalProperties", "required", "format",
        "allOf", "not", "prefixItems", "patternProperties")


def _view(doc: dict[str, Any], node: Any, seen: frozenset[str] = frozenset()) -> _Schema:
    ref, raw = _deref(doc, node)
    if raw is True or raw is None:
        raw = {}
    if raw is False:
        return _Schema(ref, {}, frozenset(), False, None)
    if not isinstance(raw, dict):
        raise DiffError(f"{ref or 'a schema'} is not a schema object: {raw!r}")
    nullable = raw.get("nullable") is True
    types: frozenset[str] | None = None
    declared = raw.get("type")
    if isinstance(declared, str):
        declared = [declared]
    if isinstance(declared, list):
        nullable = nullable or "null" in declared
        types = frozenset(t for t in declared if t != "null")
        if not types and nullable:  # {type: null} alone: only null
            types = frozenset()
    enum: dict[str, Any] | None = None
    values = raw.get("enum") if "enum" in raw else ([raw["const"]] if "const" in raw else None)
    if isinstance(values, list):
        nullable = nullable or None in values
        enum = {_canonical(v): v for v in values if v is not None}
    combinators: dict[str, list[Any]] = {}
    for keyword in ("oneOf", "anyOf", "allOf"):
        branches = raw.get(keyword)
        if not isinstance(branches, list):
            continue
        kept = []
        for branch in branches:
            if keyword != "allOf" and _only_null(_deref(doc, branch)[1]):
                nullable = True
            else:
                kept.append(branch)
        combinators[keyword] = kept
    # oneOf: [X, {type: null}] is "X or null": compare it as X, nullable
    for keyword in ("oneOf", "anyOf"):
        kept = combinators.get(keyword)
        if kept is not None and len(kept) == 1 and len(combinators) == 1 and not any(k in raw for k in _OWN):
            branch_ref = _deref(doc, kept[0])[0]
            if branch_ref is None or branch_ref not in seen:
                inner = _view(doc, kept[0], seen | ({ref} if ref else set()))
                inner.nullable = inner.nullable or nullable
                if inner.ref is None:
                    inner.ref = ref
                return inner
    return _Schema(ref, raw, types, nullable, enum, combinators)


def _only_null(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    return (schema.get("type") in ("null", ["null"]) or schema.get("enum") == [None]
            or ("const" in schema and schema["const"] is None))


def _deref(doc: dict[str, Any], node: Any) -> tuple[str | None, Any]:
    """Follow ``$ref`` (chains too); the first reference's name and the target, with sibling keywords on top."""
    first: str | None = None
    seen: set[str] = set()
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in seen:
            raise DiffError(f"$ref {ref} only refers to itself")
        seen.add(ref)
        first = first or ref
        target = _pointer(doc, ref)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **siblings} if siblings and isinstance(target, dict) else target
    return first, node


def _pointer(doc: dict[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        raise DiffError(f"$ref {ref} points outside the document; only '#/...' references are supported")
    node: Any = doc
    for raw_part in ref[1:].lstrip("/").split("/") if ref not in ("#", "#/") else []:
        part = unquote(raw_part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise DiffError(f"$ref {ref} does not resolve")
    return node


def _pure_union(schema: _Schema, keyword: str) -> bool:
    """A schema that is only a ``oneOf``/``anyOf`` of two or more branches."""
    return (len(schema.combinators.get(keyword, [])) >= 2 and len(schema.combinators) == 1
            and not any(k in schema.raw for k in _OWN if k not in ("allOf",)))


def _properties(schema: _Schema) -> dict[str, Any]:
    props = schema.raw.get("properties")
    return props if isinstance(props, dict) else {}


def _required(schema: _Schema) -> set[str]:
    required = schema.raw.get("required")
    return {name for name in required if isinstance(name, str)} if isinstance(required, list) else set()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _or_any(node: Any) -> Any:
    return {} if node is None or node is True else node


def _join(head: str, rest: str) -> str:
    if not head or not rest:
        return head or rest
    return f"{head}{rest}" if rest.startswith("[") else f"{head}.{rest}"


def _at(where: str, path: str) -> str:
    return f"{where}: {path}" if path else where


# --- operations and parameters ----------------------------------------------


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], _Op]:
    """Operations keyed by method and path template, with template variable names blanked."""
    ops: dict[tuple[str, str], _Op] = {}
    for path, item in (doc.get("paths") or {}).items():
        item = _deref(doc, item)[1]
        if not isinstance(item, dict):
            continue
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            key = (method, _TEMPLATE.sub("{}", path))
            if key in ops:  # two templates differing only in names: invalid OpenAPI; keep both apart
                key = (method, path)
            ops[key] = _Op(method, path, item, op)
    return ops


def _parameters(doc: dict[str, Any], op: _Op) -> dict[tuple[str, Any], dict[str, Any]]:
    """The operation's parameters (path-level ones overridden by operation-level ones).

    Path parameters are keyed by their position in the template, so a renamed one is
    still the same parameter; header names are case-insensitive.
    """
    positions = {name[1:-1]: index for index, name in enumerate(_TEMPLATE.findall(op.path))}
    by_name: dict[tuple[str, str], dict[str, Any]] = {}
    for source in (op.item.get("parameters") or [], op.op.get("parameters") or []):
        for entry in source:
            param = _deref(doc, entry)[1]
            if isinstance(param, dict) and "name" in param and "in" in param:
                by_name[(param["in"], param["name"])] = param
    keyed: dict[tuple[str, Any], dict[str, Any]] = {}
    for (location, name), param in by_name.items():
        if location == "path" and name in positions:
            keyed[("path", positions[name])] = param
        elif location == "header":
            keyed[("header", name.lower())] = param
        else:
            keyed[(location, name)] = param
    return keyed


def _param_where(param: dict[str, Any]) -> str:
    return f"parameter {param['in']} {param['name']}"


def _param_required(param: dict[str, Any]) -> bool:
    return param["in"] == "path" or param.get("required") is True


def _param_style(param: dict[str, Any]) -> tuple[str, bool]:
    default = "form" if param["in"] in ("query", "cookie") else "simple"
    style = param.get("style", default)
    return style, bool(param.get("explode", style == "form"))


def _param_schema(param: dict[str, Any]) -> Any:
    if "schema" in param:
        return param["schema"]
    for media in (param.get("content") or {}).values():
        return (media or {}).get("schema") or {}
    return {}


# --- output -----------------------------------------------------------------


def render_table(changes: Iterable[Change]) -> str:
    """A plain-text table, one change a line, and a summary line."""
    changes = list(changes)
    breaking = sum(c.breaking for c in changes)
    lines: list[str] = []
    if changes:
        rows = [("OPERATION", "WHERE", "CHANGE", "BREAKING", "DETAIL")]
        rows += [(c.operation, c.location, c.kind, "yes" if c.breaking else "no", c.detail) for c in changes]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    else:
        lines.append("No changes.")
    lines.append(f"{len(changes)} change{'' if len(changes) == 1 else 's'}, {breaking} breaking")
    return "\n".join(lines) + "\n"


def render_json(changes: Iterable[Change]) -> str:
    """``{"changes": [...], "breaking": M}``; each change has the fields of :class:`Change`."""
    changes = list(changes)
    return json.dumps({"changes": [asdict(c) for c in changes], "breaking": sum(c.breaking for c in changes)},
                      indent=2, ensure_ascii=False) + "\n"


_RENDERERS = {"table": render_table, "json": render_json}


def run_diff(old_path: str | Path, new_path: str | Path, fmt: str, out: TextIO, err: TextIO) -> int:
    """Compare two files; 0: nothing breaking, 1: something breaking, 2: a file or option problem."""
    render = _RENDERERS.get(fmt)
    if render is None:
        print(f"mockserver: error: unknown format {fmt!r}; use one of {', '.join(_RENDERERS)}", file=err)
        return 2
    try:
        old = _load(Path(old_path))
        new = _load(Path(new_path))
        changes = diff(old, new)
    except DiffError as exc:
        print(f"mockserver: error: {exc}", file=err)
        return 2
    out.write(render(changes))
    return 1 if any(c.breaking for c in changes) else 0


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DiffError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DiffError(f"{path}: not UTF-8 text") from exc
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise DiffError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise DiffError(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(doc, dict):
        raise DiffError(f"{path}: not an OpenAPI document (the top level is not a mapping)")
    version = str(doc.get("openapi", ""))
    if not version.startswith("3."):
        found = f"swagger {doc['swagger']}" if "swagger" in doc else f"openapi {version or '(missing)'}"
        raise DiffError(f"{path}: only OpenAPI 3.0 and 3.1 documents can be compared, found {found}")
    return doc
