"""What the mock does with an operation when no overlay says: REST conventions read off the
path template, the method and the success response.

* ``POST /things`` answering an object with an ``id`` creates and stores it;
* ``GET /things/{id}`` reads it (404 when unknown), ``PATCH``/``PUT`` update it, ``DELETE``
  deletes it;
* ``GET /things`` lists the stored things in the answer's array property (or as the answer
  itself when it is an array), paged when the operation takes paging parameters.

Anything else is answered with a body generated from its schema and remembers nothing.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

from ..errors import LoadError
from .model import Behaviour, Operation, Page

_PARAM = re.compile(r"^\{[^}]+\}$")
_LIMIT_NAMES = ("limit", "per_page", "page_size", "pageSize", "size")
_PAGE_NAMES = ("page", "page_number", "pageNumber")
_ORDER_NAMES = ("order_by", "sort", "sort_by", "orderBy")
_DIRECTION_NAMES = ("order_direction", "direction", "order")
DEFAULT_LIMIT = 20


def collection_of(template: str) -> str:
    """The collection a path names, independent of parameter names: ``/v{version}/things`` -> ``/v{}/things``."""
    return re.sub(r"\{[^}]+\}", "{}", template)


def infer(op: Operation) -> Behaviour | None:
    segments = op.path.strip("/").split("/")
    last = segments[-1] if segments else ""
    item = bool(_PARAM.match(last)) and len(segments) > 1 and not _PARAM.match(segments[-2])
    success = _success_schema(op)
    if item:
        key = last[1:-1]
        collection = collection_of("/" + "/".join(segments[:-1]))
        kind = {"GET": "read", "PATCH": "update", "PUT": "update", "DELETE": "delete"}.get(op.method)
        return Behaviour(kind=kind, collection=collection, key=key, id_field="id") if kind else None
    if _PARAM.match(last) or not last:
        return None
    collection = collection_of(op.path)
    if op.method == "POST" and isinstance(success, dict) and "id" in (success.get("properties") or {}):
        return Behaviour(kind="create", collection=collection, id_field="id")
    if op.method == "GET" and isinstance(success, dict):
        items = _array_property(success)
        if items is None and "array" not in _types(success):
            return None
        return Behaviour(kind="list", collection=collection, page=_page(op, success, items))
    return None


def parent_of(path: str) -> tuple[str, str] | None:
    """(collection, path parameter) of the item a path lies under: ``/things/{id}/archive`` ->
    (``/things``, ``id``); the innermost one when items nest. None for a collection or an item."""
    segments = path.strip("/").split("/")
    for i in range(len(segments) - 2, 0, -1):
        if _PARAM.match(segments[i]) and not _PARAM.match(segments[i - 1]):
            return collection_of("/" + "/".join(segments[:i])), segments[i][1:-1]
    return None


def behaviour_from(spec: Any, op: Operation, error: Callable[[Sequence[Any], str], LoadError],
                   where: Sequence[Any]) -> Behaviour:
    """A behaviour an overlay names (``x-mock: {behaviour: {...}}``), checked against the operation."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("kind"), str):
        raise error(where, "x-mock behaviour needs a kind (create, read, list, update, delete, data or action)")
    kind = spec["kind"]
    if kind not in ("create", "read", "list", "update", "delete", "data", "action"):
        raise error([*where, "kind"], f"unknown behaviour kind {kind!r}; use create, read, list, update, delete, "
                                      f"data or action")
    key = spec.get("key")
    if key is not None and key not in op.path_params:
        raise error([*where, "key"], f"behaviour key {key!r} is not a path parameter of {op.method} {op.path}")
    collection = spec.get("collection")
    page = None
    if kind == "list":
        raw = spec.get("page") or {}
        success = _success_schema(op) or {}
        inferred = _page(op, success, _array_property(success))
        page = Page(
            items=raw.get("items", inferred.items),
            limit=raw.get("limit", inferred.limit), page=raw.get("page", inferred.page),
            pages=raw.get("pages", inferred.pages), links=raw.get("links", inferred.links),
            limit_param=raw.get("limitParam", inferred.limit_param),
            page_param=raw.get("pageParam", inferred.page_param),
            default_limit=int(raw.get("defaultLimit", inferred.default_limit)),
            link_names=raw.get("linkNames", inferred.link_names),
            order_param=raw.get("orderParam", inferred.order_param),
            direction_param=raw.get("directionParam", inferred.direction_param),
        )
    return Behaviour(kind=kind, collection=str(collection) if collection else collection_of(op.path),
                     id_field=spec.get("idField", "id"), key=key, action=spec.get("action"),
                     data=spec.get("data"), page=page)


def _success_schema(op: Operation) -> dict[str, Any] | None:
    for status in sorted(op.responses):
        if 200 <= status < 300:
            return op.responses[status].schema
    return None


def _array_property(schema: Mapping[str, Any]) -> str | None:
    props = schema.get("properties") or {}
    for preferred in ("data", "items", "results", "content"):
        if preferred in props and "array" in _types(props[preferred]):
            return preferred
    return next((name for name, prop in props.items() if "array" in _types(prop)), None)


def _page(op: Operation, schema: Mapping[str, Any], items: str | None) -> Page:
    params = op.query_params
    props = schema.get("properties") or {}
    limit_param = next((n for n in _LIMIT_NAMES if n in params), None)
    page_param = next((n for n in _PAGE_NAMES if n in params), None)
    links = "links" if "links" in props else None
    link_props = ((props.get("links") or {}).get("properties") or {}) if links else {}
    return Page(
        items=items or "",
        limit="limit" if "limit" in props else None,
        page="page" if "page" in props else None,
        pages=next((n for n in ("total_number_of_pages", "total_pages", "pages") if n in props), None),
        links=links,
        limit_param=limit_param,
        page_param=page_param,
        default_limit=int(((params.get(limit_param).schema.get("default")) if limit_param else None) or DEFAULT_LIMIT),
        link_names={name: name for name in ("first", "previous", "current", "next") if name in link_props},
        order_param=next((n for n in _ORDER_NAMES if n in params), None),
        direction_param=next((n for n in _DIRECTION_NAMES if n in params), None),
    )


def _types(schema: Any) -> list[str]:
    if not isinstance(schema, Mapping):
        return []
    kind = schema.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)
