"""mockserver: a contract mock of the Solvimon webhooks API, for local development, CI and pytest."""

from __future__ import annotations

from .app import build_mock, create_app
from .contract import load_contract
from .errors import LoadError, LoadErrors

__all__ = ["create_app", "build_mock", "load_contract", "LoadError", "LoadErrors", "__version__"]
__version__ = "0.1.0"
