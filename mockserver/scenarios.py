"""YAML scenarios: load and check them, then pick the scripted answer for a request.

A scenario file is checked three ways when it loads, so a mistake never becomes a
surprise on the first request: against the shipped scenario schema, its regexes for
catastrophic backtracking, and every scripted body against the contract (a body
merged over the generated one must still be valid for that status).

:class:`ScenarioBook` holds the loaded scenarios and everything that changes at run
time: the server-wide choice, per-client bindings and ``times`` counters.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import re._constants as sre_constants
import re._parser as sre_parse
import yaml

from .contract import Contract, Operation, deepest_error, shipped_validator
from .errors import LoadError, LoadErrors, default_for, format_path, forbidden_message, line_of, problem
from .generation import BodyPlan, Generator, sample_generator

log = logging.getLogger("mockserver.scenarios")

_MAX_PATTERN = 1000


class Regex:
    """A ``{regex: ...}`` matcher; the whole text of the value must match."""

    __slots__ = ("pattern", "compiled")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.compiled = re.compile(pattern)

    def matches(self, value: Any) -> bool:
        text = value if isinstance(value, str) else json.dumps(value)
        return self.compiled.fullmatch(text) is not None


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


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    rules: tuple[Rule, ...]
    source: str


@dataclass(frozen=True)
class Subject:
    """What a rule can look at: the routed request, with the JSON body parsed lazily."""

    method: str
    path: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    query: Mapping[str, str]
    json: Callable[[], tuple[bool, Any]]


def rule_matches(match: Match | None, subject: Subject) -> bool:
    """True when every condition of ``match`` holds (a rule without match always does)."""
    if match is None:
        return True
    if match.method is not None and not _text_matches(match.method, subject.method, fold=True):
        return False
    if match.path is not None and not _text_matches(match.path, subject.path):
        return False
    if match.version is not None and not _text_matches(match.version, subject.params.get("version")):
        return False
    if match.headers and not _all_match(match.headers, subject.headers):
        return False
    if match.query and not _all_match(match.query, subject.query):
        return False
    if match.body is not None:
        ok, body = subject.json()
        if not ok or not subset_matches(match.body, body):
            return False
    return True


def _text_matches(expected: Any, actual: str | None, fold: bool = False) -> bool:
    if actual is None:
        return False
    if isinstance(expected, Regex):
        return expected.matches(actual)
    if fold:
        return str(expected).lower() == actual.lower()
    return _literal_text(expected) == actual


def _literal_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _all_match(expected: Mapping[str, Any], actual: Mapping[str, str]) -> bool:
    return all(_text_matches(v, actual.get(k)) for k, v in expected.items())


def subset_matches(expected: Any, actual: Any) -> bool:
    """Partial match: objects match as subsets, arrays element by element, scalars by value and type."""
    if isinstance(expected, Regex):
        return actual is not None and expected.matches(actual)
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and subset_matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(subset_matches(e, a) for e, a in zip(expected, actual)))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return expected == actual


def fingerprint(secret: str) -> str:
    """A stable, non-reversible name for a credential, for the admin API and logs."""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:12]


# ---------------------------------------------------------------- loading


def load_scenarios(directory: Path | str | None, contract: Contract) -> dict[str, Scenario]:
    """Every ``*.yaml``/``*.yml`` file of a directory; raises LoadErrors listing every broken file."""
    if directory is None:
        return {}
    root = Path(directory)
    if not root.is_dir():
        raise LoadError(root, "scenarios directory not found")
    found: dict[str, Scenario] = {}
    errors: list[LoadError] = []
    checker = ScriptChecker(contract)
    for path in scenario_files(root):
        try:
            scenario = load_scenario_file(path, checker)
        except LoadError as exc:
            errors.append(exc)
            continue
        if scenario.name in found:
            errors.append(LoadError(path, f"scenario name {scenario.name!r} is already used by {found[scenario.name].source}", 1))
            continue
        found[scenario.name] = scenario
    if errors:
        raise LoadErrors(errors)
    return found


def scenario_files(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml"))


def load_scenario_file(path: Path, checker: "ScriptChecker") -> Scenario:
    """One scenario file, fully checked; LoadError names the file and line of the first problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(path, f"cannot read: {exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LoadError(path, f"invalid YAML: {reason}", mark.line + 1 if mark else None) from None
    if doc is None:
        raise LoadError(path, "the file is empty; a scenario needs at least `rules:`", 1)
    error = deepest_error(shipped_validator("scenario.schema.json"), doc)
    if error is not None:
        where = format_path(error.absolute_path) or "the document"
        raise LoadError(path, f"at {where}: {_explain(error)}", line_of(text, list(error.absolute_path)))

    def fail(where: Sequence[str | int], message: str) -> LoadError:
        return LoadError(path, f"at {format_path(where)}: {message}", line_of(text, list(where)))

    rules = tuple(_rule(raw, i, checker, fail) for i, raw in enumerate(doc["rules"]))
    return Scenario(
        name=doc.get("name") or path.stem,
        description=doc.get("description", ""),
        rules=rules,
        source=str(path),
    )


def _explain(error: Any) -> str:
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"{error.message}; allowed here: {allowed}"
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
    """Turn ``{regex: ...}`` leaves into Regex objects, refusing patterns that can backtrack forever."""
    if isinstance(value, dict):
        if set(value) == {"regex"} and isinstance(value["regex"], str):
            pattern = value["regex"]
            reason = unsafe_pattern(pattern)
            if reason:
                raise fail([*where, "regex"], reason)
            return Regex(pattern)
        return {k: _compile(v, [*where, k], fail) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile(v, [*where, i], fail) for i, v in enumerate(value)]
    return value


def unsafe_pattern(pattern: str) -> str | None:
    """Why a regex is refused (invalid, too long, or a nested quantifier), else None.

    Python's ``re`` cannot be interrupted, so a pattern such as ``(a+)+`` could stall
    the whole server on one request. Nested unbounded repetition is what makes
    backtracking explode, so it is refused when the scenario loads.
    """
    if len(pattern) > _MAX_PATTERN:
        return f"regex longer than {_MAX_PATTERN} characters"
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        return f"invalid regex: {exc}"
    if _nested_repeat(parsed, inside=False):
        return "regex has a nested quantifier (such as (a+)+), which can backtrack without end; rewrite it without one"
    return None


_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None)}


def _nested_repeat(items: Iterable[Any], inside: bool) -> bool:
    for op, av in items:
        if op in _REPEATS:
            low, high, sub = av
            repeats = high == sre_constants.MAXREPEAT or high > 1
            if inside and repeats:
                return True
            if _nested_repeat(sub, inside or repeats):
                return True
        elif op == sre_constants.SUBPATTERN:
            if _nested_repeat(av[-1], inside):
                return True
        elif op == sre_constants.BRANCH:
            if any(_nested_repeat(branch, inside) for branch in av[1]):
                return True
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            if _nested_repeat(av[1], inside):
                return True
    return False


class ScriptChecker:
    """Checks a scripted answer against the contract of every operation it could answer."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.generator = sample_generator()

    def problem(self, respond: Respond, match: Match | None) -> tuple[list[str | int], str] | None:
        """(where inside ``respond``, what is wrong), or None when the scripted answer is valid."""
        operations = [op for op in self.contract.operations if _could_answer(op, match)]
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
            merged = scripted_body(op, respond.status, respond.body, self.generator)
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


def _could_answer(op: Operation, match: Match | None) -> bool:
    if match is None:
        return True
    if match.method is not None and not _text_matches(match.method, op.method, fold=True):
        return False
    if match.path is not None and not isinstance(match.path, Regex) and not op.match_path(str(match.path)):
        return False
    return True


def scripted_body(op: Operation, status: int, override: Mapping[str, Any] | None,
                  generator: Generator, request_body: Any = None) -> Any:
    """The body of a scripted answer: the override merged over what the contract would give."""
    if 200 <= status < 300:
        base = BodyPlan(op.responses[status].schema, op.request_body.schema if op.request_body else None).render(
            generator, request_body)
    else:
        base = default_problem(op, status).body()
    return deep_merge(base, override) if override else base


def default_problem(op: Operation | None, status: int):
    """The contract's default error for a status; 403 names the operation's permission."""
    if status == 403:
        return problem(403, message=forbidden_message(op.permission if op else None))
    return problem(status, *default_for(status)[1:])


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


class ScenarioBook:
    """Loaded scenarios plus run-time choices and counters. Lives on the server's event loop."""

    def __init__(self, scenarios: Mapping[str, Scenario], default: str | None = None,
                 directory: Path | None = None, contract: Contract | None = None) -> None:
        self.scenarios = dict(scenarios)
        if default is not None and default not in self.scenarios:
            raise UnknownScenario(default)
        self.default = default
        self.active = default
        self.bindings: dict[tuple[str, str], str] = {}
        self.counters: dict[tuple[str, str | None], dict[int, int]] = {}
        self.directory = directory
        self.contract = contract
        self._mtimes = self._scan() if directory else {}

    # -- choosing

    def get(self, name: str) -> Scenario:
        try:
            return self.scenarios[name]
        except KeyError:
            raise UnknownScenario(name) from None

    def choose(self, header_name: str | None, credentials: Iterable[tuple[str, str]]) -> Choice | None:
        """X-Mock-Scenario beats a client binding, which beats the server-wide scenario."""
        if header_name:
            return Choice(self.get(header_name), None)
        for kind, value in credentials:
            bound = self.bindings.get((kind, value))
            if bound is not None and bound in self.scenarios:
                return Choice(self.scenarios[bound], f"{kind}:{fingerprint(value)}")
        if self.active is not None and self.active in self.scenarios:
            return Choice(self.scenarios[self.active], None)
        return None

    def answer(self, choice: Choice, subject: Subject) -> Rule | None:
        """The first rule that matches and still has uses left; counts the use."""
        counts = self.counters.setdefault((choice.scenario.name, choice.client), {})
        for rule in choice.scenario.rules:
            if rule.times is not None and counts.get(rule.index, 0) >= rule.times:
                continue
            if rule_matches(rule.match, subject):
                counts[rule.index] = counts.get(rule.index, 0) + 1
                return rule
        return None

    # -- admin

    def select(self, name: str | None, kind: str | None = None, credential: str | None = None) -> None:
        """Set the server-wide scenario, or bind/unbind one client (kind is 'api_key' or 'token')."""
        if name is not None:
            self.get(name)
        if kind is None or credential is None:
            self.active = name
            return
        key = (kind, credential)
        if name is None:
            self.bindings.pop(key, None)
        else:
            self.bindings[key] = name
        self.counters = {k: v for k, v in self.counters.items() if k[1] != f"{kind}:{fingerprint(credential)}"}

    def reset(self) -> None:
        self.active = self.default
        self.bindings.clear()
        self.counters.clear()

    def state(self) -> dict[str, Any]:
        return {
            "active": self.active,
            "default": self.default,
            "bindings": [
                {"name": name, kind: fingerprint(value)} for (kind, value), name in sorted(self.bindings.items())
            ],
        }

    def listing(self) -> list[dict[str, Any]]:
        return [
            {"name": s.name, "description": s.description, "rules": len(s.rules), "source": s.source}
            for s in sorted(self.scenarios.values(), key=lambda s: s.name)
        ]

    # -- hot reload

    def _scan(self) -> dict[Path, float]:
        if self.directory is None or not self.directory.is_dir():
            return {}
        out = {}
        for path in scenario_files(self.directory):
            try:
                out[path] = path.stat().st_mtime_ns
            except OSError:
                continue
        return out

    def refresh(self) -> list[str]:
        """Reload changed scenario files; a broken edit is logged and the last good version kept."""
        if self.directory is None or self.contract is None:
            return []
        now = self._scan()
        changed = [p for p, m in now.items() if self._mtimes.get(p) != m]
        self._mtimes = now
        reloaded = []
        checker = ScriptChecker(self.contract) if changed else None
        for path in changed:
            try:
                scenario = load_scenario_file(path, checker)  # type: ignore[arg-type]
            except LoadError as exc:
                log.warning("scenario not reloaded, keeping the last good version: %s", exc)
                continue
            clash = self.scenarios.get(scenario.name)
            if clash is not None and Path(clash.source) != path:
                log.warning("scenario not reloaded: %s: name %r is already used by %s", path, scenario.name, clash.source)
                continue
            self.scenarios[scenario.name] = scenario
            self.counters = {k: v for k, v in self.counters.items() if k[0] != scenario.name}
            reloaded.append(scenario.name)
            log.info("scenario %s reloaded from %s", scenario.name, path)
        return reloaded
