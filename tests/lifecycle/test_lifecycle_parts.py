"""The lifecycle's parts on their own: a module's own comparison (``compare=``) used by the real
shadow thread, the shadow's CPU budget dropping and counting what it cannot afford, the canary
watch's latency verdict, sticky routing, and the PNG of a label comparison (confusion matrix)."""

import time

from cerebro import Batching, Field, endpoint
from cerebro.dispatch import Call
from cerebro.endpoint import build_endpoint
from cerebro.lifecycle import compare, routing
from cerebro.lifecycle.canary import CanaryWatch, Limits
from cerebro.lifecycle.plot import write_png
from cerebro.lifecycle.shadow import ShadowRunner


def same_grade(live, candidate):
    """The module's own measure: do the grades agree?"""
    return {"grade.same": float(live["grade"] == candidate["grade"])}


@endpoint(inputs={"x": Field(float)}, batch=Batching(max_size=4), compare=same_grade)
def grade(rows):
    """Grade A over 5, else B."""
    return [{"grade": "A" if row["x"] > 5 else "B", "x": row["x"]} for row in rows]


def _wait(predicate, timeout=5.0):
    """Poll until true."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert predicate()


def test_a_declared_compare_is_what_the_shadow_measures():
    """The shadow thread runs the candidate (here the same function) and records only the
    module's own measure, once per call."""
    ep = build_endpoint("m", grade)
    tally = compare.Tally("m", "v2")
    runner = ShadowRunner(capacity=8, gather=0.01, budget=1.0)
    calls = [Call(ep, {"x": float(x)}) for x in range(10)]
    live = grade([c.kwargs for c in calls])
    assert runner.submit(tally, calls, live, 0.001)
    _wait(lambda: tally.compared == 10)
    assert set(tally.sums) == {"grade.same"} and tally.sums["grade.same"] == 10.0
    assert tally.calls == 10 and tally.errors == 0 and tally.dropped == 0


def test_the_budget_drops_and_counts_what_it_cannot_afford():
    """A candidate taking 20 ms a call against a budget of 1 % of a core: most calls are
    dropped, every one is counted, the thread keeps going."""
    @endpoint(inputs={"x": Field(float)})
    def slow(x):
        """Twenty milliseconds."""
        time.sleep(0.02)
        return {"y": x}

    ep = build_endpoint("m", slow)
    tally = compare.Tally("m", "v2")
    runner = ShadowRunner(capacity=64, gather=0.01, budget=0.01)
    for x in range(40):
        runner.submit(tally, [Call(ep, {"x": float(x)})], [{"y": float(x)}], 0.001)
    _wait(lambda: tally.calls + tally.dropped == 40)
    assert tally.dropped >= 30 and tally.calls >= 1


def test_the_canary_latency_verdict():
    """A candidate three times slower than the current version, past the slack, is judged;
    one that is as fast is not; too few calls are never judged."""
    watch = CanaryWatch(Limits(window=60, min_calls=50, max_p99_ratio=2.0, p99_slack=0.005))
    for _ in range(100):
        watch.record(False, [{"ok": 1}], 0.010)
        watch.record(True, [{"ok": 1}], 0.010)
    assert watch.verdict() is None
    slow = CanaryWatch(Limits(window=60, min_calls=50, max_p99_ratio=2.0, p99_slack=0.005))
    for _ in range(100):
        slow.record(False, [{"ok": 1}], 0.010)
    for _ in range(49):
        slow.record(True, [{"ok": 1}], 0.040)
    assert slow.verdict() is None  # 49 < min_calls
    slow.record(True, [{"ok": 1}], 0.040)
    assert "p99 latency" in slow.verdict()


def test_sticky_routing_is_stable_salted_and_near_the_percent():
    """A key always lands on the same side; the share over many keys is near the percent; two
    modules do not put the same keys first."""
    keys = [f"listing-{i}" for i in range(20_000)]
    sides = [routing.to_candidate("a", 20, k) for k in keys]
    assert sides == [routing.to_candidate("a", 20, k) for k in keys]
    assert abs(sum(sides) / len(keys) - 0.20) < 0.02
    other = [routing.to_candidate("b", 20, k) for k in keys]
    overlap = sum(x and y for x, y in zip(sides, other)) / max(1, sum(sides))
    assert overlap < 0.3  # independent salts: about 20 %, not 100 %


def test_a_label_comparison_draws_a_confusion_matrix(tmp_path):
    """Labels make a confusion matrix PNG (numbers make a scatter, tested on a real server)."""
    summary = {"pairs": [["A", "A"], ["A", "B"], ["B", "B"]], "primary": "grade"}
    path = write_png(summary, tmp_path / "c.png", "m: live vs candidate")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert oct(path.stat().st_mode & 0o777) == "0o640"
