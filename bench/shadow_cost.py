"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Benchmark: what a shadow candidate costs the live path, shadow off and on, same run.
Tagline: A second opinion should not slow the first.

Serves rent_predictor twice, side by side, from two copies of one volume: one
with no candidate, one with a shadow candidate that is the same model (so
answers agree and the extra work is exactly one more model call per live
call). wrk loads both in interleaved rounds at each concurrency level; the
median round of each is printed with the ratio shadow-on / shadow-off (target:
at least 0.90 at c=64, c=1 p50 unchanged beyond noise). Afterwards the shadow
tallies say how many calls the candidate ran and how many were dropped.

    python bench/shadow_cost.py [--duration 10] [--rounds 3] [--processes 2] [--levels 1,16,64]
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from common import PYTHON, REPO, free_port
from rest_vs_bare import BODY, _measure, _volume

from cerebro import modelsign
from cerebro.lifecycle import compare, control
from cerebro.lifecycle import state as lifecycle
from cerebro.settings import load_settings

MODULE = "rent_predictor"
TARGET_RATIO = 0.90


def _shadow_volume(source: Path) -> tuple[Path, str]:
    """A copy of ``source`` whose rent_predictor has a shadow candidate: the same model built
    again (same rows and seed), with the older, identical version as candidate."""
    target = Path(tempfile.mkdtemp(prefix="cerebro-bench-shadow-")) / "volume"
    shutil.copytree(source, target)
    older = lifecycle.published(target, MODULE)[0]
    subprocess.run([PYTHON, str(REPO / "modules/rent_predictor/src/build.py")], check=True,
                   env=dict(os.environ, CEREBRO_DATA_VOLUME=str(target)),
                   stdout=subprocess.DEVNULL)
    lifecycle.start_candidate(target, MODULE, older, "shadow", key=modelsign.configured_key())
    return target, older


def main() -> None:
    """Run both servers and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--processes", type=int, default=2, help="server processes")
    parser.add_argument("--volume", default=None, help="a data volume with rent_predictor built")
    parser.add_argument("--levels", default="1,16,64", help="concurrency levels")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median shown)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    plain = _volume(args.volume)
    shadowed, candidate = _shadow_volume(plain)
    levels = [int(c) for c in args.levels.split(",")]
    body = json.dumps(BODY).encode()
    state = Path(tempfile.mkdtemp(prefix="cerebro-bench-state-"))
    env = {"OMP_NUM_THREADS": "1", "CEREBRO_LOG_LEVEL": "WARNING",
           "SHERLOCK_DIR": tempfile.mkdtemp(), "CEREBRO_STATE_DIR": str(state)}
    path = f"/v1/{MODULE}/predict"
    servers = []
    for name, volume in (("shadow-off", plain), ("shadow-on", shadowed)):
        port = free_port()
        servers.append((name, [PYTHON, "-m", "cerebro", "serve", "--port", str(port),
                               "--processes", str(args.processes), "--modules", MODULE],
                        dict(env, CEREBRO_DATA_VOLUME=str(volume)),
                        f"http://127.0.0.1:{port}{path}", REPO))
    results = _measure(servers, body, levels, args.duration, max(1, args.rounds))

    print(f"\n{MODULE}, {args.processes} processes, wrk {args.duration}s per level, median of "
          f"{max(1, args.rounds)} interleaved round(s), {os.cpu_count()} cores")
    print(f"{'server':<12}{'conc':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, table in results.items():
        for c in levels:
            r = table[c]
            print(f"{name:<12}{c:>6}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                  f"{r['errors']:>8}")
    off, on = results["shadow-off"], results["shadow-on"]
    print()
    for c in levels:
        print(f"c={c:<3} req/s on/off {on[c]['rps'] / off[c]['rps']:.3f}   "
              f"p50 on/off {on[c]['p50_ms'] / off[c]['p50_ms']:.3f}   "
              f"p99 on/off {on[c]['p99_ms'] / off[c]['p99_ms']:.3f}")
    top = max(levels)
    ratio = on[top]["rps"] / off[top]["rps"]
    print(f"target: shadow-on keeps >= {TARGET_RATIO:.0%} of shadow-off's req/s at c={top} -> "
          f"{'MET' if ratio >= TARGET_RATIO else 'NOT MET'} ({ratio:.3f})")
    settings = load_settings({**os.environ, "CEREBRO_STATE_DIR": str(state)})
    tally = compare.merge(control.read_snapshots(settings, MODULE, candidate, None))
    print(f"shadow tallies: {tally['calls']} candidate calls, {tally['dropped']} dropped, "
          f"{tally['errors']} errors; agreement {tally['means']}")


if __name__ == "__main__":
    main()
