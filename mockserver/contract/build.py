"""OpenAPI documents and overlays in, one compiled :class:`Contract` out.

The steps, each in its own module: read and check the documents (``load``), apply the
overlays in the order given (``overlay``), compile operations and schemas (``compile``),
with behaviours from the overlays or from ``conventions``. Every problem is one line,
``file:line: what is wrong``, and stops start-up before anything listens.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Sequence

from referencing import Resource
from referencing.jsonschema import DRAFT202012

from ..errors import LoadError, LoadErrors
from . import overlay
from . import load
from .compile import Document, compile_documents
from .model import Contract

BUNDLED_OVERLAYS = ("solvimon", "solvimon-webhooks")


def default_spec_dir() -> Path:
    """The bundled contract: inside the installed package, or ``spec/`` of a source checkout."""
    bundled = Path(str(resources.files("mockserver"))) / "_bundled" / "spec"
    if bundled.is_dir():
        return bundled
    return Path(__file__).resolve().parents[2] / "spec"


def bundled_document() -> Path:
    """The vendor's webhooks document as shipped with mockserver (never edited by hand)."""
    return default_spec_dir() / "openapi" / "configuration-api.webhooks.json"


def overlay_path(name_or_file: str | Path) -> Path:
    """A bundled overlay by name (``solvimon``, ``solvimon-webhooks``), else a file."""
    if isinstance(name_or_file, str) and name_or_file in BUNDLED_OVERLAYS:
        return default_spec_dir() / "overlays" / f"{name_or_file}.yaml"
    return Path(name_or_file)


def load_contract(documents: Sequence[Path | str] | None = None, overlays: Sequence[Path | str] | None = None, *,
                  full_check: bool = False) -> Contract:
    """The contract of ``documents`` with ``overlays``; without documents, the bundled contract
    (the vendor's webhooks document with the bundled overlays, unless others are named)."""
    if documents:
        return load_openapi(documents, overlays or (), full_check=full_check)
    return load_openapi([bundled_document()], BUNDLED_OVERLAYS if overlays is None else overlays,
                        full_check=full_check)


def load_openapi(documents: Sequence[Path | str], overlays: Sequence[Path | str] = (), *,
                 full_check: bool = False) -> Contract:
    """Load, check, overlay and compile; raises LoadError/LoadErrors naming file and line."""
    paths = [Path(p) for p in documents]
    if not paths:
        raise LoadError(Path("."), "no OpenAPI document given")
    loaded = load.load_documents(paths, full_check=full_check)
    applied = [overlay.load_overlay(overlay_path(o)) for o in overlays]
    docs = []
    misses: list[set[str]] = []
    for source in loaded.roots:
        data = source.data
        origins: overlay.Origins = {}
        if applied:
            try:
                data = overlay.apply(source.data, applied, origins)
                misses.append(set())
            except LoadErrors as exc:
                # With several documents an action may fit only some of them: it is an error
                # only when it fits none. Apply action by action to keep what did fit.
                misses.append({str(e) for e in exc.errors})
                origins.clear()
                data = _apply_what_fits(source.data, applied, origins)
        docs.append(Document(source.path, data, source.text, origins))
    if misses:
        everywhere = set.intersection(*misses)
        if everywhere:
            first = next(iter(applied)).source if applied else Path(".")
            raise LoadErrors([LoadError(first, m) if ":" not in m else _AsIs(m) for m in sorted(everywhere)])
    registry = loaded.registry
    for doc in docs:  # references resolve against the overlaid documents, not the originals
        registry = registry.with_resource(doc.path.resolve().as_uri(),
                                          Resource(contents=doc.data, specification=DRAFT202012))
    return compile_documents(docs, registry)


class _AsIs(LoadError):
    """A problem already rendered as ``file:line: message``."""

    def __init__(self, text: str) -> None:
        Exception.__init__(self, text)
        self.text = text
        self.file, self.line, self.message = text, None, text

    def __str__(self) -> str:
        return self.text


def _apply_what_fits(document: dict, overlays: list[overlay.Overlay], origins: overlay.Origins) -> dict:
    data = document
    for ov in overlays:
        for action in ov.actions:
            single = overlay.Overlay(ov.source, ov.title, ov.version, (action,), ov.extends)
            try:
                data = overlay.apply(data, [single], origins)
            except LoadErrors:
                continue
    return data


__all__ = ["load_openapi", "load_contract", "bundled_document", "default_spec_dir", "overlay_path",
           "BUNDLED_OVERLAYS"]
