"""API keys: every /v1 call, /openapi.json and /metrics need one when configured; keys are long;
wrong keys are rate-limited per address; health stays open and readiness says little."""

import subprocess
import sys

import pytest

from support import cerebro_env

KEY_ONE, KEY_TWO = "key-one-0123456789abcdef", "key-two-0123456789abcdef"


@pytest.fixture
def server(server_factory):
    """A server with two API keys configured."""
    return server_factory({"CEREBRO_MODULES_PACKAGE": "fixture_modules",
                           "CEREBRO_MODULES": "echo,broken_import",
                           "CEREBRO_API_KEYS": f"{KEY_ONE},{KEY_TWO}"})


def test_v1_needs_a_key(server):
    """No key or a wrong key is 401; either configured key works, by header or Bearer."""
    body = {"text": "a"}
    code, _, error = server.post("/v1/echo/say", body)
    assert code == 401 and error["error"]["type"] == "unauthorized"
    assert server.post("/v1/echo/say", body, {"X-API-Key": "key-three"})[0] == 401
    assert server.post("/v1/echo/say", body, {"X-API-Key": KEY_ONE[:-1]})[0] == 401
    assert server.post("/v1/echo/say", body, {"X-API-Key": KEY_ONE})[0] == 200
    assert server.post("/v1/echo/say", body, {"Authorization": f"Bearer {KEY_TWO}"})[0] == 200
    assert server.get("/v1/modules")[0] == 401
    assert server.get("/v1/modules", {"X-API-Key": KEY_TWO})[0] == 200


def test_metrics_and_openapi_need_a_key(server):
    """The module list, schemas and versions are not for anonymous callers."""
    for path in ("/metrics", "/openapi.json"):
        assert server.get(path)[0] == 401
        assert server.get(path, {"X-API-Key": KEY_ONE})[0] == 200


def test_health_stays_open_and_readiness_says_little_without_a_key(server):
    """A load balancer needs no key: /healthz and /readyz answer, but /readyz without a key
    carries only the verdict (no module names, versions or load errors); ?module= needs one."""
    assert server.get("/healthz")[0] == 200
    code, _, body = server.get("/readyz")
    assert code == 200 and body == {"ready": True}
    code, _, body = server.get("/readyz", {"X-API-Key": KEY_ONE})
    assert code == 200 and "this_package_does_not_exist" in str(body["modules"])
    assert server.get("/readyz?module=echo")[0] == 401
    assert server.get("/readyz?module=echo", {"X-API-Key": KEY_ONE})[0] == 200


def test_bad_input_with_key_still_400(server):
    """Authentication comes first, then validation."""
    assert server.post("/v1/echo/say", {}, {"X-API-Key": KEY_ONE})[0] == 400


def test_wrong_keys_are_rate_limited_per_address(server_factory):
    """Over CEREBRO_AUTH_FAILURE_LIMIT wrong keys a minute, the address gets 429 with
    Retry-After for every key that has not worked from it before (guessing is over), while
    a key that did work goes on (clients behind one proxy address are not locked out).
    Requests without a key (load-balancer probes) never count."""
    server = server_factory({"CEREBRO_MODULES_PACKAGE": "fixture_modules",
                             "CEREBRO_MODULES": "echo", "CEREBRO_API_KEYS": f"{KEY_ONE},{KEY_TWO}",
                             "CEREBRO_AUTH_FAILURE_LIMIT": "5"})
    for _ in range(25):  # keyless probes and calls: answered, never counted
        assert server.get("/readyz")[0] == 200
        assert server.post("/v1/echo/say", {"text": "a"})[0] == 401
    assert server.post("/v1/echo/say", {"text": "a"}, {"X-API-Key": KEY_ONE})[0] == 200
    codes = [server.post("/v1/echo/say", {"text": "a"}, {"X-API-Key": f"guess-{i:016d}"})[0]
             for i in range(8)]
    assert codes == [401] * 5 + [429] * 3
    code, headers, body = server.post("/v1/echo/say", {"text": "a"}, {"X-API-Key": KEY_TWO})
    assert code == 429 and body["error"]["type"] == "too_many_requests"
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert server.post("/v1/echo/say", {"text": "a"}, {"X-API-Key": KEY_ONE})[0] == 200


def test_behind_a_trusted_proxy_the_limit_is_per_forwarded_address(server_factory):
    """With CEREBRO_TRUST_PROXY_HEADERS, the client address is X-Real-Ip's, request by
    request: one forwarded address over the limit gets 429, another one behind the same
    proxy does not; without the setting, the header is ignored."""
    env = {"CEREBRO_MODULES_PACKAGE": "fixture_modules", "CEREBRO_MODULES": "echo",
           "CEREBRO_API_KEYS": f"{KEY_ONE},{KEY_TWO}", "CEREBRO_AUTH_FAILURE_LIMIT": "2"}
    proxied = server_factory(dict(env, CEREBRO_TRUST_PROXY_HEADERS="true"))
    direct = server_factory(env)

    def guess(server, address):
        """A wrong key sent from ``address`` (as the proxy says)."""
        return server.post("/v1/echo/say", {"text": "a"},
                           {"X-API-Key": "g" * 40, "X-Real-Ip": address})[0]

    assert [guess(proxied, "10.0.0.1") for _ in range(3)] == [401, 401, 429]
    assert [guess(proxied, "10.0.0.2") for _ in range(3)] == [401, 401, 429]
    assert [guess(direct, "10.0.0.1"), guess(direct, "10.0.0.2"),
            guess(direct, "10.0.0.3")] == [401, 401, 429]


def test_short_keys_are_refused_at_start_without_printing_them(tmp_path):
    """A guessable key stops `cerebro serve` with exit 2; the message never shows the keys."""
    result = subprocess.run(
        [sys.executable, "-m", "cerebro", "serve", "--port", "0"],
        env=cerebro_env(CEREBRO_API_KEYS="k1,a-long-enough-key-0123456789",
                        SHERLOCK_DIR=tmp_path), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "CEREBRO_API_KEYS" in result.stderr and "16 characters" in result.stderr
    assert "k1" not in result.stderr and "a-long-enough-key" not in result.stderr
