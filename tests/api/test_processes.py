"""`cerebro serve --processes 2`: every process serves, and a stop leaves no process behind."""

import http.client
import json
import os
import subprocess
import sys
import threading
import time

from support import CerebroServer


def _children(pid):
    """PIDs of the direct children of ``pid``."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_two_processes_serve_and_stop_cleanly(tmp_path):
    """Two children answer; SIGTERM to the parent stops both; metrics sum across processes."""
    server = CerebroServer({"CEREBRO_MODULES_PACKAGE": "fixture_modules",
                            "CEREBRO_DATA_VOLUME": tmp_path, "SHERLOCK_DIR": tmp_path / "s"},
                           processes=2, log_path=tmp_path / "serve.log")
    server.start()
    try:
        children = _children(server.proc.pid)
        assert len(children) == 2
        allowed = sorted(os.sched_getaffinity(server.proc.pid))
        pinned = [os.sched_getaffinity(pid) for pid in children]
        if len(allowed) == 2:  # CEREBRO_CPU_AFFINITY=auto: one process per CPU, each pinned
            assert sorted(cpu for cpus in pinned for cpu in cpus) == allowed
        else:
            assert all(sorted(cpus) == allowed for cpus in pinned)
        for i in range(40):
            assert server.post("/v1/echo/say", {"text": str(i)})[0] == 200
        text = server.get("/metrics")[2].decode()
        assert 'cerebro_requests_total{function="say",module="echo",status="200"} 40.0' in text
    finally:
        server.proc.terminate()
        assert server.proc.wait(20) == 0
    time.sleep(0.2)
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or \
            open(f"/proc/{pid}/stat").read().split()[2] == "Z"


def _affinity_after(mode, index, processes):
    """The CPUs a fresh interpreter may use after ``pin_to_cpu(mode, index, processes)``."""
    code = ("import os; from cerebro.api.server import pin_to_cpu; "
            f"pin_to_cpu({mode!r}, {index}, {processes}); print(sorted(os.sched_getaffinity(0)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_cpu_affinity_modes():
    """``true`` pins process i to the i-th allowed CPU, ``false`` never pins, ``auto`` pins
    only with one process per allowed CPU."""
    allowed = sorted(os.sched_getaffinity(0))
    assert _affinity_after("true", 1, 2) == [allowed[1 % len(allowed)]]
    assert _affinity_after("false", 0, len(allowed)) == allowed
    assert _affinity_after("auto", 0, len(allowed)) == [allowed[0]]
    assert _affinity_after("auto", 0, len(allowed) + 1) == allowed


def test_sigterm_answers_requests_in_flight_before_exiting(tmp_path):
    """A stop never cuts a request off: calls already accepted (one running, three queued
    behind it on the module's single thread) are all answered 200, with Connection: close,
    and the server exits 0."""
    server = CerebroServer({"CEREBRO_MODULES_PACKAGE": "fixture_modules",
                            "CEREBRO_MODULES": "slow", "CEREBRO_DATA_VOLUME": tmp_path,
                            "SHERLOCK_DIR": tmp_path / "s"},
                           processes=1, log_path=tmp_path / "serve.log")
    server.start()
    answers = []

    def call():
        """One keep-alive request (http.client does not ask for Connection: close itself)."""
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
        try:
            connection.request("POST", "/v1/slow/wait", body=b'{"seconds": 0.4}',
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            answers.append((response.status, response.getheader("Connection"), response.read()))
        finally:
            connection.close()

    callers = [threading.Thread(target=call) for _ in range(4)]
    try:
        for caller in callers:
            caller.start()
        time.sleep(0.2)  # all four are in flight, the first one is running
        server.proc.send_signal(subprocess.signal.SIGTERM)
        for caller in callers:
            caller.join(15)
        assert server.proc.wait(20) == 0
    finally:
        server.stop()
    assert [status for status, _, _ in answers] == [200] * 4, answers
    # answered after the stop began: the client is told not to reuse the connection
    assert [connection for _, connection, _ in answers] == ["close"] * 4
