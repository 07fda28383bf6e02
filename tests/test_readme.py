"""The README's pytest examples run as written."""

from __future__ import annotations

import re

from conftest import ROOT


def test_receiver_example_in_the_readme_passes(pytester):
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(# test_receiver\.py.*?)```", readme, re.S).group(1)
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_receiver=code)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_pytest_example_in_the_readme_passes(pytester):
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(# test_webhooks\.py.*?)```", readme, re.S).group(1)
    assert "requests" not in code.replace("requests_", "")  # only what mockserver[pytest] installs
    pytester.makepyfile(test_webhooks=code)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)
