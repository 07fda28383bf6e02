"""Build response bodies from a response schema: echo, defaults, examples, any JSON Schema.

A :class:`BodyPlan` is compiled once per (request schema, response schema) pair at
start-up; rendering it per request is a loop over prepared steps, with no schema
walk. What happens to each response property is read from the schemas:

* ``const`` -> that value;
* echoed when the request schema declares the same property, neither side marks it
  ``readOnly``/``writeOnly``, and the request sent it;
* else, with ``dynamic=False`` only, the first valid ``example``/``examples`` value;
* else ``default`` if the schema has one (and it is valid);
* else ``null`` if the property's own ``type`` (or 3.0 ``nullable``) allows it and no
  ``x-faker`` asks for a value (``prefer_null=False`` skips this step: a document without
  ``x-faker`` hints, such as a vendor's OpenAPI document, then gets values, not nulls);
* else generated: ``x-faker`` (a Faker method and its arguments), then the schema.

Generation covers JSON Schema 2020-12 and OpenAPI 3.0/3.1 schemas: ``$ref`` into the
root's ``$defs`` (a recursive one deeper than :data:`MAX_DEPTH` gives the smallest
valid value), ``allOf`` (deep-merged), ``oneOf``/``anyOf`` (a seeded branch, with the
``discriminator`` property set to the branch's name), ``nullable``, type arrays,
``enum``, ``const``, string formats, ``pattern`` (through ``rstr``, with a compiled fast
path for runs of character classes), lengths, numeric bounds in both the 3.0 and 3.1
forms, ``multipleOf``, arrays (``prefixItems``, ``uniqueItems``) and objects.

Objects get their required properties and, like Prism's dynamic mode, their optional
ones too (never an optional ``writeOnly`` one): a client under test sees every field
it has to parse. Arrays get ``minItems`` to ``minItems + 2`` items. ``dynamic=False``
(Prism's ``Prefer: dynamic=false``) answers examples and defaults where the schema has
valid ones, the first ``enum`` value and the first ``oneOf`` branch; what is left is still
generated, seeded.

Every value is valid by construction, or checked: where construction alone cannot
promise validity (overlapping ``oneOf`` branches, patterns with lengths, ``not``,
``if``/``then``, ``multipleOf`` on floats...), the maker checks what it made, draws
again a few times, and else answers one of the valid values it found at compile
time. A schema for which no valid value can be found raises :class:`GenerationError`
when the plan is compiled, never on a request. ``x-faker`` is the author's choice: it
is checked on a few samples at compile time, and the schema is used instead when a
sample is invalid. One exception to "valid as JSON Schema reads it": ``oneOf`` branches
that accept each other's values and that only a ``discriminator`` tells apart have no
such value; the branch the discriminator names is answered (valid as OpenAPI reads it),
and :attr:`BodyPlan.notes` says where.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import math
import random
import re
import string
import uuid
import itertools
from collections import OrderedDict
from datetime import datetime, timezone
from fractions import Fraction
from functools import lru_cache
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import re._parser as _sre  # type: ignore[import-not-found]  # the stdlib's own parser, as rstr uses
from jsonschema import Draft202012Validator
from rstr import Xeger

from .formats import FORMAT_CHECKER, ReferenceValidator

if TYPE_CHECKING:
    from faker import Faker  # imported on first use: importing it costs about 0.1 s of start-up

__all__ = [
    "BodyPlan", "GenerationError", "Generator", "MAX_DEPTH", "compile_maker", "faker_has",
    "sample_generator", "unseeded_token",
]

_ALNUM = string.ascii_letters + string.digits
_TABLES: dict[str, bytes] = {}
_SYSTEM_RANDOM = random.SystemRandom()

MAX_DEPTH = 3  # a recursive $ref met this many times on the way down gives the smallest valid value
_GIVE_UP_DEPTH = MAX_DEPTH + 4  # still recursing in the smallest value: nothing finite is valid
_EXTRA_ITEMS = 2  # arrays get minItems .. minItems + 2 items
_OPEN_REPEAT = 8  # "*", "+" and wide "{m,n}" in patterns repeat at most this much more than m
_RETRIES = 8  # checked makers draw this often before answering a value found at compile time
_POOL = 4  # valid values kept per checked maker
_POOL_TRIES = 48
_BRANCH_SAMPLES = 6  # samples per oneOf branch when the branches may overlap
_SAMPLE_SEED = 20240607
_SEEDED_EPOCH = int(datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp())
_YEAR = 365 * 24 * 3600

_FORMAT_CHECKER = FORMAT_CHECKER


def unseeded_token(prefix: str, length: int) -> str:
    """A token from the system's randomness: for answers outside the seeded sequence
    (admin routes, transport errors, internal errors), which must not shift it."""
    return prefix + "".join(_SYSTEM_RANDOM.choices(_ALNUM, k=length))
Maker = Callable[["Generator"], Any]


class GenerationError(ValueError):
    """No valid value can be generated for a schema (or this generator cannot find one)."""


class Generator:
    """The randomness of one server: a Faker and a Random, both seeded once."""

    def __init__(self, seed: int | None = None, faker: Faker | None = None) -> None:
        self.seed = seed
        self.random = random.Random(seed)
        self._faker = faker
        self._xeger: _Xeger | None = None

    def reseed(self) -> None:
        """Start the seeded sequence again (at every reset), so with a seed what a test sees
        depends only on the seed and that test, not on the tests that ran before it."""
        if self.seed is None:
            return
        self.random.seed(self.seed)
        if self._faker is not None:
            self._faker.seed_instance(self.seed)

    @property
    def faker(self) -> Faker:
        """Created on first use: common bodies need none, and a Faker costs tens of ms to create."""
        if self._faker is None:
            from faker import Faker

            self._faker = Faker()
            if self.seed is not None:
                self._faker.seed_instance(self.seed)
        return self._faker

    def xeger(self, open_repeat: int) -> "_Xeger":
        """rstr's pattern generator, drawing from this generator's Random (so seeded with it)."""
        if self._xeger is None:
            self._xeger = _Xeger(self.random)
        self._xeger.open_repeat = open_repeat
        return self._xeger

    def token(self, prefix: str, length: int) -> str:
        """``prefix`` + ``length`` letters and digits; request ids and the like."""
        return prefix + self.pick(_ALNUM, length)

    def pick(self, alphabet: str, count: int) -> str:
        """``count`` characters drawn from ``alphabet`` (ASCII), in one call to the seeded Random.

        One random byte per character, mapped through a 256-entry table: far
        cheaper than a draw per character, and the slight skew it gives to
        alphabets whose size does not divide 256 does not matter for test data.
        """
        table = _TABLES.get(alphabet)
        if table is None:
            table = _TABLES[alphabet] = bytes(ord(alphabet[i % len(alphabet)]) for i in range(256))
        return self.random.randbytes(count).translate(table).decode("ascii")

    def now(self) -> str:
        """A timestamp; deterministic under a seed so seeded bodies are byte-identical.

        Seeded, it is a moment in the year before a fixed day, drawn from the seeded Random:
        a year before *today* would move with the clock, and the same seed would answer a
        different body a second later.
        """
        if self.seed is None:
            moment = datetime.now(timezone.utc).replace(microsecond=0)
        else:
            moment = datetime.fromtimestamp(_SEEDED_EPOCH - self.random.randrange(_YEAR), timezone.utc)
        return moment.isoformat().replace("+00:00", "Z")


class _Xeger(Xeger):
    """rstr's Xeger with bounded repeats.

    rstr repeats an open ``*``/``+`` up to 100 times and fails outright on a count above
    100 (``{128}``); response strings should stay short, and any count must work.
    """

    open_repeat = _OPEN_REPEAT

    def _handle_repeat(self, start_range: int, end_range: int, value: Any) -> str:
        end_range = max(start_range, min(end_range, start_range + self.open_repeat))
        times = self._random.randint(start_range, end_range)
        return "".join("".join(self._handle_state(i) for i in value) for _ in range(times))


class BodyPlan:
    """Prepared steps that turn a request body into a response body.

    Constant values (``const``, immutable defaults, ``null``) sit in a template
    that is copied per request; only echoed and generated fields cost a step. A
    response schema that is not a plain object (a union, an array, an object with
    constraints across its properties...) is generated whole by ``fallback``.

    Plans are kept by the identity of their schemas (which a loaded contract never changes),
    so a plan built per request, as scripted answers do, is compiled once.
    """

    def __init__(self, response_schema: Mapping[str, Any],
                 request_schema: Mapping[str, Any] | None = None, dynamic: bool = True,
                 prefer_null: bool = True, server_owned: frozenset[str] = frozenset()) -> None:
        """``server_owned``: answer fields never taken from the request (such as a created id)."""
        key = (id(response_schema), id(request_schema), dynamic, prefer_null, server_owned)
        kept = _PLANS.get(key)
        if kept is not None and kept[0] is response_schema and kept[1] is request_schema:
            _PLANS.move_to_end(key)
            self.__dict__.update(kept[2].__dict__)
            return
        self._build(response_schema, request_schema, dynamic, prefer_null, server_owned)
        _PLANS[key] = (response_schema, request_schema, self)  # holds the schemas: their ids stay theirs
        if len(_PLANS) > _PLANS_KEPT:
            _PLANS.popitem(last=False)

    def _build(self, response_schema: Mapping[str, Any], request_schema: Mapping[str, Any] | None,
               dynamic: bool, prefer_null: bool, server_owned: frozenset[str]) -> None:
        self.dynamic = dynamic
        self.template: dict[str, Any] = {}
        self.generated: list[tuple[str, Maker]] = []
        self.echoed: list[tuple[str, Maker | None]] = []
        self.fallback: Maker | None = None
        compiler = _Compiler(response_schema, dynamic, prefer_null)
        try:
            self._fill(compiler, response_schema, request_schema, server_owned)
        finally:
            self.notes = compiler.notes  # what is worth telling about this schema (see _Compiler.found)

    def _fill(self, compiler: "_Compiler", response_schema: Mapping[str, Any],
              request_schema: Mapping[str, Any] | None, server_owned: frozenset[str]) -> None:
        request_props = (request_schema or {}).get("properties", {})
        top, pushed, deep = compiler.flatten(response_schema)
        try:
            if deep or not compiler.plain_object(top):
                self.fallback = compiler.value(response_schema)
                return
            required = set(top.get("required") or ())
            for name, prop in top["properties"].items():
                if name not in required and _flag(prop, "writeOnly"):
                    continue  # never answered; a required one is kept, or the body would be invalid
                incoming = request_props.get(name)
                echo = (
                    incoming is not None and name not in server_owned
                    and not _flag(prop, "readOnly") and not _flag(prop, "writeOnly")
                    and not _flag(incoming, "readOnly") and not _flag(incoming, "writeOnly")
                )
                with compiler.at(name):
                    try:
                        make = compiler.member(compiler.property_schema(top, name))
                    except GenerationError:
                        if name in required:
                            raise
                        continue  # an optional property no value fits: left out
                fixed = isinstance(make, _Fixed)
                self.template[name] = make.value if fixed else None
                if echo:
                    self.echoed.append((name, None if fixed else make))
                elif not fixed:
                    self.generated.append((name, make))
        finally:
            compiler.pop(pushed)
        if not self.template:
            self.fallback = compiler.value(response_schema)

    def render(self, generator: Generator, request: Mapping[str, Any] | None = None) -> Any:
        if self.fallback is not None:
            return self.fallback(generator)
        body = self.template.copy()
        for name, make in self.generated:
            body[name] = make(generator)
        source = request if isinstance(request, Mapping) else {}
        for name, make in self.echoed:
            if name in source:
                body[name] = source[name]
            elif make is not None:
                body[name] = make(generator)
        return body


_PLANS: OrderedDict[tuple[int, int, bool, bool, frozenset[str]], tuple[Any, Any, BodyPlan]] = OrderedDict()


def response_plan(op: Any, status: int, dynamic: bool = True, prefer_null: bool = True) -> BodyPlan:
    """The plan of an operation's answer with ``status`` (a success the operation declares)."""
    return BodyPlan(op.responses[status].schema, op.request_body.schema if op.request_body else None,
                    dynamic=dynamic, prefer_null=prefer_null, server_owned=op.server_owned)
_PLANS_KEPT = 512
_MAKERS: dict[tuple[int, bool, bool, bool, bool], tuple[Any, Maker, tuple[Any, ...]]] = {}
_MAKERS_KEPT = 20_000
# Makers by what their schema says rather than by which object says it (see ``_token``): a loader
# inlines a schema afresh wherever a recursive one lies below it, so one document can hold many
# equal copies. Each entry: (the $ref stack it was compiled under, or None when it met no $ref;
# the (pointer, token) pairs of what it read from the root; the maker; notes met inside).
_LIKE: dict[tuple[Any, ...], list[tuple[tuple[str, ...] | None, tuple[tuple[str, Any], ...], Maker,
                                        tuple[Any, ...]]]] = {}
_LIKE_KEPT = 50_000


def _keep(key: tuple[int, bool, bool, bool, bool], node: Any, make: Maker, notes: tuple[Any, ...]) -> None:
    if len(_MAKERS) > _MAKERS_KEPT:
        _MAKERS.clear()
    _MAKERS[key] = (node, make, notes)  # holds the node, so its id stays its own


def compile_maker(schema: Any, dynamic: bool = True, *, root: Mapping[str, Any] | None = None,
                  prefer_null: bool = True) -> Maker:
    """A function that generates a value valid against ``schema`` (a resolved schema).

    ``$ref``s left in it (recursive ones) are resolved against ``root`` (the schema itself
    by default), whose ``$defs`` hold their targets. Raises :class:`GenerationError` when
    no valid value can be found.
    """
    return _Compiler(schema if root is None else root, dynamic, prefer_null).value(schema)


def _flag(schema: Any, key: str) -> bool:
    return isinstance(schema, Mapping) and schema.get(key) is True


# --- the compiler -------------------------------------------------------------------------

# Keys that only annotate, or that generation reads but validation ignores.
_ANNOTATIONS = frozenset({
    "title", "description", "$comment", "deprecated", "readOnly", "writeOnly", "example", "examples",
    "default", "externalDocs", "xml", "$schema", "$id", "$anchor", "$defs", "definitions", "discriminator",
    "x-faker", "contentMediaType", "contentEncoding", "contentSchema",
})
# Keys that construction does not satisfy by itself: a maker for a schema with one is checked.
_CHECKED = frozenset({
    "not", "if", "then", "else", "dependentRequired", "dependentSchemas", "dependencies", "propertyNames",
    "unevaluatedProperties", "unevaluatedItems", "contains", "maxContains", "__also__",
})
_SIMPLE = frozenset({"type", "enum", "const", "nullable"})  # checked without jsonschema
_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")
_OBJECT_KEYS = frozenset({"properties", "required", "additionalProperties", "patternProperties",
                          "minProperties", "maxProperties", "propertyNames", "dependentRequired"})
_ARRAY_KEYS = frozenset({"items", "prefixItems", "minItems", "maxItems", "uniqueItems", "contains"})
_STRING_KEYS = frozenset({"pattern", "format", "minLength", "maxLength"})
_NUMBER_KEYS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})
_CONTAINER_KEYS = _OBJECT_KEYS | _ARRAY_KEYS | {"patternProperties", "dependentSchemas", "unevaluatedProperties",
                                                "unevaluatedItems", "minContains", "maxContains", "additionalItems"}
_NOT_FOR_SCALARS = _CONTAINER_KEYS | _STRING_KEYS | _NUMBER_KEYS | {"__patterns__"}
_NOT_FOR_STRINGS = _CONTAINER_KEYS | _NUMBER_KEYS
_NOT_FOR_NUMBERS = _CONTAINER_KEYS | _STRING_KEYS | {"__patterns__"}


class _Compiler:
    """One schema's compilation: its root (for ``$ref``), the refs on the way down, the mode."""

    def __init__(self, root: Any, dynamic: bool, prefer_null: bool = True) -> None:
        self.root = root if isinstance(root, Mapping) else {}
        self.dynamic = dynamic
        self.prefer_null = prefer_null
        self.stack: list[str] = []  # $refs being compiled, outermost first
        self.refs_met = 0
        # Where answers are valid only as OpenAPI reads the schema: (path, what), rendered by ``notes``.
        self.found: list[tuple[tuple[str, ...], str]] = []
        self.path: list[str] = []  # where we are, for error messages
        self._validators: dict[int, tuple[Any, Draft202012Validator]] = {}
        self._enums: dict[tuple[int, frozenset[str]], tuple[list[Any], list[Any]]] = {}
        # What the compilation read from the root, as (pointer, token of what it found): a maker
        # compiled against another root is reused only where that root gives the same.
        self._deps: list[tuple[str, Any]] = []
        self._frame = 0  # where the innermost compilation being kept started in ``_deps``
        self._root_at = -1  # where the root's definitions were last recorded in ``_deps``
        self._targets: dict[str, Any] = {}
        self._tokens: dict[str, Any] = {}
        if len(_MEMO[0]) > _TOKENS_KEPT or len(_LIKE) > _LIKE_KEPT:
            _forget()

    @property
    def notes(self) -> list[str]:
        return [f"{what.split(' ', 1)[0]} at {'/' + '/'.join(path) if path else 'the root'}: {what.split(' ', 1)[1]}"
                for path, what in self.found]

    # -- where we are ------------------------------------------------------------------------

    def at(self, segment: Any) -> "_At":
        return _At(self.path, str(segment))

    def fail(self, message: str) -> GenerationError:
        where = "/" + "/".join(self.path) if self.path else "the schema's root"
        return GenerationError(f"cannot generate a value at {where}: {message}")

    def pop(self, pushed: list[str]) -> None:
        if pushed:
            del self.stack[len(self.stack) - len(pushed):]

    # -- $ref and allOf ----------------------------------------------------------------------

    def pointer(self, ref: str) -> Any:
        target = self._targets.get(ref, _MISSING)
        if target is _MISSING:
            try:
                target = self._targets[ref] = self._resolve(ref)
            except GenerationError:
                self._deps.append((ref, _MISSING))
                raise
        self._deps.append((ref, _token(target)))
        return target

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise self.fail(f"$ref {ref!r} is not resolved (only refs into the schema itself are)")
        node: Any = self.root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise self.fail(f"$ref {ref!r} points at nothing")
        return node

    def _same_read(self, deps: tuple[tuple[str, Any], ...]) -> bool:
        """Whether this root gives what another root gave a kept maker (``deps``)."""
        for ref, token in deps:
            mine = self._tokens.get(ref, _UNSET)
            if mine is _UNSET:
                try:
                    mine = _token(self._resolve(ref))
                except GenerationError:
                    mine = _MISSING
                self._tokens[ref] = mine
            if mine != token:
                return False
        return True

    def flatten(self, node: Any) -> tuple[Any, list[str], bool]:
        """``node`` with its ``$ref`` and ``allOf`` merged in: (schema, refs pushed, too deep).

        The refs stay on the stack until the caller pops them, so recursion through them is
        counted while the merged schema compiles.
        """
        pushed: list[str] = []
        if type(node) is dict and "$ref" not in node and "allOf" not in node:
            return node, pushed, False  # the common case, with nothing to resolve or merge
        try:
            node, deep = self._deref(node, pushed, False)
            if isinstance(node, Mapping) and isinstance(node.get("allOf"), list):
                parts: list[Any] = []
                deep = self._collect(node, parts, pushed, deep)
                node = self.merge(parts)
        except BaseException:
            self.pop(pushed)
            raise
        return node, pushed, deep

    # Methods rather than closures inside ``flatten``: a closure that calls itself is a reference
    # cycle, and one per schema compiled keeps the cyclic garbage collector busy.
    def _deref(self, n: Any, pushed: list[str], deep: bool) -> tuple[Any, bool]:
        while isinstance(n, Mapping) and isinstance(n.get("$ref"), str):
            ref = n["$ref"]
            depth = self.stack.count(ref)
            if depth >= _GIVE_UP_DEPTH:
                raise self.fail(f"{ref} recurses with no finite valid value")
            deep = deep or depth >= MAX_DEPTH
            self.refs_met += 1
            self.stack.append(ref)
            pushed.append(ref)
            target = self.pointer(ref)
            siblings = {k: v for k, v in n.items() if k != "$ref"}
            if not siblings:
                n = target
            elif not isinstance(target, Mapping) or set(siblings) - _ANNOTATIONS:
                n = {"allOf": [target, siblings]}
            else:
                n = {**target, **siblings}
        return n, deep

    def _collect(self, n: Any, out: list[Any], pushed: list[str], deep: bool) -> bool:
        n, deep = self._deref(n, pushed, deep)
        parts = n.get("allOf") if isinstance(n, Mapping) else None
        if isinstance(parts, list):
            for part in parts:
                deep = self._collect(part, out, pushed, deep)
            out.append({k: v for k, v in n.items() if k != "allOf"})  # the outer keys override
        else:
            out.append(n)
        return deep

    def merge(self, parts: list[Any]) -> dict[str, Any]:
        """One schema that accepts what all ``parts`` accept (``allOf``, deep-merged).

        What cannot be merged into one keyword (two patterns, two ``oneOf``...) goes to
        ``__also__``, which the value is then checked against.
        """
        out: dict[str, Any] = {}
        also: list[Any] = []
        closed: list[tuple[set[str], list[str], Any]] = []
        for part in parts:
            if part is True:
                continue
            if part is False:
                raise self.fail("allOf holds a false schema")
            if not isinstance(part, Mapping):
                continue
            part = _normal(part)
            for key, value in part.items():
                if key not in out:
                    if key in ("__also__", "allOf"):
                        also.extend(value)
                    elif key == "__patterns__":
                        out[key] = list(value)
                    elif key in ("properties", "patternProperties") and isinstance(value, Mapping):
                        out[key] = dict(value)
                    elif key == "required" and isinstance(value, list):
                        out[key] = list(value)
                    elif key in ("if", "then", "else"):
                        continue
                    else:
                        out[key] = value
                    continue
                old = out[key]
                if key == "type":
                    out[key] = _type_intersection(old, value)
                    if not out[key]:
                        raise self.fail(f"allOf asks for types {old!r} and {value!r} at once")
                elif key in ("properties", "patternProperties") and isinstance(value, Mapping):
                    for name, sub in value.items():
                        out[key][name] = {"allOf": [out[key][name], sub]} if name in out[key] else sub
                elif key == "required" and isinstance(value, list):
                    out[key] = list(dict.fromkeys([*old, *value]))
                elif key == "enum":
                    out[key] = [v for v in old if any(_same(v, w) for w in value)]
                    if not out[key]:
                        raise self.fail("allOf has enums with no value in common")
                elif key == "const":
                    if not _same(old, value):
                        raise self.fail("allOf has two different consts")
                elif key in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"):
                    out[key] = max(old, value)
                elif key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"):
                    out[key] = min(old, value)
                elif key in ("uniqueItems", "readOnly", "writeOnly", "deprecated"):
                    out[key] = old or value
                elif key in ("items", "additionalProperties", "contains", "propertyNames"):
                    out[key] = False if old is False or value is False else {"allOf": [old, value]}
                elif key == "prefixItems" and isinstance(value, list):
                    out[key] = [{"allOf": [a, b]} for a, b in zip(old, value)] + old[len(value):] + value[len(old):]
                elif key == "pattern":
                    if value != old and value not in out.get("__patterns__", ()):
                        out["__patterns__"] = [*out.get("__patterns__", ()), value]
                elif key == "multipleOf":
                    both = _lcm(old, value)
                    if both is None:
                        also.append({"multipleOf": value})
                    else:
                        out[key] = both
                elif key in _ANNOTATIONS or key.startswith("x-") or key == "nullable":
                    if key not in ("discriminator", "x-faker"):
                        out[key] = value  # the outer schema comes last and overrides
                elif key == "__also__" or key == "allOf":
                    also.extend(value)
                elif not _same(old, value):
                    also.append({key: value})
            if "if" in part:
                also.append({k: part[k] for k in ("if", "then", "else") if k in part})
            if "additionalProperties" in part and part["additionalProperties"] is not True:
                closed.append((set(part.get("properties") or ()), list(part.get("patternProperties") or ()),
                               part["additionalProperties"]))
        if len(closed) and len(parts) > 1:
            # Each part's additionalProperties speaks of the names *that part* does not declare.
            props = out.get("properties") or {}
            required = set(out.get("required") or ())
            for names, patterns, extra in closed:
                for name in list(props):
                    if name in names or any(_search(p, name) for p in patterns):
                        continue
                    if extra is False:
                        if name in required:
                            raise self.fail(f"allOf requires {name!r} and one part forbids it")
                        del props[name]
                    else:
                        props[name] = {"allOf": [props[name], extra]}
        if also:
            out["__also__"] = also
        return out

    # -- entry points ------------------------------------------------------------------------

    def value(self, node: Any, minimal: bool = False) -> Maker:
        """A maker for a value anywhere (array items, branches, the root)."""
        if node is True or (isinstance(node, Mapping) and not node):
            return _Fixed(None)
        if node is False:
            raise self.fail("the schema is false: no value is valid")
        if not isinstance(node, Mapping):
            return _Fixed(None)
        return self._kept(node, minimal, False)

    def member(self, node: Any, minimal: bool = False) -> Maker:
        """A maker for an object's property: ``const``, example, ``default`` and ``null`` first."""
        if not isinstance(node, Mapping):
            return self.value(node, minimal)
        return self._kept(node, minimal, True)

    def _kept(self, node: Mapping[str, Any], minimal: bool, member: bool) -> Maker:
        """The maker of a schema compiled before, or a new one.

        A loader inlines a schema used in many places as one shared object; it is compiled
        once and found again by identity, if its compilation read nothing from the root. Else,
        and for the equal copies a loader makes, it is found by content: with the same ``$ref``
        stack if its compilation followed a ``$ref`` (recursion depth decides what is made), and
        if this root has, at each pointer it read, what that compilation found there.
        """
        key = (id(node), member, minimal, self.dynamic, self.prefer_null)
        kept = _MAKERS.get(key)
        if kept is not None and kept[0] is node:
            if kept[2]:
                here = tuple(self.path)
                self.found.extend((here + inner, what) for inner, what in kept[2])
            return kept[1]
        like = (_token(node), member, minimal, self.dynamic, self.prefer_null)
        entries = _LIKE.get(like)
        if entries:
            stack = tuple(self.stack)
            for when, deps, make, notes in entries:
                if (when is None or when == stack) and self._same_read(deps):
                    if when is not None:
                        self.refs_met += 1  # what the enclosing schema makes depends on the stack too
                    if deps:
                        self._deps.extend(deps)
                    elif when is None:
                        _keep(key, node, make, notes)
                    if notes:
                        here = tuple(self.path)
                        self.found.extend((here + inner, what) for inner, what in notes)
                    return make
        refs, found, outer = self.refs_met, len(self.found), self._frame
        start = self._frame = len(self._deps)
        try:
            make = self._member(node, minimal) if member else self._value(node, minimal)
        finally:
            self._frame = outer
        here = tuple(self.path)
        # notes met inside, relative to the node
        notes = tuple((path[len(here):], what) for path, what in self.found[found:])
        deps = tuple(dict.fromkeys(self._deps[start:])) if len(self._deps) > start else ()
        when = None if self.refs_met == refs else tuple(self.stack)
        if when is None and not deps:
            _keep(key, node, make, notes)
        _LIKE.setdefault(like, []).append((when, deps, make, notes))
        return make

    def _value(self, node: Mapping[str, Any], minimal: bool) -> Maker:
        flat, pushed, deep = self.flatten(node)
        try:
            if not isinstance(flat, Mapping):
                return self.value(flat, minimal)
            return self._compile(flat, minimal or deep)
        finally:
            self.pop(pushed)

    def _member(self, node: Mapping[str, Any], minimal: bool) -> Maker:
        flat, pushed, deep = self.flatten(node)
        try:
            if not isinstance(flat, Mapping):
                return self.value(flat, minimal)
            flat = _normal(flat)
            if "const" in flat:
                return self._compile(flat, minimal)
            if not self.dynamic:
                for candidate in _examples(flat):
                    if self.valid(flat, candidate):
                        return _constant(candidate)
            if "default" in flat and self.valid(flat, flat["default"]):
                return _constant(flat["default"])
            if self.prefer_null and "x-faker" not in flat and "null" in _types(flat) and self.valid(flat, None):
                return _Fixed(None)
            return self._compile(flat, minimal or deep)
        finally:
            self.pop(pushed)

    def plain_object(self, top: Any) -> bool:
        """Whether a response schema can be rendered property by property from a template."""
        if not isinstance(top, Mapping):
            return False
        top = _normal(top)
        props = top.get("properties")
        if not isinstance(props, Mapping) or not props:
            return False
        if set(top) & (_CHECKED | {"oneOf", "anyOf", "const", "enum", "x-faker", "minProperties", "maxProperties"}):
            return False
        if "type" in top and "object" not in _types(top):
            return False
        if not set(top.get("required") or ()) <= set(props):
            return False
        if not self.dynamic:  # a valid example or default of the whole body wins
            candidates = [*_examples(top), *([top["default"]] if "default" in top else [])]
            if any(self.valid(top, c) for c in candidates):
                return False
        return True

    def property_schema(self, node: Mapping[str, Any], name: str) -> Any:
        """The schema a property's value must meet: its own, and every matching patternProperties."""
        props = node.get("properties") or {}
        parts = [props[name]] if name in props else []
        for pattern, sub in (node.get("patternProperties") or {}).items():
            if _search(pattern, name):
                parts.append(sub)
        if not parts:
            extra = node.get("additionalProperties", True)
            if extra is False:
                raise self.fail(f"property {name!r} is required but not allowed")
            parts.append(extra)
        return parts[0] if len(parts) == 1 else {"allOf": parts}

    # -- checking ----------------------------------------------------------------------------

    def validator(self, node: Mapping[str, Any]) -> Draft202012Validator:
        if self._root_at < self._frame:  # a validator reads the root's definitions
            self._root_at = len(self._deps)
            for key in ("$defs", "definitions", "components"):
                self._deps.append(("#/" + key, _token(self.root[key]) if key in self.root else _MISSING))
        hit = self._validators.get(id(node))
        if hit is not None and hit[0] is node:
            return hit[1]
        schema = _to_2020(node)
        for key in ("$defs", "definitions", "components"):
            if key in self.root and key not in schema:
                schema[key] = _to_2020_map(self.root[key]) if key != "components" else {
                    "schemas": _to_2020_map((self.root[key] or {}).get("schemas") or {})}
        validator = ReferenceValidator(schema, format_checker=_FORMAT_CHECKER)
        self._validators[id(node)] = (node, validator)
        return validator

    def valid(self, node: Mapping[str, Any], value: Any) -> bool:
        if set(node) - _ANNOTATIONS - _ignored_for(value) <= _SIMPLE:
            node = _normal(node)
            if "type" in node and not _fits(value, set(_types(node))):
                return False
            if "enum" in node and not _member(value, node["enum"]):
                return False
            return "const" not in node or _same(value, node["const"])
        return self.validator(node).is_valid(value)

    def checked(self, make: Maker, check: Callable[[Any], bool], what: str) -> Maker:
        """``make``, drawing again when ``check`` fails, and else answering a value found now."""
        sampler = _sampler()
        pool: list[Any] = []
        for _ in range(_POOL_TRIES):
            try:
                candidate = make(sampler)
            except Exception:  # rstr fails on a few constructs; the other candidates may not
                continue
            if check(candidate):
                pool.append(candidate)
                if len(pool) >= _POOL:
                    break
        if not pool:
            raise self.fail(f"found no valid value for {what}")

        def guarded(g: Generator) -> Any:
            for _ in range(_RETRIES):
                candidate = make(g)
                if check(candidate):
                    return candidate
            return copy.deepcopy(pool[g.random.randrange(len(pool))])

        return guarded

    # -- compiling one (flattened) schema ----------------------------------------------------

    def _compile(self, node: Mapping[str, Any], minimal: bool) -> Maker:
        node = _normal(node)
        if "const" in node:
            if set(node) - _ANNOTATIONS - {"const"} and not self.valid(node, node["const"]):
                raise self.fail("const is not valid against its own schema")
            return _constant(node["const"])
        if not self.dynamic:
            for candidate in [*_examples(node), *([node["default"]] if "default" in node else [])]:
                if self.valid(node, candidate):
                    return _constant(candidate)
        if "x-faker" in node:
            make = self._faker(node)
            if make is not None:
                return make
        if minimal and "null" in _types(node) and self.valid(node, None):
            return _Fixed(None)
        if "oneOf" in node or "anyOf" in node:
            return self._union(node, minimal)
        make = self._typed(node, minimal)
        if set(node) & _CHECKED:
            make = self.checked(make, self.validator(node).is_valid, "a schema with " + ", ".join(
                sorted(k for k in set(node) & _CHECKED if k != "__also__") or ["allOf parts"]))
        return make

    def _faker(self, node: Mapping[str, Any]) -> Maker | None:
        spec = node["x-faker"]
        if not isinstance(spec, Mapping) or not isinstance(spec.get("method"), str):
            return None
        make = _faker_call(spec)
        seen = _FAKER_SEEN.get(id(node))
        if seen is not None and seen[0] is node:
            return make if seen[1] else None
        rest = {k: v for k, v in node.items() if k != "x-faker"}
        key = json.dumps([rest, spec], sort_keys=True, default=str)
        ok = _FAKER_CHECKED.get(key)
        if ok is None:
            sampler = _sampler()
            try:
                ok = all(self.valid(rest, make(sampler)) for _ in range(6))
            except Exception:  # a Faker method that does not take these arguments
                ok = False
            if len(_FAKER_CHECKED) > 4096:
                _FAKER_CHECKED.clear()
            _FAKER_CHECKED[key] = ok
        if len(_FAKER_SEEN) > 4096:
            _FAKER_SEEN.clear()
        _FAKER_SEEN[id(node)] = (node, ok)  # holds the node, so its id is not reused
        return make if ok else None

    def _typed(self, node: Mapping[str, Any], minimal: bool) -> Maker:
        if "enum" in node:
            enum = node["enum"] if isinstance(node["enum"], list) else []
            if set(node) - _ANNOTATIONS <= {"enum", "type"}:
                wanted = frozenset(_types(node)) or frozenset(_TYPES)
                seen = self._enums.get((id(enum), wanted))  # inlined copies often share one enum list
                if seen is None or seen[0] is not enum:
                    seen = self._enums[(id(enum), wanted)] = (enum, [v for v in enum if _fits(v, wanted)])
                values = seen[1]
            else:
                rest = {k: v for k, v in node.items() if k != "enum"}  # each value is in the enum already
                values = [v for v in enum if self.valid(rest, v)]
            if not values:
                raise self.fail("no value of the enum is valid against the schema")
            if len(values) == 1 or minimal or not self.dynamic:
                return _constant(values[0])
            return _choice(values)
        declared = "type" in node
        types = [t for t in _types(node) if t in _TYPES]
        if declared and not types:
            raise self.fail(f"unknown type {node.get('type')!r}")
        wanted = [t for t in types if t != "null"] if declared else _inferred(node)
        if not wanted:
            return _Fixed(None)
        makers: list[Maker] = []
        error: GenerationError | None = None
        for kind in wanted:
            try:
                makers.append(self._of_type(kind, node, minimal))
            except GenerationError as exc:
                error = error or exc
        if not makers:
            if "null" in types:
                return _Fixed(None)
            assert error is not None
            raise error
        if len(makers) == 1 or minimal or not self.dynamic:
            return makers[0]
        return _one_of(makers)

    def _of_type(self, kind: str, node: Mapping[str, Any], minimal: bool) -> Maker:
        if kind == "string":
            return self._string(node)
        if kind == "integer":
            return self._integer(node)
        if kind == "number":
            return self._number(node)
        if kind == "boolean":
            return lambda g: g.random.random() < 0.5
        if kind == "array":
            return self._array(node, minimal)
        if kind == "object":
            return self._object(node, minimal)
        return _Fixed(None)

    # -- unions --------------------------------------------------------------------------------

    def _union(self, node: Mapping[str, Any], minimal: bool) -> Maker:
        key = "oneOf" if "oneOf" in node else "anyOf"
        branches = node[key]
        if not isinstance(branches, list) or not branches:
            raise self.fail(f"{key} has no branches")
        base = {k: v for k, v in node.items() if k not in (key, "discriminator") and k not in _CHECKED}
        constrained = bool(set(base) - _ANNOTATIONS)
        disc = node.get("discriminator") if isinstance(node.get("discriminator"), Mapping) else None
        options: list[tuple[Maker, Any]] = []
        plain: list[Any] = []  # each option's branch as a validator sees it (no discriminator const)
        errors: list[str] = []
        tagged = False
        for index, branch in enumerate(branches):
            with self.at(f"{key}/{index}"):
                tag = self._tag(disc, branch) if disc else None
                tries = ([tag] if tag is not None else []) + [None]
                for tag_value in tries:
                    parts = ([base] if constrained else []) + [branch]
                    if tag_value is not None:
                        prop = disc["propertyName"]
                        parts.append({"properties": {prop: {"const": tag_value}}, "required": [prop]})
                    schema = parts[0] if len(parts) == 1 else {"allOf": parts}
                    try:
                        flat, pushed, deep = self.flatten(schema)
                        try:
                            options.append((self._compile(flat, minimal or deep), _normal(flat)))
                        finally:
                            self.pop(pushed)
                        if tag_value is None:
                            plain.append(options[-1][1])
                        else:
                            tagged = True
                            untagged, pushed, _ = self.flatten(parts[0] if len(parts) == 2 else {"allOf": parts[:-1]})
                            self.pop(pushed)
                            plain.append(_normal(untagged) if isinstance(untagged, Mapping) else {})
                        break
                    except GenerationError as exc:
                        if tag_value is None:
                            errors.append(str(exc))
        if not options:
            raise self.fail(f"no branch of {key} can be generated ({'; '.join(errors[:3])})")
        whole_checked = bool(set(node) & _CHECKED) or (
            key == "oneOf" and not _disjoint([f for _, f in options], plain))
        check: Callable[[Any], bool] | None = self.validator(node).is_valid if whole_checked else None
        if check is not None:
            sampler = _sampler()
            scored = [(sum(check(make(sampler)) for _ in range(_BRANCH_SAMPLES)), make, flat)
                      for make, flat in options]
            best = max(score for score, _, _ in scored)
            if best == 0 and tagged and not set(node) & _CHECKED:
                # Branches that only the discriminator tells apart: valid as OpenAPI reads a
                # discriminator (it picks the branch to validate against), never as plain JSON
                # Schema reads oneOf. Answer the tagged branch rather than nothing.
                check = None
                self.found.append((tuple(self.path), f"{key} branches only the discriminator "
                                                     f"{disc['propertyName']!r} tells apart"))
            elif best == 0:
                raise self.fail(f"no branch of {key} gives a value valid against the whole schema")
            else:
                # Branches whose samples all pass; else those that pass at all (the check stays on).
                keep = [s for s in scored if s[0] == _BRANCH_SAMPLES] or [s for s in scored if s[0]]
                options = [(make, flat) for _, make, flat in keep]
        if minimal:
            options.sort(key=lambda option: _cost(option[1]))
        makers = [make for make, _ in options]
        make = makers[0] if len(makers) == 1 or minimal or not self.dynamic else _one_of(makers)
        if check is not None:
            make = self.checked(make, check, f"{key} (branches that overlap)")
        return make

    def _tag(self, disc: Mapping[str, Any], branch: Any) -> Any:
        """The discriminator value naming ``branch``: its mapping key, else its schema name."""
        if not isinstance(disc.get("propertyName"), str) or not isinstance(branch, Mapping):
            return None
        ref = branch.get("$ref") if isinstance(branch.get("$ref"), str) else None
        target: Any = branch
        if ref is not None:
            try:
                target = self.pointer(ref)
            except GenerationError:
                target = {}
        names = [n for n in (ref.rsplit("/", 1)[-1] if ref else None,
                             target.get("title") if isinstance(target, Mapping) else None,
                             branch.get("title")) if isinstance(n, str) and n]
        for value, where in (disc.get("mapping") or {}).items():
            if isinstance(where, str) and (where == ref or where.rsplit("/", 1)[-1] in names or where in names):
                return value
        return names[0] if names else None

    # -- strings -------------------------------------------------------------------------------

    def _string(self, node: Mapping[str, Any]) -> Maker:
        lo = node.get("minLength")
        hi = node.get("maxLength")
        fmt = node.get("format")
        patterns = ([node["pattern"]] if isinstance(node.get("pattern"), str) else []) + list(node.get("__patterns__", []))
        compiled = []
        for pattern in patterns:
            try:
                compiled.append(re.compile(pattern))
            except re.error:
                pass  # not a Python pattern (ECMA-only syntax): a validator in Python cannot read it either
        known_format = isinstance(fmt, str) and fmt in _FORMATS
        checks_format = isinstance(fmt, str) and fmt in _FORMAT_CHECKER.checkers
        if not compiled:
            if known_format:
                if fmt == "byte" and (lo is not None or hi is not None):
                    return self._byte(lo, hi)
                make = _FORMATS[fmt]
                if lo is None and hi is None:
                    return make
                return self.checked(make, _string_check(lo, hi, [], fmt if checks_format else None),
                                    f"format {fmt} within lengths {lo}..{hi}")
            low = int(lo) if lo is not None else (min(8, int(hi)) if hi is not None else 8)
            high = max(low, min(int(hi) if hi is not None else max(16, low), max(64, low)))
            return lambda g: g.token("", g.random.randint(low, high))
        check = _string_check(lo, hi, compiled, fmt if checks_format else None)
        candidates = []
        if known_format:
            candidates.append(_FORMATS[fmt])
        fast = _pattern_pieces(patterns[0], lo, hi) if compiled and compiled[0].pattern == patterns[0] else None
        if fast is not None:
            candidates.append(fast)
        open_repeat = max(_OPEN_REPEAT, int(lo or 0))
        source = compiled[0].pattern
        candidates.append(_xeger_maker(source, open_repeat))
        error: GenerationError | None = None
        for make in candidates:
            try:
                return self.checked(make, check, f"pattern {source!r}")
            except GenerationError as exc:
                error = exc
        assert error is not None
        raise error

    def _byte(self, lo: Any, hi: Any) -> Maker:
        """Base64 (``format: byte``): a multiple of 4 characters, so lengths pick the byte count."""
        low = max(math.ceil(int(lo or 0) / 4), 1 if hi is None or int(hi) >= 4 else 0)
        high = int(hi) // 4 if hi is not None else max(low, 4)
        if low > high:
            raise self.fail(f"no base64 string has a length within {lo}..{hi}")
        top = min(high, max(low, 4) + 2)
        return lambda g: base64.b64encode(g.random.randbytes(3 * g.random.randint(low, top))).decode("ascii")

    # -- numbers -------------------------------------------------------------------------------

    def _integer(self, node: Mapping[str, Any]) -> Maker:
        lo, hi = _integer_bounds(node)
        lo, hi = _default_range(lo, hi, node.get("format"))
        # OpenAPI's int32/int64 bound the value as much as minimum/maximum do.
        least, most = _FORMAT_RANGES.get(node.get("format"), (lo, hi))
        lo, hi = max(lo, least), min(hi, most)
        if lo > hi:
            raise self.fail(f"no integer lies within the bounds of {_bounds_text(node)}")
        step = node.get("multipleOf")
        if not step:
            return lambda g: g.random.randint(lo, hi)
        unit = Fraction(str(step)).numerator  # integers that are multiples of p/q are multiples of p
        first, last = -(-lo // unit), hi // unit
        if first > last:
            raise self.fail(f"no multiple of {step} lies within {lo}..{hi}")

        def make(g: Generator) -> int:
            return g.random.randint(first, last) * unit

        if isinstance(step, float):  # jsonschema divides floats; keep values its check accepts
            return self.checked(make, lambda v: _multiple_ok(v, step), f"multipleOf {step}")
        return make

    def _number(self, node: Mapping[str, Any]) -> Maker:
        lo, lo_open, hi, hi_open = _number_bounds(node)
        given = lo is not None or hi is not None
        lo, hi = _default_range(lo, hi, None)
        if lo > hi or (lo == hi and (lo_open or hi_open)):
            raise self.fail(f"no number lies within the bounds of {_bounds_text(node)}")
        step = node.get("multipleOf")

        def inside(v: Any) -> bool:
            return (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)

        if step:
            exact = Fraction(str(step))
            first, last = math.ceil(Fraction(str(lo)) / exact), math.floor(Fraction(str(hi)) / exact)
            if first > last:
                raise self.fail(f"no multiple of {step} lies within {lo}..{hi}")
            whole = exact.denominator == 1 and isinstance(step, int)

            def make_multiple(g: Generator) -> Any:
                value = g.random.randint(first, last) * exact
                return int(value) if whole else float(value)

            return self.checked(make_multiple, lambda v: inside(v) and _multiple_ok(v, step), f"multipleOf {step}")

        def make(g: Generator) -> float:
            return round(g.random.uniform(lo, hi), 2)

        if not given:
            return make
        midpoint = (lo + hi) / 2

        def bounded(g: Generator) -> float:
            value = make(g)
            if inside(value):
                return value
            value = g.random.uniform(lo, hi)
            return value if inside(value) else midpoint

        if not inside(midpoint):
            raise self.fail(f"no number lies within the bounds of {_bounds_text(node)}")
        return bounded

    # -- arrays --------------------------------------------------------------------------------

    def _array(self, node: Mapping[str, Any], minimal: bool) -> Maker:
        prefix = node.get("prefixItems") if isinstance(node.get("prefixItems"), list) else []
        items = node.get("items", True)
        lo = int(node.get("minItems", 0))
        hi = node.get("maxItems")
        if items is False:
            hi = len(prefix) if hi is None else min(int(hi), len(prefix))
        if hi is not None and int(hi) < lo:
            raise self.fail(f"no array has between {lo} and {hi} items")
        top = lo if minimal else lo + _EXTRA_ITEMS
        if hi is not None:
            top = min(top, int(hi))
        contains = node.get("contains")
        if contains is not None and contains is not True:
            wanted = int(node.get("minContains", 1))
            if wanted > 0:
                items = contains if items is True else {"allOf": [items, contains]}
                lo, top = max(lo, wanted), max(top, wanted)
        makers: list[Maker] = []
        for index, sub in enumerate(prefix[:top]):
            with self.at(index):
                try:
                    makers.append(self.value(sub, minimal))
                except GenerationError:
                    if index < lo:
                        raise
                    top = index
                    break
        item: Maker | None = None
        if top > len(makers):
            with self.at("items"):
                try:
                    item = self.value(items, minimal) if items is not True else (lambda g: g.token("", 8))
                except GenerationError:
                    if lo > len(makers):
                        raise
                    top = len(makers)
        unique = node.get("uniqueItems") is True
        first_at = min(lo, top)

        def make(g: Generator) -> list[Any]:
            count = first_at if first_at == top else g.random.randint(first_at, top)
            out = [m(g) for m in makers[:count]]
            if item is not None:
                while len(out) < count:
                    out.append(item(g))
            return out

        if not unique:
            return make

        def make_unique(g: Generator) -> list[Any]:
            count = first_at if first_at == top else g.random.randint(first_at, top)
            out: list[Any] = []
            seen: set[str] = set()
            for index in range(count):
                source = makers[index] if index < len(makers) else item
                if source is None:
                    break
                for _ in range(_RETRIES):
                    value = source(g)
                    key = _key(value)
                    if key not in seen:
                        seen.add(key)
                        out.append(value)
                        break
                else:
                    if index >= lo:
                        break
                    out.append(value)  # the check below fails it: drawn again, or a value found at compile time
            return out

        return self.checked(make_unique, lambda v: len({_key(x) for x in v}) == len(v) and len(v) >= lo,
                            "uniqueItems")

    # -- objects -------------------------------------------------------------------------------

    def _object(self, node: Mapping[str, Any], minimal: bool) -> Maker:
        props = node.get("properties") if isinstance(node.get("properties"), Mapping) else {}
        required = list(dict.fromkeys(n for n in node.get("required") or () if isinstance(n, str)))
        names = [n for n in props if n in required]
        optional = [n for n in props if n not in required]
        names += [n for n in required if n not in props]
        chosen = [n for n in optional if not minimal and not _flag(props[n], "writeOnly")]
        most = node.get("maxProperties")
        least = int(node.get("minProperties", 0))
        if most is not None and len(names) > int(most):
            raise self.fail(f"{len(names)} properties are required, at most {most} allowed")
        names += chosen
        if most is not None:
            names = names[:int(most)]
        for name in optional:  # minProperties: optional ones first, even write-only ones
            if len(names) >= least:
                break
            if name not in names:
                names.append(name)
        entries: list[tuple[str, Maker]] = []
        for name in names:
            with self.at(name):
                try:
                    entries.append((name, self.member(self.property_schema(node, name), minimal)))
                except GenerationError:
                    if name in required:
                        raise
        extra = node.get("additionalProperties", True)
        index = 0
        while len(entries) < least:
            index += 1
            name = f"additionalProp{index}"
            if name in props:
                continue
            if extra is False and not any(_search(p, name) for p in node.get("patternProperties") or ()):
                raise self.fail(f"minProperties {least} needs more properties than the schema allows")
            with self.at(name):
                entries.append((name, self.member(self.property_schema(node, name), minimal)))
            if index > least + len(props) + 16:
                raise self.fail(f"cannot find {least} properties the schema allows")
        template: dict[str, Any] = {}
        steps: list[tuple[str, Maker]] = []
        for name, make in entries:
            if isinstance(make, _Fixed):
                template[name] = make.value
            else:
                template[name] = None
                steps.append((name, make))
        if not steps:
            return lambda g: template.copy()

        def build(g: Generator) -> dict[str, Any]:
            body = template.copy()
            for name, make in steps:
                body[name] = make(g)
            return body

        return build


class _At:
    __slots__ = ("path", "segment")

    def __init__(self, path: list[str], segment: str) -> None:
        self.path, self.segment = path, segment

    def __enter__(self) -> None:
        self.path.append(self.segment)

    def __exit__(self, *exc: Any) -> None:
        self.path.pop()


# Whether an x-faker gives valid values, by schema text and by schema object (contracts keep theirs).
_FAKER_CHECKED: dict[str, bool] = {}
_FAKER_SEEN: dict[int, tuple[Any, bool]] = {}


_MISSING = object()  # what a pointer to nothing finds
_UNSET = object()
# Content tokens (see ``_token``) of schema objects by identity, with the objects held so that
# their ids stay theirs; the token of each shape and scalar met. Tokens come from one counter
# and are never reused, so emptying these tables only costs misses. Tokens and shapes are made
# of strings and integers, which the garbage collector does not track: a tuple per schema object
# of a large document would make every full collection longer.
_MEMO: tuple[dict[int, int], list[Any]] = ({}, [])  # replaced as one, so each token's object stays held
_SHAPES: dict[tuple[Any, ...], int] = {}
_TOKENS_KEPT = 200_000
_NEXT_TOKEN = itertools.count()


def _forget() -> None:
    """Empty the tables kept by content, by replacing them: a compilation in another thread
    keeps writing into the ones it holds."""
    global _MEMO, _SHAPES, _LIKE
    _MEMO = ({}, [])
    _SHAPES = {}
    _LIKE = {}


def _token(node: Any) -> str | int:
    """Equal for two schemas exactly when they are equal as JSON documents, keys in the same order.

    A string is its own token; anything else gets an integer. Scalars keep their type (``1``,
    ``1.0`` and ``true`` are equal in Python, not here); each object or array is read once, and
    an equal one met later gets the same token.
    """
    kind = type(node)
    if kind is str:
        return node
    if node is None or kind is bool or kind is int or kind is float:
        shape: tuple[Any, ...] = ("=", kind.__name__, repr(node) if kind is float else node)  # -0.0 is kept
        token = _SHAPES.get(shape)
        if token is None:
            token = _SHAPES[shape] = next(_NEXT_TOKEN)
        return token
    tokens, held = _MEMO
    token = tokens.get(id(node))
    if token is not None:
        return token
    if kind is dict:  # keys, then values: as many of each, so the split is known
        shape = ("{", *[k if type(k) is str else _token(k) for k in node],
                 *[v if type(v) is str else _token(v) for v in node.values()])
    elif kind is list:
        shape = ("[", *[v if type(v) is str else _token(v) for v in node])
    elif kind is tuple or isinstance(node, Mapping):
        pairs = node.items() if isinstance(node, Mapping) else enumerate(node)
        shape = ("(", id(kind), *[part for pair in pairs for part in map(_token, pair)])
    else:
        shape = ("!", id(node))  # anything else is equal only to itself (and held: its id stays its own)
    token = _SHAPES.get(shape)
    if token is None:
        token = _SHAPES[shape] = next(_NEXT_TOKEN)
    tokens[id(node)] = token
    held.append(node)
    return token


def _sampler() -> Generator:
    """A seeded generator for compile-time samples: the values kept from it are deterministic."""
    g = _Probing(seed=_SAMPLE_SEED)
    g.reseed()
    return g


# --- schema helpers -----------------------------------------------------------------------

def _types(schema: Mapping[str, Any]) -> list[str]:
    t = schema.get("type", [])
    types = [t] if isinstance(t, str) else list(t) if isinstance(t, list) else []
    if schema.get("nullable") is True and types and "null" not in types:
        types.append("null")  # OpenAPI 3.0
    return types


def _normal(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """OpenAPI 3.0 forms as JSON Schema 2020-12 says them (shallow): nullable, boolean
    exclusive bounds, tuple ``items``."""
    if not ("nullable" in node or isinstance(node.get("exclusiveMinimum"), bool)
            or isinstance(node.get("exclusiveMaximum"), bool) or isinstance(node.get("items"), list)):
        return node
    out = dict(node)
    if out.pop("nullable", None) is True and "type" in out:
        types = _types(node)
        out["type"] = types
    for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(out.get(flag), bool):
            if out.pop(flag) and bound in out:
                out[flag] = out.pop(bound)
    if isinstance(out.get("items"), list):
        out["prefixItems"] = out.pop("items")
        extra = out.pop("additionalItems", True)
        if extra is not True:
            out["items"] = extra
    return out


_SUB_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
            "unevaluatedProperties", "unevaluatedItems", "additionalItems")
_SUB_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUB_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")


def _to_2020(node: Any) -> Any:
    """A deep copy of a schema as Draft 2020-12 reads it (3.0 forms and our private keys translated)."""
    if not isinstance(node, Mapping):
        return node
    node = _normal(node)
    out: dict[str, Any] = {}
    extra: list[Any] = []
    for key, value in node.items():
        if key == "__also__":
            extra.extend(_to_2020(v) for v in value)
        elif key == "__patterns__":
            extra.extend({"pattern": p} for p in value)
        elif key in _SUB_ONE:
            out[key] = _to_2020(value)
        elif key in _SUB_MAP and isinstance(value, Mapping):
            out[key] = _to_2020_map(value)
        elif key in _SUB_LIST and isinstance(value, list):
            out[key] = [_to_2020(v) for v in value]
        else:
            out[key] = value
    if extra:
        out["allOf"] = [*out.get("allOf", []), *extra]
    return out


def _to_2020_map(value: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _to_2020(sub) for name, sub in value.items()}


def _ignored_for(value: Any) -> frozenset[str]:
    """Keywords that do not apply to ``value``'s type (a string keyword says nothing of null)."""
    if isinstance(value, str):
        return _NOT_FOR_STRINGS
    if isinstance(value, bool) or value is None:
        return _NOT_FOR_SCALARS
    if isinstance(value, (int, float)):
        return _NOT_FOR_NUMBERS
    return frozenset()


def _examples(node: Mapping[str, Any]) -> Iterable[Any]:
    if "example" in node:
        yield node["example"]
    examples = node.get("examples")
    if isinstance(examples, list):
        yield from examples


def _inferred(node: Mapping[str, Any]) -> list[str]:
    """The type an untyped schema's keywords speak of (any value is valid; this one is useful)."""
    keys = set(node)
    for kind, words in (("object", _OBJECT_KEYS), ("array", _ARRAY_KEYS), ("string", _STRING_KEYS),
                        ("number", _NUMBER_KEYS)):
        if keys & words:
            return [kind]
    return []


def _key(value: Any) -> str:
    """A canonical text for JSON equality (1 == 1.0, true != 1, key order ignored)."""
    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, Mapping):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return v
    return json.dumps(norm(value), sort_keys=True, default=str)


def _same(a: Any, b: Any) -> bool:
    return _key(a) == _key(b)


def _member(value: Any, values: Iterable[Any]) -> bool:
    if value is None or isinstance(value, str):  # equal only to themselves: no canonical text needed
        return value in values
    return any(_same(value, v) for v in values)


def _type_intersection(a: Any, b: Any) -> list[str]:
    first = [a] if isinstance(a, str) else list(a)
    second = [b] if isinstance(b, str) else list(b)
    out = [t for t in first if t in second]
    if "integer" in first and "number" in second and "integer" not in out:
        out.append("integer")
    if "number" in first and "integer" in second and "integer" not in out:
        out.append("integer")
    return out


def _lcm(a: Any, b: Any) -> Any:
    try:
        x, y = Fraction(str(a)), Fraction(str(b))
    except (ValueError, ZeroDivisionError):
        return None
    if x <= 0 or y <= 0:
        return None
    both = Fraction(math.lcm(x.numerator * y.denominator, y.numerator * x.denominator), x.denominator * y.denominator)
    return int(both) if both.denominator == 1 and isinstance(a, int) and isinstance(b, int) else float(both)


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _search(pattern: str, text: str) -> bool:
    compiled = _compiled(pattern)
    return compiled is not None and compiled.search(text) is not None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "unknown"


def _fits(value: Any, types: set[str]) -> bool:
    kind = _json_type(value)
    return kind in types or (kind == "integer" and "number" in types)


def _value_types(values: Iterable[Any]) -> set[str]:
    out = {_json_type(v) for v in values}
    if "integer" in out:
        out.add("number")
    return out


def _accepted(flat: Mapping[str, Any]) -> set[str] | None:
    """The JSON types a schema accepts, or None for any."""
    if "const" in flat:
        return _value_types([flat["const"]])
    if isinstance(flat.get("enum"), list):
        return _value_types(flat["enum"])
    if "type" in flat:
        types = set(_types(flat))
        if "number" in types:
            types.add("integer")
        return types
    return None


def _produced(flat: Mapping[str, Any]) -> set[str] | None:
    """The JSON types a compiled schema's values can have, or None when unsure."""
    accepted = _accepted(flat)
    if accepted is not None:
        return accepted
    inferred = _inferred(flat)
    if inferred and not (set(flat) & {"oneOf", "anyOf", "x-faker"}):
        return set(inferred) | ({"integer"} if inferred == ["number"] else set())
    return None


def _disjoint(made: list[Mapping[str, Any]], seen: list[Mapping[str, Any]]) -> bool:
    """True when no value generated for one branch (``made``) can be valid against another
    branch as a validator sees it (``seen``)."""
    for i, a in enumerate(made):
        for j, b in enumerate(seen):
            if i != j and not _excludes(a, b):
                return False
    return True


def _excludes(made: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    produced, accepted = _produced(made), _accepted(other)
    if produced is not None and accepted is not None and not produced & accepted:
        return True
    ours, theirs = made.get("properties") or {}, other.get("properties") or {}
    # A property the other requires that this one's objects never have (closed, and not declared).
    if produced is not None and produced <= {"object"} and made.get("additionalProperties") is False:
        patterns = [p for p in made.get("patternProperties") or () if isinstance(p, str)]
        for name in other.get("required") or ():
            if isinstance(name, str) and name not in ours and not any(_search(p, name) for p in patterns):
                return True
    # A required property whose values differ: a discriminator, set or declared.
    for name in set(made.get("required") or ()) & set(other.get("required") or ()):
        mine, yours = _allowed_values(ours.get(name)), _allowed_values(theirs.get(name))
        if mine is not None and yours is not None and not mine & yours:
            return True
    mine, yours = _allowed_values(made), _allowed_values(other)
    return mine is not None and yours is not None and not mine & yours


def _allowed_values(schema: Any) -> set[str] | None:
    if not isinstance(schema, Mapping):
        return None
    if "const" in schema:
        return {_key(schema["const"])}
    if isinstance(schema.get("enum"), list):
        return {_key(v) for v in schema["enum"]}
    if isinstance(schema.get("allOf"), list):
        sets = [s for s in (_allowed_values(p) for p in schema["allOf"]) if s is not None]
        if sets:
            return set.intersection(*sets)
    return None


def _cost(flat: Mapping[str, Any]) -> int:
    """How big the smallest value of a branch tends to be: null first, containers last."""
    types = _accepted(flat) or set(_inferred(flat)) or {"object"}
    if "null" in types:
        return 0
    if types & {"boolean", "integer", "number", "string"}:
        return 1
    return 2 if "array" in types else 3


# --- values ---------------------------------------------------------------------------------

def _integer_bounds(node: Mapping[str, Any]) -> tuple[int | None, int | None]:
    lo: int | None = None
    hi: int | None = None
    if isinstance(node.get("minimum"), (int, float)):
        lo = math.ceil(node["minimum"])
    if isinstance(node.get("exclusiveMinimum"), (int, float)) and not isinstance(node["exclusiveMinimum"], bool):
        bound = math.floor(node["exclusiveMinimum"]) + 1
        lo = bound if lo is None else max(lo, bound)
    if isinstance(node.get("maximum"), (int, float)):
        hi = math.floor(node["maximum"])
    if isinstance(node.get("exclusiveMaximum"), (int, float)) and not isinstance(node["exclusiveMaximum"], bool):
        bound = math.ceil(node["exclusiveMaximum"]) - 1
        hi = bound if hi is None else min(hi, bound)
    return lo, hi


def _number_bounds(node: Mapping[str, Any]) -> tuple[Any, bool, Any, bool]:
    lo, lo_open, hi, hi_open = None, False, None, False
    if isinstance(node.get("minimum"), (int, float)):
        lo = node["minimum"]
    ex = node.get("exclusiveMinimum")
    if isinstance(ex, (int, float)) and not isinstance(ex, bool) and (lo is None or ex >= lo):
        lo, lo_open = ex, True
    if isinstance(node.get("maximum"), (int, float)):
        hi = node["maximum"]
    ex = node.get("exclusiveMaximum")
    if isinstance(ex, (int, float)) and not isinstance(ex, bool) and (hi is None or ex <= hi):
        hi, hi_open = ex, True
    return lo, lo_open, hi, hi_open


_FORMAT_RANGES = {"int32": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1)}


def _default_range(lo: Any, hi: Any, fmt: Any) -> tuple[Any, Any]:
    """0..1000 where the schema says nothing, as before; a one-sided bound keeps a 1000-wide range."""
    if lo is None and hi is None:
        return 0, 1000
    if lo is None:
        lo = 0 if hi >= 0 else hi - 1000
        if fmt == "int32":
            lo = max(lo, -2**31)
    if hi is None:
        hi = 1000 if lo <= 1000 else lo + 1000
        if fmt == "int32":
            hi = min(hi, 2**31 - 1)
    return lo, hi


def _bounds_text(node: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={node[k]}" for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
                     if k in node) or "the schema"


def _multiple_ok(value: Any, step: Any) -> bool:
    """multipleOf exactly as jsonschema checks it (floats by division, others by remainder)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(step, float):
        quotient = value / step
        try:
            return int(quotient) == quotient
        except OverflowError:
            return False
    return not value % step


def _string_check(lo: Any, hi: Any, patterns: list[re.Pattern[str]], fmt: str | None) -> Callable[[Any], bool]:
    low = int(lo) if lo is not None else 0
    high = int(hi) if hi is not None else None

    def check(value: Any) -> bool:
        if not isinstance(value, str) or len(value) < low or (high is not None and len(value) > high):
            return False
        if not all(p.search(value) for p in patterns):
            return False
        if fmt is not None and not _FORMAT_CHECKER.conforms(value, fmt):
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from a wide character class
            return False
        return True

    return check


def _xeger_maker(pattern: str, open_repeat: int) -> Maker:
    def make(g: Generator) -> str | None:
        try:
            return g.xeger(open_repeat).xeger(pattern)
        except Exception:  # a construct rstr cannot render: the check fails it and draws again
            return None
    return make


def _choice(values: list[Any]) -> Maker:
    if any(isinstance(v, (dict, list)) for v in values):
        return lambda g: copy.deepcopy(values[g.random.randrange(len(values))])
    return lambda g: values[g.random.randrange(len(values))]


def _one_of(makers: list[Maker]) -> Maker:
    return lambda g: makers[g.random.randrange(len(makers))](g)


# --- formats ----------------------------------------------------------------------------------

def _uuid(g: Generator) -> str:
    return str(uuid.UUID(int=g.random.getrandbits(128), version=4))


def _ipv4(g: Generator) -> str:
    return ".".join(str(b) for b in g.random.randbytes(4))


def _ipv6(g: Generator) -> str:
    return str(ipaddress.IPv6Address(g.random.getrandbits(128)))


def _duration(g: Generator) -> str:
    return f"P{g.random.randint(1, 30)}DT{g.random.randint(0, 23)}H"


_FORMATS: dict[str, Maker] = {
    "date-time": lambda g: g.now(),
    "date": lambda g: g.now()[:10],
    "time": lambda g: g.now()[11:],
    "email": lambda g: g.faker.email(),
    "idn-email": lambda g: g.faker.email(),
    "uuid": _uuid,
    "uri": lambda g: g.faker.url(),
    "url": lambda g: g.faker.url(),
    "iri": lambda g: g.faker.url(),
    "uri-reference": lambda g: g.faker.url(),
    "iri-reference": lambda g: g.faker.url(),
    "uri-template": lambda g: g.faker.url() + "{id}",
    "hostname": lambda g: g.faker.hostname(),
    "idn-hostname": lambda g: g.faker.hostname(),
    "ipv4": _ipv4,
    "ipv6": _ipv6,
    "byte": lambda g: base64.b64encode(g.random.randbytes(12)).decode("ascii"),
    "binary": lambda g: g.token("", 16),
    "password": lambda g: g.token("", 16),
    "duration": _duration,
    "regex": lambda g: "^[a-z0-9]{1,%d}$" % g.random.randint(1, 32),
    "json-pointer": lambda g: "/" + g.token("", 8),
    "relative-json-pointer": lambda g: f"{g.random.randint(0, 3)}/{g.token('', 8)}",
}


# --- patterns -----------------------------------------------------------------------------------

_PRINTABLE = "".join(chr(c) for c in range(32, 127))
_CATEGORIES: dict[Any, str] = {
    _sre.CATEGORY_DIGIT: string.digits,
    _sre.CATEGORY_NOT_DIGIT: string.ascii_letters,
    _sre.CATEGORY_SPACE: " ",
    _sre.CATEGORY_NOT_SPACE: _ALNUM,
    _sre.CATEGORY_WORD: _ALNUM + "_",
    _sre.CATEGORY_NOT_WORD: " -.,",
}
_CATEGORY_SETS: dict[Any, str] = {
    **_CATEGORIES,
    _sre.CATEGORY_NOT_DIGIT: "".join(c for c in _PRINTABLE if not c.isdigit()),
    _sre.CATEGORY_NOT_SPACE: "".join(c for c in _PRINTABLE if c != " "),
    _sre.CATEGORY_NOT_WORD: "".join(c for c in _PRINTABLE if not (c.isalnum() or c == "_")),
}
_ANCHORS_START = (_sre.AT_BEGINNING, _sre.AT_BEGINNING_STRING)
_ANCHORS_END = (_sre.AT_END, _sre.AT_END_STRING)


def _pattern_pieces(pattern: str, lo: Any, hi: Any) -> Maker | None:
    """A fast maker for patterns that are runs of literals and character classes.

    The common shape of ids and codes (``^[A-Z]{3}-[0-9]{4}$``): parsed once here by the
    standard library, rendered per request with one draw per run, and with lengths
    chosen to meet ``minLength``/``maxLength``. Other patterns return None (rstr).
    """
    try:
        parsed = list(_sre.parse(pattern))
    except (re.error, RecursionError, OverflowError):
        return None
    pieces: list[tuple[str, int, int]] = []
    last = len(parsed) - 1
    for index, (op, arg) in enumerate(parsed):
        if op == _sre.AT:
            if (index == 0 and arg in _ANCHORS_START) or (index == last and arg in _ANCHORS_END):
                continue
            return None
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
            low, high, body = arg
            if len(body) != 1:
                return None
            alphabet = _alphabet(*body[0])
        else:
            low = high = 1
            alphabet = _alphabet(op, arg)
        if alphabet is None:
            return None
        pieces.append((alphabet, low, high))
    least = int(lo or 0)
    fixed = sum(low for _, low, _ in pieces)
    caps = [min(high - low, max(_OPEN_REPEAT, least)) for _, low, high in pieces]
    shortest = max(fixed, least)
    longest = fixed + sum(caps)
    if hi is not None:
        longest = min(longest, int(hi))
    if shortest > longest:
        return None
    runs = [(alphabet, low, cap, len(alphabet) == 1, alphabet.isascii()) for (alphabet, low, _), cap in zip(pieces, caps)]

    def draw(g: Generator, alphabet: str, count: int, single: bool, ascii_only: bool) -> str:
        if single:
            return alphabet * count
        if ascii_only:
            return g.pick(alphabet, count)
        return "".join(g.random.choices(alphabet, k=count))

    if shortest == longest == fixed:
        return lambda g: "".join([draw(g, a, low, s, asc) for a, low, _, s, asc in runs])
    total_cap = sum(caps)

    def make(g: Generator) -> str:
        extra = g.random.randint(shortest, longest) - fixed
        room = total_cap
        out = []
        for alphabet, low, cap, single, ascii_only in runs:
            room -= cap
            take = g.random.randint(max(0, extra - room), min(cap, extra)) if cap else 0
            extra -= take
            out.append(draw(g, alphabet, low + take, single, ascii_only))
        return "".join(out)

    return make


def _alphabet(op: Any, arg: Any) -> str | None:
    """The characters one pattern element matches (a usable subset of them), or None."""
    if op == _sre.LITERAL:
        return chr(arg) if not 0xD800 <= arg <= 0xDFFF else None
    if op == _sre.ANY:
        return _ALNUM
    if op == _sre.NOT_LITERAL:
        return "".join(c for c in _PRINTABLE if ord(c) != arg)
    if op == _sre.CATEGORY:
        return _CATEGORIES.get(arg)
    if op != _sre.IN:
        return None
    chars: set[str] = set()
    negate = False
    for sop, sarg in arg:
        if sop == _sre.NEGATE:
            negate = True
        elif sop == _sre.LITERAL:
            chars.add(chr(sarg))
        elif sop == _sre.RANGE:
            low, high = sarg
            chars.update(chr(c) for c in range(low, min(high, low + 255) + 1) if not 0xD800 <= c <= 0xDFFF)
        elif sop == _sre.CATEGORY and sarg in _CATEGORY_SETS:
            chars.update(_CATEGORY_SETS[sarg])
        else:
            return None
    if negate:
        if any(not c.isascii() for c in chars) and len(chars) > 64:
            return None
        chars = set(_PRINTABLE) - chars
    return "".join(sorted(chars)) or None


# --- Faker ------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def faker_has(method: str) -> bool:
    """Whether a Faker provider method of this name exists (checked when the spec loads)."""
    return not method.startswith("_") and callable(getattr(_probe(), method, None))


@lru_cache(maxsize=1)
def _probe() -> Faker:
    from faker import Faker

    return Faker()


class _Probing(Generator):
    """A generator sharing the probe's Faker, taken on first use (most schemas need no Faker,
    and importing it is slow); seeded then if it would have been seeded by then."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self._seed_probe = False

    def reseed(self) -> None:
        super().reseed()
        if self._faker is None:
            self._seed_probe = True

    @property
    def faker(self) -> Faker:
        if self._faker is None:
            self._faker = _probe()
            if self._seed_probe:
                self._faker.seed_instance(self.seed)
        return self._faker


def sample_generator() -> Generator:
    """A generator for load-time checks; shares the probe's Faker, whose values do not matter."""
    return _Probing(seed=0)


def _faker_call(spec: Mapping[str, Any]) -> Maker:
    method = spec["method"]
    args = dict(spec.get("args", {}))
    fast = _template_maker(method, args)
    if fast is not None:
        return fast

    def make(g: Generator) -> Any:
        return getattr(g.faker, method)(**args)

    return make


_HEX = "0123456789abcdef"
_LETTERS = string.ascii_letters


def _template_maker(method: str, args: Mapping[str, Any]) -> Maker | None:
    """Faker's bothify/lexify/numerify/hexify templates, rendered with the seeded Random.

    Faker draws these one character at a time (tens of microseconds per id); the
    same templates rendered in runs with ``random.choices`` give the same shapes for
    a fraction of the cost. Templates using Faker's rarer placeholders fall back.
    """
    if method not in ("bothify", "lexify", "numerify", "hexify") or set(args) - {"text", "letters", "upper"}:
        return None
    text = args.get("text")
    if not isinstance(text, str) or any(c in text for c in "%!@"):
        return None
    letters = args.get("letters", _LETTERS)
    hexdigits = _HEX.upper() if args.get("upper") else _HEX
    alphabets = {
        "bothify": {"#": string.digits, "?": letters},
        "lexify": {"?": letters},
        "numerify": {"#": string.digits},
        "hexify": {"^": hexdigits},
    }[method]
    pieces: list[tuple[str | None, int | str]] = []
    for char in text:
        alphabet = alphabets.get(char)
        if alphabet is None:
            if pieces and pieces[-1][0] is None:
                pieces[-1] = (None, str(pieces[-1][1]) + char)
            else:
                pieces.append((None, char))
        elif pieces and pieces[-1][0] == alphabet:
            pieces[-1] = (alphabet, int(pieces[-1][1]) + 1)
        else:
            pieces.append((alphabet, 1))

    if any(alphabet is not None and not alphabet.isascii() for alphabet, _ in pieces):
        return None

    if len(pieces) == 2 and pieces[0][0] is None and pieces[1][0] is not None:  # "prefix" + run: ids, keys
        prefix, alphabet, count = str(pieces[0][1]), pieces[1][0], int(pieces[1][1])
        return lambda g: prefix + g.pick(alphabet, count)

    def make(g: Generator) -> str:
        return "".join([str(part) if alphabet is None else g.pick(alphabet, int(part)) for alphabet, part in pieces])

    return make


class _Fixed:
    """A maker that always gives the same immutable value, so plans can put it in their template."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, g: Generator) -> Any:
        return self.value


def _constant(value: Any) -> Maker:
    if isinstance(value, (dict, list)):
        return lambda g: copy.deepcopy(value)
    return _Fixed(value)
