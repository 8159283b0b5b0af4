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

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from common import PYTHON, REPO
from rest_vs_bare import (BODY, _measure, _volume, cerebro_server, print_table,
                          require_wrk, wrk_parser)

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
    args = wrk_parser(__doc__).parse_args()
    require_wrk()
    plain = _volume(args.volume)
    shadowed, candidate = _shadow_volume(plain)
    levels = [int(c) for c in args.levels.split(",")]
    body = json.dumps(BODY).encode()
    state = Path(tempfile.mkdtemp(prefix="cerebro-bench-state-"))
    env = {"OMP_NUM_THREADS": "1", "CEREBRO_LOG_LEVEL": "WARNING",
           "SHERLOCK_DIR": tempfile.mkdtemp(), "CEREBRO_STATE_DIR": str(state)}
    servers = [cerebro_server(name, args.processes, dict(env, CEREBRO_DATA_VOLUME=str(volume)),
                              module=MODULE)
               for name, volume in (("shadow-off", plain), ("shadow-on", shadowed))]
    results = _measure(servers, body, levels, args.duration, max(1, args.rounds))
    print_table(results, levels, args, width=12, module=MODULE)
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
