"""Format checks that always run.

jsonschema only checks ``uri`` and ``date-time`` when optional packages are
installed, and silently passes them otherwise. A contract mock that lets a bad URL
through makes wrong client code pass, so these two are implemented here with the
standard library and registered on the checker every validator is compiled with.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

from jsonschema import FormatChecker

FORMAT_CHECKER = FormatChecker()

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_FORBIDDEN_IN_URI = re.compile(r"[\s<>\"{}|\\^`\x00-\x1f\x7f]")


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
    """An absolute URI: a scheme, and for hierarchical schemes a host."""
    if not isinstance(value, str):
        return True
    if _FORBIDDEN_IN_URI.search(value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # raises on a bad port
    except ValueError:
        return False
    if not parts.scheme or not _SCHEME.match(parts.scheme):
        return False
    if value[len(parts.scheme) + 1:].startswith("//"):
        return bool(parts.hostname)
    return bool(parts.path or parts.netloc)
