"""YAML scenarios: load and check them, then pick the scripted answer for a request.

A scenario file is checked three ways when it loads, so a mistake never becomes a
surprise on the first request: against the shipped scenario schema, its regexes by
compiling them with RE2, and every scripted body against the contract (a body merged
over the generated one must still be valid for that status).

Regexes run on RE2, which matches in time linear in the value whatever the pattern, so
no scenario can stall the server on one request. RE2 refuses what needs backtracking
(backreferences, lookaround, atomic groups, possessive quantifiers); such a pattern is
refused when the file loads, with the reason.

:class:`ScenarioBook` holds the loaded scenarios and everything that changes at run
time: the server-wide choice, per-client bindings and ``times`` counters. With a
directory it also follows edits, additions, renames and deletions of scenario files
(:meth:`ScenarioBook.refresh`), reading them off the event loop. Scenarios can also be
added at run time (``PUT /__mock/scenarios/{name}``, the pytest fixture's ``when()``): they
go through the same checks as a file, and a reset removes them.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence

import re2
import yaml

from . import jsoncodec
from .contract import Contract, Operation, deepest_error, default_spec_dir, shipped_validator
from .errors import PROBLEM_DETAILS, ErrorShape, LoadError, LoadErrors, format_path, forbidden_message, line_of, problem
from .answers import PROBLEM
from .generation import BodyPlan, Generator, response_plan, sample_generator
from .state.book import Ledger, MemoryLedger, client_of, fingerprint  # noqa: F401 - fingerprint is used from here too

log = logging.getLogger("mockserver.scenarios")

_MAX_PATTERN = 1000

_RE2_OPTIONS = re2.Options()
# A refused pattern is reported once, as the loader's one-line LoadError; RE2 would also log it through absl.
_RE2_OPTIONS.log_errors = False
# Only "does it match" is asked; without capture groups RE2 can answer from its DFA alone.
_RE2_OPTIONS.never_capture = True

# RE2's error text names the syntax it stopped at; this says which feature it leaves out on purpose.
_LEFT_OUT: tuple[tuple[tuple[str, ...], str], ...] = (
    (tuple(f"invalid escape sequence: \\{c}" for c in "123456789gk") + ("invalid perl operator: (?P",),
     "backreferences are not supported"),
    (("invalid perl operator: (?=", "invalid perl operator: (?!", "invalid perl operator: (?<"),
     "lookahead and lookbehind are not supported"),
    (("invalid perl operator: (?>",), "atomic groups are not supported"),
    (("bad repetition operator: ++", "bad repetition operator: *+", "bad repetition operator: ?+"),
     "possessive quantifiers are not supported"),
    (("invalid repetition size",), "a repetition count is at most 1000"),
    (("invalid escape sequence: \\Z",), "write \\z for the end of the text"),
)


class PatternRefused(ValueError):
    """A regex the mock will not run; ``str()`` says why, for the loader's message."""


class Regex:
    """A ``{regex: ...}`` matcher run on RE2; the whole text of the value must match."""

    __slots__ = ("pattern", "compiled")

    def __init__(self, pattern: str) -> None:
        if len(pattern) > _MAX_PATTERN:
            raise PatternRefused(f"regex longer than {_MAX_PATTERN} characters")
        try:
            self.compiled = re2.compile(pattern, _RE2_OPTIONS)
        except re2.error as exc:
            raise PatternRefused(f"RE2 cannot compile it: {_re2_refusal(exc)}") from None
        except UnicodeEncodeError:
            raise PatternRefused("RE2 cannot compile it: the pattern is not valid Unicode text") from None
        self.pattern = pattern

    def matches(self, value: Any) -> bool:
        return self.matches_text(regex_text(value))

    def matches_text(self, text: bytes) -> bool:
        """Match what :func:`regex_text` made of a value."""
        return self.compiled.fullmatch(text) is not None

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"


def _re2_refusal(exc: Exception) -> str:
    raw = exc.args[0] if exc.args else ""
    detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    for starts, why in _LEFT_OUT:
        if detail.startswith(starts):
            return f"{why} ({detail})"
    return detail


def regex_text(value: Any) -> bytes:
    """The text a regex sees: a string as it is, any other value as its JSON; UTF-8 for RE2."""
    text = value if isinstance(value, str) else json.dumps(value)
    # A JSON body can carry a lone surrogate (an escaped \ud800); it must be matched, not turned into a 500.
    return text.encode("utf-8", "surrogatepass")


class _Texts:
    """The regex text of each value of one request, made once however many rules look at it."""

    __slots__ = ("_made",)

    def __init__(self) -> None:
        # Keyed by id(); the value is kept beside its text so a recycled id can never hit.
        self._made: dict[int, tuple[Any, bytes]] = {}

    def of(self, value: Any) -> bytes:
        made = self._made.get(id(value))
        if made is not None and made[0] is value:
            return made[1]
        text = regex_text(value)
        self._made[id(value)] = (value, text)
        return text


@dataclass(frozen=True)
class Match:
    method: Any = None
    path: Any = None
    version: Any = None
    headers: Mapping[str, Any] | None = None
    query: Mapping[str, Any] | None = None
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Respond:
    status: int
    body: Mapping[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay_ms: int = 0
    fault: str | None = None


@dataclass(frozen=True)
class Rule:
    label: str
    index: int
    match: Match | None
    times: int | None
    respond: Respond


FILE = "file"
RUNTIME = "runtime"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    rules: tuple[Rule, ...]
    source: str  # the file it came from, or for a run-time scenario who added it
    origin: str = FILE  # FILE or RUNTIME; a reset removes the run-time ones
    # The rules as written (JSON-safe), shown by ``GET /__mock/scenarios/{name}``.
    document: tuple[Mapping[str, Any], ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Subject:
    """What a rule can look at: the routed request, with the JSON body parsed lazily."""

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    query: Mapping[str, str]
    json: Callable[[], tuple[bool, Any]]
    # Per request, like the lazily parsed body: every rule of the scenario looks at the same values.
    texts: _Texts = field(default_factory=_Texts, compare=False, repr=False)


def rule_matches(match: Match | None, subject: Subject) -> bool:
    """True when every condition of ``match`` holds (a rule without match always does)."""
    if match is None:
        return True
    texts = subject.texts
    if match.method is not None and not _text_matches(match.method, subject.method, texts, fold=True):
        return False
    if match.path is not None and not _text_matches(match.path, subject.path, texts):
        return False
    if match.version is not None and not _text_matches(match.version, subject.params.get("version"), texts):
        return False
    if match.headers and not _all_match(match.headers, subject.headers, texts):
        return False
    if match.query and not _all_match(match.query, subject.query, texts):
        return False
    if match.body is not None:
        ok, body = subject.json()
        if not ok or not subset_matches(match.body, body, texts):
            return False
    return True


def _text_matches(expected: Any, actual: str | None, texts: _Texts | None = None, fold: bool = False) -> bool:
    if actual is None:
        return False
    if isinstance(expected, Regex):
        return expected.matches_text(texts.of(actual)) if texts is not None else expected.matches(actual)
    if fold:
        return str(expected).lower() == actual.lower()
    return _literal_text(expected) == actual


def _literal_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _all_match(expected: Mapping[str, Any], actual: Mapping[str, str], texts: _Texts) -> bool:
    return all(_text_matches(v, actual.get(k), texts) for k, v in expected.items())


def subset_matches(expected: Any, actual: Any, texts: _Texts | None = None) -> bool:
    """Partial match: objects match as subsets, arrays element by element, scalars by value and type."""
    if isinstance(expected, Regex):
        if actual is None:
            return False
        return expected.matches_text(texts.of(actual)) if texts is not None else expected.matches(actual)
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and subset_matches(v, actual[k], texts) for k, v in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(subset_matches(e, a, texts) for e, a in zip(expected, actual)))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return expected == actual


# ---------------------------------------------------------------- loading


def bundled_scenarios_dir() -> Path | None:
    """The bundled scenario library, next to the bundled spec."""
    candidate = default_spec_dir().parent / "scenarios"
    return candidate if candidate.is_dir() else None


def directories_of(directories: Path | str | Iterable[Path | str] | None) -> tuple[Path, ...]:
    """One directory or several, in order, each once: the same directory named twice (the
    bundled library given by hand and kept beside) is read once, not refused as a clash."""
    if directories is None:
        return ()
    items = [directories] if isinstance(directories, (str, Path)) else list(directories)
    out: list[Path] = []
    seen: set[Path] = set()
    for item in items:
        path = Path(item)
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(path)
    return tuple(out)


def load_scenarios(directories: Path | str | Iterable[Path | str] | None, contract: Contract) -> dict[str, Scenario]:
    """Every ``*.yaml``/``*.yml`` file of one directory or several; raises LoadErrors listing
    every broken file. A name defined twice, in one directory or across two, is an error on
    the later file naming the earlier one."""
    roots = directories_of(directories)
    missing = [LoadError(root, "scenarios directory not found") for root in roots if not root.is_dir()]
    if missing:
        raise missing[0] if len(missing) == 1 else LoadErrors(missing)
    found: dict[str, Scenario] = {}
    errors: list[LoadError] = []
    checker = ScriptChecker(contract)
    for root in roots:
        for path in scenario_files(root):
            try:
                scenario = load_scenario_file(path, checker)
            except LoadError as exc:
                errors.append(exc)
                continue
            if scenario.name in found:
                errors.append(LoadError(path, _name_taken(scenario.name, found[scenario.name].source), 1))
                continue
            found[scenario.name] = scenario
    if errors:
        raise LoadErrors(errors)
    return found


def _name_taken(name: str, other: str) -> str:
    bundled = bundled_scenarios_dir()
    hint = ""
    if bundled is not None and Path(other).parent.resolve() == bundled.resolve():
        hint = " (the bundled library; --no-bundled-scenarios leaves it out)"
    return f"scenario name {name!r} is already used by {other}{hint}"


def scenario_files(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def load_scenario_file(path: Path, checker: "ScriptChecker") -> Scenario:
    """One scenario file, fully checked; LoadError names the file and line of the first problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(path, f"cannot read: {exc}") from None
    return load_scenario_text(text, path, checker, default_name=path.stem, source=str(path))


def load_scenario_text(text: str, where: Path | str, checker: "ScriptChecker", *, default_name: str | None = None,
                       name: str | None = None, source: str | None = None, origin: str = FILE,
                       as_json: bool = False) -> Scenario:
    """A scenario from the text of a file or of a request body, checked as a file is.

    ``where`` names the text in a LoadError (``file:line: message``); ``name`` is the name the
    scenario must have (a run-time one is named by its URL), ``default_name`` the one it gets
    when it names none. ``as_json`` reads the text as JSON rather than YAML; a YAML text that
    is not a file of ours (a request body) may not use anchors and aliases, which would let a
    few hundred bytes expand into a document too large to check.
    """
    if as_json:
        try:
            doc = jsoncodec.loads(text)
        except json.JSONDecodeError as exc:
            raise LoadError(where, f"invalid JSON: {exc.msg}", exc.lineno) from None
        except (ValueError, RecursionError) as exc:
            raise LoadError(where, f"invalid JSON: {exc}") from None
    else:
        try:
            if origin != FILE:
                _refuse_aliases(text, where)
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise LoadError(where, f"invalid YAML: {reason}", mark.line + 1 if mark else None) from None
        except RecursionError:
            raise LoadError(where, "invalid YAML: nested too deeply") from None
    if doc is None:
        raise LoadError(where, "the file is empty; a scenario needs at least `rules:`" if origin == FILE
                        else "the scenario is empty; a scenario needs at least `rules:`", 1)
    error = deepest_error(shipped_validator("scenario.schema.json"), doc)
    if error is not None:
        at = list(error.absolute_path)
        unknown = _unknown_keys(error)
        if unknown:  # the line of the misspelled key itself, not of the object holding it
            at.append(unknown[0])
        place = format_path(error.absolute_path) or "the document"
        raise LoadError(where, f"at {place}: {_explain(error)}", line_of(text, at, key=bool(unknown)))
    if name is not None and doc.get("name", name) != name:
        raise LoadError(where, f"at name: {doc['name']!r} is not the name this scenario is put under ({name!r}); "
                               "leave `name` out or make them the same", line_of(text, ["name"]))

    def fail(at: Sequence[str | int], message: str) -> LoadError:
        return LoadError(where, f"at {format_path(at)}: {message}", line_of(text, list(at)))

    rules = tuple(_rule(raw, i, checker, fail) for i, raw in enumerate(doc["rules"]))
    return Scenario(
        name=name or doc.get("name") or default_name or "",
        description=doc.get("description", ""),
        rules=rules,
        source=source if source is not None else str(where),
        origin=origin,
        document=tuple(_json_safe(raw) for raw in doc["rules"]),
    )


def invalid_name(name: str) -> str | None:
    """Why ``name`` cannot name a scenario (the rule a file's ``name`` follows), else None."""
    error = deepest_error(shipped_validator("scenario.schema.json"), {"name": name, "rules": []})
    return None if error is None else error.message


def _refuse_aliases(text: str, where: Path | str) -> None:
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise LoadError(where, "YAML anchors and aliases (&name, *name) are not accepted here; "
                                   "write the values out", event.start_mark.line + 1)


def _json_safe(value: Any) -> Any:
    """A rule as JSON can show it: what YAML reads as a date or a set becomes text."""
    return json.loads(json.dumps(value, default=str))


def _unknown_keys(error: Any) -> list[str]:
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return []
    known = error.schema.get("properties", {})
    return [str(key) for key in error.instance if key not in known]


def _explain(error: Any) -> str:
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = _unknown_keys(error)
        close = difflib.get_close_matches(unknown[0], known, n=1) if unknown else []
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{error.message}; {hint}allowed here: {', '.join(known)}"
    if error.validator == "required":
        return error.message
    if error.validator == "enum":
        return f"must be one of {', '.join(map(str, error.validator_value))}"
    return error.message if len(error.message) < 200 else error.message[:197] + "..."


def _rule(raw: Mapping[str, Any], index: int, checker: "ScriptChecker",
          fail: Callable[[Sequence[str | int], str], LoadError]) -> Rule:
    where: list[str | int] = ["rules", index]
    match = None
    if "match" in raw:
        m = raw["match"]
        match = Match(
            method=_compile(m.get("method"), [*where, "match", "method"], fail),
            path=_compile(m.get("path"), [*where, "match", "path"], fail),
            version=_compile(m.get("version"), [*where, "match", "version"], fail),
            headers={k.lower(): _compile(v, [*where, "match", "headers", k], fail) for k, v in m.get("headers", {}).items()} or None,
            query={k: _compile(v, [*where, "match", "query", k], fail) for k, v in m.get("query", {}).items()} or None,
            body=_compile(m["body"], [*where, "match", "body"], fail) if "body" in m else None,
        )
    r = raw["respond"]
    respond = Respond(
        status=r.get("status", 500),
        body=r.get("body"),
        headers=tuple((str(k), str(v)) for k, v in r.get("headers", {}).items()),
        delay_ms=r.get("delay_ms", 0),
        fault=r.get("fault"),
    )
    found = checker.problem(respond, match)
    if found:
        at, problem_text = found
        raise fail([*where, "respond", *at], problem_text)
    label = raw.get("name") or f"rules[{index}]"
    return Rule(label=label, index=index, match=match, times=raw.get("times"), respond=respond)


def _compile(value: Any, where: list[str | int], fail: Callable[[Sequence[str | int], str], LoadError]) -> Any:
    """Turn ``{regex: ...}`` leaves into Regex objects, refusing patterns RE2 cannot run."""
    if isinstance(value, dict):
        if set(value) == {"regex"} and isinstance(value["regex"], str):
            try:
                return Regex(value["regex"])
            except PatternRefused as exc:
                raise fail([*where, "regex"], str(exc)) from None
        return {k: _compile(v, [*where, k], fail) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile(v, [*where, i], fail) for i, v in enumerate(value)]
    return value


def unsafe_pattern(pattern: str) -> str | None:
    """Why a regex is refused (too long, or RE2 cannot compile it), else None.

    Any pattern RE2 compiles is safe to run: RE2 never backtracks, so the time a match
    takes grows with the value, never exponentially with the pattern.
    """
    try:
        Regex(pattern)
    except PatternRefused as exc:
        return str(exc)
    return None


class ScriptChecker:
    """Checks a scripted answer against the contract of every operation it could answer."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.generator = sample_generator()

    def problem(self, respond: Respond, match: Match | None) -> tuple[list[str | int], str] | None:
        """(where inside ``respond``, what is wrong), or None when the scripted answer is valid."""
        operations = _routed(self.contract.operations, match)
        if not operations:
            return [], "the rule's match (method/path) fits no operation of the contract"
        if respond.fault == "reset":
            return None
        listed = sorted({s for op in operations for s in op.responses})
        if respond.status not in listed:
            return ["status"], (f"status {respond.status} is not a status of the contract here; "
                                f"use one of {', '.join(map(str, listed))}")
        if respond.fault is not None:
            return None
        for op in operations:
            if respond.status not in op.responses:
                continue
            merged, media = scripted_body(op, respond.status, respond.body, self.generator,
                                          prefer_null=self.contract.null_when_unsaid,
                                          shape=self.contract.error_shape)
            if media == PROBLEM and not op.responses[respond.status].content_type:
                continue  # the document declares no body here: problem details say what went wrong
            errors = sorted(op.responses[respond.status].validator.iter_errors(merged),
                            key=lambda e: list(map(str, e.absolute_path)))
            if errors:
                e = errors[0]
                path = list(e.absolute_path)
                if e.validator == "additionalProperties" and isinstance(e.instance, dict):
                    extra = [k for k in e.instance if k not in e.schema.get("properties", {})]
                    path += extra[:1]
                at = ["body", *path] if respond.body and path and path[0] in respond.body else ["body"]
                field = format_path(path) or "the body"
                return at, (f"body breaks the contract's {respond.status} schema of {op.operation_id}: "
                            f"{field}: {_short_message(e)}")
        return None


def _short_message(error: Any) -> str:
    if error.validator == "additionalProperties":
        return "not a field of this response"
    return error.message if len(error.message) < 160 else error.message[:157] + "..."


def _routed(operations: Sequence[Operation], match: Match | None) -> list[Operation]:
    """The operations a rule's match can reach. For a literal path, only the one the router
    picks per method (the most specific template): ``/v1/webhooks/actions`` is never the get
    of ``/v1/webhooks/{resourceId}``."""
    fitting = [op for op in operations if _could_answer(op, match)]
    if match is None or match.path is None or isinstance(match.path, Regex):
        return fitting
    best: dict[str, int] = {}
    for op in fitting:
        best[op.method] = max(best.get(op.method, -1), op.literal_segments)
    return [op for op in fitting if op.literal_segments == best[op.method]]


def _could_answer(op: Operation, match: Match | None) -> bool:
    if match is None:
        return True
    if match.method is not None and not _text_matches(match.method, op.method, fold=True):
        return False
    if match.path is not None and not isinstance(match.path, Regex) and not op.match_path(str(match.path)):
        return False
    return True


def scripted_body(op: Operation, status: int, override: Mapping[str, Any] | None, generator: Generator,
                  request_body: Any = None, prefer_null: bool = True,
                  shape: ErrorShape = PROBLEM_DETAILS) -> tuple[Any, str | None]:
    """The body of a scripted answer and its media type: the override merged over what the
    contract would give. A success is generated from its schema; an error takes the
    contract's error shape, or for a contract without one the body the document declares
    for that status, else RFC 9457 problem details."""
    declared = op.responses.get(status)
    media = declared.content_type if declared is not None else "application/json"
    if 200 <= status < 300:
        base = response_plan(op, status, prefer_null=prefer_null).render(generator, request_body)
    elif not shape.problem_details or declared is None or not declared.content_type:
        base, media = shape.body(default_problem(op, status)), shape.media_type
    else:
        base = BodyPlan(declared.schema, prefer_null=prefer_null).render(generator)
    return (deep_merge(base, override) if override else base), media


def default_problem(op: Operation | None, status: int):
    """The contract's default error for a status; 403 names the operation's permission."""
    if status == 403:
        return problem(403, message=forbidden_message(op.permission if op else None))
    return problem(status)


def deep_merge(base: Any, override: Mapping[str, Any]) -> Any:
    if not isinstance(base, dict):
        return dict(override)
    out = dict(base)
    for k, v in override.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ---------------------------------------------------------------- run-time state


@dataclass(frozen=True)
class Choice:
    scenario: Scenario
    client: str | None  # the binding's key for per-client counters, None for server-wide


class UnknownScenario(KeyError):
    """A scenario name nobody loaded; answered as a 400, never a silent fall-through."""


class NameTaken(ValueError):
    """A run-time scenario may not take or remove a name a file defines; ``str()`` names the file."""


class ScenarioBook:
    """Loaded scenarios plus run-time choices and counters. Lives on the server's event loop.

    The scenarios are compiled here, on each replica; the run-time state (selection, bindings,
    ``times`` counters, answered counts) is the ledger's, in memory or shared on Redis. With a
    shared ledger, run-time scenarios are kept there too, as documents: a replica compiles
    them again when their version moves on, which it learns with every lookup.
    """

    def __init__(self, scenarios: Mapping[str, Scenario], default: str | None = None,
                 directory: Path | str | Iterable[Path | str] | None = None, contract: Contract | None = None,
                 on_change: Callable[[], None] | None = None, ledger: Ledger | None = None) -> None:
        self.scenarios = dict(scenarios)
        # Told after the selection, a binding or the loaded scenarios change (not at reset()).
        self.on_change = on_change
        if default is not None and default not in self.scenarios:
            raise UnknownScenario(default)
        self.default = default
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self._shared = bool(getattr(self.ledger, "shared", False))
        self._version = 0  # of the shared run-time scenarios compiled here
        self._compiled: dict[str, tuple[str, Scenario]] = {}  # their documents as compiled here
        # The directories followed (one or several), in the order they were loaded.
        self.directories = directories_of(directory)
        self.contract = contract
        self._files: dict[Path, tuple[int, int]] = {}
        for root in self.directories:
            self._files.update(_look(root) or {})
        # Files that loaded but whose name another file holds; they get in once the name is free.
        self._waiting: dict[Path, Scenario] = {}
        self._refreshing = asyncio.Lock()

    @property
    def directory(self) -> Path | None:
        """The first directory followed, or None when no directory is."""
        return self.directories[0] if self.directories else None

    # -- choosing

    def get(self, name: str) -> Scenario:
        try:
            return self.scenarios[name]
        except KeyError:
            raise UnknownScenario(name) from None

    async def choose(self, header_name: str | None, credentials: Sequence[tuple[str, str]]) -> Choice | None:
        """X-Mock-Scenario beats a client binding, which beats the server-wide scenario."""
        if header_name and not self._shared:
            return Choice(self.get(header_name), None)
        active, bound, version = await self.ledger.lookup(credentials, self.default)
        if version != self._version:
            await self._follow(version)
        if header_name:
            return Choice(self.get(header_name), None)
        for (kind, value), name in zip(credentials, bound):
            if name is not None and name in self.scenarios:
                return Choice(self.scenarios[name], client_of(kind, value))
        if active is not None and active in self.scenarios:
            return Choice(self.scenarios[active], None)
        return None

    async def answer(self, choice: Choice, subject: Subject, statuses: Collection[int] | None = None) -> Rule | None:
        """The first rule that applies, counted as used; None when no rule does.

        A rule applies when it has uses left, matches, and can answer here: it resets the
        connection, or its status is one of ``statuses`` (those of the routed operation;
        None accepts any). A rule that matches but cannot answer here is neither counted
        nor in the way: a ``times: 1`` 404 waits for an operation that lists 404, and the
        rules after it get their chance meanwhile. The use is taken in one step with the
        check that one is left, so however many requests (and replicas) race for the last
        use, one gets it.
        """
        name = choice.scenario.name
        for rule in choice.scenario.rules:
            if statuses is not None and rule.respond.fault != "reset" and rule.respond.status not in statuses:
                continue
            if rule_matches(rule.match, subject) and await self.ledger.take(name, choice.client, rule.index,
                                                                             rule.times):
                return rule
        return None

    async def refund(self, choice: Choice, rule: Rule) -> None:
        """Give back a use of a scripted success whose operation then failed (an unknown id):
        the rule did not answer, so it must not be used up."""
        await self.ledger.refund(choice.scenario.name, choice.client, rule.index)

    # -- admin

    async def select(self, name: str | None, kind: str | None = None, credential: str | None = None) -> None:
        """Set the server-wide scenario, or bind/unbind one client (kind is 'api_key' or 'token')."""
        await self.sync()
        if name is not None:
            self.get(name)
        if kind is None or credential is None:
            await self.ledger.set_active(name)
        else:
            await self.ledger.bind(kind, credential, name)
        self._changed()

    async def active(self) -> str | None:
        """The server-wide scenario now."""
        return (await self.ledger.lookup((), self.default))[0]

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    async def reset(self) -> None:
        """Back to the start-up choice, no bindings, no counters, and no run-time scenarios."""
        self.drop_runtime()
        await self.ledger.clear()

    def drop_runtime(self) -> None:
        """Forget the run-time scenarios compiled here (a shared ledger was reset as a whole)."""
        for name in [s.name for s in self.scenarios.values() if s.origin == RUNTIME]:
            del self.scenarios[name]

    async def sync(self) -> None:
        """Compile the shared run-time scenarios again if another replica changed them."""
        if self._shared:
            version = (await self.ledger.lookup((), self.default))[2]
            if version != self._version:
                await self._follow(version)

    async def _follow(self, version: int) -> None:
        version, documents = await self.ledger.runtime()
        checker = ScriptChecker(self.contract) if self.contract is not None and documents else None
        fresh: dict[str, Scenario] = {}
        for name, text in documents.items():
            held = self.scenarios.get(name)
            if held is not None and held.origin != RUNTIME:
                continue  # a file of this replica holds the name: the file is the truth here
            known = self._compiled.get(name)
            if known is not None and known[0] == text:  # unchanged (or put here): not compiled again
                fresh[name] = known[1]
                continue
            try:
                doc = jsoncodec.loads(text)
                fresh[name] = load_scenario_text(jsoncodec.dumps(doc["scenario"]).decode(), doc["source"], checker,
                                                 name=name, origin=RUNTIME, source=doc["source"], as_json=True)
            except (LoadError, ValueError, KeyError, TypeError) as exc:
                log.warning("shared run-time scenario %s not loaded here: %s", name, exc)
        self.drop_runtime()
        self.scenarios.update(fresh)
        self._compiled = {name: (documents[name], scenario) for name, scenario in fresh.items()}
        self._version = version

    # -- run-time scenarios

    async def put(self, scenario: Scenario, keep_counts: bool = False) -> bool:
        """Add or replace a run-time scenario, in effect from the next request; True when it
        replaced one. A name a file defines is NameTaken (the file is the truth for it).

        A replaced scenario's counters start again, as a reloaded file's do; ``keep_counts``
        keeps them when the caller only appended rules (the fixture's ``when()``), so the
        rules already there keep their uses.
        """
        await self.sync()
        held = self.scenarios.get(scenario.name)
        if held is not None and held.origin != RUNTIME:
            raise NameTaken(held.source)
        self.scenarios[scenario.name] = scenario
        if self._shared:
            document = {"description": scenario.description, "rules": list(scenario.document)}
            text = jsoncodec.dumps({"scenario": document, "source": scenario.source}).decode()
            self._compiled[scenario.name] = (text, scenario)
            await self.ledger.put_scenario(scenario.name, text)
        if not keep_counts:
            await self.ledger.restart(scenario.name)
        self._changed()
        return held is not None

    async def remove(self, name: str) -> Scenario:
        """Delete a run-time scenario and whatever chose it; UnknownScenario or NameTaken (a file's)."""
        await self.sync()
        scenario = self.get(name)
        if scenario.origin != RUNTIME:
            raise NameTaken(scenario.source)
        del self.scenarios[name]
        await self.ledger.drop_scenario(name)
        await self._forget(name, level=logging.INFO)
        self._changed()
        return scenario

    async def answered(self, name: str) -> list[int]:
        """How often each rule of a scenario answered since the last reset (or since it was
        loaded or put), whoever chose it."""
        await self.sync()
        rules = self.get(name).rules
        answered = await self.ledger.answered(name)
        return [answered.get(i, 0) for i in range(len(rules))]

    async def view(self, name: str) -> dict[str, Any]:
        """One scenario as the admin API shows it: where it came from and each rule with its uses."""
        answered = await self.answered(name)
        scenario = self.get(name)
        rules = []
        for rule in scenario.rules:
            written = scenario.document[rule.index] if rule.index < len(scenario.document) else {}
            rules.append({"name": rule.label, "times": rule.times, "answered": answered[rule.index],
                          "match": written.get("match"), "respond": written.get("respond")})
        return {"name": scenario.name, "description": scenario.description, "origin": scenario.origin,
                "source": scenario.source, "rules": rules}

    async def state(self) -> dict[str, Any]:
        return {
            "active": await self.active(),
            "default": self.default,
            "bindings": [{"name": name, kind: shown} for kind, shown, name in await self.ledger.bindings()],
        }

    async def listing(self) -> list[dict[str, Any]]:
        await self.sync()
        return [
            {"name": s.name, "description": s.description, "rules": len(s.rules), "source": s.source,
             "origin": s.origin}
            for s in sorted(self.scenarios.values(), key=lambda s: s.name)
        ]

    async def counters(self) -> dict[tuple[str, str | None], dict[int, int]]:
        """``times`` counters, per (scenario, client): rule index -> uses."""
        return await self.ledger.counters()

    # -- hot reload

    async def refresh(self) -> list[str]:
        """Follow the directories: load new and changed files, drop deleted ones; returns the names (re)loaded.

        Listing, reading and checking files happens in a worker thread, so a large or slow
        file never holds up requests; the result is applied here, on the loop.
        A broken edit is logged and the last good version kept.
        """
        if not self.directories or self.contract is None:
            return []
        async with self._refreshing:  # two looks at once would both apply the same changes
            look = await asyncio.to_thread(_look_again, self.directories, self.contract, dict(self._files))
            return await self._apply(look)

    async def _apply(self, look: _Look) -> list[str]:
        gone = [path for path in self._files if path not in look.files]
        self._files = look.files
        dropped: set[str] = set()
        for path in gone:
            self._waiting.pop(path, None)
            name = self._name_from(path)
            if name is not None:
                del self.scenarios[name]
                dropped.add(name)
                log.info("scenario %s dropped: %s was deleted", name, path)
        reloaded: list[str] = []
        for path, result in look.read:
            self._waiting.pop(path, None)
            if isinstance(result, LoadError):
                log.warning("scenario not reloaded, keeping the last good version: %s", result)
                continue
            old = self._name_from(path)
            if old is not None and old != result.name:  # the file now names another scenario
                del self.scenarios[old]
                dropped.add(old)
            clash = self.scenarios.get(result.name)
            if clash is not None and (clash.origin != FILE or Path(clash.source) != path):
                log.warning("scenario not reloaded: %s: name %r is already used by %s", path, result.name, clash.source)
                self._waiting[path] = result
                continue
            self.scenarios[result.name] = result
            reloaded.append(result.name)
            log.info("scenario %s reloaded from %s", result.name, path)
        for path, scenario in sorted(self._waiting.items()):
            if scenario.name not in self.scenarios:
                del self._waiting[path]
                self.scenarios[scenario.name] = scenario
                reloaded.append(scenario.name)
                log.info("scenario %s loaded from %s now that the name is free", scenario.name, path)
        for name in sorted(dropped - set(self.scenarios)):
            await self._forget(name)
        for name in reloaded:
            await self.ledger.restart(name)
        if reloaded or dropped:
            self._changed()
        return reloaded

    def _name_from(self, path: Path) -> str | None:
        source = str(path)
        return next((s.name for s in self.scenarios.values() if s.origin == FILE and s.source == source), None)

    async def _forget(self, name: str, level: int = logging.WARNING) -> None:
        """Whatever still points at a scenario that is gone: counters, the server-wide choice, bindings."""
        was_active = await self.active() == name
        _, unbound = await self.ledger.forget(name)
        was = ["the server-wide scenario"] if was_active else []
        if self.default == name:
            self.default = None  # reset() must not bring back a scenario that no longer exists
            was.append("the start-up scenario")
        if unbound:
            was.append(f"bound to {unbound} client(s)")
        if was:  # a warning when a file went away under the server; news when a client deleted it
            log.log(level, "scenario %s is gone, so it is no longer %s", name, " and ".join(was))


@dataclass(frozen=True)
class _Look:
    """What the worker thread found in the scenario directory, as plain values."""

    files: dict[Path, tuple[int, int]]  # every scenario file, with what tells an edit: (mtime, size)
    read: tuple[tuple[Path, Scenario | LoadError], ...]  # the files new or changed since the last look


def _look(directory: Path) -> dict[Path, tuple[int, int]] | None:
    """Every scenario file with its (mtime, size); None when the directory cannot be listed."""
    try:
        paths = scenario_files(directory)
    except OSError:
        return None
    out = {}
    for path in paths:
        try:
            st = path.stat()
        except OSError:  # deleted between listing and stat: the next look sees it gone
            continue
        out[path] = (st.st_mtime_ns, st.st_size)
    return out


def _look_again(directories: Sequence[Path], contract: Contract, known: Mapping[Path, tuple[int, int]]) -> _Look:
    """Runs in a worker thread: touches no state of the book, returns what it found."""
    files: dict[Path, tuple[int, int]] = {}
    for root in directories:
        found = _look(root)
        if found is None:
            # A directory that cannot be listed (gone, or being replaced) says nothing about its files:
            # dropping every scenario for it would be worse than keeping them until it is back.
            log.debug("scenario directory %s cannot be listed; its scenarios are kept as they are", root)
            found = {path: seen for path, seen in known.items() if path.parent == root}
        files.update(found)
    changed = [path for path, seen in files.items() if known.get(path) != seen]
    checker = ScriptChecker(contract) if changed else None
    read: list[tuple[Path, Scenario | LoadError]] = []
    for path in changed:
        try:
            read.append((path, load_scenario_file(path, checker)))  # type: ignore[arg-type]
        except LoadError as exc:
            read.append((path, exc))
    return _Look(files, tuple(read))
