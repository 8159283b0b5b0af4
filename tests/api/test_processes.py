"""`cerebro serve --processes 2`: every process serves, and a stop leaves no process behind."""

import http.client
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from cerebro import metrics
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
        for pid in children:  # CEREBRO_EVENT_LOOP=uvloop (the default): libuv's loop serves
            assert "uvloop/loop" in open(f"/proc/{pid}/maps").read()
        for i in range(40):
            assert server.post("/v1/echo/say", {"text": str(i)})[0] == 200
        # each process adds its requests to the shared metrics within a second, on its own:
        # one scrape (it reaches one process, which flushes only its own) sees them all
        time.sleep(metrics.FLUSH_SECONDS + 0.5)
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


def test_the_event_loop_setting_picks_the_loop_and_refuses_others():
    import asyncio

    import uvloop

    from cerebro.api.server import run_loop
    from cerebro.settings import ConfigurationError, load_settings

    seen = []

    async def record():
        seen.append(type(asyncio.get_running_loop()))

    run_loop("uvloop", record())
    run_loop("asyncio", record())
    assert seen[0] is uvloop.Loop and not issubclass(seen[1], uvloop.Loop)
    assert load_settings({}).event_loop == "uvloop"
    assert load_settings({"CEREBRO_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(ConfigurationError, match="CEREBRO_EVENT_LOOP"):
        load_settings({"CEREBRO_EVENT_LOOP": "tokio"})


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


def _served_connections(pid, port):
    """How many established TCP connections to ``port`` the process ``pid`` holds."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                    inodes.add(fields[9])
    held = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        held += target.startswith("socket:[") and target[8:-1] in inodes
    return held


def test_connections_opened_at_once_spread_over_the_processes(tmp_path):
    """A pool of keep-alive connections opened at once (what a Java client does) is spread by
    the kernel over both processes (CEREBRO_REUSE_PORT), not accepted by whichever wakes first."""
    server = CerebroServer({"CEREBRO_MODULES_PACKAGE": "fixture_modules",
                            "CEREBRO_MODULES": "echo", "CEREBRO_DATA_VOLUME": tmp_path,
                            "SHERLOCK_DIR": tmp_path / "s"},
                           processes=2, log_path=tmp_path / "serve.log")
    server.start()
    pool = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=10) for _ in range(16)]
    try:
        for connection in pool:
            connection.connect()
        for connection in pool:
            connection.request("POST", "/v1/echo/say", body=b'{"text": "hi"}',
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200
            response.read()
        children = _children(server.proc.pid)
        held = [_served_connections(pid, server.port) for pid in children]
        assert sum(held) == 16 and min(held) >= 2, held
        assert _served_connections(server.proc.pid, server.port) == 0  # the parent never accepts
    finally:
        for connection in pool:
            connection.close()
        server.stop()
