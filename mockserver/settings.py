"""Every setting of one mock, as one typed value.

The CLI, the pytest plugin and :func:`mockserver.create_app` all build a :class:`Settings`
and hand it to the composition root (``mock.py``); nothing else passes options around.
This module imports only the standard library, so reading settings costs nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

DEFAULT_JOURNAL_LIMIT = 10_000
DEFAULT_STORE_LIMIT = 10_000
DEFAULT_QUEUE_LIMIT = 1_000
# Where `mockserver serve` also reads the state store's URL: an environment variable keeps a
# password out of the process list.
STATE_VARIABLE = "MOCKSERVER_STATE"


@dataclass(frozen=True)
class Settings:
    """What one mock is told at start-up; see ``mockserver serve --help`` for each meaning."""

    # OpenAPI documents to serve instead of the bundled contract, and overlays applied in order
    # (a bundled overlay by name, or a file).
    openapi: tuple[Path, ...] = ()
    overlays: tuple[str, ...] = ()
    # Scenario directories, loaded in order (a path, or several); a name defined twice is an error.
    scenarios_dir: tuple[Path, ...] = ()
    # Also load the bundled scenario library (before the directories above), as the CLI and the
    # pytest plugin do unless told not to; written for the bundled contract.
    bundled_scenarios: bool = False
    scenario: str | None = None
    seed: int | None = None
    strict: bool = False
    max_body_bytes: int = 1024 * 1024
    journal_limit: int = DEFAULT_JOURNAL_LIMIT
    store_limit: int = DEFAULT_STORE_LIMIT
    read_timeout_s: float = 10.0
    delivery_timeout_s: float = 10.0
    delivery_queue_limit: int = DEFAULT_QUEUE_LIMIT
    fast_retries: bool = False
    delivery_allowed_hosts: tuple[str, ...] = ()
    # When set, the only API keys and bearer tokens the contract routes accept.
    api_keys: frozenset[str] | None = None
    admin_token: str | None = None
    # Web origins (scheme://host[:port]) whose pages may call the mock from a browser.
    cors_allow_origins: tuple[str, ...] = ()
    hot_reload: bool = True
    # Keep run-time state in Redis (redis:// or rediss:// URL) rather than in this process, so
    # that several replicas on the same URL and prefix answer as one mock.
    state: str | None = None
    state_prefix: str = "mockserver"

    def __post_init__(self) -> None:
        # Accept the loose forms callers naturally pass (a str path, a list of keys) and
        # keep the value hashable and immutable.
        object.__setattr__(self, "scenarios_dir", tuple(Path(p) for p in _strings(self.scenarios_dir)))
        object.__setattr__(self, "openapi", tuple(Path(p) for p in _strings(self.openapi)))
        object.__setattr__(self, "overlays", _strings(self.overlays))
        object.__setattr__(self, "delivery_allowed_hosts", _strings(self.delivery_allowed_hosts))
        object.__setattr__(self, "cors_allow_origins",
                           tuple(o.rstrip("/").lower() for o in _strings(self.cors_allow_origins)))
        if self.api_keys is not None:
            keys = frozenset(_strings(self.api_keys))
            object.__setattr__(self, "api_keys", keys or None)

    def replace(self, **changes: Any) -> "Settings":
        """A copy with ``changes``; an unknown name is a TypeError that lists the known ones."""
        unknown = set(changes) - set(names())
        if unknown:
            raise TypeError(f"unknown mockserver setting(s) {sorted(unknown)}; known: {', '.join(names())}")
        return dataclasses.replace(self, **changes)


def names() -> list[str]:
    return [f.name for f in dataclasses.fields(Settings)]


def _strings(values: Iterable[Any] | str | Path | None) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, (str, Path)):
        return (str(values),)
    return tuple(str(v) for v in values)
