"""
Author:  Cerebro team
Date:    2026-11-24
Subject: End-to-end test: a real cerebro serve process records a handler's exception.
Tagline: From a 500 on the wire to a line in the ledger.

End to end: a real ``cerebro serve`` process records a handler's exception in Sherlock's file.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sherlock_helpers import free_port

REPO = Path(__file__).resolve().parents[2]


def _request(url, body=None):
    """``(status, JSON body)`` of a GET (or a POST when ``body`` is given)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _records(directory):
    """Every record in the current Sherlock file."""
    path = directory / "sherlock.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def server(tmp_path):
    """``cerebro serve`` on a free port, serving the fixture modules, Sherlock in tmp_path."""
    if not (REPO / "cerebro" / "cli.py").exists():
        pytest.skip("cerebro serve (cerebro/cli.py) is not available yet")
    port = free_port()
    sherlock_dir = tmp_path / "sherlock"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHERLOCK_")}
    env.update({"CEREBRO_MODULES_PACKAGE": "fixture_modules",
                "PYTHONPATH": str(REPO / "tests"),
                "CEREBRO_DATA_VOLUME": str(tmp_path / "data_volume"),
                "SHERLOCK_DIR": str(sherlock_dir)})
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "cerebro", "serve", "--port", str(port),
                             "--processes", "1"], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _request(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("server did not start:\n"
                                     + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(0.1)
        yield base, sherlock_dir
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_rest_handler_exception_is_recorded_with_its_ids(server):
    """POST /v1/boom/explode -> 500 with an error id, and a Sherlock record carrying it."""
    base, sherlock_dir = server
    status, body = _request(f"{base}/v1/boom/explode", {"n": 3})
    assert status == 500
    error_id = body["error"]["error_id"]

    deadline = time.monotonic() + 10
    while True:
        matching = [r for r in _records(sherlock_dir) if r.get("error_id") == error_id]
        if matching or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    [record] = matching
    assert record["service"] == "api"
    assert (record["module"], record["function"]) == ("boom", "explode")
    assert record["request_id"]
    assert record["type"] == "ZeroDivisionError" and record["message"] == "boom 3 / 0"
    assert "ZeroDivisionError" in record["traceback"] and "in explode" in record["traceback"]

    before = len(_records(sherlock_dir))
    status, body = _request(f"{base}/v1/echo/say", {})
    assert status == 400 and body["error"]["type"] == "invalid_payload"
    status, _body = _request(f"{base}/v1/nosuch/thing", {})
    assert status == 404
    time.sleep(0.3)
    after = _records(sherlock_dir)
    assert len(after) == before, "client errors (4xx) must not be recorded"
    assert all(r["type"] != "cerebro.errors.InvalidPayload" for r in after)
