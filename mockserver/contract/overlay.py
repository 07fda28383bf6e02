"""OpenAPI Overlay 1.0.0: load overlay files, then apply their actions to a document in order.

The vendor's OpenAPI documents are used as they are published; everything the mock needs
on top of them (a missing ``format``, an operation to leave out, a behaviour extension) is
an overlay, so a new vendor release is taken by replacing the document alone.

Reasons that must survive refactoring:

* **A target that selects nothing is an error**, although the specification lets it
  succeed silently. It is how a user learns that the vendor renamed or dropped something
  an overlay depends on. :func:`apply` reports every such problem of every overlay at
  once, as ``overlay-file:line: ...`` at the action's ``target``, and still runs the
  other actions, so later actions are judged on the document they were written for.
* **The input is never changed, and not copied whole either.** :func:`apply` copies on
  write: each container on the way to a changed node is copied once (shallowly), and
  everything else is shared between input and result. A deep copy of a large document
  costs more than all the actions of a typical overlay together. Whoever wants to
  change the result in place afterwards must copy it first.
* **Merge semantics are those of 1.0.0, not 1.1.0.** An ``update`` into an object merges
  recursively: objects merge with objects, any other value replaces (arrays included;
  1.1 concatenates them). An ``update`` into an array appends it as one entry (1.1
  would concatenate an array). An action with both ``update`` and ``remove: true`` is
  refused when the file loads: 1.0.0 says the update has no effect then, and the
  specification's 1.0 JSON Schema forbids the pair.
* Targets are RFC 9535 JSONPath, compiled by ``jsonpath_rfc9535`` when the file loads,
  so a broken target stops start-up with the library's reason rather than at apply time.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml
from jsonpath_rfc9535 import JSONPathError, JSONPathNode, JSONPathQuery
from jsonpath_rfc9535 import compile as compile_jsonpath
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ..errors import LoadError, LoadErrors, format_path, line_in, node_in

__all__ = ["Action", "Overlay", "apply", "load_overlay"]

Location = tuple[str | int, ...]

_VERSION = re.compile(r"1\.0\.[0-9]+")
_EXPECTED = "overlay 1.0.0 expected"
_EXTENSION = re.compile(r"x-")


@dataclass(frozen=True)
class Action:
    """One action of an overlay, as written, with its compiled target and the lines errors name.

    ``update`` is the value as loaded; :func:`apply` inserts copies of it, never the value itself.
    """

    index: int
    target: str
    query: JSONPathQuery = field(compare=False, repr=False)
    line: int | None
    description: str | None = None
    has_update: bool = False
    update: Any = field(default=None, hash=False)
    update_line: int | None = None
    remove: bool = False
    source: Path | None = None
    update_node: Any = field(default=None, compare=False, repr=False)  # composed YAML, for lines


@dataclass(frozen=True)
class Overlay:
    """A checked overlay file; its actions run in the order they are listed."""

    source: Path
    title: str
    version: str
    actions: tuple[Action, ...]
    extends: str | None = None


# ------------------------------------------------------------------ loading


def load_overlay(path: Path | str) -> Overlay:
    """Read and check one overlay file (YAML or JSON).

    Raises :class:`LoadErrors` with one ``file:line: what is wrong`` line per problem: a
    file that is not an Overlay 1.0.x document, the first schema violation, and every
    target that is not RFC 9535 JSONPath.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadErrors([LoadError(path, f"cannot read: {exc}")]) from None
    doc, lines = _parse(path, text)
    _check_version(path, doc, lines)
    violation = _deepest(_validator().iter_errors(doc))
    if violation is not None:
        raise LoadErrors([_violation_error(path, violation, lines)])

    actions: list[Action] = []
    errors: list[LoadError] = []
    for index, raw in enumerate(doc["actions"]):
        where: list[str | int] = ["actions", index, "target"]
        try:
            query = compile_jsonpath(raw["target"])
        except JSONPathError as exc:
            errors.append(LoadError(path, f"at {format_path(where)}: invalid JSONPath: {_jsonpath_reason(exc)}",
                                    lines.of(where)))
            continue
        remove = raw.get("remove", False)
        if remove and query.empty():
            errors.append(LoadError(path, f"at {format_path(where)}: $ is the whole document and cannot be removed",
                                    lines.of(where)))
            continue
        actions.append(Action(
            index=index,
            target=raw["target"],
            query=query,
            line=lines.of(where),
            description=raw.get("description"),
            has_update="update" in raw,
            update=raw.get("update"),
            update_line=lines.of(["actions", index, "update"], key=True) if "update" in raw else None,
            remove=remove,
            source=path,
            update_node=node_in(lines.root, ["actions", index, "update"]) if "update" in raw else None,
        ))
    if errors:
        raise LoadErrors(errors)
    info = doc["info"]
    return Overlay(source=path, title=info["title"], version=info["version"],
                   actions=tuple(actions), extends=doc.get("extends"))


class _Lines:
    """Lines of nodes in the composed YAML tree, walked the way :func:`errors.line_of` does.

    The file is composed once; ``line_of`` composes the text again on every call, which is
    fine for one error but not for the line of every action.
    """

    def __init__(self, root: yaml.Node | None) -> None:
        self.root = root

    def of(self, path: Sequence[str | int], key: bool = False) -> int | None:
        """Line of the value at ``path`` (of its key with ``key=True``: a block value starts a line later)."""
        return line_in(self.root, path, key)


def _parse(path: Path, text: str) -> tuple[Any, _Lines]:
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LoadErrors([LoadError(path, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno)]) from None
        try:
            return doc, _Lines(yaml.compose(text, Loader=yaml.SafeLoader))
        except yaml.YAMLError:  # valid JSON that PyYAML cannot read: errors then name the file only
            return doc, _Lines(None)
    try:  # libyaml when present (several times faster: same nodes and marks)
        return _composed(text, getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        pass
    try:  # what is wrong, in PyYAML's words, which say more than libyaml's
        return _composed(text, yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LoadErrors([LoadError(path, f"invalid YAML: {reason}", mark.line + 1 if mark else None)]) from None


def _composed(text: str, loader_class: Any) -> tuple[Any, _Lines]:
    """One pass gives both the values and the node tree the lines come from."""
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        doc = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return doc, _Lines(node)


def _check_version(path: Path, doc: Any, lines: _Lines) -> None:
    """Anything but an Overlay 1.0.x document gets one answer, before the schema has its say."""
    found = doc.get("overlay") if isinstance(doc, dict) else None
    if isinstance(found, str) and _VERSION.fullmatch(found):
        return  # 1.0.1 and later patches only clarify 1.0.0; the specification says to treat them alike
    if doc is None:
        why = "the file is empty"
    elif not isinstance(doc, dict):
        why = f"found {_kind(doc)}"
    elif "overlay" in doc:
        why = f"found {found}" if isinstance(found, str) else f"found {json.dumps(found, default=str)}"
    elif "openapi" in doc or "swagger" in doc:
        why = "this is an OpenAPI document"
    else:
        why = "the file has no overlay field"
    raise LoadErrors([LoadError(path, f"{_EXPECTED}, {why}", lines.of(["overlay"]) or 1)])


@cache
def _validator() -> Draft202012Validator:
    text = resources.files("mockserver").joinpath("schemas", "overlay.schema.json").read_text(encoding="utf-8")
    return Draft202012Validator(json.loads(text))


def _deepest(errors: Iterable[ValidationError]) -> ValidationError | None:
    """The most specific violation (the deepest; the first in path order among equals)."""
    ordered = sorted(errors, key=lambda e: list(map(str, e.absolute_path)))
    return max(ordered, key=lambda e: len(e.absolute_path)) if ordered else None


def _violation_error(path: Path, error: ValidationError, lines: _Lines) -> LoadError:
    where = list(error.absolute_path)
    at = format_path(where) or "the document"
    if error.validator == "not":  # the schema's only `not`: update beside remove: true
        # Overlay 1.0.0 would ignore the update; its JSON Schema refuses the pair, and so do we.
        message = "update and remove: true in one action; the update would be ignored: drop one, or make two actions"
        return LoadError(path, f"at {at}: {message}", lines.of([*where, "remove"]))
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        unknown = [k for k in error.instance if k not in known and not _EXTENSION.match(str(k))]
        allowed = ", ".join(sorted(known))
        names = ", ".join(repr(k) for k in unknown)
        message = f"unknown field {names}; allowed here: {allowed}, or an extension named x-..."
        return LoadError(path, f"at {at}: {message}", lines.of([*where, unknown[0]] if unknown else where))
    if error.validator == "minItems" and where == ["actions"]:
        return LoadError(path, "at actions: an overlay needs at least one action", lines.of(where))
    message = error.message if len(error.message) < 200 else error.message[:197] + "..."
    return LoadError(path, f"at {at}: {message}", lines.of(where))


def _jsonpath_reason(exc: JSONPathError) -> str:
    reason = str(exc.args[0]) if exc.args else type(exc).__name__
    # The library's own str() says "line 1, column N", which would read as a line of the overlay file.
    if exc.token is not None:
        return f"{reason} (column {exc.token.position()[1] + 1} of the target)"
    return reason


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


# ------------------------------------------------------------------ applying


# Where what an overlay put into a document was written: id of a container it inserted, or
# (id of an object, key) of a value it set -> (overlay file, composed YAML node of what it
# wrote), so that a problem found later in that part of the document names the overlay's line.
Origins = dict[Any, tuple[Path, Any]]


def apply(document: Mapping[str, Any], overlays: Sequence[Overlay], origins: Origins | None = None) -> dict[str, Any]:
    """A new document: ``document`` with every action of every overlay applied, in order.

    ``document`` is not changed; the result shares every part no action touched with it.
    Raises :class:`LoadErrors` listing every action that could not be applied (a target
    that matches nothing, an update that does not fit what it selects), in order. With
    ``origins``, records where each inserted object or array was written.
    """
    editor = _Editor(document, origins)
    errors: list[LoadError] = []
    for overlay in overlays:
        for action in overlay.actions:
            errors.extend(LoadError(overlay.source, message, line) for line, message in editor.run(action))
    if errors:
        raise LoadErrors(errors)
    return editor.root


class _Editor:
    """Runs actions on a copy-on-write version of one document.

    ``_mine`` holds every container this editor made (by id, and keeps it alive so the id
    stays unique); only those are ever changed in place. Any other container belongs to
    the input and is copied, along with its ancestors, before it is changed.
    """

    def __init__(self, document: Mapping[str, Any], origins: Origins | None = None) -> None:
        self._mine: dict[int, Any] = {}
        self.root: dict[str, Any] = self._copy(document)
        self.origins = origins

    def run(self, action: Action) -> list[tuple[int | None, str]]:
        """Apply one action; the problems it met, as (line, message)."""
        nodes = action.query.find(self.root)
        if not nodes:
            return [(action.line, f"target {action.target} matches nothing")]
        # RFC 9535 lets a query select one node twice ($.a[0,0]); an action changes it once.
        selected: dict[Location, JSONPathNode] = {}
        for node in nodes:
            selected.setdefault(node.location, node)
        if action.remove:
            self._remove(selected)
            return []
        if action.has_update:
            return self._update(action, selected)
        return []

    def _update(self, action: Action, selected: dict[Location, JSONPathNode]) -> list[tuple[int | None, str]]:
        primitives: list[JSONPathNode] = []
        mismatched: list[JSONPathNode] = []
        for location, node in selected.items():
            if isinstance(node.value, dict) and not isinstance(action.update, dict):
                mismatched.append(node)
            elif isinstance(node.value, (dict, list)):
                try:
                    target = self._own(location)
                except (LookupError, TypeError):
                    continue  # an earlier node of this action replaced what held it
                if isinstance(target, dict) and isinstance(node.value, dict):
                    self._merge(target, action.update, action.source, action.update_node)
                elif isinstance(target, list) and isinstance(node.value, list):
                    target.append(self._inserted(action.update, action.source, action.update_node))
            else:
                primitives.append(node)
        problems: list[tuple[int | None, str]] = []
        if primitives:
            problems.append((action.line, (
                f"target {action.target} selects {_kind(primitives[0].value)} at {primitives[0].path()}"
                f"{_more(primitives)}; update needs objects or arrays: target the object that holds the value")))
        if mismatched:
            problems.append((action.update_line or action.line, (
                f"update is {_kind(action.update)}, but target {action.target} selects an object at "
                f"{mismatched[0].path()}{_more(mismatched)}; what is merged into an object must be an object")))
        return problems

    def _merge(self, target: dict[str, Any], update: Mapping[str, Any], source: Path | None, node: Any) -> None:
        """Objects merge recursively; any other value of ``update`` replaces (Overlay 1.0.0)."""
        for key, value in update.items():
            current = target.get(key)
            inner = node_in(node, [key]) if node is not None else None
            if isinstance(value, dict) and isinstance(current, dict):
                if id(current) not in self._mine:
                    current = target[key] = self._copy(current)
                self._merge(current, value, source, inner)
            else:
                target[key] = self._inserted(value, source, inner)
                if self.origins is not None and source is not None and inner is not None:
                    self.origins[(id(target), key)] = (source, inner)  # a value set into an object

    def _inserted(self, value: Any, source: Path | None, node: Any) -> Any:
        """A copy of ``value``, with where each of its containers was written when asked."""
        made = copy.deepcopy(value)
        if self.origins is not None and source is not None and node is not None:
            stack = [(made, node)]
            while stack:
                item, at = stack.pop()
                if isinstance(item, dict):
                    self.origins[id(item)] = (source, at)
                    stack.extend((v, node_in(at, [k])) for k, v in item.items() if isinstance(v, (dict, list)))
                elif isinstance(item, list):
                    self.origins[id(item)] = (source, at)
                    stack.extend((v, node_in(at, [i])) for i, v in enumerate(item) if isinstance(v, (dict, list)))
        return made

    def _remove(self, selected: dict[Location, JSONPathNode]) -> None:
        # Deepest and last first: removing element 3 of an array must not shift element 5
        # away from its location, nor an ancestor go before the nodes selected inside it.
        # Locations that differ first at one step share that parent, so both are names or
        # both are indices there and tuple order is well defined.
        chosen = set(selected)
        for location in sorted(chosen, reverse=True):
            if any(location[:n] in chosen for n in range(1, len(location))):
                continue  # goes with its selected ancestor
            parent = self._own(location[:-1])
            del parent[location[-1]]

    def _own(self, location: Location) -> Any:
        """The value at ``location`` in the result, with it and its ancestors made this editor's own."""
        node: Any = self.root
        for key in location:
            child = node[key]
            if isinstance(child, (dict, list)) and id(child) not in self._mine:
                child = node[key] = self._copy(child)
            node = child
        return node

    def _copy(self, container: Any) -> Any:
        made = dict(container) if isinstance(container, Mapping) else list(container)
        self._mine[id(made)] = made
        return made


def _more(items: Sequence[Any]) -> str:
    return f" (and {len(items) - 1} more)" if len(items) > 1 else ""
