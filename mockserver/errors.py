"""Every error a user sees, built in one place.

Two families live here:

* ``ApiProblem``: an error answer (status, kind of problem, field, message, violations).
  The engine, the admin API and the scenarios all build it through :func:`problem`; the
  contract's :class:`ErrorShape` writes it in the contract's error shape, so the shape
  cannot drift between them and no code here knows it.
* ``LoadError``: a broken spec or scenario file. It renders as one line,
  ``file:line: what is wrong``, and stops start-up before the server listens.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

# Kinds of problem. They are the mock's own words: the contract says how each is written
# (its error shape, x-mock ``errors``: the type and code a kind gets); a contract without an
# error shape answers RFC 9457 problem details with the kind as ``code``.
BAD_REQUEST = "bad-request"
MISSING_FIELD = "missing-field"
INVALID_FIELD = "invalid-field"
UNABLE_TO_PROCESS = "unreadable-body"
UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
UNAUTHORISED = "unauthorised"
USER_NOT_ALLOWED = "forbidden"
INTERNAL_ERROR = "internal"
RESOURCE_NOT_FOUND = "not-found"
INVALID_OPERATION = "invalid-operation"
KINDS = (BAD_REQUEST, MISSING_FIELD, INVALID_FIELD, UNABLE_TO_PROCESS, UNSUPPORTED_MEDIA_TYPE, UNAUTHORISED,
         USER_NOT_ALLOWED, INTERNAL_ERROR, RESOURCE_NOT_FOUND, INVALID_OPERATION)

# What a status means when nothing more specific is known: the default body of a
# scripted error, of `Prefer: code=NNN`, and of the router's own answers.
_DEFAULTS: dict[int, tuple[str, str]] = {
    400: (BAD_REQUEST, "The request could not be processed."),
    401: (UNAUTHORISED, "Missing or invalid credentials."),
    403: (USER_NOT_ALLOWED, "The credentials are valid but lack the permission this operation needs."),
    404: (RESOURCE_NOT_FOUND, "The requested resource does not exist."),
    405: (INVALID_OPERATION, "This method is not allowed on this path."),
    409: (INVALID_OPERATION, "The operation is not allowed in the resource's current state."),
    500: (INTERNAL_ERROR, "An internal error occurred."),
}


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass(frozen=True)
class Violation:
    """One thing wrong with a request; validation collects these, the engine decides."""

    kind: str
    field: str | None
    message: str


@dataclass(frozen=True)
class ApiProblem:
    """An error answer before the contract's shape is applied: a status, a kind of problem,
    a message, the field it is about and, for an invalid request, every violation."""

    status: int
    kind: str
    message: str
    field: str | None = None
    errors: tuple[Violation, ...] = ()
    headers: tuple[tuple[str, str], ...] = dataclass_field(default=())


class ErrorShape:
    """How a contract writes an error body (x-mock ``errors``), or RFC 9457 problem details.

    ``body`` and ``violation`` are templates: a string value ``$name`` is replaced by
    ``message``, ``field``, ``status``, ``violations`` (the list of every violation, left out
    when there is at most one) or by what the problem's kind says (``kinds``: kind -> values
    such as its type and code). A kind the contract does not list takes its status's.
    """

    def __init__(self, body: Mapping[str, Any] | None = None, violation: Mapping[str, Any] | None = None,
                 kinds: Mapping[str, Mapping[str, Any]] | None = None, media_type: str = "application/json") -> None:
        self.template = body
        self.violation = violation or {}
        self.kinds = kinds or {}
        self.media_type = media_type if body is not None else "application/problem+json"

    @property
    def problem_details(self) -> bool:
        return self.template is None

    def body(self, problem: ApiProblem) -> dict[str, Any]:
        if self.template is None:
            return _problem_details(problem)
        violations = [self._fill(self.violation, v.kind, problem.status, {"field": v.field, "message": v.message})
                      for v in problem.errors] if len(problem.errors) > 1 else None
        return self._fill(self.template, problem.kind, problem.status,
                          {"field": problem.field, "message": problem.message, "violations": violations})

    def _fill(self, template: Mapping[str, Any], kind: str, status: int, values: Mapping[str, Any]) -> dict[str, Any]:
        known = {**self._kind(kind, status), "status": status, "kind": kind, **values}
        out: dict[str, Any] = {}
        for name, value in template.items():
            if isinstance(value, str) and value.startswith("$"):
                filled = known.get(value[1:])
                if value[1:] == "violations" and filled is None:
                    continue
                out[name] = filled
            else:
                out[name] = value
        return out

    def _kind(self, kind: str, status: int) -> Mapping[str, Any]:
        found = self.kinds.get(kind)
        if found is None:
            found = self.kinds.get(default_for(status)[0], {})
        return found


PROBLEM_DETAILS = ErrorShape()


def _problem_details(problem: ApiProblem) -> dict[str, Any]:
    """The problem as RFC 9457 problem details, listing every violation (where and why)."""
    out: dict[str, Any] = {
        "type": "about:blank",
        "title": _REASONS.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.message,
        "code": problem.kind,
    }
    violations = problem.errors or ((Violation(problem.kind, problem.field, problem.message),) if problem.field else ())
    if violations:
        out["errors"] = [{"code": v.kind, "field": v.field, "message": v.message} for v in violations]
    return out


def problem(status: int, kind: str | None = None, message: str | None = None,
            field: str | None = None, errors: Sequence[Violation] = (),
            headers: Iterable[tuple[str, str]] = ()) -> ApiProblem:
    """Build an ApiProblem, filling kind and message from the status where not given."""
    default_kind, default_message = default_for(status)
    return ApiProblem(
        status=status,
        kind=kind or default_kind,
        message=message or default_message,
        field=field,
        errors=tuple(errors),
        headers=tuple(headers),
    )


def from_violations(violations: Sequence[Violation]) -> ApiProblem:
    """The 400 for a request with schema violations: the first names ``field``, all are listed."""
    first = violations[0]
    return problem(400, first.kind, first.message, first.field, violations)


# Every status whose bare meaning differs (any other 4xx means bad-request, any 5xx internal).
KNOWN_STATUSES = (*sorted(_DEFAULTS), 418)


def default_for(status: int) -> tuple[str, str]:
    """(kind, message) a bare status stands for."""
    if status in _DEFAULTS:
        return _DEFAULTS[status]
    if status >= 500:
        return _DEFAULTS[500]
    return (BAD_REQUEST, f"The request failed with status {status}.")


def forbidden_message(permission: str | None) -> str:
    """403 message; names the permission the operation needs when the contract says which."""
    if permission:
        return f"The credentials are valid but lack the {permission} permission."
    return _DEFAULTS[403][1]


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


def line_of(text: str, path: Sequence[str | int], key: bool = False) -> int | None:
    """1-based line of the node at ``path`` in a YAML or JSON text, or None if it cannot be found.

    JSON is (nearly) YAML, so one walker over PyYAML's composed node tree serves both
    spec files and scenario files. A missing key points at its parent; ``key=True`` gives
    the line of the last step's key (a block value starts a line later).
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    return line_in(node, path, key)


def line_in(root: Any, path: Sequence[str | int], key: bool = False) -> int | None:
    """1-based line of the node at ``path`` in a composed YAML node tree (of its key with
    ``key=True``: a block value starts a line later); a missing step stops at its parent."""
    node = node_in(root, path, key)
    return None if node is None else node.start_mark.line + 1


def node_in(root: Any, path: Sequence[str | int], key: bool = False) -> Any:
    """The node at ``path`` in a composed YAML node tree, or the deepest one on the way."""
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
    return node


def format_path(path: Iterable[str | int]) -> str:
    """Dotted path such as ``included_actions.0``; empty for the document itself."""
    return ".".join(str(p) for p in path)
