"""Command line: ``mockserver serve``, ``proxy``, ``check``, ``openapi``, ``routes`` and ``diff``.

``run(argv, stdout, stderr) -> int`` does all the work so it can be tested without a
subprocess; ``main()`` only calls ``sys.exit``. Load problems are printed as one
line per broken file, never as a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import json
import logging
import os
import sys
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Sequence, TextIO

from . import __version__, logs, openapi, verify
from .app import build_mock, create_app
from .contract import Contract
from .mock import contract_for, scenario_directories
from .settings import DEFAULT_QUEUE_LIMIT, STATE_VARIABLE, Settings
from .errors import LoadError, LoadErrors
from .journal import DEFAULT_LIMIT
from .scenarios import UnknownScenario, load_scenarios
from .server import new_event_loop, serve_until_signal


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mockserver", description="Contract mock of the Solvimon webhooks API.")
    parser.add_argument("--version", action="version", version=f"mockserver {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the mock")
    serve.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    _common(serve)
    serve.add_argument("--scenario", default=None, help="scenario answering every request (default: none)")
    serve.add_argument("--seed", type=int, default=None, help="make bodies and request ids reproducible")
    serve.add_argument("--strict", action="store_true", help="reject body fields the contract does not name")
    serve.add_argument("--max-body-bytes", type=int, default=1024 * 1024, help="largest accepted body (default 1 MiB)")
    serve.add_argument("--journal-limit", type=int, default=DEFAULT_LIMIT,
                       help=f"requests kept in the journal (default {DEFAULT_LIMIT})")
    serve.add_argument("--store-limit", type=int, default=10_000,
                       help="webhooks kept in memory in all; the oldest is forgotten first (default 10000)")
    keys = serve.add_mutually_exclusive_group()
    keys.add_argument("--api-key", action="append", default=None, metavar="KEY",
                      help="accept only this API key or bearer token (repeatable; default: any non-empty one)")
    keys.add_argument("--allow-any-key", action="store_true",
                      help="accept any non-empty key even when --host is not a loopback address")
    serve.add_argument("--admin-token", default=None, help="require this token on /__mock/ routes (not health)")
    serve.add_argument("--shutdown-grace", type=float, default=5.0,
                       help="seconds in-flight requests get to finish on SIGTERM (default 5)")
    serve.add_argument("--read-timeout", type=float, default=10.0,
                       help="seconds a client gets to send its whole body (default 10)")
    serve.add_argument("--idle-timeout", type=float, default=15.0,
                       help="seconds before a connection that sends no complete request is closed (default 15)")
    serve.add_argument("--delivery-timeout", type=float, default=10.0,
                       help="seconds a webhook receiver gets to answer a delivery (default 10)")
    serve.add_argument("--fast-retries", action="store_true",
                       help="retry failed deliveries after milliseconds instead of seconds (for tests)")
    serve.add_argument("--delivery-allow-host", action="append", default=[], metavar="HOST",
                       help="also deliver to this host (default: loopback only; '*' allows every host)")
    serve.add_argument("--delivery-queue-limit", type=int, default=DEFAULT_QUEUE_LIMIT, metavar="N",
                       help="events held per webhook while it is in the penalty box; more are dropped and "
                            f"counted (default {DEFAULT_QUEUE_LIMIT})")
    serve.add_argument("--cors-allow-origin", action="append", default=[], metavar="ORIGIN",
                       help="let web pages of this origin (such as http://localhost:3000) call the mock; "
                            "other origins are refused (repeatable)")
    serve.add_argument("--no-reload", action="store_true", help="do not reload changed scenario files")
    serve.add_argument("--state", default=os.environ.get(STATE_VARIABLE) or None, metavar="URL",
                       help="keep run-time state (resources, journal, scenario choices and counters, deliveries) "
                            "in Redis: redis://[:PASSWORD@]HOST:PORT/DB or rediss://...; every replica given the same "
                            f"URL and --state-prefix answers as one mock (default: ${STATE_VARIABLE}, else in this "
                            f"process; set ${STATE_VARIABLE} to keep a password out of the process list)")
    serve.add_argument("--state-prefix", default="mockserver", metavar="PREFIX",
                       help="key prefix in the state store; replicas of one mock share it (default mockserver)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="processes serving the port (SO_REUSEPORT); above 1 needs --state (default 1)")
    serve.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--log-level", default="INFO", type=str.upper,
                       choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], help="default INFO")

    proxy = commands.add_parser("proxy", help="forward to the real API and report where it breaks the contract")
    proxy.add_argument("--upstream", required=True, metavar="URL",
                       help="the API to forward to, such as https://api.example.com (only ever this one)")
    proxy.add_argument("--upstream-timeout", type=float, default=30.0, metavar="S",
                       help="seconds the upstream gets to answer; slower is a 502 (default 30)")
    proxy.add_argument("--record", type=Path, default=None, metavar="DIR",
                       help="write the upstream's answers to DIR as a scenario that `serve --scenarios-dir DIR` replays")
    proxy.add_argument("--record-name", default="recorded", metavar="NAME",
                       help="name of the recorded scenario and its file NAME.yaml (default recorded)")
    proxy.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    proxy.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    _contract_options(proxy)
    proxy.add_argument("--seed", type=int, default=None, help="make the secrets written by --record reproducible")
    proxy.add_argument("--max-body-bytes", type=int, default=1024 * 1024,
                       help="largest request body passed on (default 1 MiB)")
    proxy.add_argument("--journal-limit", type=int, default=DEFAULT_LIMIT,
                       help=f"exchanges kept in the journal (default {DEFAULT_LIMIT})")
    proxy.add_argument("--admin-token", default=None, help="require this token on /__mock/ routes (not health)")
    proxy.add_argument("--shutdown-grace", type=float, default=5.0,
                       help="seconds in-flight requests get to finish on SIGTERM (default 5)")
    proxy.add_argument("--read-timeout", type=float, default=10.0,
                       help="seconds a client gets to send its whole body (default 10)")
    proxy.add_argument("--idle-timeout", type=float, default=15.0,
                       help="seconds before a connection that sends no complete request is closed (default 15)")
    proxy.add_argument("--cors-allow-origin", action="append", default=[], metavar="ORIGIN",
                       help="let web pages of this origin call the proxy (repeatable)")
    proxy.add_argument("--log-level", default="INFO", type=str.upper,
                       choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], help="default INFO")

    check = commands.add_parser("check", help="check the spec and scenario files, report every problem")
    _common(check)

    describe = commands.add_parser("openapi", help="print the OpenAPI 3.1 document of the served contract")
    _contract_options(describe)

    routes = commands.add_parser("routes", help="list every operation with its method, path and behaviour")
    _contract_options(routes)

    drift = commands.add_parser("diff", help="compare two OpenAPI documents; exit 1 when something breaking changed")
    drift.add_argument("old", help="the older document (a file, or 'bundled' for the bundled webhooks document)")
    drift.add_argument("new", help="the newer document (a file, or 'bundled')")
    drift.add_argument("--format", choices=["table", "json"], default="table", help="default: table")
    verify.add_parser(commands, _contract_options)
    return parser


def _contract_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--openapi", action="append", type=Path, default=[], metavar="FILE",
                        help="serve this OpenAPI 3.0/3.1 document (JSON or YAML; repeatable) instead of the "
                             "bundled contract")
    parser.add_argument("--overlay", action="append", default=[], metavar="FILE_OR_NAME",
                        help="apply this OpenAPI Overlay 1.0.0 to the documents, in the order given (repeatable); "
                             "'solvimon' and 'solvimon-webhooks' name the bundled ones")


def _common(parser: argparse.ArgumentParser) -> None:
    _contract_options(parser)
    parser.add_argument("--scenarios-dir", type=Path, action="append", default=[], metavar="DIR",
                        help="scenario directory (repeatable); loaded beside the bundled scenario library, "
                             "which comes with the bundled contract")
    parser.add_argument("--no-bundled-scenarios", action="store_true",
                        help="leave the bundled scenario library out (to reuse one of its names, say)")


def run(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = _parser()
    try:
        # argparse prints help, version and usage errors to sys.stdout/sys.stderr itself
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.command == "diff":
        from .contract.build import bundled_document
        from .contract.diff import run_diff

        def named(value: str) -> Path:
            return bundled_document() if value == "bundled" else Path(value)

        return run_diff(named(args.old), named(args.new), args.format, out, err)
    if args.command in ("openapi", "routes"):
        return _describe(args, out, err)
    if args.command == "proxy":
        return _proxy(args, out, err)
    if args.command == "verify":
        return verify.run(args, out, err)
    if args.command == "serve" and ((problem := _exposure_problem(args)) is not None
                                    or (problem := _state_problem(args)) is not None):
        print(f"mockserver: error: {problem}", file=err)
        return 2
    if args.command == "serve" and args.workers > 1:
        from .workers import supervise

        given = list(argv if argv is not None else sys.argv[1:])
        return supervise(given[given.index("serve") + 1:], args.host, args.port, args.workers, args.seed,
                         args.shutdown_grace, out, err, state=args.state)
    # The bundled library is written for the bundled contract: with another, only the user's.
    scenarios = Settings(scenarios_dir=args.scenarios_dir,
                         bundled_scenarios=not args.no_bundled_scenarios and not args.openapi)
    if args.command == "check":
        return _check(args, scenarios, out, err)
    return _serve(args, scenarios, out, err)


def _contract(args: argparse.Namespace, full_check: bool = False) -> Contract:
    return contract_for(Settings(openapi=args.openapi, overlays=args.overlay),
                        full_check=full_check)


def _is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: hosts no other machine can reach."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def _exposure_problem(args: argparse.Namespace) -> str | None:
    """Why serving as asked would open the mock to other machines by accident, or None.

    Off loopback the mock is a service anyone on the network can call, and by default it
    accepts any key; that has to be a choice, not the side effect of one ``--host`` flag.
    """
    if _is_loopback(args.host) or args.api_key or args.allow_any_key:
        return None
    return (f"--host {args.host or repr(args.host)} exposes the mock beyond this machine, where it would "
            "accept any API key; give --api-key KEY (repeatable) to accept only known keys, "
            "or --allow-any-key to accept any")


def _state_problem(args: argparse.Namespace) -> str | None:
    """Why the state store and workers asked for cannot serve, or None. An unreachable store is
    found here, before anything listens: one line naming it without its password."""
    if args.workers < 1:
        return "--workers must be 1 or more"
    if args.workers > 1 and not args.state:
        return (f"--workers {args.workers} needs --state redis://HOST:PORT/DB: each worker is a process of its "
                "own, and without a shared state store they would be different mocks behind one port")
    if not args.state:
        return None
    from .state import StateUnavailable
    from .state.redis import open_state

    async def reach() -> None:
        state = await open_state(args.state, args.state_prefix)
        await state.close()

    try:
        asyncio.run(reach())
    except (ValueError, StateUnavailable) as exc:
        return str(exc)
    return None


def _check(args: argparse.Namespace, chosen: Settings, out: TextIO, err: TextIO) -> int:
    try:
        contract = _contract(args, full_check=True)
    except (LoadError, LoadErrors) as exc:
        _report(exc, err)
        return 2
    directories = scenario_directories(chosen)
    try:
        scenarios = load_scenarios(directories, contract)
    except (LoadError, LoadErrors) as exc:
        _report(exc, err)
        return 2
    # The line names the directories the user gave; the bundled library beside them was checked
    # too (a clash with it is an error above), and is named when it is the only one.
    named = [d for d in directories if d.resolve() in {g.resolve() for g in chosen.scenarios_dir}] or list(directories)
    inside = {d.resolve() for d in named}
    count = sum(1 for s in scenarios.values() if Path(s.source).parent.resolve() in inside)
    print(f"ok: {contract.source}: {len(contract.operations)} operation(s); "
          f"{count} scenario(s)" + (f" in {', '.join(map(str, named))}" if named else ""), file=out)
    return 0


def _describe(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``openapi``: the effective document; ``routes``: one line per operation."""
    try:
        contract = _contract(args)
    except (LoadError, LoadErrors) as exc:
        _report(exc, err)
        return 2
    if args.command == "openapi":
        print(json.dumps(openapi.document(contract), indent=2), file=out)
        return 0
    rows = [(op.method, op.path, op.operation_id, _behaviour(op),
             op.behaviour_source or ("spec" if op.behaviour else "convention" if op.parent else "-"))
            for op in sorted(contract.operations, key=lambda o: (o.path, o.method))]
    widths = [max(len(r[i]) for r in rows + [("METHOD", "PATH", "OPERATION", "BEHAVIOUR", "FROM")]) for i in range(5)]
    for row in [("METHOD", "PATH", "OPERATION", "BEHAVIOUR", "FROM"), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=out)
    return 0


def _behaviour(op: Any) -> str:
    kind = op.behaviour.kind + (f" {op.behaviour.action}" if op.behaviour.action else "") if op.behaviour else "generate"
    return kind + (f" (404 unless {op.parent[1]} is stored)" if op.parent else "")


def _report(exc: LoadError | LoadErrors, err: TextIO) -> None:
    errors = exc.errors if isinstance(exc, LoadErrors) else [exc]
    for error in errors:
        print(f"mockserver: error: {error}", file=err)


def _serve(args: argparse.Namespace, chosen: Settings, out: TextIO, err: TextIO) -> int:
    try:
        mock = build_mock(Settings(
            openapi=args.openapi, overlays=args.overlay, scenarios_dir=chosen.scenarios_dir,
            bundled_scenarios=chosen.bundled_scenarios, scenario=args.scenario, seed=args.seed,
            strict=args.strict, max_body_bytes=args.max_body_bytes, journal_limit=args.journal_limit,
            store_limit=args.store_limit, read_timeout_s=args.read_timeout,
            delivery_timeout_s=args.delivery_timeout, delivery_queue_limit=args.delivery_queue_limit,
            fast_retries=args.fast_retries, delivery_allowed_hosts=args.delivery_allow_host,
            api_keys=args.api_key, admin_token=args.admin_token, cors_allow_origins=args.cors_allow_origin,
            hot_reload=not args.no_reload, state=args.state, state_prefix=args.state_prefix))
    except (LoadError, LoadErrors) as exc:
        _report(exc, err)
        return 2
    except UnknownScenario as exc:
        print(f"mockserver: error: unknown scenario {exc.args[0]!r} (see `mockserver check`)", file=err)
        return 2
    gc.collect()
    gc.freeze()  # everything loaded so far lives as long as the process: keep it out of every collection
    handler = logs.configure(args.log_level, err)
    logging.getLogger("mockserver").debug(
        "loaded %d operation(s) from %s and %d scenario(s)", len(mock.engine.contract.operations),
        mock.engine.contract.source, len(mock.book.scenarios))
    return _listen(create_app(mock=mock), args, out, err, handler)


def _proxy(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``proxy``: the contract's checks in front of the real API (see ``mockserver.proxy``)."""
    from .proxy import create_proxy_app

    try:
        mock = build_mock(Settings(
            openapi=args.openapi, overlays=args.overlay, seed=args.seed, max_body_bytes=args.max_body_bytes,
            journal_limit=args.journal_limit, read_timeout_s=args.read_timeout, admin_token=args.admin_token,
            cors_allow_origins=args.cors_allow_origin, hot_reload=False))
    except (LoadError, LoadErrors) as exc:
        _report(exc, err)
        return 2
    try:
        app = create_proxy_app(mock=mock, upstream=args.upstream, upstream_timeout=args.upstream_timeout,
                               record=args.record, record_name=args.record_name)
    except ValueError as exc:
        print(f"mockserver: error: {exc}", file=err)
        return 2
    gc.collect()
    gc.freeze()
    handler = logs.configure(args.log_level, err)
    logging.getLogger("mockserver").debug(
        "checking exchanges with %s against %d operation(s) from %s", args.upstream,
        len(mock.engine.contract.operations), mock.engine.contract.source)
    return _listen(app, args, out, err, handler)


def _listen(app: Any, args: argparse.Namespace, out: TextIO, err: TextIO, handler: logs.BufferedHandler) -> int:
    """Serve ``app`` until SIGINT or SIGTERM; prints the start-up line once it accepts connections."""
    def ready(url: str) -> None:
        print(f"listening on {url}", file=out, flush=True)

    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve_until_signal(app, args.host, args.port, ready, args.shutdown_grace,
                                          args.idle_timeout, tick=handler.tick,
                                          reuse_port=getattr(args, "reuse_port", False)))
    except BrokenPipeError:  # stdout's reader left (see main), not a problem with the socket
        raise
    except OSError as exc:
        hint = "; another process has it: pick another, or --port 0 for any free one" \
            if exc.errno == errno.EADDRINUSE else ""
        print(f"mockserver: error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}{hint}", file=err)
        return 1
    finally:
        handler.tick()
    return 0


def main() -> None:
    try:
        code = run()
        sys.stdout.flush()  # output still buffered meets a closed pipe here, not at exit
    except BrokenPipeError:
        # The reader stopped early (`mockserver openapi | head`): that is its choice, not our
        # failure, so exit 0 without a traceback. Python's docs on SIGPIPE: point stdout at
        # devnull so the flush at interpreter exit does not fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    sys.exit(code)
