"""Every error a user sees, built in one place.

Two families live here:

* ``ApiProblem``: an answer in the contract's ApiError shape (status, type, code,
  field, message). The engine, the admin API and the scenarios all build their
  error bodies through :func:`problem` and :meth:`ApiProblem.body`, so the shape
  cannot drift between them.
* ``LoadError``: a broken spec or scenario file. It renders as one line,
  ``file:line: what is wrong``, and stops start-up before the server listens.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

CLIENT = "INVALID_REQUEST"
SERVER = "API_ERROR"

BAD_REQUEST = "BAD_REQUEST"
MISSING_FIELD = "MISSING_FIELD"
INVALID_FIELD = "INVALID_FIELD"
UNABLE_TO_PROCESS = "UNABLE_TO_PROCESS_INSTRUCTIONS"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
UNAUTHORISED = "UNAUTHORISED"
USER_NOT_ALLOWED = "USER_NOT_ALLOWED"
INTERNAL_ERROR = "INTERNAL_ERROR"
RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND"
INVALID_OPERATION = "INVALID_OPERATION"

# What a status means when nothing more specific is known: the default body of a
# scripted error, of `Prefer: code=NNN`, and of the router's own answers.
_DEFAULTS: dict[int, tuple[str, str, str]] = {
    400: (CLIENT, BAD_REQUEST, "The request could not be processed."),
    401: (CLIENT, UNAUTHORISED, "Missing or invalid credentials."),
    403: (CLIENT, USER_NOT_ALLOWED, "The credentials are valid but lack the permission this operation needs."),
    404: (CLIENT, RESOURCE_NOT_FOUND, "The requested resource does not exist."),
    405: (CLIENT, INVALID_OPERATION, "This method is not allowed on this path."),
    409: (CLIENT, INVALID_OPERATION, "The operation is not allowed in the resource's current state."),
    500: (SERVER, INTERNAL_ERROR, "An internal error occurred."),
}


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass(frozen=True)
class Violation:
    """One thing wrong with a request; validation collects these, the engine decides."""

    code: str
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class ApiProblem:
    """An error answer in the contract's ApiError shape."""

    status: int
    type: str
    code: str
    message: str
    field: str | None = None
    errors: tuple[Violation, ...] = ()
    headers: tuple[tuple[str, str], ...] = dataclass_field(default=())

    def body(self) -> dict[str, Any]:
        """The JSON body; ``errors`` is only present when there is more than one violation."""
        out: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "field": self.field,
            "message": self.message,
        }
        if len(self.errors) > 1:
            out["errors"] = [v.as_dict() for v in self.errors]
        return out

    def problem_details(self) -> dict[str, Any]:
        """The same problem as RFC 9457 problem details, listing every violation (where and why)."""
        out: dict[str, Any] = {
            "type": "about:blank",
            "title": _REASONS.get(self.status, "Error"),
            "status": self.status,
            "detail": self.message,
            "code": self.code,
        }
        violations = self.errors or ((Violation(self.code, self.field, self.message),) if self.field else ())
        if violations:
            out["errors"] = [v.as_dict() for v in violations]
        return out


def problem(status: int, code: str | None = None, message: str | None = None,
            field: str | None = None, errors: Sequence[Violation] = (),
            headers: Iterable[tuple[str, str]] = ()) -> ApiProblem:
    """Build an ApiProblem, filling type, code and message from the status where not given."""
    default_type, default_code, default_message = default_for(status)
    return ApiProblem(
        status=status,
        type=default_type,
        code=code or default_code,
        message=message or default_message,
        field=field,
        errors=tuple(errors),
        headers=tuple(headers),
    )


def from_violations(violations: Sequence[Violation]) -> ApiProblem:
    """The 400 for a request with schema violations: the first names ``field``, all are listed."""
    first = violations[0]
    return problem(400, first.code, first.message, first.field, violations)


def default_for(status: int) -> tuple[str, str, str]:
    """(type, code, message) a bare status stands for."""
    if status in _DEFAULTS:
        return _DEFAULTS[status]
    if status >= 500:
        return _DEFAULTS[500]
    return (CLIENT, BAD_REQUEST, f"The request failed with status {status}.")


def forbidden_message(permission: str | None) -> str:
    """403 message; names the permission the operation needs when the contract says which."""
    if permission:
        return f"The credentials are valid but lack the {permission} permission."
    return _DEFAULTS[403][2]


class LoadError(Exception):
    """A spec or scenario file that cannot be used. ``str()`` is one line: file:line: message."""

    def __init__(self, file: Path | str, message: str, line: int | None = None) -> None:
        self.file = str(file)
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class LoadErrors(Exception):
    """Several load errors at once, so `check` can report every broken file in one run."""

    def __init__(self, errors: Sequence[LoadError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def line_of(text: str, path: Sequence[str | int]) -> int | None:
    """1-based line of the node at ``path`` in a YAML or JSON text, or None if it cannot be found.

    JSON is (nearly) YAML, so one walker over PyYAML's composed node tree serves both
    spec files and scenario files. A missing key points at its parent.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    return line_in(node, path)


def line_in(root: Any, path: Sequence[str | int], key: bool = False) -> int | None:
    """1-based line of the node at ``path`` in a composed YAML node tree (of its key with
    ``key=True``: a block value starts a line later); a missing step stops at its parent."""
    node = root
    if node is None:
        return None
    for depth, step in enumerate(path, 1):
        child = None
        if isinstance(node, yaml.MappingNode):
            at_key = key and depth == len(path)
            child = next(((k if at_key else v) for k, v in node.value if k.value == str(step)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            child = node.value[step]
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def format_path(path: Iterable[str | int]) -> str:
    """Dotted path such as ``included_actions.0``; empty for the document itself."""
    return ".".join(str(p) for p in path)
