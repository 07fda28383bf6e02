"""Build response bodies from a response schema: echo, defaults, formats, ``x-faker``.

A :class:`BodyPlan` is compiled once per (request schema, response schema) pair at
start-up; rendering it per request is a loop over prepared steps, with no schema
walk. What happens to each response property is read from the schemas:

* ``const`` -> that value;
* echoed when the request schema declares the same property, neither side marks it
  ``readOnly``/``writeOnly``, and the request sent it;
* else ``default`` if the schema has one;
* else ``null`` if the type allows it and no ``x-faker`` asks for a value;
* else generated: ``x-faker`` (a Faker method and its arguments), then ``format``,
  ``enum`` and ``type``.
"""

from __future__ import annotations

import copy
import random
import string
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Callable, Mapping

from faker import Faker

_ALNUM = string.ascii_letters + string.digits
_TABLES: dict[str, bytes] = {}
_SYSTEM_RANDOM = random.SystemRandom()


def unseeded_token(prefix: str, length: int) -> str:
    """A token from the system's randomness: for answers outside the seeded sequence
    (admin routes, transport errors, internal errors), which must not shift it."""
    return prefix + "".join(_SYSTEM_RANDOM.choices(_ALNUM, k=length))
Maker = Callable[["Generator"], Any]


class Generator:
    """The randomness of one server: a Faker and a Random, both seeded once."""

    def __init__(self, seed: int | None = None, faker: Faker | None = None) -> None:
        self.seed = seed
        self.random = random.Random(seed)
        self._faker = faker

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
            self._faker = Faker()
            if self.seed is not None:
                self._faker.seed_instance(self.seed)
        return self._faker

    def token(self, prefix: str, length: int) -> str:
        """``prefix`` + ``length`` letters and digits; request ids and the like."""
        return prefix + self.pick(_ALNUM, length)

    def pick(self, alphabet: str, count: int) -> str:
        """``count`` characters drawn from ``alphabet``, in one call to the seeded Random.

        One random byte per character, mapped through a 256-entry table: far
        cheaper than a draw per character, and the slight skew it gives to
        alphabets whose size does not divide 256 does not matter for test data.
        """
        table = _TABLES.get(alphabet)
        if table is None:
            table = _TABLES[alphabet] = bytes(ord(alphabet[i % len(alphabet)]) for i in range(256))
        return self.random.randbytes(count).translate(table).decode("ascii")

    def now(self) -> str:
        """A timestamp; deterministic under a seed so seeded bodies are byte-identical."""
        if self.seed is None:
            moment = datetime.now(timezone.utc).replace(microsecond=0)
        else:
            moment = self.faker.date_time_between("-1y", "now", tzinfo=timezone.utc).replace(microsecond=0)
        return moment.isoformat().replace("+00:00", "Z")


class BodyPlan:
    """Prepared steps that turn a request body into a response body.

    Constant values (``const``, immutable defaults, ``null``) sit in a template
    that is copied per request; only echoed and generated fields cost a step.
    """

    def __init__(self, response_schema: Mapping[str, Any],
                 request_schema: Mapping[str, Any] | None = None) -> None:
        request_props = (request_schema or {}).get("properties", {})
        self.template: dict[str, Any] = {}
        self.generated: list[tuple[str, Maker]] = []
        self.echoed: list[tuple[str, Maker | None]] = []
        for name, prop in response_schema.get("properties", {}).items():
            incoming = request_props.get(name)
            echo = (
                incoming is not None
                and not _flag(prop, "readOnly") and not _flag(prop, "writeOnly")
                and not _flag(incoming, "readOnly") and not _flag(incoming, "writeOnly")
            )
            make = _fallback(prop)
            fixed = isinstance(make, _Fixed)
            self.template[name] = make.value if fixed else None
            if echo:
                self.echoed.append((name, None if fixed else make))
            elif not fixed:
                self.generated.append((name, make))
        self.fallback = compile_maker(response_schema) if not self.template else None

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


def _flag(schema: Any, key: str) -> bool:
    return isinstance(schema, Mapping) and schema.get(key) is True


def _fallback(prop: Mapping[str, Any]) -> Maker:
    """What a response property holds when it is not echoed."""
    if "const" in prop:
        return _constant(prop["const"])
    if "default" in prop:
        return _constant(prop["default"])
    if "null" in _types(prop) and "x-faker" not in prop:
        return _constant(None)
    return compile_maker(prop)


def compile_maker(schema: Mapping[str, Any]) -> Maker:
    """A function that generates a value valid against ``schema`` (a resolved schema)."""
    if "const" in schema:
        return _constant(schema["const"])
    if "x-faker" in schema:
        return _faker_call(schema["x-faker"])
    if "enum" in schema:
        return _constant(schema["enum"][0])
    if "allOf" in schema and isinstance(schema["allOf"], list):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(part)
        merged.update({k: v for k, v in schema.items() if k != "allOf"})
        return compile_maker(merged)
    types = [t for t in _types(schema) if t != "null"] or ["null"]
    kind = types[0]
    if kind == "string":
        return _string_maker(schema)
    if kind == "integer":
        low, high = int(schema.get("minimum", 0)), int(schema.get("maximum", 1000))
        return lambda g: g.random.randint(low, max(low, high))
    if kind == "number":
        low, high = float(schema.get("minimum", 0)), float(schema.get("maximum", 1000))
        return lambda g: round(g.random.uniform(low, max(low, high)), 2)
    if kind == "boolean":
        return lambda g: g.random.random() < 0.5
    if kind == "array":
        return lambda g: []
    if kind == "object":
        props = schema.get("properties", {})
        makers = [(name, _fallback(props[name])) for name in schema.get("required", []) if name in props]
        return lambda g: {name: make(g) for name, make in makers}
    return _constant(None)


def _string_maker(schema: Mapping[str, Any]) -> Maker:
    fmt = schema.get("format")
    if fmt == "date-time":
        return lambda g: g.now()
    if fmt in ("uri", "url"):
        return lambda g: g.faker.url()
    if fmt == "email":
        return lambda g: g.faker.email()
    if fmt == "uuid":
        return lambda g: g.faker.uuid4()
    low = int(schema.get("minLength", 8))
    high = max(low, min(int(schema.get("maxLength", 16)), 64))
    return lambda g: g.token("", g.random.randint(low, high))


@lru_cache(maxsize=None)
def faker_has(method: str) -> bool:
    """Whether a Faker provider method of this name exists (checked when the spec loads)."""
    return not method.startswith("_") and callable(getattr(_probe(), method, None))


@lru_cache(maxsize=1)
def _probe() -> Faker:
    return Faker()


def sample_generator() -> Generator:
    """A generator for load-time checks; shares the probe's Faker, whose values do not matter."""
    return Generator(seed=0, faker=_probe())


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


def _types(schema: Mapping[str, Any]) -> list[str]:
    t = schema.get("type", [])
    return [t] if isinstance(t, str) else list(t)
