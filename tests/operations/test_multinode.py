"""Three Cerebro nodes sharing one RabbitMQ, one Redis, one Kafka-compatible broker, one data
volume and one Sherlock directory (tests/operations/cluster.py), each its own supervisord.

Asserts, on real processes: `cerebro status --all` shows every node, its programs, versions and
Kafka partitions, the partitions split across the nodes' consumers; a model published once is
served by every node within the reload interval, and rollback and canary are followed by every
node; exactly one Sherlock digest per period for the whole deployment, covering every node's
exceptions, with three nodes and with two; a whole node killed with SIGKILL under load loses no
Kafka event, no async task and no callback (the others take its partitions and its tasks).
Bounded: about three minutes.
"""

import re
import threading
import time

import pytest

import sherlock
from cluster import DIGEST_EVERY, PARTITIONS, TOPIC, Cluster, Traffic
from procs import wait_for
from sherlock.settings import load_settings as sherlock_settings
from support import QUICK_BUILD_ARGS, build_module, http

SERVING = {"api", "worker", "consumer", "subscriber"}  # the programs with a heartbeat


@pytest.fixture(scope="module")
def cluster(built_volume, tmp_path_factory):
    """Three nodes up and ready."""
    cluster = Cluster(tmp_path_factory.mktemp("multinode"), built_volume, size=3)
    try:
        cluster.start()
        print(f"\nmultinode: {cluster.size} nodes ready in {cluster.up_seconds:.1f}s")
        yield cluster
    finally:
        cluster.teardown()


def _settled(cluster, nodes):
    """The status --all report once ``nodes`` all answer with every serving program and every
    partition held by exactly one live consumer (None until then)."""
    code, report = cluster.status_all()
    names = {n["node"] for n in report["nodes"]}
    parts = report.get("partitions") or {}
    if names != nodes or not parts.get("held"):
        return None
    for node in report["nodes"]:
        services = {p["service"] for p in node["processes"] if p["alive"]}
        if not SERVING <= services:
            return None
    if parts["unheld"] or parts["doubly_held"]:
        return None
    return code, report


def _served_version(node, module):
    """The version of ``module``'s model ``node``'s API serves."""
    modules = http("GET", node.api + "/v1/modules", timeout=10)[2]["modules"]
    return next(m for m in modules if m["name"] == module)["models"][0]["version"]


def _digest_runs(cluster):
    """Times (epoch seconds, from the worker logs of every node) at which task sherlock.digest
    ran, oldest first."""
    from datetime import datetime
    runs = []
    for node in cluster.nodes:
        for log in (node.dir / "logs").glob("worker*.log"):
            for line in log.read_text(errors="replace").splitlines():
                if "sherlock.digest" in line and "succeeded" in line:
                    runs.append(datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp())
    return sorted(runs)


def _one_run_per_period(cluster, since):
    """Digest runs since ``since`` (epoch seconds): never two in one period, whatever the
    number of beats; returns how many."""
    runs = [t for t in _digest_runs(cluster) if t >= since]
    gaps = [later - earlier for earlier, later in zip(runs, runs[1:])]
    assert runs and min(gaps, default=DIGEST_EVERY) >= DIGEST_EVERY / 2, gaps
    return len(runs)


def test_status_all_shows_every_node_and_the_partitions_split(cluster):
    """Every node with its serving programs and versions; each consumer holds partitions."""
    names = {node.name for node in cluster.nodes}
    code, report = wait_for(lambda: _settled(cluster, names), 60,
                            what="every node serving and every partition held once")
    assert code == 0 and report["healthy"], report
    holders = {}
    for node in report["nodes"]:
        consumers = [p for p in node["processes"] if p["service"] == "consumer"]
        assert len(consumers) == 1
        holders[node["node"]] = consumers[0]["assignment"][TOPIC]
        assert node["modules"]["rent_predictor"] == report["nodes"][0]["modules"][
            "rent_predictor"]
    assert all(holders.values()), f"a consumer holds no partition: {holders}"
    assert sorted(p for parts in holders.values() for p in parts) == list(range(PARTITIONS))
    text = cluster.alive_nodes()[0].cerebro("status", "--all").stdout
    for name in names:
        assert f"Node {name}: up" in text
    print(f"\nstatus --all: partitions by node {holders}")


def test_a_published_model_is_served_by_every_node(cluster):
    """One build into the shared volume: every node serves it within the reload interval;
    rollback and a canary are followed by every node."""
    before = _served_version(cluster.nodes[0], "rent_predictor")
    pointer = cluster.volume / "rent_predictor" / "current.json"
    seen = {}

    def every_node_serves_it():
        """True once every node serves another version than before (noting when)."""
        for node in cluster.nodes:
            if node.name not in seen and _served_version(node, "rent_predictor") != before:
                seen[node.name] = time.time()
        return len(seen) == len(cluster.nodes)

    build = threading.Thread(target=build_module, args=(
        "rent_predictor", cluster.volume, *QUICK_BUILD_ARGS["rent_predictor"]))
    build.start()
    wait_for(every_node_serves_it, 60, interval=0.02, what="every node serving the new version")
    build.join()
    published = pointer.stat().st_mtime
    delays = {name: round(at - published, 2) for name, at in seen.items()}
    assert max(delays.values()) < 0.5 + 2.0, delays  # the reload interval, and a loaded box
    new = _served_version(cluster.nodes[0], "rent_predictor")
    assert all(_served_version(node, "rent_predictor") == new for node in cluster.nodes)
    print(f"\nnew version {new} served by every node after (s): {delays}")

    rollback = cluster.nodes[1].cerebro("rollback", "rent_predictor")
    assert rollback.returncode == 0, rollback.stderr
    for node in cluster.nodes:
        wait_for(lambda n=node: _served_version(n, "rent_predictor") == before, 20,
                 interval=0.05, what=f"{node.name} serving the version rolled back to")

    canary = cluster.nodes[2].cerebro("canary", "rent_predictor", new, "--percent", "30")
    assert canary.returncode == 0, canary.stderr

    def every_node_in_canary():
        """True once every node's live processes report the canary."""
        code, report = cluster.status_all()
        return report["nodes"] and all(
            any(f"candidate {new} in canary at 30%" in v
                for v in node["modules"].get("rent_predictor", []))
            for node in report["nodes"]) and len(report["nodes"]) == len(cluster.nodes)

    wait_for(every_node_in_canary, 20, what="every node serving the canary")
    promote = cluster.nodes[0].cerebro("promote", "rent_predictor", new)
    assert promote.returncode == 0, promote.stderr
    for node in cluster.nodes:
        wait_for(lambda n=node: _served_version(n, "rent_predictor") == new, 20,
                 interval=0.05, what=f"{node.name} serving the promoted version")


def test_a_shadow_is_tallied_across_every_node(cluster):
    """A shadow candidate started on one node runs on every node; `cerebro compare` on any
    node merges every node's tallies (CEREBRO_SHARED_DIR)."""
    import json
    versions = json.loads(cluster.nodes[0].cerebro("versions", "rent_predictor",
                                                   "--json").stdout)
    current = _served_version(cluster.nodes[0], "rent_predictor")
    older = next(v["version"] for v in versions["versions"] if v["version"] != current)
    shadow = cluster.nodes[1].cerebro("shadow", "rent_predictor", older)
    assert shadow.returncode == 0, shadow.stderr
    payload = cluster.examples()[("rent_predictor", "predict")]

    def every_node_shadowed():
        """Call every node; the merged tally once every node's API has counted calls."""
        for node in cluster.nodes:
            for _ in range(5):
                code, _, body = http("POST", node.api + "/v1/rent_predictor/predict", payload)
                assert code == 200 and body["model_version"] == current
        out = cluster.nodes[0].cerebro("compare", "rent_predictor", "--json", "--no-plot")
        summary = json.loads(out.stdout)
        counted = {name for name in (n.name for n in cluster.nodes)
                   if any(f"-{name}-" in p for p in summary["processes"])}
        return summary if len(counted) == len(cluster.nodes) and summary["calls"] else None

    summary = wait_for(every_node_shadowed, 40, interval=0.5,
                       what="every node's shadow tally in cerebro compare")
    print(f"\nshadow on 3 nodes: {summary['calls']} calls compared from "
          f"{summary['processes']}")
    off = cluster.nodes[2].cerebro("shadow", "rent_predictor", "--off")
    assert off.returncode == 0, off.stderr


def _capture(cluster, node_name, text):
    """Record one exception as a process of node ``node_name`` does; its own type (named after
    ``text``), so the digest lists it as a kind of its own, message shown."""
    env = {"SHERLOCK_DIR": str(cluster.sherlock), "SHERLOCK_NODE": node_name}
    kind = type("".join(part.capitalize() for part in re.split(r"\W+", text)) + "Error",
                (RuntimeError,), {})
    try:
        raise kind(text)
    except RuntimeError as exc:
        sherlock.capture(exc, service="worker", settings=sherlock_settings(env))


def _mails_with(cluster, marker):
    """The digests received whose text names ``marker``."""
    found = []
    for message in list(cluster.inbox.messages):
        body = message.get_body(("plain",)).get_content()
        if marker in body:
            found.append(body)
    return found


def _digest_rounds(cluster, nodes, rounds, tag):
    """``rounds`` periods: each captures one exception per node right after the previous
    digest arrived, then waits for the next. Returns the mails of these rounds."""
    start = len(cluster.inbox.messages)
    for round_ in range(rounds):
        markers = [f"{tag}-round{round_}-{name}" for name in nodes]
        for name, marker in zip(nodes, markers):
            _capture(cluster, name, marker)
        wait_for(lambda m=markers: all(_mails_with(cluster, x) for x in m), 6 * DIGEST_EVERY + 20,
                 interval=0.1, what=f"the digest of round {round_}")
    time.sleep(2 * DIGEST_EVERY)  # periods with nothing new: no mail
    return cluster.inbox.messages[start:]


def _check_rounds(mails, nodes, rounds, tag):
    """Every round's exceptions in exactly one mail, no mail without new exceptions."""
    for round_ in range(rounds):
        for name in nodes:
            marker = f"{tag}-round{round_}-{name}"
            holding = [m for m in mails if marker in m.get_body(("plain",)).get_content()]
            assert len(holding) == 1, f"{marker} is in {len(holding)} digests"
    assert len(mails) == rounds, [m["Subject"] for m in mails]
    for mail in mails:
        assert re.match(r"Sherlock detected \d+ exceptions in Cerebro", mail["Subject"])


def test_exactly_one_digest_per_period_with_three_nodes(cluster):
    """Every node runs beat; one Sherlock digest per period covers every node's exceptions."""
    nodes = [node.name for node in cluster.nodes]
    started = time.time()
    mails = _digest_rounds(cluster, nodes, 2, "three")
    _check_rounds(mails, nodes, 2, "three")
    runs = _one_run_per_period(cluster, started)
    print(f"\ndigests with 3 nodes (3 beats): {len(mails)} mails for 2 periods with "
          f"exceptions; {runs} digest runs in {time.time() - started:.0f}s, never two in one "
          f"{DIGEST_EVERY}s period")


def test_killing_a_whole_node_loses_no_event_task_or_callback(cluster):
    """SIGKILL every process of node-3 under load: the other nodes take its partitions and its
    tasks; every event and every accepted task reaches the main app."""
    victim = cluster.nodes[2]
    survivors = cluster.nodes[:2]
    worker_log = victim.dir / "logs" / "worker.log"
    traffic = Traffic(cluster, [n.api for n in survivors], event_every=0.02,
                      task_every=0.3).start()
    try:
        time.sleep(3)
        # kill while node-3's worker holds a task (each lasts 0.8 s): its redelivery is tested
        wait_for(lambda: _unfinished_tasks(worker_log), 20, interval=0.05,
                 what="a task in flight in node-3's worker")
        before = dict(cluster.key_counts())
        processes = victim.kill()
        killed_at = time.monotonic()
        # what node-3's processes wrote last, left in its own Sherlock store on the shared
        # volume: no process of node-3 will ever read or send it
        _capture(cluster, victim.name, "last-words-of-node-3")
        time.sleep(9)
    finally:
        traffic.finish()
    expected_events, expected_tasks = set(traffic.produced), set(traffic.accepted)
    counts = wait_for(lambda: (lambda c: c if (expected_events | expected_tasks) <= set(c)
                               else None)(cluster.key_counts()), 120,
                      what="every event and every accepted task at the main app")
    taken_over = wait_for(lambda: _taken_over(cluster, victim), 60,
                          what="the survivors holding every partition")
    in_flight = _unfinished_tasks(worker_log)
    assert in_flight and in_flight <= expected_tasks, "node-3 held no task when it died"
    events_dup = sum(counts[k] - 1 for k in expected_events)
    tasks_dup = sum(counts[k] - 1 for k in expected_tasks)
    print(f"\nnode kill: {processes} processes of {victim.name} killed; "
          f"{len(before)} outcomes before the kill; "
          f"events sent {len(expected_events)}, received {len(expected_events)}, lost 0, "
          f"duplicated {events_dup}; tasks accepted {len(expected_tasks)} "
          f"({traffic.refused} refused), callbacks received {len(expected_tasks)}, lost 0, "
          f"duplicated {tasks_dup} ({len(in_flight)} held by the dead worker, redelivered); "
          f"partitions taken over "
          f"{time.monotonic() - killed_at:.1f}s after the kill at the latest: {taken_over}")
    assert len(expected_events) > 250 and len(expected_tasks) > 20
    assert traffic.refused == 0
    assert cluster.received()["bad_signatures"] == 0


def _unfinished_tasks(log):
    """Task ids a worker log says were received and never finished (held when it died)."""
    text = log.read_text(errors="replace")
    received = set(re.findall(r"Task cerebro\.run\[([0-9a-f-]+)\] received", text))
    done = set(re.findall(r"Task cerebro\.run\[([0-9a-f-]+)\] (?:succeeded|failed|retry)",
                          text))
    return received - done


def _taken_over(cluster, victim):
    """The partitions by holder once the survivors hold every one and the victim is LOST."""
    code, report = cluster.status_all()
    parts = report.get("partitions") or {}
    lost = [n for n in report["nodes"] if n["node"] == victim.name]
    if not parts.get("held") or parts["unheld"] or parts["doubly_held"]:
        return None
    if not lost or lost[0]["alive"] or code == 0:
        return None
    holders = {p: who for p, who in parts["held"].items()}
    if any(who[0].startswith(victim.name) for who in holders.values()):
        return None
    return holders


def test_status_all_names_the_dead_node_until_it_is_forgotten(cluster):
    """The killed node shows as LOST (not healthy); `--forget` removes it, then healthy."""
    victim = cluster.nodes[2]
    code, report = cluster.status_all()
    dead = next(n for n in report["nodes"] if n["node"] == victim.name)
    assert code == 1 and not dead["alive"]
    assert all(not p["alive"] for p in dead["processes"])
    text = cluster.nodes[0].cerebro("status", "--all").stdout
    assert f"Node {victim.name}: NOT ALL ALIVE" in text and "LOST" in text
    forgot = cluster.nodes[0].cerebro("status", "--all", "--forget", victim.name)
    assert forgot.returncode == 0 and "forgot" in forgot.stdout
    code, report = wait_for(lambda: _settled(cluster, {n.name for n in survivors(cluster)}),
                            30, what="a healthy deployment of two nodes")
    assert code == 0 and report["healthy"]


def survivors(cluster):
    """The nodes still running."""
    return cluster.alive_nodes()


def test_exactly_one_digest_per_period_with_two_nodes(cluster):
    """After the kill: still one digest per period (the lock passed on if the dead node held
    it), and the dead node's last exception was digested."""
    wait_for(lambda: _mails_with(cluster, "last-words-of-node-3"), 60 + 6 * DIGEST_EVERY,
             what="the dead node's last exception in a digest")
    assert len(_mails_with(cluster, "last-words-of-node-3")) == 1
    nodes = [node.name for node in survivors(cluster)]
    started = time.time()
    mails = _digest_rounds(cluster, nodes, 2, "two")
    _check_rounds(mails, nodes, 2, "two")
    runs = _one_run_per_period(cluster, started)
    print(f"\ndigests with 2 nodes (2 beats): {len(mails)} mails for 2 periods with "
          f"exceptions; {runs} digest runs in {time.time() - started:.0f}s")
