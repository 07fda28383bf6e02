"""mockserver: a contract mock of the Solvimon webhooks API, for local development, CI and pytest."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import build_mock, create_app
    from .contract import load_contract
    from .errors import LoadError, LoadErrors
    from .proxy import create_proxy_app

__all__ = ["create_app", "create_proxy_app", "build_mock", "load_contract", "LoadError", "LoadErrors", "__version__"]
__version__ = "0.1.0"

# The public names are imported on first use (PEP 562), not here: pytest imports this package
# in every session of every project that installs it (for the plugin), and the server code
# behind these names (aiohttp, the contract loader, jsonschema, faker) costs ~0.4 s to import.
_LAZY = {
    "create_app": ".app",
    "create_proxy_app": ".proxy",
    "build_mock": ".app",
    "load_contract": ".contract",
    "LoadError": ".errors",
    "LoadErrors": ".errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups find it without coming back here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
