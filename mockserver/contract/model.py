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

from .. import jsoncodec
from ..errors import PROBLEM_DETAILS, ErrorShape
from ..formats import FORMAT_CHECKER, INTEGER_RANGES, ReferenceValidator, ecma_pattern, pattern_fails
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
    checks as the reference), which judges in Python, as the reference does, each keyword it
    could read otherwise (the explainer's trust rules, see _judged), and leaves to the
    reference a schema it cannot be trusted with at all. ``iter_errors`` always comes from
    jsonschema, so messages never depend on the fast path. ``explain`` lists an invalid
    instance's violations as the reference would, from one jsonschema-rs pass where that
    gives the very same answer.
    """

    __slots__ = ("schema", "reference", "parts", "_fast", "_want_fast", "_explainer")

    def __init__(self, schema: Mapping[str, Any], fast: bool | None = False) -> None:
        """``fast``: True compiles the fast path now, None on first use, False never (off the request path)."""
        self.schema = schema
        self.reference = ReferenceValidator(schema, format_checker=FORMAT_CHECKER)
        self.parts = _object_parts(schema)
        self._want_fast = fast is None
        self._fast = _compile_fast(schema) if fast else None
        self._explainer: _Explainer | None | bool = False  # False: not built yet

    def warm(self) -> None:
        """Compile a deferred fast path now, at start-up, instead of on the first request."""
        if self._want_fast:
            self._want_fast = False
            self._fast = _compile_fast(self.schema)

    def is_valid(self, instance: Any) -> bool:
        if self._want_fast:
            self._want_fast = False
            self._fast = _compile_fast(self.schema)
        fast = self._fast
        if fast is not None:
            trouble = _TROUBLE[0]
            try:
                valid = fast(instance)
            except Exception:  # a value jsonschema-rs cannot take (a lone surrogate): the reference judges it
                return self.reference.is_valid(instance)
            # A check judged in Python raised, and jsonschema-rs took that for a failure, where
            # the reference raises too (or never gets that far): its answer is the one.
            if _TROUBLE[0] == trouble:
                return valid
        return self.reference.is_valid(instance)

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        if self._fast is not None and self.is_valid(instance):
            return iter(())
        return self.reference.iter_errors(instance)

    def explain(self, instance: Any) -> list[Explained] | None:
        """The reference's errors for ``instance`` (``reference.iter_errors``), in its order, as
        much of each as ``validation.violations_of`` reads; None where only the reference
        itself can say (a schema or instance the mapping does not cover), so call that then.

        Built on first use: only an invalid body needs it, and most schemas never see one.
        """
        explainer = self._explainer
        if explainer is False:
            self.warm()
            # No fast path means jsonschema-rs could not take this schema (or it is cyclic).
            explainer = self._explainer = _Explainer.build(self.schema) if self._fast is not None else None
        return explainer.explain(instance) if explainer is not None else None

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


# The formats jsonschema-rs knows of its own accord, each made to mean what it means to the
# reference (FORMAT_CHECKER: checked as there, or not at all), so the two always agree.
_RS_FORMATS = ("date", "date-time", "duration", "email", "hostname", "idn-email", "idn-hostname", "ipv4", "ipv6",
               "iri", "iri-reference", "json-pointer", "regex", "relative-json-pointer", "time", "uri",
               "uri-reference", "uri-template", "uuid")


def _compile_fast(schema: Mapping[str, Any]) -> Callable[[Any], bool] | None:
    """jsonschema-rs's yes or no (Draft 2020-12, compiled in Rust) for the schema as _judged
    gives it; None for a schema it cannot take or be trusted with, which then stays with the
    reference alone."""
    try:
        judged = _judged(schema)
        if len(jsoncodec.dumps(judged)) > FAST_SCHEMA_BUDGET:
            return None
        return jsonschema_rs.Draft202012Validator(judged, formats=_FORMATS, validate_formats=True,
                                                  ignore_unknown_formats=True, keywords=_PYTHON_KEYWORDS).is_valid
    except Exception:  # _Untrusted, a cycle, or anything jsonschema-rs refuses: the reference decides
        return None


# jsonschema-rs compiles a schema as one expanded tree: a request body whose schema is over this
# many bytes of JSON once its references are expanded (the largest of a big vendor document run to
# a megabyte) would cost tens of MiB compiled. Those stay with the reference, whose cost grows with
# the body sent rather than with the schema.
FAST_SCHEMA_BUDGET = 100_000


class _Untrusted(Exception):
    pass


# Keywords whose values map names (never renamed) to subschemas.
_NAMED_SUBSCHEMAS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"})
_REFERENCES = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})


def _judged(schema: Any) -> Any:
    """The schema jsonschema-rs decides with: the same, read through the explainer's trust rules.
    A keyword whose value it could judge otherwise than the reference is renamed to the one
    judged in Python (_rs_keyword); a word the reference ignores in 2020-12 (_IGNORED) is left
    out; an integer format becomes the range it stands for where jsonschema-rs compares that
    range exactly (its format checks only ever see strings). Raises _Untrusted where renaming
    cannot help: patternProperties that Python's re (the reference's reading of them) could read
    otherwise, a reference through a place the renaming changed, a renamed keyword written as
    such, a cycle.

    Every subschema is looked through, not only those the explainer follows, since a reference
    may point anywhere; shared parts are copied once."""
    copies: dict[int, Any] = {}
    references: list[str] = []

    def walk(node: Any) -> Any:
        # Copy on write: a subtree nothing is renamed in is the document's own, shared, not copied.
        if isinstance(node, list):
            items = [walk(item) for item in node]
            return node if all(a is b for a, b in zip(items, node)) else items
        if not isinstance(node, dict):
            return node
        if id(node) in copies:
            known = copies[id(node)]
            if known is None:
                raise _Untrusted  # a cycle (jsonschema-rs takes a document, not a graph)
            return known
        copies[id(node)] = None
        out: dict[str, Any] = {}
        ranges = []
        changed = False
        for key, value in node.items():
            if key in _RENAMED:
                raise _Untrusted
            if key in _IGNORED:
                changed = True
                continue
            if key in _NAMED_SUBSCHEMAS and isinstance(value, dict):
                if key == "patternProperties" and not all(_same_in_re(pattern) for pattern in value):
                    raise _Untrusted
                named = {name: walk(sub) for name, sub in value.items()}
                if any(named[name] is not sub for name, sub in value.items()):
                    changed = True
                    out[key] = named
                else:
                    out[key] = value
            elif key == "format" and isinstance(value, str) and value in INTEGER_RANGES \
                    and all(_native("minimum", limit) for limit in INTEGER_RANGES[value]):
                low, high = INTEGER_RANGES[value]
                ranges.append({"minimum": low, "maximum": high})
                changed = True
            elif key in _IN_PYTHON:
                renamed = _rs_keyword(key, value)
                changed = changed or renamed != key
                out[renamed] = value
            elif key in _DATA_KEYWORDS or key == "dependentRequired":  # data, or names that must stay as written
                out[key] = value
            else:
                if key in _REFERENCES and isinstance(value, str):
                    references.append(value)
                walked = walk(value)
                changed = changed or walked is not value
                out[key] = walked
        if ranges:
            if not isinstance(out.setdefault("allOf", []), list):
                raise _Untrusted
            out["allOf"] = [*out["allOf"], *ranges]
        result = out if changed else node
        copies[id(node)] = result
        return result

    judged = walk(schema)
    for reference in references:
        fragment = reference.partition("#")[2]
        if fragment.startswith("/") and any(
                unquote(step).replace("~1", "/").replace("~0", "~") in _REF_BLIND for step in fragment.split("/")):
            raise _Untrusted
    return judged


class Explained:
    """One error as the reference reports it, reduced to what turns it into violations: the
    instance path, the keyword with its value, the failing instance and the (sub)schema
    holding the keyword, under the names ``jsonschema.ValidationError`` gives them."""

    __slots__ = ("order", "absolute_path", "validator", "validator_value", "instance", "schema")

    def __init__(self, order: tuple[int, ...], path: list[str | int], keyword: str, value: Any, instance: Any,
                 schema: Mapping[str, Any]) -> None:
        self.order = order
        self.absolute_path = path
        self.validator = keyword
        self.validator_value = value
        self.instance = instance
        self.schema = schema

    def __repr__(self) -> str:
        return f"Explained({self.absolute_path!r}, {self.validator!r}, {self.validator_value!r})"


# Keywords whose errors end where they are (the reference reports anyOf, oneOf and not as one
# error of their own, without descending).
_LEAVES = frozenset({
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "maxProperties",
    "minProperties", "required", "format", "anyOf", "oneOf", "not",
})
# Where subschemas sit (one, or a list of them): all are looked through, since those under
# anyOf, oneOf and not decide their keywords' verdicts too.
_SUBSCHEMA = frozenset({"items", "not", "additionalProperties"})
_SUBSCHEMAS = frozenset({"prefixItems", "allOf", "anyOf", "oneOf"})
# Keywords the mapping does not follow, which leave the whole schema to the reference:
# references (the reference's recursion depth, and so whether it gives up on a deep body,
# cannot be told from outside), patternProperties (Python's re in the reference, and an
# additionalProperties beside it lists extras differently), older drafts' words jsonschema-rs
# still honours in 2020-12 while the reference ignores them (_IGNORED), and the rest of the
# applicators, whose errors and order this mapping has not been taught.
_IGNORED = frozenset({"dependencies"})
_UNMAPPED = frozenset({
    "$ref", "$dynamicRef", "$recursiveRef", "$id", "$anchor", "$dynamicAnchor", "$recursiveAnchor", "$schema",
    "additionalItems", "contains", "minContains", "maxContains", "dependentRequired",
    "dependentSchemas", "disallow", "divisibleBy", "extends", "if", "then", "else", "patternProperties",
    "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentEncoding", "contentMediaType",
    "contentSchema",
}) | _IGNORED
# Keywords jsonschema-rs judges differently from the reference for some values: patterns it
# may read otherwise than formats.ecma_pattern, formats it does not know as the reference's
# checker does (int32 and int64 check numbers), float arithmetic in multipleOf, integers
# beyond 2**53 against floats in comparisons and equality. Where a value could be judged
# differently, the explaining schema renames the keyword to one judged in Python exactly as
# the reference judges it (see _native).
_IN_PYTHON = {keyword: f"x-mockserver-reference-{keyword}" for keyword in (
    "pattern", "format", "multipleOf", "enum", "const", "uniqueItems", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum")}
_RENAMED = {renamed: keyword for keyword, renamed in _IN_PYTHON.items()}
# Where a reference cannot point through once the renaming has changed the place (or, for
# data, not looked inside).
_REF_BLIND = frozenset(_IN_PYTHON) | _IGNORED | _DATA_KEYWORDS
# A reference recursing this deep into a schema could run out of Python stack where
# jsonschema-rs does not; such schemas stay with the reference.
_DEEPEST = 48
_FAILED = "\x00failed"
_TROUBLE = [0]  # bumped when a check run for the explainer raises: the reference would raise too


def _delegated(keyword: str) -> Callable[[Any, Any], bool]:
    """The reference's own keyword function, as a yes/no."""
    check = ReferenceValidator.VALIDATORS[keyword]
    return lambda value, instance: any(True for _ in check(_KEYWORD_HOST, value, instance, {}) or ())


def _in_python(fails: Callable[[Any, Any], bool]) -> type:
    class InPython:
        __slots__ = ("value",)

        def __init__(self, parent: dict[str, Any], value: Any, schema_path: list[str | int]) -> None:
            self.value = value

        def validate(self, instance: Any) -> None:
            try:
                failed = fails(self.value, instance)
            except Exception:
                _TROUBLE[0] += 1
                raise
            if failed:
                raise ValueError(_FAILED)

    return InPython


def _format_check(name: str) -> Callable[[str], bool]:
    def conforms(value: str) -> bool:
        try:
            return FORMAT_CHECKER.conforms(value, name)
        except Exception:
            _TROUBLE[0] += 1
            raise
    return conforms


# The reference validator whose type checker and format checker the keyword functions use
# (none of the delegated ones reads its schema argument).
_KEYWORD_HOST = ReferenceValidator({}, format_checker=FORMAT_CHECKER)
_PYTHON_KEYWORDS = {renamed: _in_python(_delegated(keyword)) for keyword, renamed in _IN_PYTHON.items()}
# Checked directly as the reference checks them: building a jsonschema error only to throw it
# away costs more than the check.
_PYTHON_KEYWORDS[_IN_PYTHON["pattern"]] = _in_python(pattern_fails)
_PYTHON_KEYWORDS[_IN_PYTHON["format"]] = _in_python(lambda name, instance: not FORMAT_CHECKER.conforms(instance, name))
_FORMATS = {name: _format_check(name) for name in _RS_FORMATS}


@lru_cache(maxsize=None)
def _native_formats() -> frozenset[str]:
    """The formats jsonschema-rs checks through the reference's checker, and for which the
    reference passes every value that is not a string (jsonschema-rs never asks about one)."""
    def strings_only(name: str) -> bool:
        try:
            return all(FORMAT_CHECKER.conforms(value, name) for value in (None, True, 0, 2 ** 70, 1.5, [], {}))
        except Exception:
            return False
    return frozenset(name for name in _RS_FORMATS if strings_only(name))


_EXACT_FLOAT = 2 ** 53
_REPEAT = re.compile(r"\{([0-9]+)(,([0-9]*))?\}")
_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;=?@[\\]^_`{|}~")  # escapable alike (not < >: words in Rust)


def _same_regex(pattern: str) -> bool:
    """Whether jsonschema-rs and formats.ecma_pattern surely read ``pattern`` alike: ASCII;
    literals, escaped ASCII punctuation, ``\\d`` and ``\\w`` (and their negations outside
    classes); plain classes (not empty, nested or with set operations); groups without ``?``
    but ``(?:``, so no lookaround or backreference (jsonschema-rs runs those with a
    backtracking limit); each repetition after something to repeat, at most made lazy; no
    ``.`` (line terminators). Anything else is judged in Python."""
    if not pattern.isascii():
        return False
    i, end = 0, len(pattern)
    repeatable = repeated = False  # after an atom; after a repetition (which only ? may follow)
    while i < end:
        char = pattern[i]
        if char in "*+?{":
            if char == "{":
                repeat = _REPEAT.match(pattern, i)
                if repeat is None or (repeat.group(3) and int(repeat.group(3)) < int(repeat.group(1))):
                    return False
                i = repeat.end()
            else:
                i += 1
            if repeatable:
                repeatable, repeated = False, True
            elif repeated and char == "?":
                repeated = False
            else:
                return False
            continue
        repeatable, repeated = True, False
        if char == "\\":
            if i + 1 == end or not (pattern[i + 1] in _PUNCTUATION or pattern[i + 1] in "dDwW"):
                return False
            i += 2
        elif char == "[":
            i += 1
            if pattern.startswith("^", i):
                i += 1
            if pattern.startswith("]", i):
                return False
            while i < end and pattern[i] != "]":
                if pattern[i] == "\\":
                    escaped = pattern[i + 1:i + 2]
                    if escaped in ("d", "w"):
                        if pattern[i - 1] == "-" or pattern.startswith("-", i + 2):
                            return False
                    elif not escaped or escaped not in _PUNCTUATION:
                        return False
                    i += 2
                    continue
                if pattern[i] == "[" or not pattern[i].isprintable() or pattern.startswith(("&&", "--", "~~"), i):
                    return False
                i += 1
            if i == end:
                return False
            i += 1
        elif char == "(":
            if pattern.startswith("(?", i) and not pattern.startswith("(?:", i):
                return False
            i += 3 if pattern.startswith("(?:", i) else 1
            repeatable = False
        elif char in "|^$":
            i += 1
            repeatable = False
        elif char in ".]}" or not char.isprintable():
            return False
        else:
            i += 1
    return True


def _native(keyword: str, value: Any) -> bool:
    """Whether jsonschema-rs's own reading of ``keyword: value`` is the reference's for every value."""
    if keyword == "pattern":
        return isinstance(value, str) and _same_regex(value)
    if keyword == "format":
        return value in _native_formats()
    if keyword == "enum":
        return isinstance(value, list) and all(option is None or isinstance(option, str) for option in value)
    if keyword == "const":
        return value is None or isinstance(value, str)
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return type(value) is int and -_EXACT_FLOAT < value < _EXACT_FLOAT
    return False


def _rs_keyword(keyword: str, value: Any) -> str:
    """The keyword jsonschema-rs is given for ``keyword: value`` (one of _IN_PYTHON): itself where
    it reads it as the reference does, else the one judged in Python exactly as the reference
    judges it. The explainer and the decision both go by this."""
    return keyword if _native(keyword, value) else _IN_PYTHON[keyword]


def _same_in_re(pattern: Any) -> bool:
    """Whether Python's re, which the reference matches patternProperties with, reads ``pattern``
    as jsonschema-rs does: the two engines agree on it (_same_regex) and it holds nothing that
    formats.ecma_pattern would have to translate."""
    return isinstance(pattern, str) and _same_regex(pattern) and ecma_pattern(pattern).pattern == pattern


class _Unmapped(Exception):
    pass


def _explaining(schema: Any) -> tuple[Any, dict[int, dict[str, int]]]:
    """The schema jsonschema-rs explains with (the same, but for keywords renamed to be judged
    in Python), and where each key stands in each (sub)schema and each ``properties`` of the
    original, by identity. Raises _Unmapped for a schema the mapping does not follow."""
    positions: dict[int, dict[str, int]] = {}
    copies: dict[int, tuple[Any, int]] = {}

    def copy(node: Any, depth: int) -> tuple[Any, int]:
        """(the copy, the height of the node)."""
        if node is True:
            return True, 0
        if not isinstance(node, dict):
            raise _Unmapped
        known = copies.get(id(node))
        if known is None:
            copies[id(node)] = (None, _DEEPEST + 1)  # a cycle goes too deep
            out: dict[str, Any] = {}
            height = 0
            positions[id(node)] = {key: i for i, key in enumerate(node)}
            for key, value in node.items():
                if key in _UNMAPPED or key in _RENAMED:
                    raise _Unmapped
                if key == "properties":
                    if not isinstance(value, dict) or "" in value:
                        raise _Unmapped
                    positions[id(value)] = {name: i for i, name in enumerate(value)}
                    out[key] = {}
                    for name, sub in value.items():
                        out[key][name], below = copy(sub, depth + 1)
                        height = max(height, below + 1)
                elif key in _SUBSCHEMA and not (key == "additionalProperties" and value is False):
                    out[key], below = copy(value, depth + 1)
                    height = max(height, below + 1)
                elif key in _SUBSCHEMAS:
                    if not isinstance(value, list):
                        raise _Unmapped
                    out[key] = []
                    for sub in value:
                        done, below = copy(sub, depth + 1)
                        out[key].append(done)
                        height = max(height, below + 1)
                elif key in _IN_PYTHON:
                    out[_rs_keyword(key, value)] = value
                else:
                    out[key] = value
            known = copies[id(node)] = (out, height)
        if depth + known[1] > _DEEPEST:
            raise _Unmapped
        return known

    return copy(schema, 0)[0], positions


class _Explainer:
    """jsonschema-rs's errors mapped onto the reference's: its ``iter_errors`` finds the same
    failing keywords (those it could judge differently are judged in Python), and each error's
    schema and instance paths give the place the reference's depth-first walk would meet it,
    which is the reference's order: keywords as the schema writes them, properties as
    declared, items by index."""

    __slots__ = ("rs", "root", "positions", "routes")

    def __init__(self, rs: Any, root: Mapping[str, Any], positions: dict[int, dict[str, int]]) -> None:
        self.rs = rs
        self.root = root
        self.positions = positions
        self.routes: dict[tuple[str | int, ...], _Route | None] = {}

    @classmethod
    def build(cls, schema: Mapping[str, Any]) -> _Explainer | None:
        try:
            explaining, positions = _explaining(schema)
            rs = jsonschema_rs.Draft202012Validator(explaining, formats=_FORMATS, validate_formats=True,
                                                    ignore_unknown_formats=True, keywords=_PYTHON_KEYWORDS)
        except Exception:  # _Unmapped, or anything jsonschema-rs refuses: the reference explains
            return None
        return cls(rs, schema, positions)

    def explain(self, instance: Any) -> list[Explained] | None:
        trouble = _TROUBLE[0]
        found = []
        routes = self.routes
        try:
            for error in self.rs.iter_errors(instance):
                steps = tuple(error.schema_path)
                if steps and steps[-1] in _RENAMED and error.message != _FAILED:
                    return None
                route = routes.get(steps, False)
                if route is False:
                    route = self._route(steps)
                    if len(routes) < 4096:
                        routes[steps] = route
                placed = route.place(error.instance_path, instance) if route is not None else None
                if placed is None:
                    return None
                found.append(placed)
        except Exception:  # whatever it cannot take, the reference answers for
            return None
        if _TROUBLE[0] != trouble:
            return None
        for error in found:
            # The reference writes the failing value into its message (all but these two),
            # and gives up (RecursionError) on one nested deep enough: whether it does depends
            # on its stack, so such a value is left to it.
            if error.validator not in ("required", "additionalProperties") and _nested_deeper(error.instance):
                return None
        found.sort(key=_order)
        return found

    def _route(self, steps: tuple[str | int, ...]) -> _Route | None:
        """How the reference reaches an error at ``steps`` (a schema path of the explaining
        schema); None for a path this mapping cannot follow."""
        positions = self.positions
        node: Any = self.root
        order: list[int] = []
        moves: list[tuple[int, Any, int]] = []
        i, last = 0, len(steps) - 1
        while i <= last:
            keyword = steps[i]
            keyword = _RENAMED.get(keyword, keyword) if type(keyword) is str else None
            where = positions.get(id(node))
            if where is None or keyword not in where:
                return None
            order.append(where[keyword])
            sub = node[keyword]
            if i == last:
                if not (keyword in _LEAVES or (keyword == "additionalProperties" and sub is False)):
                    return None
                return _Route(tuple(order), tuple(moves), keyword, sub, node)
            following = steps[i + 1]
            if keyword == "allOf":
                if type(following) is not int or not 0 <= following < len(sub):
                    return None
                order.append(following)
                node = sub[following]
                i += 2
            elif keyword == "properties":
                if type(following) is not str or following not in sub:
                    return None
                order.append(positions[id(sub)][following])
                moves.append((_PROPERTY, following, -1))
                node = sub[following]
                i += 2
            elif keyword == "prefixItems":
                if type(following) is not int or not 0 <= following < len(sub):
                    return None
                order.append(following)
                moves.append((_PREFIX, following, -1))
                node = sub[following]
                i += 2
            elif keyword == "items":
                moves.append((_ITEM, None, len(order)))
                order.append(0)
                node = sub
                i += 1
            elif keyword == "additionalProperties":
                moves.append((_EXTRA, node.get("properties", {}), len(order)))
                order.append(0)
                node = sub
                i += 1
            else:
                return None
        return None


_PROPERTY, _PREFIX, _ITEM, _EXTRA = range(4)


class _Route:
    """The reference's way to one keyword: where it stands in the walk (with a slot for each
    item index or extra property), and the instance steps that lead there."""

    __slots__ = ("order", "moves", "keyword", "value", "schema")

    def __init__(self, order: tuple[int, ...], moves: tuple[tuple[int, Any, int], ...], keyword: str, value: Any,
                 schema: Mapping[str, Any]) -> None:
        self.order = order
        self.moves = moves
        self.keyword = keyword
        self.value = value
        self.schema = schema

    def place(self, at: list[str | int], instance: Any) -> Explained | None:
        """The error met at instance path ``at``; None where jsonschema-rs's path cannot be read
        back exactly (a property named like a number, which it writes as one, or an empty name,
        which it leaves out)."""
        if len(at) != len(self.moves):
            return None
        order = self.order
        value = instance
        for (move, expected, slot), step in zip(self.moves, at):
            if move == _PROPERTY:
                if type(value) is not dict or step != expected or step not in value:
                    return None
            elif move == _EXTRA:
                if type(value) is not dict or type(step) is not str or step not in value or step in expected \
                        or "" in value:
                    return None
                # The reference walks the extra properties in the order of a set built from
                # them (find_additional_properties), which this process reproduces exactly.
                extras = list(set(name for name in value if name not in expected))
                order = (*order[:slot], extras.index(step), *order[slot + 1:])
            else:
                if type(value) is not list or type(step) is not int or not 0 <= step < len(value):
                    return None
                if move == _PREFIX:
                    if step != expected:
                        return None
                else:
                    order = (*order[:slot], step, *order[slot + 1:])
            value = value[step]
        return Explained(order, list(at), self.keyword, self.value, value, self.schema)


def _order(error: Explained) -> tuple[int, ...]:
    return error.order


_NESTED = 64


def _nested_deeper(value: Any) -> bool:
    """Whether arrays and objects nest in ``value`` more than _NESTED levels deep."""
    if not isinstance(value, (dict, list)):
        return False
    level = [value]
    for _ in range(_NESTED):
        level = [inner for outer in level for inner in (outer.values() if isinstance(outer, dict) else outer)
                 if isinstance(inner, (dict, list))]
        if not level:
            return False
    return True


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