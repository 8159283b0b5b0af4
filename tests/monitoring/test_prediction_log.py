"""
Author:  Cerebro team
Date:    2026-11-29
Subject: Tests of the prediction log: one file per day and node, read back merged, kept N days.
Tagline: Every node keeps its own diary; the reader gets one story, in order.

Several nodes sharing the log's folder (NFS, a ReadWriteMany volume) must never append to one
file: each writes ``<day>.<node>.jsonl`` (``settings.node_name``). :func:`predictions.read`
gives every node's records (and those of a single-file log of older versions) merged by time,
and retention removes every node's old files.
"""

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from cerebro.monitoring import predictions
from cerebro.monitoring.follow import Monitor
from cerebro.monitoring.policy import Monitoring
from cerebro.settings import load_settings

MODULE = "rent_predictor"


def settings_of(tmp_path, node="", days=14):
    """Cerebro settings whose prediction logs go under ``tmp_path``, on node ``node``."""
    return load_settings({"CEREBRO_PREDICTION_LOG_DIR": str(tmp_path / "logs"),
                          "CEREBRO_NODE": node, "CEREBRO_PREDICTION_LOG_DAYS": str(days)})


def day(days_ago=0):
    """The UTC day ``days_ago`` days ago, ``YYYY-MM-DD``."""
    return f"{datetime.now(timezone.utc) - timedelta(days=days_ago):%Y-%m-%d}"


def write(folder, name, records):
    """Write ``records`` as JSON lines to ``folder/name``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records))


def node_log(settings):
    """The prediction log a serving process of ``settings``' node keeps for MODULE."""
    module = SimpleNamespace(name=MODULE, monitoring=Monitoring(log_predictions=True,
                                                                log_fields=("city",)))
    return Monitor(settings, "api", registry=None)._log(module)


def test_each_node_appends_to_its_own_file_of_the_day(tmp_path):
    """Two nodes logging into one shared folder: ``<day>.n1.jsonl`` and ``<day>.n2.jsonl``,
    each with only its node's lines; no shared ``<day>.jsonl``."""
    logs = {node: node_log(settings_of(tmp_path, node)) for node in ("n1", "n2")}
    for node, log in logs.items():
        for n in range(3):
            log.add("v1", {"city": f"{node}-{n}", "secret": "x"}, {"rent": n})
        log.flush()
    folder = predictions.log_dir(settings_of(tmp_path), MODULE)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{day()}.n1.jsonl", f"{day()}.n2.jsonl"]
    for node in ("n1", "n2"):
        lines = (folder / f"{day()}.{node}.jsonl").read_text().splitlines()
        assert [json.loads(line)["inputs"] for line in lines] == [
            {"city": f"{node}-{n}"} for n in range(3)]


def test_the_node_is_the_host_name_without_cerebro_node(tmp_path):
    """CEREBRO_NODE unset: the node part of the file name is the host name
    (``settings.node_name``), made safe for a file name."""
    settings = settings_of(tmp_path)
    log = node_log(settings)
    log.add("v1", {"city": "pune"}, {"rent": 1})
    log.flush()
    name = predictions.file_node(settings.node_name)
    assert (predictions.log_dir(settings, MODULE) / f"{day()}.{name}.jsonl").exists()
    assert predictions.file_node("we ird/host") == "we_ird_host"
    assert predictions.file_node("..") == "unknown"


def test_read_merges_every_nodes_records_in_time_order(tmp_path):
    """``read`` gives every node's records of each day, and those of a single-file log of an
    older version, merged by ``ts``; days in order; torn lines skipped."""
    settings = settings_of(tmp_path)
    folder = predictions.log_dir(settings, MODULE)
    base = datetime.now(timezone.utc).timestamp()
    write(folder, f"{day(1)}.n2.jsonl", [{"ts": base - 86400 + 1, "id": "y-n2"}])
    write(folder, f"{day(1)}.jsonl", [{"ts": base - 86400, "id": "y-old"}])
    write(folder, f"{day()}.n1.jsonl", [{"ts": base + t, "id": f"n1-{t}"} for t in (1, 3, 5)])
    write(folder, f"{day()}.n2.jsonl", [{"ts": base + t, "id": f"n2-{t}"} for t in (2, 4)])
    write(folder, f"{day()}.jsonl", [{"ts": base, "id": "old-0"}, {"ts": base + 6, "id": "old-6"}])
    with open(folder / f"{day()}.n2.jsonl", "a") as handle:
        handle.write('{"ts": 1, "torn')
    write(folder, "notes.jsonl", [{"ts": base, "id": "not-a-log"}])
    ids = [r["id"] for r in predictions.read(settings, MODULE)]
    assert ids == ["y-old", "y-n2", "old-0", "n1-1", "n2-2", "n1-3", "n2-4", "n1-5", "old-6"]
    assert [r["id"] for r in predictions.read(settings, MODULE, since_days=0)] == ids[2:]


def test_retention_and_since_days_apply_to_every_nodes_files(tmp_path):
    """Files of days past CEREBRO_PREDICTION_LOG_DAYS are removed at a flush, whichever node
    wrote them (and a single-file log); newer ones and other files stay; ``since_days``
    leaves the older days out of ``read``."""
    settings = settings_of(tmp_path, "n3", days=14)
    folder = predictions.log_dir(settings, MODULE)
    old = [f"{day(20)}.n1.jsonl", f"{day(20)}.n2.jsonl", f"{day(15)}.jsonl"]
    kept = [f"{day(14)}.n1.jsonl", f"{day(3)}.n2.jsonl", f"{day(3)}.jsonl"]
    for name in old + kept:
        write(folder, name, [{"ts": 1.0, "id": name}])
    (folder / "README.txt").write_text("not a log")
    assert [r["id"] for r in predictions.read(settings, MODULE, since_days=5)] == kept[2:] + \
        kept[1:2]
    log = node_log(settings)
    log.add("v1", {"city": "pune"}, {"rent": 1})
    log.flush()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        kept + [f"{day()}.n3.jsonl", "README.txt"])
