"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Benchmark: the memory of every supervised program of a running stack, after warm-up.
Tagline: Know what each program weighs before deciding what to cut.

Builds every sample module into a scratch volume, brings the whole development
stack up with ``cerebro up`` on private ports (RabbitMQ, Redis, Kafka, the API
with 2 processes, the worker with 2 pool processes, the consumer, the
subscriber, beat, Flower, the simulator), warms it up with every module's
example, then prints per program its processes and their RSS and PSS (PSS
splits shared pages between the processes sharing them: the sum is what the
stack really takes), and the totals. ``cerebro down`` at the end.

    python bench/memory_report.py [--keep]
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "operations")]

from stack import Stack, descendants  # noqa: E402 (the test suite's stack, reused)
from support import build_module, http, module_names  # noqa: E402


def memory(pid: int) -> tuple[int, int]:
    """RSS and PSS of one process, in bytes (0, 0 when it is gone)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                values[key] = int(rest.split()[0]) * 1024
    except OSError:
        return 0, 0
    return values.get("Rss", 0), values.get("Pss", 0)


def warm_up(api: str) -> int:
    """Call every synchronous function's example once per API process and then some; returns
    the calls made."""
    modules = http("GET", api + "/v1/modules")[2]["modules"]
    calls = 0
    for _ in range(20):
        for mod in modules:
            for fn in mod["functions"]:
                if fn["mode"] == "sync" and fn["example"] is not None:
                    http("POST", f"{api}/v1/{mod['name']}/{fn['name']}", fn["example"])
                    calls += 1
    return calls


def main() -> None:
    """Build, bring up, warm up, measure, bring down."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cerebro-memory-"))
    volume = tmp / "volume"
    for module in module_names():
        print(f"building {module} ...", flush=True)
        build_module(module, volume, timeout=600)
    stack = Stack(tmp, volume, simulator=True, CEREBRO_PROCESSES=2,
                  CEREBRO_WORKER_CONCURRENCY=2)
    try:
        stack.up(timeout=240)
        calls = warm_up(stack.api)
        time.sleep(5)
        print(f"\nwarm-up: {calls} calls; memory per supervised program (MB):")
        print(f"{'program':<12}{'processes':>10}{'RSS':>10}{'PSS':>10}")
        total_rss = total_pss = count = 0
        for name, info in sorted(stack.supervisor().processes().items()):
            pid = info.get("pid") or 0
            if not pid:
                continue
            pids = [pid, *sorted(descendants(pid))]
            rss = pss = 0
            for each in pids:
                r, p = memory(each)
                rss, pss = rss + r, pss + p
            total_rss, total_pss, count = total_rss + rss, total_pss + pss, count + len(pids)
            print(f"{name.split(':')[-1]:<12}{len(pids):>10}{rss / 1e6:>10.0f}{pss / 1e6:>10.0f}")
        print(f"{'total':<12}{count:>10}{total_rss / 1e6:>10.0f}{total_pss / 1e6:>10.0f}")
    finally:
        stack.teardown()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
