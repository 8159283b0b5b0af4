"""`cerebro serve --processes 2`: every process serves, and a stop leaves no process behind."""

import os
import subprocess
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
