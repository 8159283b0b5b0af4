"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Benchmark: `cerebro serve` against a bare Tornado app, same model, same run.
Tagline: The platform should cost little; here is the bill.

Builds rent_predictor into a scratch volume when none is given, serves it with
``cerebro serve`` and with ``bench/bare_tornado.py`` (same process count),
loads each with wrk at concurrency 1, 16 and 64, and prints req/s, p50, p99
and errors, with Cerebro's ratio to the bare baseline (target: >= 0.90).
Cerebro runs twice: with micro-batching off (``CEREBRO_BATCHING=false``, one
model call per request like the baseline: the platform's own overhead) and on.
The baseline runs twice too: as written (Tornado's ``fork_processes`` on one
shared socket), and tuned like ``cerebro serve`` runs by default: one process
per CPU pinned (``CEREBRO_CPU_AFFINITY=auto``), each on its own ``SO_REUSEPORT``
socket (``CEREBRO_REUSE_PORT``), so no ratio comes from that tuning alone; the
verdict takes the worse of the two.

All servers run side by side (an idle server costs nothing) and the wrk runs
are interleaved: each round loads bare, then each Cerebro, at every level. With
``--rounds N`` the table shows each server's median round, so a burst of noise
on a shared machine hits every server alike instead of deciding the verdict.

``--baseline-tree DIR`` adds Cerebro as an earlier commit has it (a source tree
made with ``git worktree add DIR <commit>``), served the same way in the same
rounds, and prints this tree's ratio to it: how a change moved the hot path.

    python bench/rest_vs_bare.py [--duration 10] [--rounds 3] [--processes 2] [--volume DIR]
    git worktree add /tmp/before HEAD~5 && python bench/rest_vs_bare.py --baseline-tree /tmp/before
"""

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import (PYTHON, REPO, baseline_env, free_port, report_py_spy, start, start_py_spy,
                    stop, wait_http, wrk)

from cerebro.endpoint import build_endpoint
from modules.rent_predictor import expose

# The declared example with every default filled in, so the bare app (which
# does no validation) receives exactly the same full payload as Cerebro.
_ENDPOINT = build_endpoint("rent_predictor", expose.predict)
BODY = _ENDPOINT.schema.validate(_ENDPOINT.example)
TARGET_RATIO = 0.90
HELLO_TARGET = 0.60  # issue 18: Cerebro at c=64 against hello world (the HTTP ceiling)
P50_TARGET = 1.10    # issue 18: Cerebro's c=1 p50 at most 10 % above the bare app's


def _volume(path):
    """A data volume holding a built rent_predictor (built here if needed)."""
    if path:
        return Path(path).resolve()
    volume = Path(tempfile.mkdtemp(prefix="cerebro-bench-"))
    print(f"building rent_predictor into {volume} ...", flush=True)
    subprocess.run([PYTHON, str(REPO / "modules/rent_predictor/src/build.py")], check=True,
                   env=dict(os.environ, CEREBRO_DATA_VOLUME=str(volume)),
                   stdout=subprocess.DEVNULL)
    return volume


def _median_run(runs):
    """The run with the median req/s (its p50/p99 stay consistent with its req/s)."""
    ranked = sorted(runs, key=lambda run: run["rps"])
    return ranked[(len(ranked) - 1) // 2]


def _measure(servers, body, levels, duration, rounds, after=None):
    """Start every server, then load them in interleaved rounds; return the median runs.
    ``after(procs, urls)`` (by server name) runs once the rounds are done, servers still up."""
    procs = []
    try:
        for name, cmd, env, url, cwd in servers:
            log = Path(tempfile.gettempdir()) / f"cerebro-bench-{name}.log"
            procs.append(start(cmd, env, log=log, cwd=cwd))
        for name, _, _, url, _ in servers:
            wait_http(url, body)
            wrk(url, body.decode(), 16, duration=2)  # warm-up
        runs = {name: {c: [] for c in levels} for name, *_ in servers}
        for number in range(1, rounds + 1):
            # every other round in reverse order: no server is always measured first
            order = servers if number % 2 else servers[::-1]
            for c in levels:
                for name, _, _, url, _ in order:
                    runs[name][c].append(wrk(url, body.decode(), c, duration))
            if rounds > 1:
                print(f"round {number}/{rounds}: " + "  ".join(
                    f"{name} c={c} {runs[name][c][-1]['rps']:.0f}/s"
                    for name, *_ in servers for c in levels), flush=True)
        if after is not None:
            after({name: proc for (name, *_), proc in zip(servers, procs)},
                  {name: url for name, _, _, url, _ in servers})
        return {name: {c: _median_run(table[c]) for c in levels}
                for name, table in runs.items()}
    finally:
        for proc in procs:
            stop(proc)


def wrk_parser(doc, levels="1,16,64"):
    """The arguments every wrk benchmark takes (duration, processes, volume, levels, rounds)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--processes", type=int, default=2, help="server processes")
    parser.add_argument("--volume", default=None, help="a data volume with rent_predictor built")
    parser.add_argument("--levels", default=levels, help="concurrency levels")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds per server and level (the median is shown)")
    return parser


def require_wrk():
    """Stop with the install command when wrk is missing."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")


def cerebro_server(name, processes, env, tree=REPO, module="rent_predictor"):
    """A ``cerebro serve`` entry for :func:`_measure` on a free port (``tree``: the source
    tree it runs from)."""
    port = free_port()
    return (name, [PYTHON, "-m", "cerebro", "serve", "--port", str(port), "--processes",
                   str(processes), "--modules", module], env,
            f"http://127.0.0.1:{port}/v1/{module}/predict", tree)


def print_table(results, levels, args, width=17, module="rent_predictor"):
    """The median runs of every server and level, as a table."""
    print(f"\n{module}, {args.processes} processes, wrk {args.duration}s per level, "
          f"median of {max(1, args.rounds)} interleaved round(s), {os.cpu_count()} cores")
    print(f"{'server':<{width}}{'conc':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, table in results.items():
        for c in levels:
            r = table[c]
            print(f"{name:<{width}}{c:>6}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}"
                  f"{r['p99_ms']:>9.2f}{r['errors']:>8}")


def main():
    """Run both servers and print the comparison."""
    parser = wrk_parser(__doc__)
    parser.add_argument("--profile", action="store_true",
                        help="after the rounds, a py-spy profile of one Cerebro API process "
                             "at the highest level, by stage")
    parser.add_argument("--baseline-tree", default=None,
                        help="a source tree of an earlier commit (git worktree): its Cerebro "
                             "runs beside this one, and the ratio between them is printed")
    args = parser.parse_args()
    require_wrk()
    volume = _volume(args.volume)
    levels = [int(c) for c in args.levels.split(",")]
    body = json.dumps(BODY).encode()
    env = {"CEREBRO_DATA_VOLUME": str(volume), "OMP_NUM_THREADS": "1",
           "CEREBRO_LOG_LEVEL": "WARNING", "SHERLOCK_DIR": tempfile.mkdtemp()}
    path = "/v1/rent_predictor/predict"

    servers = []
    for name, extra in (("hello", ["--tuned", "--hello"]), ("bare", []),
                        ("bare-tuned", ["--tuned"])):
        port = free_port()
        servers.append((name, [PYTHON, str(REPO / "bench/bare_tornado.py"), "--port", str(port),
                               "--processes", str(args.processes), "--volume", str(volume)]
                        + extra, env, f"http://127.0.0.1:{port}{path}", REPO))
    cerebros = [("cerebro-nobatch", "false", REPO), ("cerebro", "true", REPO)]
    if args.baseline_tree:
        tree = Path(args.baseline_tree).resolve()
        cerebros += [("baseline-nobatch", "false", tree), ("baseline", "true", tree)]
    for name, batching, tree in cerebros:
        extra_env = baseline_env(tree) if tree != REPO else {}
        servers.append(cerebro_server(name, args.processes,
                                      dict(env, CEREBRO_BATCHING=batching, **extra_env), tree))
    after = None
    if args.profile:
        def after(procs, urls):
            """Profile one API process of Cerebro as shipped at the highest level."""
            _profile(procs["cerebro"].pid, urls["cerebro"], body, max(levels), args.duration)
    results = _measure(servers, body, levels, args.duration, max(1, args.rounds), after)
    print_table(results, levels, args)
    print()
    for name in ("cerebro-nobatch", "cerebro"):
        worst = float("inf")
        for baseline in ("bare", "bare-tuned"):
            ratios = {c: results[name][c]["rps"] / results[baseline][c]["rps"] for c in levels}
            worst = min(worst, *ratios.values())
            shown = "  ".join(f"c={c}: {r:.2f}" for c, r in ratios.items())
            print(f"{name:<17} / {baseline:<12} {shown}")
        verdict = "MET" if worst >= TARGET_RATIO else "NOT MET"
        print(f"{'':<17} target: within 10% of both baselines at every level "
              f"(ratio >= {TARGET_RATIO}) -> {verdict}")
    _print_ceiling(results, levels)
    if args.baseline_tree:
        print()
        for name, base in (("cerebro-nobatch", "baseline-nobatch"), ("cerebro", "baseline")):
            ratios = "  ".join(f"c={c}: {results[name][c]['rps'] / results[base][c]['rps']:.3f}"
                               for c in levels)
            p50 = "  ".join(f"c={c}: {results[name][c]['p50_ms'] / results[base][c]['p50_ms']:.3f}"
                            for c in levels)
            print(f"{name:<17} / {base:<17} req/s {ratios}   p50 {p50}")


# Layers of a request in the API process (a sample counts for the layer of its innermost frame
# that matches a mark: self time by layer).
STAGES = (
    ("model (scikit-learn)", ("sklearn/", "modules/rent_predictor")),
    ("metrics (prometheus)", ("prometheus_client/", "cerebro/metrics.py")),
    ("logging", ("logging/",)),
    ("validation", ("cerebro/schema.py",)),
    ("JSON decode/encode", ("cerebro/jsonio.py", "json/")),
    ("batching hop", ("cerebro/batching.py", "cerebro/runner.py")),
    ("dispatch", ("cerebro/dispatch.py", "cerebro/lifecycle/", "cerebro/monitoring/")),
    ("handler", ("cerebro/api/",)),
    ("HTTP (tornado)", ("tornado/",)),
    ("event loop", ("asyncio/", "selectors")),
    ("numpy", ("numpy/",)),
    ("threads", ("threading.py", "queue.py")),
)


def _profile(server_pid, url, body, level, duration):
    """py-spy on the first API child while wrk loads the server at ``level``; prints the
    samples by stage and the top functions."""
    children = subprocess.run(["pgrep", "-P", str(server_pid)], capture_output=True,
                              text=True).stdout.split()
    out = Path(tempfile.mkdtemp()) / "api-profile.txt"
    profiler = start_py_spy(children[0] if children else server_pid, out)
    time.sleep(1.0)  # py-spy attached
    run = wrk(url, body.decode(), level, duration)
    print(f"\nprofiled run: c={level} {run['rps']:.0f} req/s")
    report_py_spy(profiler, out, STAGES, "API profile, self time by layer", top=25,
                  innermost=True)


def _print_ceiling(results, levels):
    """Cerebro against hello world (the HTTP ceiling) at the highest level, and its c=1 p50
    against the bare app's, with the verdicts."""
    top, one = max(levels), min(levels)
    print()
    for name in ("cerebro-nobatch", "cerebro"):
        share = results[name][top]["rps"] / results["hello"][top]["rps"]
        print(f"{name:<17} / hello        c={top}: {share:.2f} of the HTTP ceiling "
              f"(target >= {HELLO_TARGET:.2f}) -> {'MET' if share >= HELLO_TARGET else 'NOT MET'}")
    bare_p50 = min(results[b][one]["p50_ms"] for b in ("bare", "bare-tuned"))
    p50 = results["cerebro"][one]["p50_ms"] / bare_p50
    print(f"{'cerebro':<17} p50 at c={one} / the better bare app's: {p50:.2f} "
          f"(target <= {P50_TARGET:.2f}) -> {'MET' if p50 <= P50_TARGET else 'NOT MET'}")


if __name__ == "__main__":
    main()
