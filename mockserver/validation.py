"""Check a request against an operation: plain values in, a list of violations out.

Nothing here raises on bad input and nothing here decides the answer: the engine
picks which violation wins. Messages say what was expected and never repeat the
value that was sent, because that value may be a password or an API key.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from jsonschema.exceptions import ValidationError

from . import jsoncodec
from .contract import ObjectParts, Operation, Parameter
from .contract.model import Explained
from .errors import INVALID_FIELD, MISSING_FIELD, Violation, format_path

_TYPE_NAMES = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "a boolean",
    "array": "an array", "object": "an object", "null": "null",
}


def parse_json(raw: bytes) -> tuple[bool, Any]:
    """(True, value) for a well-formed UTF-8 JSON text, else (False, None). Never raises.

    NaN and Infinity, lone surrogates and nesting deeper than 1024 are refused, none of
    which a JSON API can rely on; every integer is read exactly, however long.
    """
    try:
        return True, jsoncodec.loads(raw)
    except (ValueError, RecursionError):
        return False, None


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None for any other scheme or an empty token."""
    value = headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def has_credentials(op: Operation, headers: Mapping[str, str], accepted: frozenset[str] | None = None,
                    query: Mapping[str, str] | None = None) -> bool:
    """True when any one of the operation's security alternatives is satisfied (or it has none).

    An alternative may combine several schemes, all of which must be present. With
    ``accepted``, only those keys and tokens count; otherwise any non-empty one does.
    """
    if not op.security:
        return True
    jar: Mapping[str, str] | None = None
    for alternative in op.security:
        satisfied = True
        for scheme in (alternative, *alternative.also):
            if scheme.kind == "bearer":
                value = bearer_token(headers)
            elif scheme.kind in ("basic", "http"):
                value = _http_credential(headers, scheme.kind)
            elif scheme.location == "query":
                value = (query or {}).get(scheme.name, "").strip()
            elif scheme.location == "cookie":
                jar = jar if jar is not None else cookies(headers)
                value = jar.get(scheme.name, "").strip()
            else:
                value = headers.get(scheme.header, "").strip()
            if not value or (accepted is not None and value not in accepted):
                satisfied = False
                break
        if satisfied:
            return True
    return False


def _http_credential(headers: Mapping[str, str], kind: str) -> str | None:
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    if kind == "basic" and scheme.lower() != "basic":
        return None
    return value.strip() or None


def cookies(headers: Mapping[str, str]) -> dict[str, str]:
    """The request's cookies by name (the first of a repeated name wins)."""
    found: dict[str, str] = {}
    for part in headers.get("cookie", "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in found:
            found[name] = value.strip()
    return found


def media_type_accepted(expected: str, content_type: str | None) -> bool:
    """Content-Type matches the declared media type, ignoring parameters; ``+json`` suffixes count as JSON."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    if media == expected:
        return True
    return expected == "application/json" and media.startswith("application/") and media.endswith("+json")


def parameter_violations(params: Mapping[str, Parameter], values: Mapping[str, str],
                         location: str) -> list[Violation]:
    """Violations of path, query or header parameters; each names the parameter."""
    found = []
    for name, param in params.items():
        value = param.gather(values, name)
        if value is None:
            if param.required:
                found.append(Violation(MISSING_FIELD, name, f"{location} parameter {name} is required"))
            continue
        if not param.accepts(value):
            expected = _expectation(param.schema)
            found.append(Violation(param.error_kind, name, f"{location} parameter {name} must be {expected}"))
    return found


def body_violations(op: Operation, body: Any, strict: bool = False) -> list[Violation]:
    """Every schema violation of a parsed JSON body, missing fields first, in a stable order."""
    if op.request_body is None:
        return []
    validator = op.request_body.strict_validator if strict else op.request_body.validator
    if validator.is_valid(body):
        return []
    # jsonschema-rs's account of the errors where it matches the reference's exactly: the
    # reference's own walk costs several times a valid request.
    explained = validator.explain(body)
    found: list[Violation] = []
    parts = validator.parts
    if parts is None or not isinstance(body, dict):
        for error in validator.reference.iter_errors(body) if explained is None else explained:
            found.extend(violations_of(error))
    else:
        found.extend(_part_violations(parts, body, explained))
    found.sort(key=lambda v: v.kind != MISSING_FIELD)
    return _unique(found)


def _part_violations(parts: ObjectParts, body: dict[str, Any],
                     explained: list[Explained] | None = None) -> Iterable[Violation]:
    """The same violations as the whole-schema pass, in the same order, checking only what was sent."""
    for name in parts.required:
        if name not in body:
            yield Violation(MISSING_FIELD, name, f"{name} is required")
    if explained is None:
        for name, sub in parts.properties.items():
            if name in body:
                for error in sub.iter_errors(body[name]):
                    yield from violations_of(error, (name,))
    else:
        # Already in the properties' declared order; those at the top level (required, closed)
        # are the lines either side of this loop.
        for error in explained:
            if error.absolute_path:
                yield from violations_of(error)
    if parts.closed:
        for name in body:
            if name not in parts.properties:
                yield Violation(INVALID_FIELD, name, f"{name} is not a field of this request")


def violations_of(error: ValidationError | Explained, prefix: tuple[str, ...] = ()) -> Iterable[Violation]:
    """A jsonschema error as violations: one per missing field, else one INVALID_FIELD."""
    path = [*prefix, *error.absolute_path]
    keyword = error.validator
    if keyword == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        for name in error.validator_value:
            if name not in present:
                field = format_path([*path, name])
                yield Violation(MISSING_FIELD, field, f"{field} is required")
        return
    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        declared = error.schema.get("properties", {})
        for name in error.instance:
            if name not in declared:
                field = format_path([*path, name])
                yield Violation(INVALID_FIELD, field, f"{field} is not a field of this request")
        return
    field = format_path(path) or None
    subject = field or "the body"
    yield Violation(INVALID_FIELD, field, f"{subject} {_problem(error)}")


def _problem(error: ValidationError | Explained) -> str:
    """What the value should have been, in words; the value itself is never quoted."""
    keyword, expected = error.validator, error.validator_value
    if keyword in ("pattern", "format"):
        described = _described(error.schema)
        if described:
            return f"must be {described}"
    if keyword == "type":
        return f"must be {_type_words(expected)}"
    if keyword == "enum":
        return "must be one of " + ", ".join(json.dumps(v) for v in expected)
    if keyword == "const":
        return f"must be {json.dumps(expected)}"
    if keyword == "maxLength":
        return f"must be at most {expected} characters long"
    if keyword == "minLength":
        return f"must be at least {expected} characters long"
    if keyword == "pattern":
        return f"must match the pattern {expected}"
    if keyword == "format":
        return f"must be a valid {expected}"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
        return f"must satisfy {keyword} {expected}"
    if keyword in ("maxItems", "minItems", "uniqueItems", "maxProperties", "minProperties"):
        return f"must satisfy {keyword} {json.dumps(expected)}"
    return f"does not satisfy the contract's {keyword!r} rule"


def _described(schema: Any) -> str | None:
    """The schema's description as the end of "must be ...", or None."""
    text = schema.get("description") if isinstance(schema, dict) else None
    if not isinstance(text, str) or not text:
        return None
    text = text.rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def _expectation(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if "type" in schema:
        return _type_words(schema["type"])
    return "valid"


def _type_words(expected: Any) -> str:
    types = expected if isinstance(expected, list) else [expected]
    return " or ".join(_TYPE_NAMES.get(t, str(t)) for t in types)


def _unique(violations: list[Violation]) -> list[Violation]:
    """One violation per field: a value that breaks two rules is reported once, by the first."""
    seen: set[str | None] = set()
    out = []
    for v in violations:
        if v.field not in seen:
            seen.add(v.field)
            out.append(v)
    return out
