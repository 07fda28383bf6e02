"""The compiled contract: operations, parameters, bodies and responses as frozen values, with
validators built once. Every loader (the OpenAPI documents and overlays, the older spec
directory) produces these; everything that serves requests reads only these.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import unquote

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ..errors import PROBLEM_DETAILS, ErrorShape
from ..formats import FORMAT_CHECKER, INTEGER_RANGES, ReferenceValidator
# Keys whose values are data, not subschemas: never walked for $ref.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples", "example", "x-faker"})
# Keys that only annotate; a $ref sibling with one of these overrides the target.
_ANNOTATIONS = frozenset({
    "title", "description", "default", "examples", "readOnly", "writeOnly",
    "deprecated", "x-faker", "$comment",
})


_DELIMITERS = {"spaceDelimited": " ", "pipeDelimited": "|"}


@dataclass(frozen=True)
class Parameter:
    """A path, query or header parameter with its compiled validator."""

    name: str
    schema: dict[str, Any]
    validator: Validator
    required: bool
    error_kind: str
    description: str | None
    style: str = "simple"
    explode: bool = False
    _seen: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def coerce(self, value: str) -> Any:
        """A path or query string as the type its schema declares (``"20"`` -> 20), when it parses.

        An array travels as comma-separated values (repeated query keys arrive joined the same
        way), or separated by spaces or pipes for the ``spaceDelimited`` and ``pipeDelimited``
        styles when not exploded.
        """
        types = self.schema.get("type")
        types = [types] if isinstance(types, str) else list(types or [])
        if "array" in types and "string" not in types:
            items = self.schema.get("items")
            item = Parameter(self.name, items if isinstance(items, dict) else {}, self.validator, False,
                             self.error_kind, None)
            separator = "," if self.explode else _DELIMITERS.get(self.style, ",")
            return [item.coerce(v) for v in value.split(separator)] if value else []
        if "integer" in types and len(value) <= 4000 and re.fullmatch(r"-?[0-9]+", value):
            return int(value)
        if "number" in types:
            try:
                return float(value)
            except ValueError:
                return value
        if "boolean" in types and value in ("true", "false"):
            return value == "true"
        return value

    def gather(self, values: Mapping[str, str], key: str) -> str | dict[str, Any] | None:
        """This parameter's value among a request's values: ``key`` (its name as the request's
        values spell it), or for the ``deepObject`` style every ``key[property]``, as an object
        of coerced properties."""
        if self.style != "deepObject":
            return values.get(key)
        prefix = key + "["
        found = {key[len(prefix):-1]: value for key, value in values.items()
                 if key.startswith(prefix) and key.endswith("]")}
        if not found:
            return None
        props = self.schema.get("properties") or {}
        return {key: Parameter(key, props[key], self.validator, False, self.error_kind, None).coerce(value)
                if isinstance(props.get(key), dict) else value for key, value in found.items()}

    def accepts(self, value: str | dict[str, Any]) -> bool:
        """Whether a value is valid; remembered, because a client sends the same few values again and again."""
        if isinstance(value, dict):  # a deepObject: not worth remembering
            return self.validator.is_valid(value)
        known = self._seen.get(value)
        if known is None:
            known = self.validator.is_valid(self.coerce(value))
            if len(self._seen) < 1024:
                self._seen[value] = known
        return known


@dataclass(frozen=True)
class SecurityScheme:
    """One accepted way to authenticate; an operation accepts any one of its schemes."""

    kind: str  # "apiKey", "bearer", "basic" or "http" (another HTTP scheme)
    header: str  # lower-case name the credential travels in (a header, query or cookie name)
    name: str  # the name as the contract writes it
    location: str = "header"  # where an apiKey travels: header, query or cookie
    also: tuple["SecurityScheme", ...] = ()  # schemes required together with this one


@dataclass(frozen=True)
class RequestBody:
    """The body an operation accepts, with a lenient and a strict validator."""

    content_type: str
    schema: dict[str, Any]
    validator: Validator
    strict_validator: Validator
    required: bool
    json: bool = True  # a JSON media type: parsed and validated; any other is accepted as sent


@dataclass(frozen=True)
class Response:
    status: int
    description: str
    schema: dict[str, Any]
    validator: Validator
    content_type: str | None = "application/json"
    examples: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """Where a list answer puts its items and paging facts, and which query parameters drive it."""

    items: str  # "" when the answer is the array itself
    limit: str | None
    page: str | None
    pages: str | None
    links: str | None
    limit_param: str | None
    page_param: str | None
    default_limit: int
    link_names: Mapping[str, str] = field(default_factory=dict)  # first/previous/current/next -> key
    order_param: str | None = None
    direction_param: str | None = None


@dataclass(frozen=True)
class Behaviour:
    """What the mock does with a valid request: store, read, list, update or delete a resource,
    answer fixed data, or run a named action."""

    kind: str
    collection: str | None = None
    id_field: str | None = None
    key: str | None = None
    action: str | None = None
    data: Any = None
    page: Page | None = None


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    path_regex: re.Pattern[str]
    literal_segments: int
    summary: str | None
    permission: str | None
    path_params: Mapping[str, Parameter]
    query_params: Mapping[str, Parameter]
    header_params: Mapping[str, Parameter]
    security: tuple[SecurityScheme, ...]
    request_body: RequestBody | None
    responses: Mapping[int, Response]
    source: str
    behaviour: Behaviour | None = None
    cookie_params: Mapping[str, Parameter] = field(default_factory=dict)
    behaviour_source: str | None = None  # "convention", an overlay's name, or the spec file
    # (collection, path parameter) of the stored resource this path lies under, as in
    # ``/things/{id}/archive``: unknown or deleted, the operation answers 404.
    parent: tuple[str, str] | None = None

    @property
    def server_owned(self) -> frozenset[str]:
        """Answer fields the mock decides and a client never sets: the stored resource's id."""
        if self.behaviour is not None and self.behaviour.id_field and self.behaviour.kind in ("create", "update"):
            return frozenset({self.behaviour.id_field})
        return frozenset()

    def match_path(self, path: str) -> dict[str, str] | None:
        """Decoded path parameters if the raw ``path`` fits this operation's template, else None.

        Matching the percent-encoded path keeps ``%2F`` inside a parameter instead of
        turning it into a separator.
        """
        m = self.path_regex.match(path)
        return {k: unquote(v) for k, v in m.groupdict().items()} if m else None


@dataclass(frozen=True)
class RequestId:
    header: str
    prefix: str
    length: int
    declared: bool = True  # False: the contract promises none; the mock's own default is used


@dataclass(frozen=True)
class Contract:
    """The whole loaded contract; immutable and shared by everything that serves requests."""

    source: Path  # the (first) document it was compiled from
    title: str
    description: str | None
    operations: tuple[Operation, ...]
    error_schema: dict[str, Any]
    request_id: RequestId
    schemas: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    tenancy_header: str | None = None
    error_shape: ErrorShape = PROBLEM_DETAILS  # how errors are written (x-mock errors), else RFC 9457
    events: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # object type -> data of its events
    # Whether a nullable answer field is null unless the contract says how to make a value
    # (x-faker, a default); else every field gets a value, as most documents expect.
    null_when_unsaid: bool = False
    # How resources deliver events: compiled by contract.deliveries from x-mock ``deliveries``.
    deliveries: Any = None

    def write_only_fields(self) -> frozenset[str]:
        """Names of request fields marked ``writeOnly`` anywhere: never echoed, logged or journaled."""
        names: set[str] = set()
        memo: dict[int, frozenset[str]] = {}
        for op in self.operations:
            if op.request_body is not None:
                names.update(flagged_properties(op.request_body.schema, "writeOnly", memo))
        return frozenset(names)


class Validator:
    """jsonschema as the reference, with a compiled fast path for the common case.

    ``is_valid`` asks jsonschema-rs (Draft 2020-12 compiled in Rust, with the same format
    checks and ECMA-262 patterns as the reference); detailed errors always come from
    jsonschema, so messages never depend on the fast path.
    """

    __slots__ = ("schema", "reference", "parts", "_fast", "_want_fast")

    def __init__(self, schema: Mapping[str, Any], fast: bool | None = False) -> None:
        """``fast``: True compiles the fast path now, None on first use, False never (off the request path)."""
        self.schema = schema
        self.reference = ReferenceValidator(schema, format_checker=FORMAT_CHECKER)
        self.parts = _object_parts(schema)
        self._want_fast = fast is None
        self._fast = _compile_fast(schema) if fast else None

    def warm(self) -> None:
        """Compile a deferred fast path now, at start-up, instead of on the first request."""
        if self._want_fast:
            self._want_fast = False
            self._fast = _compile_fast(self.schema)

    def is_valid(self, instance: Any) -> bool:
        if self._want_fast:
            self._want_fast = False
            self._fast = _compile_fast(self.schema)
        if self._fast is not None:
            return self._fast(instance)
        return self.reference.is_valid(instance)

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        if self._fast is not None and self.is_valid(instance):
            return iter(())
        return self.reference.iter_errors(instance)

    @property
    def fast(self) -> bool:
        return self._fast is not None or self._want_fast


class LazyValidator:
    """A validator built the first time it is used: strict mode's closed schemas are only
    worth building when strict mode is on (``warm`` builds it at start-up then)."""

    __slots__ = ("_make", "_built")

    def __init__(self, make: Callable[[], Validator]) -> None:
        self._make = make
        self._built: Validator | None = None

    def _get(self) -> Validator:
        if self._built is None:
            self._built = self._make()
        return self._built

    def warm(self) -> None:
        self._get().warm()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


@dataclass(frozen=True)
class ObjectParts:
    """A plain object schema split per property, so that explaining an invalid body only
    runs the reference validator over the properties that were sent, one at a time."""

    required: tuple[str, ...]
    properties: Mapping[str, ReferenceValidator]
    closed: bool


_PLAIN_OBJECT_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties"}) | _ANNOTATIONS | {
    "examples", "example"}


def _object_parts(schema: Mapping[str, Any]) -> ObjectParts | None:
    """Per-property validators when the top level is nothing but an object with properties."""
    if schema.get("type") != "object" or set(schema) - _PLAIN_OBJECT_KEYWORDS:
        return None
    extra = schema.get("additionalProperties", True)
    if not isinstance(extra, bool):
        return None
    return ObjectParts(
        required=tuple(schema.get("required", ())),
        properties={name: ReferenceValidator(sub, format_checker=FORMAT_CHECKER)
                    for name, sub in schema.get("properties", {}).items()},
        closed=extra is False,
    )


def compile_validator(schema: Mapping[str, Any], fast: bool | None = False) -> Validator:
    """A Draft 2020-12 validator whose format checks really run, compiled once."""
    return Validator(schema, fast)


# The formats the fast validator knows of its own accord, each made to mean what it means to
# the reference (FORMAT_CHECKER: checked as there, or not at all), so the two always agree.
_RS_FORMATS = ("date", "date-time", "duration", "email", "hostname", "idn-email", "idn-hostname", "ipv4", "ipv6",
               "iri", "iri-reference", "json-pointer", "regex", "relative-json-pointer", "time", "uri",
               "uri-reference", "uri-template", "uuid")


def _as_reference(name: str) -> Callable[[str], bool]:
    if name not in FORMAT_CHECKER.checkers:
        return lambda value: True
    return lambda value: FORMAT_CHECKER.conforms(value, name)


_FORMATS = {name: _as_reference(name) for name in _RS_FORMATS}


def _compile_fast(schema: Mapping[str, Any]) -> Callable[[Any], bool] | None:
    """jsonschema-rs (Draft 2020-12, compiled in Rust) for the same schema; None for what it
    cannot compile, which then stays with jsonschema alone."""
    try:
        return jsonschema_rs.Draft202012Validator(_for_fast(schema), formats=_FORMATS, validate_formats=True,
                                                  ignore_unknown_formats=True).is_valid
    except Exception:  # anything it refuses stays with the reference
        return None


def _for_fast(schema: Any) -> Any:
    """The same schema in words the fast validator reads alike: an integer format as the
    range it stands for (its format checks only ever see strings)."""
    if isinstance(schema, list):
        return [_for_fast(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "format" and value in INTEGER_RANGES:
            low, high = INTEGER_RANGES[value]
            out["allOf"] = [*out.get("allOf", ()), {"minimum": low, "maximum": high}]
        elif key == "allOf":
            out[key] = [*_for_fast(value), *out.get("allOf", ())]
        elif key in _DATA_KEYWORDS:
            out[key] = value
        else:
            out[key] = _for_fast(value)
    return out


@lru_cache(maxsize=None)
def shipped_validator(name: str) -> Draft202012Validator:
    """A validator for one of the schemas mockserver ships for its own input files."""
    text = resources.files("mockserver").joinpath("schemas", name).read_text(encoding="utf-8")
    return Draft202012Validator(json.loads(text))



def _path_regex(template: str) -> tuple[re.Pattern[str], int]:
    """``/v{version}/webhooks`` -> regex with named groups, and its count of literal segments."""
    out = []
    literals = 0
    for segment in PurePosixPath(template).parts[1:]:
        pieces = re.split(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", segment)
        if len(pieces) == 1:
            literals += 1
        rx = "".join(
            re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>[^/]+)"
            for i, piece in enumerate(pieces)
        )
        out.append(rx)
    return re.compile("^/" + "/".join(out) + "$"), literals



def flagged_properties(schema: Any, flag: str, memo: dict[int, frozenset[str]] | None = None) -> frozenset[str]:
    """Property names carrying ``flag: true`` anywhere in a resolved schema.

    Resolved schemas share their parts (a referenced schema is inlined once), so each part
    is looked at once, however many properties hold it; a caller that asks about many
    schemas of one contract (for one flag) passes the same ``memo`` each time.
    """
    memo = {} if memo is None else memo

    def walk(node: Any) -> frozenset[str]:
        if not isinstance(node, (dict, list)):
            return frozenset()
        known = memo.get(id(node))
        if known is not None:
            return known
        memo[id(node)] = frozenset()  # a cycle contributes nothing more
        found: set[str] = set()
        if isinstance(node, list):
            for item in node:
                found |= walk(item)
        else:
            props = node.get("properties")
            if isinstance(props, dict):
                found.update(str(name) for name, sub in props.items() if isinstance(sub, dict) and sub.get(flag) is True)
            for key, value in node.items():
                if key not in _DATA_KEYWORDS:
                    found |= walk(value)
        memo[id(node)] = result = frozenset(found)
        return result

    return walk(schema)


def opened(schema: Any, one_of_as_any: bool = False) -> tuple[Any, bool]:
    """A copy of a resolved schema in which no object is closed to properties it does not name
    (an answer may carry more than the contract lists), and whether anything was closed. With
    ``one_of_as_any``, ``oneOf`` becomes ``anyOf``: branches that only closed objects told apart
    may both accept a body now. Shared and cyclic parts are copied once."""
    memo: dict[int, Any] = {}
    changed = False

    def walk(node: Any) -> Any:
        nonlocal changed
        if isinstance(node, list):
            return [walk(v) for v in node]
        if not isinstance(node, dict):
            return node
        done = memo.get(id(node))
        if done is not None:
            return done
        out: dict[str, Any] = {}
        memo[id(node)] = out
        for key, value in node.items():
            if key in ("additionalProperties", "unevaluatedProperties") and value is False:
                changed = True
                continue
            name = "anyOf" if one_of_as_any and key == "oneOf" else key
            out[name] = value if key in _DATA_KEYWORDS else walk(value)
        return out

    return walk(schema), changed


def _closed(schema: Any) -> Any:
    """A copy where every object with declared properties rejects undeclared ones (strict mode)."""
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (v if k in _DATA_KEYWORDS else _closed(v)) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out and "unevaluatedProperties" not in out:
        out["additionalProperties"] = False
    return out


def deepest_error(validator: Draft202012Validator, doc: Any) -> ValidationError | None:
    """The most specific problem of a document (the deepest; the first in path order among
    equals), so a load error points at the line to fix rather than at its parent."""
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return max(errors, key=lambda e: len(e.absolute_path)) if errors else None


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."