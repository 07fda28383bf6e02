"""A plain `pip install .` in a fresh virtual environment: bundled spec, console script, pytest plugin."""

from __future__ import annotations

import shutil
import subprocess
import venv

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A new venv with the project installed the way a user would (not editable)."""
    where = tmp_path_factory.mktemp("venv")
    source = where / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info"))
    venv.EnvBuilder(with_pip=True).create(where / "env")
    python = where / "env" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(source)], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return python


def test_installed_package_finds_its_bundled_spec_and_scenarios(installed, tmp_path):
    result = subprocess.run([str(installed.parent / "mockserver"), "check"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "_bundled" in result.stdout and "10 scenario(s)" in result.stdout


def test_plugin_works_with_no_conftest(installed, tmp_path):
    (tmp_path / "test_consumer.py").write_text(
        "import json, urllib.request\n\n"
        "def test_x(mockserver):\n"
        "    req = urllib.request.Request(mockserver.url + '/v1/webhooks', method='POST',\n"
        "        data=json.dumps({'url': 'https://a.example', 'name': 'n', 'reference': 'r'}).encode(),\n"
        "        headers={'Content-Type': 'application/json', 'X-API-KEY': 'k'})\n"
        "    with urllib.request.urlopen(req) as resp:\n"
        "        assert resp.status == 201\n"
        "    mockserver.assert_called(times=1)\n")
    subprocess.run([str(installed), "-m", "pip", "install", "--quiet", "pytest"], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    result = subprocess.run([str(installed), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
