"""`cerebro serve` children never outlive their parent, and crash loops are slowed and capped."""

import os
import signal
import subprocess
import time

from support import CerebroServer, free_port, http


def _children(pid):
    """PIDs of the direct children of ``pid``."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _gone(pid):
    """True when ``pid`` no longer runs (or is a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _wait_until(predicate, timeout):
    """Poll ``predicate`` until true; returns the seconds it took (fails after ``timeout``)."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "condition not met in time"
        time.sleep(0.05)
    return time.monotonic() - started


def _server(tmp_path, processes=2, **env):
    """A started two-process server on the fixture modules."""
    server = CerebroServer({"CEREBRO_MODULES_PACKAGE": "fixture_modules",
                            "CEREBRO_MODULES": "echo", "CEREBRO_DATA_VOLUME": tmp_path,
                            "SHERLOCK_DIR": tmp_path / "s", **env},
                           processes=processes, log_path=tmp_path / "serve.log")
    return server.start()


def _cpu_seconds(pid):
    """CPU seconds process ``pid`` used so far (utime + stime from /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _refused(url):
    """True when nothing accepts connections at ``url``."""
    try:
        http("GET", url + "/healthz", timeout=1)
    except OSError:
        return True
    return False


def test_kill_9_of_the_parent_takes_its_children_down(tmp_path):
    """kill -9 of the parent (what supervisord's api program runs) leaves no process serving
    the port: the children get SIGTERM from the kernel and drain out; a new server then binds
    the same port and serves."""
    server = _server(tmp_path)
    children = _children(server.proc.pid)
    assert len(children) == 2
    try:
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(5)
        took = _wait_until(lambda: all(_gone(pid) for pid in children), 12)
        assert took < 5, f"children outlived their parent by {took:.1f}s"
        assert _refused(server.url)
        again = CerebroServer(processes=2, log_path=tmp_path / "again.log")
        again.port, again.url, again.env = server.port, server.url, server.env
        again.start()
        try:
            assert again.post("/v1/echo/say", {"text": "back"})[0] == 200
        finally:
            again.stop()
    finally:
        for pid in children:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_child_crashing_at_start_up_is_restarted_slower_then_given_up(tmp_path):
    """A child killed right after each start is restarted after a growing delay; after five
    quick crashes in a row the parent stops the other child and exits 2 (supervisord never
    restarts that and shows it FAILED) instead of looping. The parent does not spin while it
    waits to restart a child."""
    server = _server(tmp_path)
    try:
        gaps = []
        for _ in range(5):
            current = set(_children(server.proc.pid))
            victim = max(current)
            os.kill(victim, signal.SIGKILL)
            died = time.monotonic()
            _wait_until(lambda: server.proc.poll() is not None
                        or set(_children(server.proc.pid)) - current - {victim}, 20)
            gaps.append(time.monotonic() - died)
            if server.proc.poll() is not None:
                break
        assert server.proc.wait(15) == 2
        assert len(gaps) == 5
        assert gaps[0] < gaps[3] and gaps[3] >= 2.0, gaps  # back-off: 0.5-1, 1-2, 2-4, 4-8 s
        assert _refused(server.url)
        log = (tmp_path / "serve.log").read_text()
        assert "crashed 5 times in a row at start-up" in log
    finally:
        server.stop()


def test_a_misconfigured_child_stops_the_server_with_exit_2(tmp_path):
    """A child that exits 2 (a misconfiguration, here an unknown modules package) stops the
    whole server with exit 2 at once, and the message names the setting."""
    server = CerebroServer({"CEREBRO_MODULES_PACKAGE": "no_such_modules_package",
                            "CEREBRO_DATA_VOLUME": tmp_path, "SHERLOCK_DIR": tmp_path / "s"},
                           processes=2, log_path=tmp_path / "serve.log")
    started = time.monotonic()
    try:
        server.start(timeout=20)
    except RuntimeError:
        pass
    assert server.proc.wait(20) == 2
    assert time.monotonic() - started < 15
    assert "CEREBRO_MODULES_PACKAGE" in (tmp_path / "serve.log").read_text()


def test_a_port_held_by_another_program_fails_clearly(tmp_path):
    """When something that is not a draining Cerebro keeps the port, binding waits its
    patience out and raises ConfigurationError naming CEREBRO_PORT (which `cerebro serve`
    turns into exit 2); here with a short patience."""
    import socket
    port = free_port()
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        from cerebro.api.server import bind_with_patience
        from cerebro.settings import ConfigurationError
        started = time.monotonic()
        try:
            bind_with_patience(port, "127.0.0.1", reuse=False, patience=1.0)
        except ConfigurationError as exc:
            assert "CEREBRO_PORT" in str(exc)
        else:
            raise AssertionError("bound a port another program holds")
        assert 1.0 <= time.monotonic() - started < 3
    finally:
        holder.close()


def test_the_parent_does_not_spin_while_no_child_is_alive(tmp_path):
    """Both children killed at once: while their restart is due, the parent has no child
    to wait for and must sleep, not poll in a loop."""
    server = _server(tmp_path)
    try:
        children = _children(server.proc.pid)
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        before = _cpu_seconds(server.proc.pid)
        _wait_until(lambda: len(set(_children(server.proc.pid)) - set(children)) == 2, 20)
        assert _cpu_seconds(server.proc.pid) - before < 0.3
    finally:
        server.stop()
