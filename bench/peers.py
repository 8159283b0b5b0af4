"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Benchmark: Cerebro against MLServer, BentoML and FastAPI serving the same regressor.
Tagline: Run with the pack, count the strides.

Builds rent_predictor into a scratch volume (or takes ``--volume``), exports
the Pipeline's final step (the ``HistGradientBoostingRegressor``) to its own
joblib, and serves it with each peer from that peer's own virtualenv under
``~/.cache/cerebro-bench/venvs/<peer>`` (created on first use with the
venv's pip, reused afterwards; never Cerebro's dependencies):

* ``mlserver``: MLServer + mlserver-sklearn, V2 ``POST /v2/models/rent/infer``
  with one FP64 row, adaptive batching (max 32 rows, 5 ms), ``parallel_workers``
  = processes (plus MLServer's own front-end process);
* ``bentoml``: BentoML 1.4, ``bench/peers/bentoml_service.py``, batchable
  ``POST /predict`` (max 32 rows), ``workers`` = processes;
  ``bentoml-nobatch`` is the same service unbatched (opt-in);
* ``fastapi``: FastAPI + uvicorn ``--workers`` = processes,
  ``bench/peers/fastapi_app.py``, one ``predict`` per request;
* ``cerebro``: ``cerebro serve --processes N --modules rent_predictor`` with
  the raw listing (validation + feature engineering + adaptive micro-batching).

The peers take the ready numeric feature row; Cerebro takes the raw listing
and does more per request. Each server is checked to answer the regressor's
own prediction, loaded with wrk at every concurrency level, and its process
tree's memory (RSS and PSS) is read after its runs. One table is printed,
with Cerebro's ratio to the best peer at each level and the targets.
A peer that fails to install or start is reported and skipped.

    python bench/peers.py [--duration 10] [--levels 1,16,64] [--processes 2] [--rounds 1]
                          [--peers mlserver,bentoml,fastapi,cerebro] [--volume DIR]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import PYTHON, REPO, free_port, start, stop, wait_http, wrk

PEERS_DIR = REPO / "bench" / "peers"
VENVS = Path(os.environ.get("CEREBRO_BENCH_VENVS",
                            Path.home() / ".cache" / "cerebro-bench" / "venvs"))
PATH = "/v1/rent_predictor/predict"
ALL_PEERS = ("mlserver", "bentoml", "fastapi", "cerebro")
#: What each peer's virtualenv installs besides the scikit-learn Cerebro's venv has.
PACKAGES = {
    # uvloop 0.22 breaks MLServer 1.7.1's inference workers (SeldonIO/MLServer#2286).
    "mlserver": ["mlserver", "mlserver-sklearn", "uvloop<0.22"],
    "bentoml": ["bentoml"],
    "fastapi": ["fastapi", "uvicorn[standard]"],
}
MAX_BATCH = 32
MLSERVER_BATCH_SECONDS = 0.005
TARGET_RATIO = 2.0
STRETCH_RPS = 4500
TARGET_P50_C1_MS = 2.5


def _volume(path):
    """A data volume holding a built rent_predictor (built here if needed)."""
    if path:
        return Path(path).resolve()
    volume = Path(tempfile.mkdtemp(prefix="cerebro-peers-"))
    print(f"building rent_predictor into {volume} ...", flush=True)
    subprocess.run([PYTHON, str(REPO / "modules/rent_predictor/src/build.py")], check=True,
                   env=dict(os.environ, CEREBRO_DATA_VOLUME=str(volume)),
                   stdout=subprocess.DEVNULL)
    return volume


def _export(volume, workdir):
    """Export the regressor; return its path, one feature row and the listing body.

    The row is exactly what Cerebro's rent_predictor feeds the regressor for
    the declared example listing, so every server predicts the same thing.
    """
    import joblib

    from cerebro.endpoint import build_endpoint
    from modules.rent_predictor import expose
    from modules.rent_predictor.src import model, transform

    current = json.loads((volume / "rent_predictor" / "current.json").read_text())
    version = current.get("version") or next(iter(current.values()))
    pipeline = joblib.load(volume / "rent_predictor" / "versions" / version / "model.joblib")
    endpoint = build_endpoint("rent_predictor", expose.predict)
    listing = endpoint.schema.validate(endpoint.example)
    record = transform.engineer(listing, model.locality_vocabulary(pipeline))
    row = model.feature_vector(pipeline, record)
    regressor = pipeline.named_steps["regressor"]
    path = workdir / "regressor.joblib"
    joblib.dump(regressor, path)
    expected = float(regressor.predict(row)[0])
    return path, [float(v) for v in row[0]], expose.EXAMPLE, expected


def _sklearn_version():
    """The scikit-learn version Cerebro's venv has (the peers must unpickle the same)."""
    import sklearn

    return sklearn.__version__


def _venv(peer, log):
    """The peer's virtualenv bin dir, created and installed on first use."""
    name = "bentoml" if peer.startswith("bentoml") else peer
    home = VENVS / name
    marker = home / ".installed"
    if marker.exists():
        return home / "bin"
    print(f"[{peer}] creating virtualenv {home} ...", flush=True)
    base = getattr(sys, "_base_executable", None) or shutil.which("python3")
    with open(log, "ab") as out:
        subprocess.run([base, "-m", "venv", "--clear", str(home)], check=True, stdout=out,
                       stderr=subprocess.STDOUT)
        packages = PACKAGES[name] + [f"scikit-learn=={_sklearn_version()}", "joblib"]
        subprocess.run([str(home / "bin" / "pip"), "install", "--quiet", *packages], check=True,
                       stdout=out, stderr=subprocess.STDOUT, timeout=1800)
    marker.write_text(" ".join(PACKAGES[name]) + "\n")
    return home / "bin"


def _mlserver_repo(workdir, regressor, processes, port):
    """An MLServer repository dir: server settings plus the model's folder."""
    root = workdir / "mlserver"
    (root / "rent").mkdir(parents=True, exist_ok=True)
    shutil.copy(regressor, root / "rent" / "model.joblib")
    settings = {"debug": False, "parallel_workers": processes, "host": "127.0.0.1",
                "http_port": port, "grpc_port": free_port(), "metrics_port": free_port(),
                "metrics_dir": str(root / "metrics")}
    (root / "settings.json").write_text(json.dumps(settings))
    model = {"name": "rent", "implementation": "mlserver_sklearn.SKLearnModel",
             "parameters": {"uri": "./model.joblib"},
             "max_batch_size": MAX_BATCH, "max_batch_time": MLSERVER_BATCH_SECONDS}
    (root / "rent" / "model-settings.json").write_text(json.dumps(model))
    return root


def _spec(peer, ctx, port):
    """Command, environment, URL, body and answer-reader of one server on ``port``."""
    processes, row = ctx["processes"], ctx["row"]
    env = {"OMP_NUM_THREADS": "1", "PEER_MODEL": str(ctx["regressor"]),
           "PEER_WORKERS": str(processes), "PYTHONUNBUFFERED": "1"}
    base = f"http://127.0.0.1:{port}"
    if peer == "cerebro":
        env.update(CEREBRO_DATA_VOLUME=str(ctx["volume"]), CEREBRO_LOG_LEVEL="WARNING",
                   SHERLOCK_DIR=str(ctx["workdir"] / "sherlock"))
        cmd = [PYTHON, "-m", "cerebro", "serve", "--port", str(port), "--processes",
               str(processes), "--modules", "rent_predictor"]
        return cmd, env, base + PATH, ctx["listing"], lambda a: a["rent"]
    bin_dir = _venv(peer, ctx["workdir"] / f"{peer}-install.log")
    if peer == "mlserver":
        repo = _mlserver_repo(ctx["workdir"], ctx["regressor"], processes, port)
        body = {"inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP64",
                            "data": row}]}
        return ([str(bin_dir / "mlserver"), "start", str(repo)], env,
                base + "/v2/models/rent/infer", body, lambda a: a["outputs"][0]["data"][0])
    if peer.startswith("bentoml"):
        env.update(BENTOML_HOME=str(ctx["workdir"] / "bentoml-home"), BENTOML_DO_NOT_TRACK="true",
                   PEER_BATCHING="false" if peer == "bentoml-nobatch" else "true",
                   PEER_MAX_BATCH=str(MAX_BATCH))
        cmd = [str(bin_dir / "bentoml"), "serve", "bentoml_service:RentRegressor",
               "--working-dir", str(PEERS_DIR), "--host", "127.0.0.1", "--port", str(port)]
        return cmd, env, base + "/predict", {"features": [row]}, lambda a: a[0]
    if peer == "fastapi":
        cmd = [str(bin_dir / "uvicorn"), "fastapi_app:app", "--app-dir", str(PEERS_DIR),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(processes),
               "--log-level", "warning", "--no-access-log"]
        return cmd, env, base + "/predict", {"features": row}, lambda a: a["prediction"]
    raise ValueError(f"unknown peer {peer!r}")


def _tree(pid):
    """``pid`` and all its descendants (from /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _memory_mb(pid):
    """Summed RSS and PSS (MB) of a process tree; PSS shares forked pages fairly."""
    rss = pss = 0
    for member in _tree(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def _answer(url, body):
    """POST ``body`` once and return the decoded JSON answer."""
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _warm_up(peer, url, body, attempts=15):
    """Load the server until a short run has no errors.

    A server's first answer proves only one of its processes ready; the
    others may still be loading the model (Cerebro answers them 503 until
    then, MLServer's workers load in turn), so one 200 is not enough.
    """
    for _ in range(attempts):
        result = wrk(url, body, 16, duration=2)
        if result["errors"] == 0:
            return
        print(f"[{peer}] warm-up: {result['errors']} errors, waiting for every process",
              flush=True)
        time.sleep(1)
    print(f"[{peer}] WARNING: still answering errors after the warm-up", flush=True)


def _measure(peer, ctx, levels, duration):
    """Start one server, check its answer, load it at every level, read memory, stop it."""
    port = free_port()
    cmd, env, url, body, read = _spec(peer, ctx, port)
    body = json.dumps(body).encode()
    log = ctx["workdir"] / f"{peer}.log"
    proc = start(cmd, env, log=log)
    try:
        started = time.monotonic()
        wait_http(url, body, timeout=180)
        print(f"[{peer}] up in {time.monotonic() - started:.1f}s (log: {log})", flush=True)
        got, want = float(read(_answer(url, body))), ctx["expected"]
        if peer == "cerebro":
            want = round(want / 10) * 10
        if abs(got - want) > 1e-6 * max(1.0, abs(want)):
            print(f"[{peer}] WARNING: answered {got}, the regressor says {want}", flush=True)
        _warm_up(peer, url, body.decode())
        table = {}
        for c in levels:
            table[c] = wrk(url, body.decode(), c, duration)
            table[c]["load"] = os.getloadavg()[0]
            print(f"[{peer}] c={c}: {table[c]['rps']:.0f} req/s, p50 {table[c]['p50_ms']:.2f} "
                  f"ms, p99 {table[c]['p99_ms']:.2f} ms, errors {table[c]['errors']}", flush=True)
        rss, pss = _memory_mb(proc.pid)
        for c in levels:
            table[c].update(rss_mb=rss, pss_mb=pss)
        return table
    finally:
        stop(proc)


def _report(results, failures, levels, args):
    """Print the table, Cerebro's ratios to the best peer and the targets."""
    print(f"\nrent_predictor HistGradientBoostingRegressor, one-row JSON requests, "
          f"{args.processes} server processes each, wrk {args.duration}s per level "
          f"(best of {args.rounds} round{'s' if args.rounds > 1 else ''}), "
          f"{os.cpu_count()} cores shared by servers and wrk, OMP_NUM_THREADS=1")
    print(f"{'server':<17}{'conc':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
          f"{'RSS MB':>9}{'PSS MB':>9}{'load1':>7}")
    for name, table in results.items():
        for c in levels:
            r = table[c]
            print(f"{name:<17}{c:>6}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                  f"{r['errors']:>8}{r['rss_mb']:>9.0f}{r['pss_mb']:>9.0f}{r['load']:>7.1f}")
    for name, why in failures.items():
        print(f"{name:<17} FAILED: {why}")
    print("\nNote: the peers take the ready numeric feature row; Cerebro takes the raw listing "
          "and validates it\nand engineers its features per request (more work per request). "
          "MLServer adds a front-end\nprocess to its parallel workers. RSS sums the process tree "
          "(forked pages counted per process);\nPSS shares them out.\n"
          "load1 is the box's 1-minute load average after the level "
          "(2 cores; above ~2.5 other work was competing).")
    peers = {n: t for n, t in results.items() if n != "cerebro"}
    cerebro = results.get("cerebro")
    if not cerebro or not peers:
        return
    print()
    for c in levels:
        best = max(peers, key=lambda n: peers[n][c]["rps"])
        ratio = cerebro[c]["rps"] / peers[best][c]["rps"]
        print(f"c={c:<4} Cerebro {cerebro[c]['rps']:.0f} req/s / best peer {best} "
              f"{peers[best][c]['rps']:.0f} req/s = {ratio:.2f}x; p99 {cerebro[c]['p99_ms']:.1f} "
              f"vs {peers[best][c]['p99_ms']:.1f} ms")
    top = max(levels)
    best = max(peers, key=lambda n: peers[n][top]["rps"])
    ratio = cerebro[top]["rps"] / peers[best][top]["rps"]
    p99_ok = cerebro[top]["p99_ms"] <= peers[best][top]["p99_ms"]
    print(f"target c={top}: >= {TARGET_RATIO:.0f}x best peer ({best}) with p99 no worse -> "
          f"{'MET' if ratio >= TARGET_RATIO and p99_ok else 'NOT MET'} "
          f"({ratio:.2f}x, p99 {'ok' if p99_ok else 'worse'})")
    print(f"stretch c={top}: >= {STRETCH_RPS} req/s -> "
          f"{'MET' if cerebro[top]['rps'] >= STRETCH_RPS else 'NOT MET'} "
          f"({cerebro[top]['rps']:.0f})")
    if 1 in cerebro:
        p50 = cerebro[1]["p50_ms"]
        print(f"target c=1: p50 < {TARGET_P50_C1_MS} ms -> "
              f"{'MET' if p50 < TARGET_P50_C1_MS else 'NOT MET'} ({p50:.2f} ms)")


def main():
    """Run every requested server and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--levels", default="1,16,64", help="concurrency levels")
    parser.add_argument("--peers", default=",".join(ALL_PEERS),
                        help="servers to run, of mlserver, bentoml, bentoml-nobatch, fastapi, "
                             "cerebro")
    parser.add_argument("--processes", type=int, default=2, help="server processes (workers)")
    parser.add_argument("--volume", default=None, help="a data volume with rent_predictor built")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every server this many times (alternating) and keep each "
                             "level's best round: damps other load on a shared box")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    levels = [int(c) for c in args.levels.split(",")]
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(peers) - set(ALL_PEERS) - {"bentoml-nobatch"})
    if unknown:
        parser.error(f"unknown servers {unknown}: use any of {list(ALL_PEERS)}, bentoml-nobatch")
    volume = _volume(args.volume)
    workdir = Path(tempfile.mkdtemp(prefix="cerebro-peers-run-"))
    regressor, row, listing, expected = _export(volume, workdir)
    ctx = {"volume": volume, "workdir": workdir, "regressor": regressor, "row": row,
           "listing": listing, "expected": expected, "processes": args.processes}
    print(f"regressor exported to {regressor} ({len(row)} features); logs in {workdir}",
          flush=True)
    results, failures = {}, {}
    for round_ in range(args.rounds):
        for peer in peers:
            if peer in failures:
                continue
            try:
                table = _measure(peer, ctx, levels, args.duration)
            except Exception as error:  # one peer failing must not end the run
                failures[peer] = f"{type(error).__name__}: {error}"
                print(f"[{peer}] FAILED, skipped: {failures[peer]} (see {workdir})", flush=True)
                continue
            best = results.setdefault(peer, table)
            for c in levels:  # best of the rounds: the one least disturbed by other load
                if table[c]["rps"] > best[c]["rps"]:
                    best[c] = table[c]
        if args.rounds > 1:
            print(f"round {round_ + 1}/{args.rounds} done", flush=True)
    results = {peer: table for peer, table in results.items() if peer not in failures}
    _report(results, failures, levels, args)


if __name__ == "__main__":
    main()
