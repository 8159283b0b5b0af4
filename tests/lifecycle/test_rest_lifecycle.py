"""The model lifecycle on the REST transport, against real `cerebro serve` processes (two per
server) reading a real data volume: rollback and promote under load with zero failed requests,
a shadow candidate compared off the hot path (agreement computed here too), a failing and a
saturated shadow, a 20 % canary with sticky keys, and a failing canary rolled back on its own."""

import json
import math
import threading
import time

import pytest

from cerebro.lifecycle import state as lifecycle
from cerebro.ops import status
from cerebro.settings import load_settings
from support import TEST_SIGNING_KEY, run_cli
from lifecycle_support import MODULE, PACKAGE, current, publish

RELOAD = 0.2


@pytest.fixture
def stack(server_factory, tmp_path):
    """``start(**env)``: a two-process server on a fresh volume whose current version is
    scale 2.0; returns (server, volume, env for the CLI)."""
    def start(**extra):
        """Start the server with ``extra`` settings."""
        root = tmp_path / "vol"
        base = publish(root, scale=2.0)
        env = {**PACKAGE, "CEREBRO_DATA_VOLUME": root, "CEREBRO_RELOAD_INTERVAL": RELOAD,
               "CEREBRO_STATE_DIR": tmp_path / "state", "SHERLOCK_DIR": tmp_path / "sherlock",
               **extra}
        server = server_factory(env, processes=2, ready=True)
        return server, root, env, base
    return start


def _call(server, x, function="predict", key=None):
    """One call; returns (status, body)."""
    headers = {"X-Cerebro-Sticky-Key": key} if key else None
    code, _, body = server.post(f"/v1/{MODULE}/{function}", {"x": x}, headers)
    return code, body


def _until(predicate, timeout, message):
    """Wait for ``predicate()`` to be true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out: {message}")


def _serving(server, version, tries=40):
    """True when ``tries`` calls in a row (both processes) answer with ``version``."""
    return all(_call(server, 1.0)[1].get("model_version") == version for _ in range(tries))


def test_rollback_and_promote_under_load(stack):
    """Four clients call without pause through a rollback and a promote: every call succeeds,
    and every process serves the new version within the reload interval (plus margin)."""
    server, root, env, base = stack()
    newer = publish(root, scale=3.0)
    _until(lambda: _serving(server, newer), 10, "the newer version served")
    statuses, stop = [], threading.Event()

    def hammer(function):
        """Call until told to stop."""
        while not stop.is_set():
            statuses.append(_call(server, 4.0, function)[0])

    threads = [threading.Thread(target=hammer, args=(f,)) for f in ("predict", "predict_many") * 2]
    for thread in threads:
        thread.start()
    try:
        for command, args, expected in (("rollback", [], base), ("promote", [newer], newer)):
            time.sleep(0.5)
            switched = time.monotonic()
            code, out, err = run_cli(env, command, MODULE, *args)
            assert code == 0, err
            _until(lambda: _serving(server, expected), 5, f"{command} followed")
            took = time.monotonic() - switched
            print(f"\n{command}: every process served {expected} {took:.2f}s after the command")
            assert took < RELOAD + 3.0
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(statuses) > 100 and set(statuses) == {200}
    actions = [e["action"] for e in lifecycle.history(root, MODULE)]
    assert actions[-2:] == ["rollback", "promote"]
    modules = {m["name"]: m for m in server.get("/v1/modules")[2]["modules"]}
    listed = modules[MODULE]
    assert [v["version"] for v in listed["versions"]] == [newer, base]
    assert listed["versions"][0]["roles"] == ["current"]


def _compare(env, timeout=20, until=None):
    """`cerebro compare --json` (polled until ``until(summary)``)."""
    deadline = time.monotonic() + timeout
    while True:
        code, out, err = run_cli(env, "compare", MODULE, "--json")
        assert code == 0, err
        summary = json.loads(out)
        if until is None or until(summary) or time.monotonic() > deadline:
            return summary
        time.sleep(0.3)


def test_shadow_compares_off_the_hot_path(stack):
    """With a candidate of scale 2.2 in shadow, live answers stay the current version's, and
    the agreement `cerebro compare` reports is what this test computes from both answers."""
    server, root, env, base = stack()
    candidate = publish(root, scale=2.2)
    lifecycle.promote(root, MODULE, base, key=TEST_SIGNING_KEY)
    assert run_cli(env, "shadow", MODULE, candidate)[0] == 0
    time.sleep(RELOAD * 4)  # both processes follow
    xs = [0.5 + i * 0.05 for i in range(200)]
    for i, x in enumerate(xs):
        code, body = _call(server, x, "predict" if i % 2 else "predict_many")
        assert code == 200 and body["model_version"] == base and body["y"] == round(x * 2, 6)
    summary = _compare(env, until=lambda s: s["compared"] >= len(xs))
    assert (summary["calls"], summary["compared"], summary["errors"]) == (len(xs), len(xs), 0)
    live = [round(x * 2.0, 6) for x in xs]
    cand = [round(x * 2.2, 6) for x in xs]
    abs_mean = sum(abs(a - b) for a, b in zip(live, cand)) / len(xs)
    rel_mean = sum(abs(a - b) / max(abs(a), abs(b)) for a, b in zip(live, cand)) / len(xs)
    same = sum((a > 10) == (b > 10) for a, b in zip(live, cand)) / len(xs)
    assert summary["means"]["y.abs_diff"] == pytest.approx(abs_mean, rel=1e-9)
    assert summary["means"]["y.rel_diff"] == pytest.approx(rel_mean, rel=1e-9)
    assert summary["means"]["label.same"] == pytest.approx(same, rel=1e-9) and same < 1
    png = root / MODULE / "versions" / candidate / "compare.png"
    assert summary["png"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, metrics = server.get("/metrics", {"Accept": "text/plain"})
    text = metrics.decode() if isinstance(metrics, bytes) else str(metrics)
    assert code == 200 and f'outcome="calls",version="{candidate}"}} 200.0' in text
    assert f'cerebro_shadow_measured_total{{measure="y.abs_diff",module="{MODULE}"' in text
    code, out, _ = run_cli(env, "compare", MODULE)
    assert code == 0 and "y.abs_diff" in out and "compared 200" in out


def test_a_failing_shadow_costs_the_live_path_nothing(stack):
    """A candidate that raises on every call: every live answer is right, every shadow call is
    counted as an error, and Sherlock gets no per-call record."""
    server, root, env, base = stack()
    broken = publish(root, fail=True)
    lifecycle.promote(root, MODULE, base, key=TEST_SIGNING_KEY)
    lifecycle.start_candidate(root, MODULE, broken, "shadow", key=TEST_SIGNING_KEY)
    time.sleep(RELOAD * 4)
    for x in range(100):
        code, body = _call(server, float(x), "predict_many" if x % 2 else "predict")
        assert code == 200 and body["model_version"] == base
    summary = _compare(env, until=lambda s: s["errors"] >= 100)
    assert summary["calls"] == 100 and summary["errors"] == 100 and summary["compared"] == 0
    sherlock = root.parent / "sherlock" / "sherlock.jsonl"
    records = sherlock.read_text() if sherlock.exists() else ""
    assert "fails on purpose" not in records


def test_a_saturated_shadow_drops_and_counts(stack):
    """A slow candidate (50 ms a call) behind a one-job shadow queue: live calls stay fast and
    right, shadow calls are dropped and counted, and calls + dropped add up to what was served."""
    server, root, env, base = stack(CEREBRO_SHADOW_QUEUE=1)
    slow = publish(root, sleep=0.05)
    lifecycle.promote(root, MODULE, base, key=TEST_SIGNING_KEY)
    lifecycle.start_candidate(root, MODULE, slow, "shadow", key=TEST_SIGNING_KEY)
    time.sleep(RELOAD * 4)
    served, lock = [], threading.Lock()

    def client():
        """Forty calls."""
        for _ in range(40):
            code, body = _call(server, 2.0)
            with lock:
                served.append((code, body.get("model_version")))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(served) == {(200, base)} and len(served) == 320
    summary = _compare(env, until=lambda s: s["calls"] + s["dropped"] >= 320)
    assert summary["dropped"] > 0 and summary["calls"] > 0
    assert summary["calls"] + summary["dropped"] == 320


def test_canary_share_stickiness_and_automatic_rollback(stack):
    """A 20 % canary: over 2,000 calls without a key the candidate's share is within four
    binomial standard deviations of 20 %; a sticky key always meets the same version. Then a
    failing candidate is rolled back on its own, recorded in the history and reported."""
    server, root, env, base = stack(CEREBRO_CANARY_MIN_CALLS="20",
                                    CEREBRO_CANARY_WINDOW="30")
    candidate = publish(root, scale=2.0)
    lifecycle.promote(root, MODULE, base, key=TEST_SIGNING_KEY)
    assert run_cli(env, "canary", MODULE, candidate, "--percent", "20")[0] == 0
    settings = load_settings({"CEREBRO_PORT": str(server.port)})
    # both processes follow before the count starts (each read is a new connection, so
    # twenty in a row reach both; a loaded box may take longer than a few reload intervals)
    _until(lambda: all(status._modules(settings)[0]["candidate"]
                       == f"{candidate} in canary at 20%" for _ in range(20)),
           30, "both processes serving the canary")
    versions, lock = [], threading.Lock()

    def client(n):
        """``n`` calls without a sticky key."""
        for _ in range(n):
            code, body = _call(server, 1.0, "predict_many")
            with lock:
                versions.append((code, body.get("model_version")))

    threads = [threading.Thread(target=client, args=(500,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {code for code, _ in versions} == {200}
    share = sum(v == candidate for _, v in versions)
    bound = 4 * math.sqrt(2000 * 0.2 * 0.8)
    print(f"\ncanary 20 %: {share} of 2000 calls on the candidate (bound ±{bound:.0f})")
    assert abs(share - 400) <= bound
    seen = {}
    for round_ in range(3):
        for key in (f"listing-{i}" for i in range(60)):
            version = _call(server, 1.0, "predict", key=key)[1]["model_version"]
            assert seen.setdefault(key, version) == version, f"{key} moved (round {round_})"
    assert 0 < sum(v == candidate for v in seen.values()) < 60

    broken = publish(root, fail=True)
    lifecycle.promote(root, MODULE, base, key=TEST_SIGNING_KEY)
    assert run_cli(env, "canary", MODULE, broken, "--percent", "50")[0] == 0
    time.sleep(RELOAD * 4)
    failures = 0
    deadline = time.monotonic() + 30
    while lifecycle.history(root, MODULE)[-1]["action"] != "canary-rollback" \
            and time.monotonic() < deadline:
        failures += _call(server, 1.0)[0] == 500
    assert not lifecycle.read_state(root, MODULE).active, "the failing canary kept running"
    entry = lifecycle.history(root, MODULE)[-1]
    assert entry["action"] == "canary-rollback" and entry["from"] == broken
    assert "error rate" in entry["reason"] and "(automatic)" in entry["by"]
    print(f"failing canary: stopped after {failures} failed calls")
    time.sleep(RELOAD * 4)
    assert all(_call(server, 1.0) == (200, {"y": 2.0, "label": "low", "model_version": base})
               for _ in range(40))
    sherlock = (root.parent / "sherlock" / "sherlock.jsonl").read_text()
    assert f"canary {broken} rolled back automatically" in sherlock


def test_candidate_switches_under_load_fail_no_call(stack):
    """Four clients call without pause while the canary's candidate is switched between two
    versions that take a while to load (a 30 MB artifact each), turned off, started again and
    promoted: not one call fails, and every answer names a version that was serving."""
    server, root, env, base = stack()
    first = publish(root, pad="a" * 30_000_000)
    second = publish(root, pad="b" * 30_000_000, scale=2.5)
    lifecycle.promote(root, MODULE, base, key=TEST_SIGNING_KEY)
    statuses, seen, stop = [], set(), threading.Event()

    def hammer(function):
        """Call until told to stop."""
        while not stop.is_set():
            code, body = _call(server, 1.0, function, key=None)
            statuses.append(code)
            seen.add(body.get("model_version"))

    threads = [threading.Thread(target=hammer, args=(f,)) for f in ("predict", "predict_many") * 2]
    for thread in threads:
        thread.start()
    try:
        for command, args in (("canary", [first, "--percent", "50"]),
                              ("canary", [second, "--percent", "50"]),
                              ("canary", [first, "--percent", "50"]), ("canary", ["--off"]),
                              ("canary", [second, "--percent", "50"]), ("promote", [second])):
            assert run_cli(env, command, MODULE, *args)[0] == 0
            time.sleep(RELOAD * 5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(statuses) > 100 and set(statuses) == {200}
    assert seen <= {base, first, second} and second in seen
