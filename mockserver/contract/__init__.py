"""The contract: everything that is read from documents and files, compiled once into frozen values.

This package is the only code that reads contract files. ``model`` holds the compiled values
and their validators; ``specdir`` reads the older ``spec/`` directory format.
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
from .specdir import check_spec, default_spec_dir, load_contract

__all__ = [
    "Behaviour", "Contract", "ObjectParts", "Operation", "Page", "Parameter", "RequestBody", "RequestId",
    "Response", "SecurityScheme", "Validator", "compile_validator", "deepest_error", "flagged_properties",
    "shipped_validator", "check_spec", "default_spec_dir", "load_contract",
]
