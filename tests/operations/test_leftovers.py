"""`cerebro down` stops processes a killed program left behind, and only this stack's."""

import os
import subprocess
import sys
import time

from cerebro.ops import leftovers

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"


def _start(state_dir, code="import time; time.sleep(60)"):
    """A process that looks like one supervisord started for the stack of ``state_dir``."""
    env = dict(os.environ, SUPERVISOR_ENABLED="1", CEREBRO_STATE_DIR=str(state_dir))
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def test_sweep_stops_this_stacks_orphans_and_no_other(tmp_path):
    """Orphans of this stack (even one ignoring SIGTERM) are stopped; another stack's are not."""
    ours, other = tmp_path / "ours", tmp_path / "other"
    ours.mkdir()
    other.mkdir()
    polite, stubborn, foreign = _start(ours), _start(ours, STUBBORN), _start(other)
    try:
        time.sleep(0.3)  # the interpreter installs its SIGTERM handler
        assert leftovers.find(ours) == sorted([polite.pid, stubborn.pid])
        started = time.monotonic()
        assert leftovers.sweep(ours, grace=1.0) == sorted([polite.pid, stubborn.pid])
        assert polite.wait(5) < 0 and stubborn.wait(5) < 0
        assert time.monotonic() - started < 4
        assert foreign.poll() is None and leftovers.find(ours) == []
    finally:
        for proc in (polite, stubborn, foreign):
            proc.kill()
            proc.wait()
