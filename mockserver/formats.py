"""Format checks that always run.

jsonschema only checks ``uri`` and ``date-time`` when optional packages are
installed, and silently passes them otherwise. A contract mock that lets a bad URL
through makes wrong client code pass, so these two are implemented here with the
standard library and registered on the checker every validator is compiled with, beside
OpenAPI's integer formats (``int32``, ``int64``: a value outside the range is refused).

The checker starts from Draft 2020-12's own: jsonschema's class-wide table holds every
draft's checks, and draft 3's ``time`` (no offset) would refuse RFC 3339 times.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from functools import lru_cache
from typing import Any, Iterator

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError

FORMAT_CHECKER = FormatChecker(())
FORMAT_CHECKER.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)

# OpenAPI's integer formats: the range of a signed two's-complement integer of that width.
INTEGER_RANGES = {"int32": (-(2 ** 31), 2 ** 31 - 1), "int64": (-(2 ** 63), 2 ** 63 - 1)}


def _in_range(name: str) -> None:
    low, high = INTEGER_RANGES[name]

    def check(value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True
        return low <= value <= high

    FORMAT_CHECKER.checks(name)(check)


for _name in INTEGER_RANGES:
    _in_range(_name)

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)

# RFC 3986 section 3, ASCII only (an IRI is not a URI).
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"
_HOST = (rf"(?:\[(?P<ip>[0-9A-Fa-f:.]+)\]|{_DEC_OCTET}(?:\.{_DEC_OCTET}){{3}}"
         rf"|(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*)")
_AUTHORITY = rf"(?:(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*@)?{_HOST}(?::[0-9]*)?"
_HIER = (rf"(?://{_AUTHORITY}(?:/{_PCHAR}*)*|/(?:{_PCHAR}+(?:/{_PCHAR}*)*)?"
         rf"|{_PCHAR}+(?:/{_PCHAR}*)*|)")
_QUERY = rf"(?:{_PCHAR}|[/?])*"
_URI = re.compile(rf"[A-Za-z][A-Za-z0-9+\-.]*:{_HIER}(?:\?{_QUERY})?(?:#{_QUERY})?")


@FORMAT_CHECKER.checks("date-time")
def is_date_time(value: object) -> bool:
    """RFC 3339 date-time with a mandatory offset, and a real calendar date and time."""
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    normalised = value.upper().replace("Z", "+00:00")
    seconds = normalised[17:19]
    if seconds == "60":  # leap second: valid RFC 3339, unknown to datetime
        normalised = normalised[:17] + "59" + normalised[19:]
    try:
        datetime.fromisoformat(normalised)
    except ValueError:
        return False
    return True


@FORMAT_CHECKER.checks("uri")
def is_uri(value: object) -> bool:
    """An absolute URI by the grammar of RFC 3986 (ASCII only, valid escapes, valid IP literal)."""
    if not isinstance(value, str):
        return True
    match = _URI.fullmatch(value)
    if match is None:
        return False
    literal = match.group("ip")
    if literal is not None:
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return False
    return True


# ---------------------------------------------------------------- patterns, as ECMA-262 reads them

def ecma_pattern(pattern: str) -> "re.Pattern[str]":
    """A JSON Schema ``pattern`` (an ECMA-262 regular expression) as a Python one with the same
    meaning where the two differ in practice: ``$`` is the end of the string only (Python's
    also matches before a final newline), and ``\\d`` and ``\\w`` are ASCII (Python's are Unicode)."""
    return _ecma(pattern)


@lru_cache(maxsize=4096)
def _ecma(pattern: str) -> "re.Pattern[str]":
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            pair = pattern[i:i + 2]
            out.append((_IN_CLASS if in_class else _OUTSIDE).get(pair, pair))
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class and pattern[i - 1] != "[":
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
        i += 1
    return re.compile("".join(out))


_OUTSIDE = {r"\d": "[0-9]", r"\D": "[^0-9]", r"\w": "[A-Za-z0-9_]", r"\W": "[^A-Za-z0-9_]"}
_IN_CLASS = {r"\d": "0-9", r"\w": "A-Za-z0-9_"}


def pattern_fails(pattern: str, instance: Any) -> bool:
    """Whether ``instance`` breaks a ``pattern`` keyword: a string it does not match (any
    other value passes). The reference validator and the explaining one both ask this."""
    return isinstance(instance, str) and not ecma_pattern(pattern).search(instance)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if pattern_fails(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# The reference validator of every contract schema: Draft 2020-12 with patterns read as the
# specification (and the compiled fast path) reads them.
ReferenceValidator = validators.extend(Draft202012Validator, {"pattern": _pattern})
