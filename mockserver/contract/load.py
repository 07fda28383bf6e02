"""Read OpenAPI 3.0 / 3.1 documents, follow their ``$ref``s across files and check them.

This is the first stage of the contract: files in, checked data and a ``referencing``
registry out. Nothing here interprets operations; that is the compiler's job.

Each root document is checked in this order, and the first problem found is its error:

1. it parses (JSON or YAML) and is a mapping;
2. ``openapi`` is 3.0.x or 3.1.x;
3. it is valid against the official OpenAPI JSON Schema that openapi-spec-validator ships
   (read from the installed package, never copied), with jsonschema-rs when it is
   installed (about a millisecond for a 27-operation document) and jsonschema otherwise;
4. every ``$ref`` it reaches resolves, in the document or in a sibling file (read on the way);
   remote (http/https) references are refused rather than fetched;
5. with ``full_check``, openapi-spec-validator itself runs over the document: the reference,
   adding the checks a JSON Schema cannot express (unique operationIds, path parameters,
   schemas valid in their dialect, defaults valid against their schema). It takes seconds on
   a large document, so ``mockserver check`` asks for it and ``serve`` does not.

Every problem is one :class:`LoadError` line, ``file:line: what is wrong``, at the line of the
offending node (its parent when the node is missing). Several roots are checked
independently and every broken file is reported at once through :class:`LoadErrors`.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import deque
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from importlib import resources
from importlib.util import find_spec
from os.path import normpath
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence
from urllib.parse import unquote, urldefrag, urljoin, urlsplit
from urllib.request import url2pathname

import orjson
import yaml
from referencing import Registry, Specification
from referencing.jsonschema import DRAFT4, DRAFT202012

from ..errors import LoadError, LoadErrors, format_path, line_of

try:  # the fast path; jsonschema gives the same answers, only slower (seconds on a big document)
    import jsonschema_rs
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    jsonschema_rs = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

__all__ = ["Loaded", "Source", "load_documents", "read_document"]

_VERSION = re.compile(r"^3\.(0|1)\.\d+(-.+)?$")
_GIVE = "give an OpenAPI 3.0 or 3.1 document"

# Reference resolution for later stages. 3.1 schemas are JSON Schema 2020-12. 3.0 has no
# `$id`, and its schema dialect is Draft 4 based, whose `$ref` rules (siblings ignored) match
# 3.0's; JSON pointers into an OpenAPI document resolve the same under either.
_SPECIFICATIONS: Mapping[str, Specification[Any]] = {"3.0": DRAFT4, "3.1": DRAFT202012}

# Where a `$ref` cannot be: values that are data (examples, defaults, enums) and extensions.
_DATA_KEYS = frozenset({"example", "examples", "default", "enum", "const", "value"})
# Maps whose keys are names chosen by the author, so a key there is never a keyword:
# `responses: {default: ...}` or `properties: {example: ...}` still hold references.
_NAME_MAPS = frozenset({
    "properties", "patternProperties", "$defs", "definitions", "dependentSchemas",
    "paths", "webhooks", "responses", "content", "headers", "encoding", "callbacks", "links",
    "variables", "schemas", "parameters", "examples", "requestBodies", "securitySchemes",
    "pathItems",
})


@dataclass(frozen=True)
class Source:
    """One file as read: where it is, its text (for error lines) and its parsed data."""

    path: Path
    text: str
    data: Any

    @cached_property  # asked once per $ref; resolving the path each time would dominate the walk
    def uri(self) -> str:
        """The URI the registry knows this file by, and that relative ``$ref``s start from."""
        return _uri(self.path)


@dataclass(frozen=True)
class Loaded:
    """The checked root documents, every file they reach, and a registry holding all of them."""

    roots: tuple[Source, ...]
    files: Mapping[str, Source]  # by URI: the roots and every sibling file a $ref reached
    registry: Registry[Any]

    def version(self, root: Source) -> str:
        """``"3.0"`` or ``"3.1"``: which dialect a root document's schemas speak."""
        return str(root.data["openapi"])[:3]


def read_document(path: Path) -> Source:
    """Read one root document: JSON or YAML, and a mapping. Raises :class:`LoadError`."""
    source = _read(path)
    if source.data is None:
        raise LoadError(path, "the file is empty; an OpenAPI document is a mapping", 1)
    if not isinstance(source.data, dict):
        raise LoadError(path, f"an OpenAPI document is a mapping, not {_kind(source.data)}", 1)
    return source


def load_documents(paths: Sequence[Path], *, full_check: bool) -> Loaded:
    """Read and check every root document and the files they refer to.

    ``full_check`` adds openapi-spec-validator's own pass (``mockserver check``); without it
    the structure is checked against the official JSON Schema only (``serve``: fast start).
    Raises :class:`LoadErrors` naming every broken file.
    """
    loader = _Loader()
    roots: list[Source] = []
    errors: list[LoadError] = []
    for path in paths:
        try:
            root = read_document(Path(path))
            loader.add(root)
            loader.check(root, full_check)
            roots.append(root)
        except LoadError as exc:
            if str(exc) not in {str(e) for e in errors}:  # a shared sibling breaks once
                errors.append(exc)
    if errors:
        raise LoadErrors(errors)
    return Loaded(tuple(roots), MappingProxyType(dict(loader.files)), loader.registry())


# ---------------------------------------------------------------------------- reading


def _build_yaml_loader() -> type:
    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class JsonYamlLoader(base):  # type: ignore[misc]
        """YAML that means the same as JSON: string keys, no timestamps, no Python types.

        Keys stay the text written (`200:` is "200", `on:` stays "on"), which is also what
        ``line_of`` matches against; a date stays the string it looks like, as in JSON.
        """

        yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
            for first, resolvers in base.yaml_implicit_resolvers.items()
        }

        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
            written: set[str] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value != "<<":
                    if key_node.value in written:  # YAML forbids it; PyYAML would keep the last silently
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key_node.value!r}", key_node.start_mark)
                    written.add(key_node.value)
            self.flatten_mapping(node)
            mapping: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise yaml.constructor.ConstructorError(
                        None, None, "a key must be a plain string", key_node.start_mark)
                mapping[key_node.value] = self.construct_object(value_node, deep=deep)
            return mapping

    def refuse(loader: Any, node: yaml.Node) -> None:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.tag} has no JSON equivalent", node.start_mark)

    for tag in ("binary", "set", "omap", "pairs"):
        JsonYamlLoader.add_constructor(f"tag:yaml.org,2002:{tag}", refuse)
    return JsonYamlLoader


_YamlLoader = _build_yaml_loader()


def _read(path: Path) -> Source:
    """Any JSON or YAML file (a sibling may hold a list or a scalar). Raises LoadError."""
    try:
        text = _read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(path, f"cannot read: {_why_unreadable(exc)}") from None
    return Source(path, text, _parse(path, text))


def _read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8-sig")  # a BOM is not part of the document


def _why_unreadable(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"not UTF-8 text ({exc})"


def _parse(path: Path, text: str) -> Any:
    # JSON is YAML, but orjson reads a big JSON document ~100x faster than PyYAML and its
    # errors name JSON's rules; content that looks like JSON in a .yaml file gets it too.
    if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("{", "["):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if path.suffix.lower() == ".json":
                raise LoadError(path, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    try:
        return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or "malformed"
        if exc.context and exc.context_mark is not None:
            reason += f" ({exc.context} on line {exc.context_mark.line + 1})"
        # "unexpected end of stream" is marked after the last newline: name the last line instead
        last = max(1, len(text.splitlines()))
        raise LoadError(path, f"invalid YAML: {reason}", min(mark.line + 1, last) if mark else None) from None
    except yaml.YAMLError as exc:
        raise LoadError(path, f"invalid YAML: {exc}") from None


def _uri(path: Path) -> str:
    return path.resolve().as_uri()  # the same base the compiler resolves against


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------- checking


class _Loader:
    """Every file read so far, by URI, and the checks that need them."""

    def __init__(self) -> None:
        self.files: dict[str, Source] = {}
        self.version: dict[str, str] = {}  # URI -> "3.0" / "3.1" of the first root reaching it
        self.walked: dict[str, set[tuple[Any, ...]]] = {}
        self.targets: dict[tuple[str, str], tuple[str, tuple[Any, ...]]] = {}

    def add(self, root: Source) -> None:
        self.files.setdefault(root.uri, root)

    def registry(self) -> Registry[Any]:
        return Registry().with_resources(
            (uri, _SPECIFICATIONS[self.version.get(uri, "3.1")].create_resource(source.data))
            for uri, source in self.files.items()
        )

    def check(self, root: Source, full_check: bool) -> None:
        minor = _check_version(root)
        self.version[root.uri] = minor  # a root speaks its own version, whoever reached it first
        _check_structure(root, minor)
        self.walk(root, minor)
        if full_check:
            _FullCheck(self, root, minor).run()

    # -- $refs

    def walk(self, root: Source, minor: str) -> None:
        """Resolve every $ref the root reaches, once; subtrees of sibling files are walked
        when a $ref first lands in them, so cycles end and unused parts are not required."""
        queue: deque[tuple[str, tuple[Any, ...]]] = deque([(root.uri, ())])
        while queue:
            uri, start = queue.popleft()
            walked = self.walked.setdefault(uri, set())
            if any(start[:i] in walked for i in range(len(start) + 1)):
                continue
            walked.add(start)
            self.version.setdefault(uri, minor)
            source = self.files[uri]
            for where, ref in _refs(_at(source.data, start), start):
                if not isinstance(ref, str):
                    raise _error(source, (*where, "$ref"), f"$ref must be a string, not {_kind(ref)}")
                queue.append(self.target(source, ref, where))

    def target(self, source: Source, ref: str, where: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
        """(URI, JSON path) a $ref written in ``source`` lands on; LoadError at the $ref if none."""
        key = (source.uri, ref)
        found = self.targets.get(key)
        if found is None:
            try:
                found = self.targets[key] = self._resolve(source, ref)
            except _Unresolved as exc:
                raise _error(source, (*where, "$ref"), f"$ref {ref!r} does not resolve: {exc}") from None
        return found

    def _resolve(self, source: Source, ref: str) -> tuple[str, tuple[Any, ...]]:
        scheme = urlsplit(ref).scheme
        if scheme in ("http", "https"):
            raise _Unresolved("remote references are not fetched; save the file beside this one "
                              "and refer to it by a relative path")
        if scheme not in ("", "file"):
            raise _Unresolved(f"{scheme}: references are not supported; use a relative file path")
        address, fragment = urldefrag(ref)
        uri = urljoin(source.uri, address) if address else source.uri
        target = self.files.get(uri) or self._sibling(source, address, uri)
        pointer = unquote(fragment)
        if pointer and not pointer.startswith("/"):
            raise _Unresolved("only JSON pointers (#/components/...) are supported, not anchors")
        path: list[Any] = []
        node = target.data
        for segment in pointer.split("/")[1:] if pointer else ():
            segment = segment.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and segment in node:
                node = node[segment]
                path.append(segment)
            elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
                node = node[int(segment)]
                path.append(int(segment))
            else:
                inside = f"{address}{_pointer(path) if path else ''}" or "the document"
                raise _Unresolved(f"no {segment!r} in {inside}")
        return uri, tuple(path)

    def _sibling(self, source: Source, address: str, uri: str) -> Source:
        path = Path(url2pathname(urlsplit(uri).path))
        written = Path(normpath(source.path.parent / url2pathname(address)))
        if not urlsplit(address).scheme and written.resolve() == path.resolve():
            path = written  # errors name the file as the user's paths spell it
        try:
            text = _read_text(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise _Unresolved(_why_unreadable(exc)) from None
        sibling = self.files[uri] = Source(path, text, _parse(path, text))  # a parse error is the sibling's own
        return sibling


class _Unresolved(Exception):
    """Why one $ref does not resolve; becomes a LoadError at the $ref's line."""


def _refs(node: Any, start: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path of the object holding it, value) for every $ref under ``node``, in document order.

    Iterative, because a deep document must not hit the recursion limit. Data values and
    extensions are skipped: a `$ref` inside an example is an example, not a reference.
    """
    stack: list[tuple[Any, tuple[Any, ...], bool]] = [(node, start, False)]
    while stack:
        node, path, names = stack.pop()
        children: list[tuple[Any, tuple[Any, ...], bool]] = []
        if isinstance(node, dict):
            if not names and "$ref" in node:
                yield path, node["$ref"]
            for key, value in node.items():
                if names:
                    children.append((value, (*path, key), False))
                elif key == "$ref" or key.startswith("x-"):
                    continue
                elif key in _DATA_KEYS and not (key == "examples" and isinstance(value, dict)):
                    continue
                else:
                    children.append((value, (*path, key), key in _NAME_MAPS and isinstance(value, dict)))
        elif isinstance(node, list):
            children = [(value, (*path, i), False) for i, value in enumerate(node)]
        stack.extend(reversed(children))


def _at(data: Any, path: Sequence[Any]) -> Any:
    for step in path:
        data = data[step]
    return data


def _pointer(path: Sequence[Any]) -> str:
    return "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _error(source: Source, path: Sequence[Any], message: str) -> LoadError:
    return LoadError(source.path, message, line_of(source.text, list(path)))


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


# -- version


def _check_version(root: Source) -> str:
    data = root.data
    if "openapi" not in data:
        if "swagger" in data:
            raise _error(root, ("swagger",), f"openapi {data['swagger']} is not supported; {_GIVE}")
        raise _error(root, (), f"not an OpenAPI document: it has no 'openapi' key; {_GIVE}")
    version = data["openapi"]
    if not isinstance(version, str):
        raise _error(root, ("openapi",),
                     f"openapi must be a string such as \"3.1.0\", not {version!r} (quote it)")
    match = _VERSION.match(version)
    if match is None:
        raise _error(root, ("openapi",), f"openapi {version} is not supported; {_GIVE}")
    return f"3.{match.group(1)}"


# -- structure: the official JSON Schema


@lru_cache(maxsize=None)
def _official_schema(minor: str) -> dict[str, Any]:
    """The OpenAPI JSON Schema openapi-spec-validator ships: one source of truth for both checks.

    Found with ``find_spec``, which does not import the package: importing it costs half a
    second (pydantic settings, every validator), all of it wasted on ``serve``.
    """
    spec = find_spec("openapi_spec_validator")
    locations = list(spec.submodule_search_locations or ()) if spec else []
    relative = ("resources", "schemas", f"v{minor}", "schema.json")
    if locations and Path(locations[0], *relative).is_file():
        text = Path(locations[0], *relative).read_text(encoding="utf-8")
    else:  # a zipped install: let importlib read it, import and all
        text = resources.files("openapi_spec_validator").joinpath(*relative).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@lru_cache(maxsize=None)
def _rs_validator(minor: str) -> Any:
    # Formats are not asserted: they are annotations in 2020-12, openapi-spec-validator's
    # jsonschema backend ignores them too, and a `uri` in `termsOfService` must not stop a mock.
    return jsonschema_rs.validator_for(_official_schema(minor), validate_formats=False)


@lru_cache(maxsize=None)
def _py_validator(minor: str) -> Any:
    from jsonschema.validators import validator_for

    schema = _official_schema(minor)
    return validator_for(schema)(schema)


@dataclass(frozen=True)
class _Problem:
    """One schema violation, the same shape whichever validator found it."""

    path: tuple[Any, ...]
    keyword: str
    message: str  # the validator's own words, for keywords without a message of ours
    missing: str | None = None  # `required`: the key that is missing
    unexpected: tuple[str, ...] = ()  # `additionalProperties` / `unevaluatedProperties`
    allowed: tuple[str, ...] = ()  # the keys the schema names there, for "did you mean"
    patterns: tuple[str, ...] = ()  # and the patterns other keys must match
    options: tuple[Any, ...] = ()  # `enum` / `const`: the values allowed
    types: tuple[str, ...] = ()  # `type`: the types allowed
    branches: tuple[tuple[_Problem, ...], ...] = ()  # `oneOf` / `anyOf`: why each choice failed


def _check_structure(root: Source, minor: str) -> None:
    problems = _structure_problems(root.data, minor)
    if problems:
        raise _explain(root, minor, _best(problems))


def _structure_problems(data: Any, minor: str) -> list[_Problem]:
    schema = _official_schema(minor)
    if jsonschema_rs is not None:
        validator = _rs_validator(minor)
        if validator.is_valid(data):
            return []
        return [_from_rs(e, schema, data) for e in validator.iter_errors(data)]
    return [_from_jsonschema(e, data) for e in _py_validator(minor).iter_errors(data)]


def _from_rs(error: Any, schema: Any, data: Any) -> _Problem:
    keyword = error.kind.name
    detail = error.kind.as_dict()
    unexpected = tuple(detail.get("unexpected") or ())
    holder = _at_or_empty(schema, list(error.schema_path)[:-1]) if unexpected else {}
    options: tuple[Any, ...] = ()
    if keyword == "enum" and isinstance(detail.get("options"), list):
        options = tuple(detail["options"])
    elif keyword == "const" and "expected_value" in detail:
        options = (detail["expected_value"],)
    return _Problem(
        path=_real_path(data, error.instance_path),
        keyword=keyword,
        message=error.message,
        missing=detail.get("property") if keyword == "required" else None,
        unexpected=unexpected,
        allowed=_allowed(holder),
        patterns=_patterns(holder),
        options=options,
        types=tuple(detail.get("types") or ()) if keyword == "type" else (),
        branches=tuple(tuple(_from_rs(e, schema, data) for e in branch) for branch in detail.get("context") or ())
        if keyword in ("oneOf", "anyOf") else (),
    )


def _from_jsonschema(error: ValidationError, data: Any) -> _Problem:
    keyword = str(error.validator)
    instance, expected = error.instance, error.validator_value
    subschema = error.schema if isinstance(error.schema, dict) else {}
    unexpected: tuple[str, ...] = ()
    if keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
        named = re.search(r"\((.*) (?:was|were) unexpected\)", error.message)
        if named:  # the validator's own list: it knows the patterns that came through $refs
            unexpected = tuple(re.findall(r"'((?:[^'\\]|\\.)*)'", named.group(1)))
        else:
            patterns = subschema.get("patternProperties", {})
            unexpected = tuple(k for k in instance if k not in subschema.get("properties", {})
                               and not any(re.search(p, k) for p in patterns))
    missing = None
    if keyword == "required" and isinstance(instance, dict):
        missing = next((k for k in expected if k not in instance), None)
    branches: list[list[_Problem]] = []
    if keyword in ("oneOf", "anyOf"):
        branches = [[] for _ in expected]
        for sub in error.context or ():
            branches[int(sub.relative_schema_path[0])].append(_from_jsonschema(sub, data))
    return _Problem(
        path=_real_path(data, error.absolute_path),
        keyword=keyword,
        message=error.message,
        missing=missing,
        unexpected=unexpected,
        allowed=_allowed(subschema) if unexpected else (),
        patterns=_patterns(subschema) if unexpected else (),
        options=tuple(expected) if keyword == "enum" and isinstance(expected, list)
        else (expected,) if keyword == "const" else (),
        types=((expected,) if isinstance(expected, str) else tuple(expected)) if keyword == "type" else (),
        branches=tuple(tuple(b) for b in branches),
    )


def _real_path(data: Any, path: Sequence[Any]) -> tuple[Any, ...]:
    """The path with each step as the document spells it (jsonschema-rs reports `"200"` as 200)."""
    out: list[Any] = []
    for step in path:
        if isinstance(data, dict):
            step = str(step)
            data = data.get(step)
        elif isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data):
            data = data[step]
        out.append(step)
    return tuple(out)


def _at_or_empty(node: Any, path: Sequence[Any]) -> Any:
    for step in path:
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            return {}
    return node


_ALTERNATIVES = re.compile(r"\^\(([\w|$-]+)\)\$")  # `^(get|put|post)$`: names spelled as a pattern


def _allowed(subschema: Any) -> tuple[str, ...]:
    """Key names a schema object spells out: its properties, and `^(get|put|...)$` patterns."""
    if not isinstance(subschema, dict):
        return ()
    names = list(subschema.get("properties", {}))
    for pattern in subschema.get("patternProperties", {}):
        alternatives = _ALTERNATIVES.fullmatch(pattern)
        if alternatives:
            names.extend(alternatives.group(1).split("|"))
    return tuple(dict.fromkeys(names))


def _patterns(subschema: Any) -> tuple[str, ...]:
    """The key patterns a schema object allows beyond `_allowed` (not extensions: always fine)."""
    if not isinstance(subschema, dict):
        return ()
    return tuple(p for p in subschema.get("patternProperties", {})
                 if p != "^x-" and not _ALTERNATIVES.fullmatch(p))


def _best(problems: Sequence[_Problem]) -> _Problem:
    """The most specific problem: the deepest, the first in document order among equals,
    looking inside a failed `oneOf` for the choice the author evidently meant."""
    return max((_dive(p) for p in problems), key=lambda p: len(p.path))


def _dive(problem: _Problem) -> _Problem:
    """The problem inside the `oneOf`/`anyOf` choice the node was written as.

    The OpenAPI schemas use `oneOf` for "an X or a Reference" and for variants told apart by
    one key (`in: path|query|...`, `type: apiKey|http|...`). A choice is not meant when it
    fails only for lacking `$ref` or for being another type, nor when it disagrees on a key
    that another choice accepts. Among the rest, the one with the fewest problems wins.
    """
    branches = problem.branches
    if not branches or not all(branches):  # some choice matched: nothing to dive into
        return problem
    meant = [i for i, b in enumerate(branches) if not _beside_the_point(b, problem.path)]
    if not meant:
        types = [p for b in branches for p in b]
        if all(p.keyword == "type" and p.path == problem.path for p in types):
            return _Problem(problem.path, "type", problem.message,
                            types=tuple(dict.fromkeys(t for p in types for t in p.types)))
        return problem
    best = {i: _best(branches[i]) for i in meant}

    def told_apart(i: int) -> bool:  # disagrees on a value another choice does not mind
        return any(p.options and all(q.path != p.path for q in branches[j])
                   for p in branches[i] for j in meant if j != i)

    chosen = max(meant, key=lambda i: (not told_apart(i), -len(branches[i]), len(best[i].path)))
    found = best[chosen]
    if found.options:  # each choice allows other values (`in: path`, `in: query`...): name them all
        rivals = [best[i] for i in meant if best[i].options and best[i].path == found.path]
        return replace(found, options=tuple(dict.fromkeys(o for p in rivals for o in p.options)))
    return found


def _beside_the_point(branch: Sequence[_Problem], path: tuple[Any, ...]) -> bool:
    """A choice the node was clearly not written as: a Reference Object when there is no
    `$ref`, or a different type altogether."""
    return all(p.path == path and (p.keyword == "type" or (p.keyword == "required" and p.missing == "$ref"))
               for p in branch)


def _explain(source: Source, minor: str, problem: _Problem) -> LoadError:
    """One line in our words, so it reads the same whichever validator found the problem."""
    where = format_path(problem.path) or "the document"
    prefix = f"not valid OpenAPI {minor} at {where}"
    value = _at_or_empty(source.data, problem.path)
    if problem.unexpected:
        key = problem.unexpected[0]
        close = difflib.get_close_matches(key, problem.allowed, n=1)
        allowed = [*problem.allowed, *(f"a key matching {p}" for p in problem.patterns)]
        hint = (f"; did you mean {close[0]!r}?" if close
                else f"; allowed: {', '.join(allowed)}" if allowed else "")
        line = _key_line(source.text, problem.path, key)
        return LoadError(source.path, f"{prefix}: unexpected key {key!r}{hint}", line)
    if problem.keyword == "required" and problem.missing:
        message = f"{problem.missing!r} is required"
    elif problem.options:
        message = f"{_json(value)} is not one of {', '.join(_json(o) for o in problem.options)}"
    elif problem.types:
        message = f"{_json(value)} is not of type {' or '.join(sorted(problem.types))}"
    elif problem.branches:
        message = f"matches none of the forms allowed here ({problem.keyword})"
    else:
        message = problem.message
    return _error(source, problem.path, f"{prefix}: {_short(message)}")


def _json(value: Any) -> str:
    return _short(json.dumps(value, ensure_ascii=False, default=str), 60)


def _key_line(text: str, path: Sequence[Any], key: str) -> int | None:
    """Line of a key itself. ``line_of`` gives a value's line, which for a block mapping is the
    line after its key; an unexpected key should point at the key."""
    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    for step in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(step)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
            child = node.value[step]
        if child is None:
            return line_of(text, list(path))
        node = child
    if isinstance(node, yaml.MappingNode):
        for k, _ in node.value:
            if k.value == key:
                return int(k.start_mark.line) + 1
    return line_of(text, list(path))


# -- full check: openapi-spec-validator


class _FullCheck:
    """openapi-spec-validator over one root, reading sibling files from what is loaded (never
    the network), with each error traced back to the file and line of the offending node."""

    def __init__(self, loader: _Loader, root: Source, minor: str) -> None:
        self.loader = loader
        self.root = root
        self.minor = minor

    def run(self) -> None:
        from jsonschema_path import SchemaPath
        from openapi_spec_validator.settings import OpenAPISpecValidatorSettings

        handlers = {"file": self._file, "http": self._remote, "https": self._remote}
        # The cache of resolved $refs is what openapi-spec-validator's own `validate` sets up;
        # without it a document with many $refs takes twice as long.
        cache = OpenAPISpecValidatorSettings().resolved_cache_maxsize
        spec = SchemaPath.from_dict(self.root.data, base_uri=self.root.uri, handlers=handlers,
                                    resolved_cache_maxsize=cache)
        try:
            error = next(iter(_spec_validator(self.minor)(spec).iter_errors()), None)
        except LoadError:
            raise
        except Exception as exc:  # a crash inside the validator is still one line, not a traceback
            raise LoadError(self.root.path, f"openapi-spec-validator failed: {type(exc).__name__}: {_short(str(exc))}",
                            1) from None
        if error is not None:
            raise self._explain(error)

    def _file(self, uri: str) -> Any:
        source = self.loader.files.get(urldefrag(uri)[0])
        if source is None:  # a place our walk does not enter; read it the same way
            source = _read(Path(url2pathname(urlsplit(uri).path)))
            self.loader.files[urldefrag(uri)[0]] = source
        return source.data

    def _remote(self, uri: str) -> Any:
        raise LoadError(self.root.path, f"$ref {uri!r} does not resolve: remote references are not fetched", 1)

    def _explain(self, error: ValidationError) -> LoadError:
        keyword, where = getattr(error, "_mock_where", ("", ()))
        path: tuple[Any, ...] = (*where, *(("default",) if keyword == "default" else ()), *error.absolute_path)
        if type(error).__name__ == "DuplicateOperationIDError":
            path = (*path, "operationId")
        source, located = self._locate(path)
        shown = format_path(located) or "the document"
        return _error(source, located, f"not valid OpenAPI {self.minor} at {shown}: {_short(error.message)}")

    def _locate(self, path: Sequence[Any]) -> tuple[Source, tuple[Any, ...]]:
        """The file and concrete path of a node given by its path through $refs, as
        openapi-spec-validator walks it (``.../schema/properties/id`` through a $ref'd schema)."""
        source, node = self.root, self.root.data
        out: list[Any] = []
        for step in path:
            for _ in range(64):  # a $ref chain longer than this is a cycle
                if not (isinstance(node, dict) and str(step) not in node and isinstance(node.get("$ref"), str)):
                    break
                try:
                    uri, target = self.loader.target(source, node["$ref"], tuple(out))
                except LoadError:
                    return source, tuple(out)
                source = self.loader.files[uri]
                node, out = _at(source.data, target), list(target)
            if isinstance(node, dict) and str(step) in node:
                node = node[str(step)]
                out.append(str(step))
            elif isinstance(node, list) and str(step).isdigit() and int(step) < len(node):
                node = node[int(step)]
                out.append(int(step))
            else:
                break
        return source, tuple(out)


@lru_cache(maxsize=None)
def _spec_validator(minor: str) -> Any:
    """openapi-spec-validator's class for a version, with each keyword validator noting which
    node it was checking: its own errors carry a message but no location."""
    from jsonschema_path import SchemaPath
    from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    base = OpenAPIV30SpecValidator if minor == "3.0" else OpenAPIV31SpecValidator

    def located(keyword: str, cls: type) -> type:
        def __call__(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
            where = next((tuple(a.parts) for a in args if isinstance(a, SchemaPath)), ())
            for error in cls.__call__(self, *args, **kwargs):
                if not isinstance(error, OpenAPIValidationError):
                    # it would be rewrapped on the way out, losing the note
                    error = OpenAPIValidationError.create_from(error)
                if not hasattr(error, "_mock_where"):  # the innermost validator knows best
                    error._mock_where = (keyword, where)
                yield error

        return type(cls.__name__, (cls,), {"__call__": __call__})

    validators = {keyword: located(keyword, cls) for keyword, cls in base.keyword_validators.items()}
    return type(f"Located{base.__name__}", (base,), {"keyword_validators": validators})
