"""The contract: everything that is read from documents and files, compiled once into frozen values.

This package is the only code that reads contract files: ``load`` reads and checks OpenAPI
documents, ``overlay`` applies Overlay 1.0.0 actions, ``compile`` turns the result into the
frozen values of ``model`` (with behaviours from overlays or ``conventions``), ``build`` puts
the steps together, and ``diff`` compares two documents.
"""

from __future__ import annotations

from .model import (
    Behaviour,
    Contract,
    ObjectParts,
    Operation,
    Page,
    Parameter,
    RequestBody,
    RequestId,
    Response,
    SecurityScheme,
    Validator,
    compile_validator,
    deepest_error,
    flagged_properties,
    shipped_validator,
)
from .build import default_spec_dir, load_contract

__all__ = [
    "Behaviour", "Contract", "ObjectParts", "Operation", "Page", "Parameter", "RequestBody", "RequestId",
    "Response", "SecurityScheme", "Validator", "compile_validator", "deepest_error", "flagged_properties",
    "shipped_validator", "default_spec_dir", "load_contract",
]
