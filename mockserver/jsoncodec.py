"""JSON in and out, exact for every integer.

orjson is several times faster than the standard library, but reads an integer beyond
64 bits as a float (so ``18446744073709551616`` would pass a ``type: integer`` check
rounded) and refuses to write one. A text with a run of 19 or more digits is rare in an
API request; only such a text is read again by the standard library, which keeps every
integer exact, and only a value orjson refuses is written by it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# Every digit as "1", every other byte as "0": a run of 19 digits is then a plain substring
# search, about ten times cheaper than a regular expression over the text.
_DIGITS = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))
_RUN = b"1" * 19


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(raw: bytes | str) -> Any:
    """The value of a UTF-8 JSON text; ValueError (or RecursionError) when it is not one.

    Refused as orjson refuses them: NaN and Infinity, lone surrogates, nesting deeper than
    1024, invalid UTF-8.
    """
    value = orjson.loads(raw)
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    if _RUN not in data.translate(_DIGITS):
        return value
    return json.loads(data, parse_constant=_refuse_constant)


def dumps(value: Any, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON (keys that are not strings written as strings)."""
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    try:
        return orjson.dumps(value, option=option)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False).encode("utf-8")
