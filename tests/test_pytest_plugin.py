"""The pytest plugin, tested from the outside with pytester."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import SCENARIOS

pytest_plugins = ["conftest_redis"]  # redis_url: a real server for the state setting


HELPERS = '''
import json, urllib.error, urllib.request

def post(base, body, headers=None):
    req = urllib.request.Request(base + "/v1/webhooks", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())

HOOK = {"url": "https://example.com/hook", "name": "Hook", "reference": "ref"}
KEY = {"X-API-KEY": "k"}
'''


INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture
def suite(pytester):
    pytester.makepyfile(helpers=HELPERS)
    pytester.makeini(INI)
    return pytester


def test_fixture_needs_no_conftest(suite):
    suite.makepyfile(test_plain='''
        from helpers import post, HOOK, KEY

        def test_x(mockserver):
            assert mockserver.url.startswith("http://127.0.0.1:")
            status, body = post(mockserver.url, HOOK, KEY)
            assert status == 201 and body["object_type"] == "WEBHOOK"
            mockserver.assert_called(times=1)
            mockserver.assert_called_with(body={"name": "Hook"}, method="POST", path="/v1/webhooks")
    ''')
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_state_never_leaks_from_one_test_to_the_next(suite):
    suite.makepyfile(test_order='''
        from helpers import post, HOOK, KEY

        def test_first(mockserver):
            mockserver.use("internal-error")
            mockserver.use("unauthorised", api_key="k2")
            assert post(mockserver.url, HOOK, KEY)[0] == 500

        def test_second(mockserver):
            assert mockserver.requests == []
            assert post(mockserver.url, HOOK, KEY)[0] == 201
            assert post(mockserver.url, HOOK, {"X-API-KEY": "k2"})[0] == 201
            assert len(mockserver.requests) == 2
    ''')
    suite.runpytest("-p", "no:cacheprovider", "-p", "no:randomly").assert_outcomes(passed=2)


def test_marker_selects_a_scenario_for_one_test(suite):
    suite.makepyfile(test_marker='''
        import pytest
        from helpers import post, HOOK, KEY

        @pytest.mark.mockserver(scenario="unauthorised")
        def test_refused(mockserver):
            status, body = post(mockserver.url, HOOK, KEY)
            assert status == 401 and body["code"] == "UNAUTHORISED"

        def test_after(mockserver):
            assert post(mockserver.url, HOOK, KEY)[0] == 201
    ''')
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_use_is_a_context_manager_and_rejects_unknown_names(suite):
    suite.makepyfile(test_use='''
        import pytest
        from helpers import post, HOOK, KEY

        def test_use(mockserver):
            with mockserver.use("missing-permission"):
                assert post(mockserver.url, HOOK, KEY)[0] == 403
            assert post(mockserver.url, HOOK, KEY)[0] == 201
            with mockserver.use("internal-error", token="t1"):
                assert post(mockserver.url, HOOK, {"Authorization": "Bearer t1"})[0] == 500
                assert post(mockserver.url, HOOK, KEY)[0] == 201
            assert post(mockserver.url, HOOK, {"Authorization": "Bearer t1"})[0] == 201
            with pytest.raises(ValueError, match="unknown scenario 'nope'"):
                mockserver.use("nope")
    ''')
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_use_refuses_an_empty_credential_or_two_of_them(suite):
    suite.makepyfile(test_credentials='''
        import pytest
        from helpers import post, HOOK, KEY

        def test_refused(mockserver):
            with pytest.raises(ValueError, match="^api_key is empty"):
                mockserver.use("internal-error", api_key="")
            with pytest.raises(ValueError, match="^token is empty"):
                mockserver.use("internal-error", token="")
            with pytest.raises(ValueError, match="not both"):
                mockserver.use("internal-error", api_key="k", token="t")
            # none of them selected anything, for anyone
            assert post(mockserver.url, HOOK, KEY)[0] == 201
            assert post(mockserver.url, HOOK, {"Authorization": "Bearer t"})[0] == 201
    ''')
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_assertion_failures_show_expected_and_closest_requests(suite):
    suite.makepyfile(test_fail='''
        from helpers import post, HOOK, KEY

        def test_count(mockserver):
            post(mockserver.url, HOOK, KEY)
            mockserver.assert_called(times=2, path="/v1/webhooks")

        def test_body(mockserver):
            post(mockserver.url, dict(HOOK, name="Other"), KEY)
            post(mockserver.url, {"url": "nope"}, KEY)
            mockserver.assert_called_with(body={"name": "Hook", "url": "https://example.com/hook"})
    ''')
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*expected 2 request(s) to /v1/webhooks, got 1.*",
        "*POST /v1/webhooks -> 201 body=*",
    ])
    result.stdout.fnmatch_lines([
        "*no request matched*",
        "*expected body to contain: {'name': 'Hook', 'url': 'https://example.com/hook'}*",
        "*closest requests received (2):*",
        "*'name': 'Other'*",
    ])


def test_options_from_the_command_line_and_the_ini_file(suite, tmp_path):
    custom = tmp_path / "custom-scenarios"
    custom.mkdir()
    (custom / "teapot-free.yaml").write_text("rules:\n  - respond: {status: 403}\n")
    suite.makeini(f"{INI}mockserver_scenarios_dir = {custom}\nmockserver_seed = 5\n")
    suite.makepyfile(test_opts='''
        import pytest
        from helpers import post, HOOK, KEY

        ids = []

        @pytest.mark.mockserver(scenario="teapot-free")
        def test_custom_dir(mockserver):
            assert post(mockserver.url, HOOK, KEY)[0] == 403

        def test_seeded(mockserver):
            ids.append(post(mockserver.url, HOOK, KEY)[1]["id"])
            print("SEEDED-ID", ids[-1])
    ''')
    first = suite.runpytest("-p", "no:cacheprovider", "-s")
    first.assert_outcomes(passed=2)
    second = suite.runpytest("-p", "no:cacheprovider", "-s", "--mockserver-seed", "5")
    third = suite.runpytest("-p", "no:cacheprovider", "-s", "--mockserver-seed", "6",
                            f"--mockserver-scenarios-dir={SCENARIOS}", "-k", "seeded")
    pick = lambda r: [line for line in r.outlines if "SEEDED-ID" in line]
    assert pick(first) == pick(second) != []
    assert pick(third) != pick(first)


def test_isolation_holds_under_xdist(suite):
    suite.makepyfile(test_par='''
        import pytest
        from helpers import post, HOOK, KEY

        @pytest.mark.parametrize("i", range(12))
        def test_isolated(mockserver, i):
            assert mockserver.requests == []
            if i % 2:
                mockserver.use("internal-error")
                assert post(mockserver.url, HOOK, KEY)[0] == 500
            else:
                assert post(mockserver.url, HOOK, KEY)[0] == 201
            assert len(mockserver.requests) == 1
    ''')
    suite.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2").assert_outcomes(passed=12)


def test_in_process_app_factory_works_with_aiohttp_client(suite):
    suite.makepyfile(test_inproc='''
        from mockserver import create_app

        async def test_in_process(aiohttp_client, mockserver_app):
            client = await aiohttp_client(mockserver_app(seed=1))
            resp = await client.post("/v1/webhooks", json={"url": "https://a.example", "name": "n", "reference": "r"},
                                     headers={"X-API-KEY": "k"})
            assert resp.status == 201

        async def test_top_level_factory(aiohttp_client):
            client = await aiohttp_client(create_app())
            assert (await client.get("/__mock/health")).status == 200
    ''')
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_when_respond_answers_once_then_the_contract_answers_and_is_undone_after_the_test(suite):
    suite.makepyfile(test_when='''
        import json, urllib.request
        from helpers import post, HOOK, KEY

        def test_scripted(mockserver):
            rule = mockserver.when(method="POST", path="/v1/webhooks", body={"name": "Hook"},
                                   headers={"X-API-KEY": "k"}).respond(status=500, body={"message": "down"}, times=1)
            assert rule.calls == 0
            assert post(mockserver.url, dict(HOOK, name="Other"), KEY)[0] == 201  # body does not match
            assert post(mockserver.url, HOOK, {"X-API-KEY": "k2"})[0] == 201     # header does not match
            status, body = post(mockserver.url, HOOK, KEY)
            assert (status, body["code"], body["message"]) == (500, "INTERNAL_ERROR", "down")
            assert post(mockserver.url, HOOK, KEY)[0] == 201                     # times=1 is used up
            assert rule.calls == 1
            rule.assert_called(times=1)
            rule.assert_called()

        def test_after(mockserver):
            assert post(mockserver.url, HOOK, KEY)[0] == 201
            with urllib.request.urlopen(mockserver.url + "/__mock/scenarios") as resp:
                listed = json.loads(resp.read())["scenarios"]
            assert [s["name"] for s in listed if s["origin"] == "runtime"] == []
            assert "internal-error" in [s["name"] for s in listed]
    ''')
    suite.runpytest("-p", "no:cacheprovider", "-p", "no:randomly").assert_outcomes(passed=2)


def test_when_rules_are_tried_in_the_order_given_and_count_separately(suite):
    suite.makepyfile(test_order='''
        import pytest
        from helpers import post, HOOK, KEY

        def test_order(mockserver):
            first = mockserver.when("POST", body={"name": {"regex": "slow.*"}}).respond(401, times=2)
            second = mockserver.when(method="POST").respond(status=403, delay_ms=1)
            assert post(mockserver.url, dict(HOOK, name="slowly"), KEY)[0] == 401
            assert post(mockserver.url, HOOK, KEY)[0] == 403
            assert post(mockserver.url, dict(HOOK, name="slower"), KEY)[0] == 401
            assert post(mockserver.url, dict(HOOK, name="slower"), KEY)[0] == 403  # first is used up
            assert (first.calls, second.calls) == (2, 2)
            with pytest.raises(AssertionError, match="to answer 5 time.s., it answered 2"):
                second.assert_called(times=5)
    ''')
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_when_and_add_scenario_are_checked_against_the_contract(suite):
    suite.makepyfile(test_checked='''
        import pytest
        from helpers import post, HOOK, KEY

        def test_bad_status(mockserver):
            with pytest.raises(ValueError) as caught:
                mockserver.when(method="POST").respond(status=418)
            assert str(caught.value) == ("mockserver.when(...).respond(...): at respond.status: status 418 is not a "
                                         "status of the contract here; use one of 200, 201, 400, 401, 403, 404, 409, 500")
            with pytest.raises(ValueError, match="at respond.body.id: body breaks the contract's 201 schema"):
                mockserver.when(method="POST").respond(status=201, body={"id": 5})
            with pytest.raises(ValueError, match=r"^mockserver.add_scenario[(]'mine'[)]: at rules.1.times: "):
                mockserver.add_scenario("mine", rules=[{"respond": {"status": 500}},
                                                       {"times": 0, "respond": {"status": 500}}])
            with pytest.raises(ValueError, match="defined by the file .*flaky.yaml"):
                mockserver.add_scenario("flaky", rules=[])
            with pytest.raises(ValueError, match="invalid scenario name"):
                mockserver.add_scenario("no spaces", rules=[])
            # nothing above took effect
            assert post(mockserver.url, HOOK, KEY)[0] == 201

        @pytest.mark.mockserver(scenario="internal-error")
        def test_when_needs_the_server_wide_place(mockserver):
            with pytest.raises(ValueError, match="'internal-error' is selected for every client"):
                mockserver.when(method="POST").respond(status=401)
            assert post(mockserver.url, HOOK, KEY)[0] == 500

        def test_use_does_not_put_when_rules_aside_silently(mockserver):
            mockserver.when(method="POST").respond(status=401)
            with pytest.raises(ValueError, match="when.. rules are the server-wide scenario"):
                mockserver.use("internal-error")
            with mockserver.use("internal-error", api_key="other"):
                assert post(mockserver.url, HOOK, {"X-API-KEY": "other"})[0] == 500
                assert post(mockserver.url, HOOK, KEY)[0] == 401
    ''')
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)


def test_add_scenario_is_selected_like_a_file_and_undone_after_the_test(suite):
    suite.makepyfile(test_added='''
        import pytest
        from helpers import post, HOOK, KEY

        def test_added(mockserver):
            added = mockserver.add_scenario("teapot", description="refuses twice", rules=[
                {"times": 2, "respond": {"status": 403}},
                {"match": {"body": {"name": "Hook"}}, "respond": {"status": 401}},
            ])
            assert post(mockserver.url, HOOK, KEY)[0] == 201   # not selected yet
            with mockserver.use("teapot", api_key="k"):
                assert [post(mockserver.url, HOOK, KEY)[0] for _ in range(4)] == [403, 403, 401, 401]
                assert post(mockserver.url, HOOK, {"X-API-KEY": "k2"})[0] == 201
            assert added.calls == [2, 2]
            added.rules[1].assert_called(times=2)

        def test_after(mockserver):
            with pytest.raises(ValueError, match="unknown scenario 'teapot'"):
                mockserver.use("teapot")
    ''')
    suite.runpytest("-p", "no:cacheprovider", "-p", "no:randomly").assert_outcomes(passed=2)


def test_several_scenario_dirs_load_beside_the_bundled_library_unless_told_not_to(suite, tmp_path):
    first, second, third = (tmp_path / name for name in ("first", "second", "third"))
    for directory, name, status in ((first, "one", 401), (second, "two", 403), (third, "three", 401)):
        directory.mkdir()
        (directory / f"{name}.yaml").write_text(f"rules:\n  - respond: {{status: {status}}}\n")
    suite.makeini(f"{INI}mockserver_scenarios_dir = {first}, {second}\n")
    suite.makepyfile(test_dirs='''
        import json, os, urllib.request
        from helpers import post, HOOK, KEY

        def test_loaded(mockserver):
            with urllib.request.urlopen(mockserver.url + "/__mock/scenarios") as resp:
                names = sorted(s["name"] for s in json.loads(resp.read())["scenarios"])
            print("LOADED", ",".join(names))
    ''')
    loaded = lambda r: next(line for line in r.outlines if "LOADED " in line).split("LOADED ")[1].split()[0].split(",")
    ini = suite.runpytest("-p", "no:cacheprovider", "-s")
    ini.assert_outcomes(passed=1)
    assert {"one", "two", "internal-error", "flaky"} <= set(loaded(ini)) and "three" not in loaded(ini)
    repeated = suite.runpytest("-p", "no:cacheprovider", "-s", f"--mockserver-scenarios-dir={third}",
                               f"--mockserver-scenarios-dir={second},{first}")
    assert {"one", "two", "three", "internal-error"} <= set(loaded(repeated))
    alone = suite.runpytest("-p", "no:cacheprovider", "-s", "--mockserver-no-bundled-scenarios")
    assert loaded(alone) == ["one", "two"]
    suite.makeini(f"{INI}mockserver_scenarios_dir = {first}\nmockserver_no_bundled_scenarios = true\n")
    assert loaded(suite.runpytest("-p", "no:cacheprovider", "-s")) == ["one"]


def test_a_name_in_two_scenario_dirs_stops_the_session_with_one_line(suite, tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / "internal-error.yaml").write_text("rules:\n  - respond: {status: 401}\n")
    suite.makepyfile(test_clash='''
        def test_x(mockserver):
            pass
    ''')
    result = suite.runpytest("-p", "no:cacheprovider", f"--mockserver-scenarios-dir={own}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{own}/internal-error.yaml:1: scenario name 'internal-error' is already used by "
                                 f"{SCENARIOS}/internal-error.yaml (the bundled library; --no-bundled-scenarios "
                                 "leaves it out)*"])
    suite.runpytest("-p", "no:cacheprovider", f"--mockserver-scenarios-dir={own}",
                    "--mockserver-no-bundled-scenarios").assert_outcomes(passed=1)


HEAVY = ["aiohttp", "jsonschema", "faker", "mockserver.app", "mockserver.contract", "mockserver.server"]


def test_importing_the_plugin_loads_no_server_code():
    # pytest imports the plugin in every session of every project that installs the package.
    script = ("import sys, mockserver.pytest_plugin\n"
              f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
              "import mockserver\n"
              "print(sorted(n for n in mockserver.__all__ if getattr(mockserver, n) is None))\n"
              "from mockserver import create_app, LoadErrors\n"
              "print(create_app.__module__, LoadErrors.__module__)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "[]", "mockserver.app mockserver.errors"]


def test_a_session_that_never_asks_for_the_fixture_loads_no_server_code(suite):
    suite.makepyfile(test_other=f'''
        import sys

        def test_untouched():
            assert [m for m in {HEAVY[3:]!r} if m in sys.modules] == []
    ''')
    suite.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_isolation_holds_under_xdist_with_state_on_redis(suite, redis_url):
    import redis

    suite.makepyfile(test_shared='''
        import pytest
        from helpers import post, HOOK, KEY

        @pytest.mark.parametrize("i", range(8))
        def test_isolated(mockserver, i):
            assert mockserver.requests == []
            mockserver.when("POST", "/v1/webhooks").respond(403 if i % 2 else 500, times=1)
            assert post(mockserver.url, HOOK, KEY)[0] == (403 if i % 2 else 500)
            status, hook = post(mockserver.url, HOOK, KEY)
            assert status == 201
            assert len(mockserver.requests) == 2
            mockserver.assert_called(times=1, path="/v1/webhooks", status=201)
    ''')
    suite.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", f"--mockserver-state={redis_url}",
                               ).assert_outcomes(passed=8)
    client = redis.Redis.from_url(redis_url)
    try:
        prefixes = {key.split(b":")[0] for key in client.scan_iter(match="mockserver-pytest-*")}
        # One prefix per xdist worker, each its own run: the state was on Redis, not in memory.
        assert sorted(p.split(b"-")[2] for p in prefixes) == [b"gw0", b"gw1"]
        for key in list(client.scan_iter(match="mockserver-pytest-*")):
            client.delete(key)
    finally:
        client.close()
