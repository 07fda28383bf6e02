"""The command line: check and serve, in-process through run() and end to end as a process."""

from __future__ import annotations

import io
import json
import shlex
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import MINIMAL, SCENARIOS
from mockserver.cli import run

CONSOLE_SCRIPT = Path(sys.executable).parent / "mockserver"


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_check_passes_on_the_bundled_spec_and_scenarios():
    code, out, err = run_cli("check", "--scenarios-dir", str(SCENARIOS))
    assert code == 0, err
    assert "1 operation(s)" in out and "scenario(s)" in out


def test_check_reports_a_broken_document_in_one_line(tmp_path):
    doc = tmp_path / "api.yaml"
    doc.write_text("openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n      responses:\n"
                   "        '200': {description: ok, content: {application/json: {schema: {$ref: '#/nope'}}}}\n")
    code, out, err = run_cli("check", "--openapi", str(doc))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"mockserver: error: {doc}:7: ") and "#/nope" in lines[0]
    assert "Traceback" not in err


def test_check_reports_a_missing_document(tmp_path):
    code, _, err = run_cli("check", "--openapi", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "missing.yaml" in err and len(err.strip().splitlines()) == 1


def test_serve_refuses_a_broken_document_with_the_same_message(tmp_path):
    doc = tmp_path / "api.yaml"
    doc.write_text("{oops")
    _, _, check_err = run_cli("check", "--openapi", str(doc))
    code, out, err = run_cli("serve", "--openapi", str(doc), "--port", "0")
    assert code == 2
    assert err == check_err and err.startswith(f"mockserver: error: {doc}")
    assert "listening" not in out


def test_serve_refuses_an_unknown_scenario():
    code, _, err = run_cli("serve", "--port", "0", "--scenario", "no-such-scenario")
    assert code == 2
    assert "no-such-scenario" in err


def test_bad_arguments_exit_non_zero():
    code, _, _ = run_cli("serve", "--port", "not-a-number")
    assert code == 2


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.10", "example.com"])
def test_serve_refuses_a_public_host_unless_told_which_keys_to_accept(host, tmp_path):
    # A missing document shows whether start-up got as far as loading anything.
    code, out, err = run_cli("serve", "--host", host, "--port", "0", "--openapi", str(tmp_path / "missing.yaml"))
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mockserver: error: --host {host or repr(host)} ")
    assert "--api-key KEY" in lines[0] and "--allow-any-key" in lines[0]


@pytest.mark.parametrize("args", [
    ["--host", "0.0.0.0", "--api-key", "k"],
    ["--host", "0.0.0.0", "--api-key", "k", "--api-key", "k2"],
    ["--host", "::", "--allow-any-key"],
    ["--host", "127.0.0.1"], ["--host", "127.9.9.9"], ["--host", "::1"], ["--host", "localhost"],
    ["--host", "LOCALHOST"], ["--host", "127.0.0.1", "--allow-any-key"],
])
def test_serve_starts_on_a_public_host_with_a_key_policy_or_on_loopback(args, tmp_path):
    code, _, err = run_cli("serve", *args, "--port", "0", "--openapi", str(tmp_path / "missing.yaml"))
    assert code == 2  # got past the host check to loading the (missing) document
    assert "missing.yaml" in err and "--allow-any-key" not in err


def test_api_key_and_allow_any_key_contradict_each_other():
    code, _, err = run_cli("serve", "--host", "0.0.0.0", "--api-key", "k", "--allow-any-key")
    assert code == 2
    assert "not allowed with argument" in err


@pytest.mark.parametrize("command, reader", [("openapi", "head -1"), ("check", "true"), ("--version", "true")])
def test_output_into_a_pipe_closed_early_ends_quietly(command, reader):
    # openapi's 250 kB cannot fit a pipe's buffer, so the writer meets the closed end mid-print;
    # `true` reads nothing, so check and --version meet it when the last buffer is flushed.
    pipeline = f"set -o pipefail; {shlex.quote(str(CONSOLE_SCRIPT))} {command} | {reader}"
    result = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert result.stderr == ""
    assert result.returncode == 0


def start_server(*args: str, command: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    cmd = (command or [sys.executable, "-m", "mockserver"]) + ["serve", "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("listening on http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, line.split()[-1]


def post(url: str, body: dict, headers: dict) -> tuple[int, dict, dict]:
    req = urllib.request.Request(url + "/v1/webhooks", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_console_script_serves_and_stops_cleanly(sig):
    proc, url = start_server("--seed", "3", command=[str(CONSOLE_SCRIPT)])
    try:
        status, headers, body = post(url, MINIMAL, {"X-API-KEY": "k"})
        assert status == 201 and body["object_type"] == "WEBHOOK"
        status, _, body = post(url, MINIMAL, {})
        assert status == 401 and body["code"] == "UNAUTHORISED"
    finally:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_serve_logs_one_line_per_request_without_secrets():
    proc, url = start_server("--log-level", "DEBUG")
    try:
        post(url, {**MINIMAL, "password": "hunter2-secret", "api_key": "key-secret-123"},
             {"X-API-KEY": "header-secret-456"})
        post(url, MINIMAL, {"Authorization": "Bearer bearer-secret-789"})
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    access = [line for line in err.splitlines() if "mockserver.access" in line]
    assert len(access) == 2, err
    assert "POST /v1/webhooks 201" in access[0] and "reqr_" in access[0] and "ms" in access[0]
    for secret in ("hunter2-secret", "key-secret-123", "header-secret-456", "bearer-secret-789"):
        assert secret not in err


def test_serve_warns_when_bound_to_all_interfaces():
    proc = subprocess.Popen([sys.executable, "-m", "mockserver", "serve", "--host", "0.0.0.0", "--port", "0",
                             "--allow-any-key"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("listening on http://127.0.0.1:")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert "all interfaces" in err
    assert "admin routes" in err and "--admin-token" in err  # off loopback, say who can drive it


def test_a_port_in_use_is_one_line_that_suggests_port_0():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out, err = io.StringIO(), io.StringIO()
        assert run(["serve", "--port", str(port)], out, err) == 1
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0] and "--port 0" in lines[0], lines


# ------------------------------------------------------------------ several scenario directories


def scenario_dir(path: Path, **files: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, status in files.items():
        (path / f"{name}.yaml").write_text(f"rules:\n  - respond: {{status: {status}}}\n")
    return path


def test_check_takes_several_scenario_dirs_beside_the_bundled_library(tmp_path):
    first = scenario_dir(tmp_path / "first", one=401)
    second = scenario_dir(tmp_path / "second", two=403, three=500)
    code, out, err = run_cli("check", "--scenarios-dir", str(first), "--scenarios-dir", str(second))
    assert code == 0, err
    assert out.rstrip().endswith(f"; 3 scenario(s) in {first}, {second}")
    code, out, err = run_cli("check")
    assert code == 0 and out.rstrip().endswith(f"; 10 scenario(s) in {SCENARIOS}"), (out, err)
    code, out, err = run_cli("check", "--no-bundled-scenarios")
    assert code == 0 and out.rstrip().endswith("; 0 scenario(s)"), (out, err)


def test_a_name_in_two_places_is_one_line_naming_both_files(tmp_path):
    own = scenario_dir(tmp_path / "own", **{"internal-error": 401})
    for command in (["check"], ["serve", "--port", "0"]):
        code, out, err = run_cli(*command, "--scenarios-dir", str(own))
        assert code == 2 and "listening" not in out
        assert err == (f"mockserver: error: {own}/internal-error.yaml:1: scenario name 'internal-error' is already "
                       f"used by {SCENARIOS}/internal-error.yaml (the bundled library; --no-bundled-scenarios leaves "
                       "it out)\n")
    code, out, err = run_cli("check", "--scenarios-dir", str(own), "--no-bundled-scenarios")
    assert code == 0 and out.rstrip().endswith(f"; 1 scenario(s) in {own}"), err
    other = scenario_dir(tmp_path / "other", **{"one": 500})
    (own / "renamed.yml").write_text("name: one\nrules:\n  - respond: {status: 403}\n")
    code, _, err = run_cli("check", "--no-bundled-scenarios", "--scenarios-dir", str(other),
                           "--scenarios-dir", str(own))
    assert code == 2
    assert err == f"mockserver: error: {own}/renamed.yml:1: scenario name 'one' is already used by {other}/one.yaml\n"


@pytest.mark.parametrize("bundled", [True, False])
def test_serve_answers_from_several_dirs_and_the_bundled_library_unless_told_not_to(tmp_path, bundled):
    first = scenario_dir(tmp_path / "first", one=401)
    second = scenario_dir(tmp_path / "second", two=403)
    extra = [] if bundled else ["--no-bundled-scenarios"]
    proc, url = start_server("--scenarios-dir", str(first), "--scenarios-dir", str(second), *extra)
    try:
        answered = {name: post(url, MINIMAL, {"X-API-KEY": "k", "X-Mock-Scenario": name})[0]
                    for name in ("one", "two", "internal-error")}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    # an unknown name in X-Mock-Scenario is a 400, never a fall-through
    assert answered == {"one": 401, "two": 403, "internal-error": 500 if bundled else 400}
