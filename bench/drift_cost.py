"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Benchmark: what drift monitoring costs the REST path, off and on, in the same run.
Tagline: Watching the model should not slow it down.

Serves rent_predictor (built with its reference profile) three times side by
side: monitoring off (``CEREBRO_DRIFT_SAMPLE=0``), at the default sampling
rate (0.1) and on every call (1.0). wrk loads them in interleaved rounds at
each concurrency level; the median round of each is printed with the ratio to
"off" (target: the default loses at most 5 % of req/s at c=16 and c=64).
Afterwards the live counts say how many calls each monitored server profiled.

    python bench/drift_cost.py [--duration 10] [--rounds 3] [--processes 2] [--levels 16,64]
"""

import json
import os
import tempfile
from pathlib import Path

from rest_vs_bare import BODY, _measure, _volume, cerebro_server, require_wrk, wrk_parser

from cerebro import volume
from cerebro.monitoring import drift

MODULE = "rent_predictor"
TARGET_RATIO = 0.95
RATES = (("off", "0"), ("default", "0.1"), ("every-call", "1.0"))


def main() -> None:
    """Run the three servers and print the comparison."""
    args = wrk_parser(__doc__, levels="16,64").parse_args()
    require_wrk()
    root = _volume(args.volume)
    levels = [int(c) for c in args.levels.split(",")]
    body = json.dumps(BODY).encode()
    servers, states = [], {}
    for name, rate in RATES:
        states[name] = Path(tempfile.mkdtemp(prefix=f"cerebro-bench-drift-{name}-"))
        env = {"OMP_NUM_THREADS": "1", "CEREBRO_LOG_LEVEL": "WARNING",
               "SHERLOCK_DIR": tempfile.mkdtemp(), "CEREBRO_STATE_DIR": str(states[name]),
               "CEREBRO_DATA_VOLUME": str(root), "CEREBRO_DRIFT_SAMPLE": rate}
        servers.append(cerebro_server(name, args.processes, env, module=MODULE))
    results = _measure(servers, body, levels, args.duration, max(1, args.rounds))

    print(f"\n{MODULE}, {args.processes} processes, wrk {args.duration}s per level, median of "
          f"{max(1, args.rounds)} interleaved round(s), {os.cpu_count()} cores")
    print(f"{'monitoring':<12}{'conc':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}")
    worst = float("inf")
    for name, _ in RATES:
        for c in levels:
            r, off = results[name][c], results["off"][c]
            ratio = r["rps"] / off["rps"]
            if name == "default":
                worst = min(worst, ratio)
            print(f"{name:<12}{c:>6}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                  f"{ratio:>8.3f}")
    print(f"target: the default sampling keeps >= {TARGET_RATIO:.0%} of req/s at every level "
          f"-> {'MET' if worst >= TARGET_RATIO else 'NOT MET'} ({worst:.3f})")
    version = volume.current_version(root, MODULE)
    for name, _ in RATES[1:]:
        found = drift.report(root, states[name], MODULE, str(version), 1.0)
        print(f"{name}: {found['samples']} calls profiled; drifted (one payload sent again and "
              f"again, so every field should): {found['drifted'] or 'none'}")


if __name__ == "__main__":
    main()
