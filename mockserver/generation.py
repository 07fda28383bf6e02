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
Maker = Callable[["Generator"], Any]


class Generator:
    """The randomness of one server: a Faker and a Random, both seeded once."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.faker = Faker()
        self.random = random.Random(seed)
        if seed is not None:
            self.faker.seed_instance(seed)

    def token(self, prefix: str, length: int) -> str:
        """``prefix`` + ``length`` letters and digits; request ids and the like."""
        return prefix + "".join(self.random.choices(_ALNUM, k=length))

    def now(self) -> str:
        """A timestamp; deterministic under a seed so seeded bodies are byte-identical."""
        if self.seed is None:
            moment = datetime.now(timezone.utc).replace(microsecond=0)
        else:
            moment = self.faker.date_time_between("-1y", "now", tzinfo=timezone.utc).replace(microsecond=0)
        return moment.isoformat().replace("+00:00", "Z")


class BodyPlan:
    """Prepared steps that turn a request body into a response body."""

    def __init__(self, response_schema: Mapping[str, Any],
                 request_schema: Mapping[str, Any] | None = None) -> None:
        request_props = (request_schema or {}).get("properties", {})
        self.steps: list[tuple[str, bool, Maker]] = []
        for name, prop in response_schema.get("properties", {}).items():
            incoming = request_props.get(name)
            echo = (
                incoming is not None
                and not _flag(prop, "readOnly") and not _flag(prop, "writeOnly")
                and not _flag(incoming, "readOnly") and not _flag(incoming, "writeOnly")
            )
            self.steps.append((name, echo, _fallback(prop)))
        self.fallback = compile_maker(response_schema) if not self.steps else None

    def render(self, generator: Generator, request: Mapping[str, Any] | None = None) -> Any:
        if self.fallback is not None:
            return self.fallback(generator)
        body: dict[str, Any] = {}
        source = request if isinstance(request, Mapping) else {}
        for name, echo, make in self.steps:
            if echo and name in source:
                body[name] = source[name]
            else:
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


def _faker_call(spec: Mapping[str, Any]) -> Maker:
    method = spec["method"]
    args = dict(spec.get("args", {}))

    def make(g: Generator) -> Any:
        return getattr(g.faker, method)(**args)

    return make


def _constant(value: Any) -> Maker:
    if isinstance(value, (dict, list)):
        return lambda g: copy.deepcopy(value)
    return lambda g: value


def _types(schema: Mapping[str, Any]) -> list[str]:
    t = schema.get("type", [])
    return [t] if isinstance(t, str) else list(t)
