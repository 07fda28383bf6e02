"""pytest plugin: a real mock server per test session, a clean slate per test.

Registered through the ``pytest11`` entry point, so installing the package is all
it takes. One server per session (per worker under pytest-xdist) runs in its own
thread; before every test its journal, counters, bindings and scenario are reset.

pytest imports this module at the start of every session of every project that has the
package installed, whether or not a test asks for the fixture; so it imports only pytest
and the standard library here, and the server code (aiohttp, the contract loader,
jsonschema, faker) inside the fixtures and methods that need it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

if TYPE_CHECKING:
    from .server import ServerThread

_OPTIONS = (
    ("openapi", "OpenAPI document(s) for the mockserver fixture, comma-separated (default: the bundled contract)"),
    ("overlay", "Overlay(s) applied to those documents, comma-separated: files, or the bundled 'solvimon' and "
                "'solvimon-webhooks'"),
    ("scenarios_dir", "scenario directory for the mockserver fixture (default: the bundled library)"),
    ("seed", "seed making the mockserver fixture's bodies reproducible"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockserver", "contract mock of the Solvimon webhooks API")
    for name, help_text in _OPTIONS:
        group.addoption(f"--mockserver-{name.replace('_', '-')}", dest=f"mockserver_{name}", default=None, help=help_text)
        parser.addini(f"mockserver_{name}", help_text, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mockserver(scenario=None): run this test with a scenario selected")


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"mockserver_{name}")
    if value is None:
        value = config.getini(f"mockserver_{name}") or None
    return value


def _settings(config: pytest.Config) -> dict[str, Any]:
    """Options from the command line, else the ini file; relative paths are from the rootdir."""
    def path(name: str) -> Path | None:
        value = _option(config, name)
        if value is None:
            return None
        p = Path(value)
        return p if p.is_absolute() else Path(config.rootpath) / p

    from .cli import default_scenarios_dir
    from .contract.build import BUNDLED_OVERLAYS

    def listed(name: str) -> list[str]:
        value = _option(config, name)
        return [v.strip() for v in str(value).split(",") if v.strip()] if value else []

    def rooted(value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else Path(config.rootpath) / p

    seed = _option(config, "seed")
    scenarios = path("scenarios_dir")
    openapi = [rooted(v) for v in listed("openapi")]
    overlays = [v if v in BUNDLED_OVERLAYS else str(rooted(v)) for v in listed("overlay")]
    if scenarios is None and not openapi:  # the bundled library is written for the bundled contract
        scenarios = default_scenarios_dir()
    return {
        "openapi": tuple(openapi),
        "overlays": tuple(overlays),
        "scenarios_dir": scenarios,
        "seed": int(seed) if seed is not None else None,
    }


class MockServer:
    """What a test gets from the ``mockserver`` fixture."""

    def __init__(self, server: ServerThread) -> None:
        self._server = server

    @property
    def url(self) -> str:
        """Base URL, such as ``http://127.0.0.1:PORT``."""
        return self._server.url

    def reset(self) -> None:
        self._server.call(self._server.mock.reset)

    def use(self, name: str | None, *, api_key: str | None = None, token: str | None = None) -> "_Selection":
        """Select a scenario (for everyone, or for one API key or token); also a context manager."""
        from .scenarios import UnknownScenario

        # An empty credential must not fall through to "everyone": a test that binds a scenario
        # to a key it forgot to fill in would pass or fail for every other client too.
        if api_key is not None and token is not None:
            raise ValueError("give api_key or token, not both: a scenario is bound to one credential")
        for argument, value in (("api_key", api_key), ("token", token)):
            if value == "":
                raise ValueError(f"{argument} is empty: give the one the client sends, "
                                 f"or leave {argument} out to select the scenario for every client")
        kind, credential = (("api_key", api_key) if api_key is not None
                            else ("token", token) if token is not None else (None, None))
        book = self._server.mock.book
        previous = self._server.call(lambda: book.active) if kind is None else None
        try:
            self._server.call(book.select, name, kind, credential)
        except UnknownScenario:
            known = ", ".join(sorted(book.scenarios)) or "none"
            raise ValueError(f"unknown scenario {name!r}; loaded scenarios: {known}") from None
        return _Selection(self, previous, kind, credential)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The journal, oldest first (secrets redacted), as the admin API shows it."""
        return self._server.call(self._server.mock.journal.snapshot)

    def assert_called(self, times: int | None = None, *, method: str | None = None,
                      path: str | None = None, status: int | None = None) -> list[dict[str, Any]]:
        """Assert requests were received (exactly ``times`` if given); returns the matching ones."""
        entries = self.requests
        hits = [e for e in entries if _fits(e, method, path, status)]
        if (times is None and not hits) or (times is not None and len(hits) != times):
            wanted = "at least 1" if times is None else str(times)
            raise AssertionError(
                f"expected {wanted} request(s){_describe(method, path, status)}, got {len(hits)}.\n"
                + _received(entries))
        return hits

    def assert_called_with(self, body: Any = None, *, headers: dict[str, str] | None = None,
                           method: str | None = None, path: str | None = None,
                           query: dict[str, str] | None = None) -> dict[str, Any]:
        """Assert some request matched (body as a subset); on failure show the closest ones."""
        from .scenarios import subset_matches

        entries = [e for e in self.requests if _fits(e, method, path, None)]
        wanted_headers = {k.lower(): v for k, v in (headers or {}).items()}
        for entry in entries:
            if ((body is None or subset_matches(body, entry["body"]))
                    and subset_matches(wanted_headers, entry["headers"])
                    and (query is None or subset_matches(query, entry["query"]))):
                return entry
        closest = sorted(entries, key=lambda e: -_closeness(body, e["body"]))[:3]
        lines = [f"no request{_describe(method, path, None)} matched"]
        if body is not None:
            lines.append(f"  expected body to contain: {body!r}")
        if headers:
            lines.append(f"  expected headers: {headers!r}")
        if query:
            lines.append(f"  expected query: {query!r}")
        lines.append(_received(closest, title="closest requests received") if closest else "no requests were received")
        raise AssertionError("\n".join(lines))

    def assert_not_called(self, *, method: str | None = None, path: str | None = None) -> None:
        self.assert_called(0, method=method, path=path)

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery attempt to a webhook receiver, oldest first."""
        return self._server.call(self._server.mock.deliveries.snapshot)

    def emit(self, event_type: str, data: dict[str, Any] | None = None, platform: str | None = None) -> dict[str, Any]:
        """Send an event (such as ``INVOICE.CREATED``) to every webhook that selects it."""
        result = self._server.call(self._server.mock.deliveries.emit, event_type, data, platform)
        if not isinstance(result, dict):
            raise ValueError(result.message)
        return result

    def wait_for_deliveries(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until at least ``count`` delivery attempts were made; deliveries run in the background."""
        deadline = time.monotonic() + timeout
        while True:
            attempts = self.deliveries
            if len(attempts) >= count:
                return attempts
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} delivery attempt(s) within {timeout:g} s, got "
                                     f"{len(attempts)}: {attempts!r}")
            time.sleep(0.01)


class _Selection:
    """Undoes ``use()`` when used as a context manager."""

    def __init__(self, mock: MockServer, previous: str | None, kind: str | None, credential: str | None) -> None:
        self._mock, self._previous, self._kind, self._credential = mock, previous, kind, credential

    def __enter__(self) -> MockServer:
        return self._mock

    def __exit__(self, *exc: object) -> None:
        book = self._mock._server.mock.book
        self._mock._server.call(book.select, self._previous if self._kind is None else None,
                                self._kind, self._credential)


def _fits(entry: dict[str, Any], method: str | None, path: str | None, status: int | None) -> bool:
    return ((method is None or entry["method"] == method.upper())
            and (path is None or entry["path"] == path)
            and (status is None or entry["status"] == status))


def _describe(method: str | None, path: str | None, status: int | None) -> str:
    parts = [p for p in (method and method.upper(), path) if p]
    text = (" to " + " ".join(parts)) if parts else ""
    return text + (f" answered {status}" if status is not None else "")


def _received(entries: list[dict[str, Any]], title: str = "requests received") -> str:
    if not entries:
        return "no requests were received"
    rows = [f"{title} ({len(entries)}):"]
    for e in entries[-10:]:
        rows.append(f"  {e['method']} {e['path']} -> {e['status']} body={e['body']!r}")
    return "\n".join(rows)


def _closeness(expected: Any, actual: Any) -> int:
    """How many of the expected top-level keys the body has right."""
    from .scenarios import subset_matches

    if not isinstance(expected, dict) or not isinstance(actual, dict):
        return 0
    return sum(1 for k, v in expected.items() if k in actual and subset_matches(v, actual[k]))


@pytest.fixture(scope="session")
def mockserver_session(pytestconfig: pytest.Config) -> Iterator[ServerThread]:
    """The session's server; started the first time a test asks for ``mockserver``."""
    from .app import build_mock, create_app
    from .server import ServerThread

    settings = _settings(pytestconfig)
    mock = build_mock(**settings, fast_retries=True, hot_reload=False)
    server = ServerThread(create_app(mock=mock)).start()
    yield server
    server.stop()


@pytest.fixture
def mockserver(mockserver_session: ServerThread, request: pytest.FixtureRequest) -> Iterator[MockServer]:
    """A running mock with a clean journal and scenario state; ``@pytest.mark.mockserver(scenario=...)`` selects one."""
    handle = MockServer(mockserver_session)
    handle.reset()
    marker = request.node.get_closest_marker("mockserver")
    if marker is not None and marker.kwargs.get("scenario"):
        handle.use(marker.kwargs["scenario"])
    yield handle


@pytest.fixture
def mockserver_app(pytestconfig: pytest.Config) -> Any:
    """A factory of in-process mock Applications (for pytest-aiohttp's ``aiohttp_client``)."""
    from .app import create_app

    settings = _settings(pytestconfig)

    def factory(**overrides: Any) -> Any:
        return create_app(**{**settings, "hot_reload": False, **overrides})

    return factory
