"""One small real stack under supervisord (`cerebro up`): the API with two prefork processes,
the main-app simulator, and two programs of a plugin that fail on cue as misconfigured programs
do (exit 2). Checked on it: `cerebro up` says where the passwords are without printing them,
the README's supervisorctl command works without any variable, `cerebro status` lists the API's
children and flags an orphan listening on its port, a program exiting 2 is not restarted and a
quick exit-2 loop ends FATAL, both shown failed with their log's last error line, and a second
`cerebro up` stops at once on them. `cerebro down` leaves no process."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from procs import wait_for
from support import REPO, TESTS, cerebro_env, free_port, run_cli

BIN = Path(sys.executable).parent
BAD_LINE = "cerebro misconfigured: CEREBRO_BROKER_URL refused: ACCESS_REFUSED (bad password)"
LOOP_LINE = "ERROR cerebro consume: InvalidSessionTimeoutError: session.timeout.ms 2000 refused"

PLUGIN = '''
"""Programs failing as misconfigured Cerebro programs do, once the trigger file exists."""

from cerebro.ops.programs import Program


def ready(settings, env):
    """Ready once it runs."""
    return True, "running"


MISCONFIGURED = Program(
    "misconfigured",
    "bash -c 'echo started; while [ ! -e %(ENV_FAIL_TRIGGER)s ]; do sleep 0.2; done; '"
    "'echo \\"@BAD@\\" >&2; echo \\"shutting down\\"; exit 2'",
    "exits 2 after a while, as a refused password at reconnection would", default=False,
    probe=ready, start_seconds=1, stop_seconds=5)

CRASHLOOP = Program(
    "crashloop",
    "bash -c 'if [ -e %(ENV_FAIL_TRIGGER)s ]; then echo \\"@LOOP@\\"; exit 2; fi; exec sleep 600'",
    "exits 2 at once from its next start on", default=False, probe=ready, start_seconds=1,
    start_retries=1, stop_seconds=5)
'''.replace("@BAD@", BAD_LINE).replace("@LOOP@", LOOP_LINE)


ORPHAN = """
import socket, sys, time
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
print("listening", flush=True)
time.sleep(120)
"""


def _plugin(root):
    """An installed package declaring both programs (entry points of cerebro.programs)."""
    info = root / "failing_programs-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: failing-programs\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[cerebro.programs]\nmisconfigured = failing_programs:MISCONFIGURED\n"
        "crashloop = failing_programs:CRASHLOOP\n")
    (root / "failing_programs.py").write_text(textwrap.dedent(PLUGIN))


def _descendants(pid):
    """Every process below ``pid``."""
    from cerebro.ops.processes import descendants, parents
    return set(descendants(pid, parents()))


class Stack:
    """The stack's environment and helpers."""

    def __init__(self, tmp, rabbit, redis):
        _plugin(tmp / "site")
        self.state, self.trigger = tmp / "state", tmp / "trigger"
        self.main = f"http://127.0.0.1:{free_port()}"
        self.port = free_port()
        self.env = {"PYTHONPATH": f"{tmp / 'site'}:{REPO}:{TESTS}", "FAIL_TRIGGER": self.trigger,
                    "CEREBRO_MODULES_PACKAGE": "fixture_modules", "CEREBRO_MODULES": "echo",
                    "CEREBRO_PROGRAMS": "api,misconfigured,crashloop",
                    "CEREBRO_RUN_RABBITMQ": "false", "CEREBRO_RUN_REDIS": "false",
                    "CEREBRO_RUN_KAFKA": "false", "CEREBRO_KAFKA_BOOTSTRAP":
                    f"127.0.0.1:{free_port()}", "CEREBRO_BROKER_URL": rabbit,
                    "CEREBRO_RESULT_BACKEND": redis, "CEREBRO_MAIN_APP_URL": self.main,
                    "CEREBRO_PORT": self.port, "CEREBRO_PROCESSES": 2,
                    "CEREBRO_STATE_DIR": self.state, "CEREBRO_LOG_DIR": tmp / "logs",
                    "CEREBRO_SUPERVISOR_PORT": free_port(), "CEREBRO_DATA_VOLUME": tmp / "vol",
                    "SHERLOCK_DIR": tmp / "sherlock", "CEREBRO_CALLBACK_SECRET": "",
                    "CEREBRO_SUPERVISOR_PASSWORD": "", "CEREBRO_FLOWER_PASSWORD": ""}

    def cli(self, *args, timeout=120):
        """Run `cerebro *args` with the stack's environment."""
        return run_cli(self.env, *args, timeout=timeout)

    def status(self):
        """`cerebro status --json`: (exit code, report)."""
        code, out, err = self.cli("status", "--json")
        assert out.strip(), err
        return code, json.loads(out)

    def infos(self):
        """supervisord's view of every program."""
        from cerebro.ops.supervise import Supervisor
        from cerebro.settings import load_settings
        return Supervisor(load_settings({"CEREBRO_STATE_DIR": str(self.state)})).processes()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, rabbit_url, redis_url):
    """`cerebro up`; `cerebro down` at the end, which must leave no process."""
    stack = Stack(tmp_path_factory.mktemp("supervised"), rabbit_url, redis_url)
    code, out, err = stack.cli("up", "--no-build", "--timeout", "90", timeout=150)
    stack.up_output = out
    pid = int((stack.state / "supervisord.pid").read_text()) \
        if (stack.state / "supervisord.pid").exists() else None
    below = _descendants(pid) if pid else set()
    try:
        assert code == 0, out + err
        yield stack
    finally:
        below |= _descendants(pid) if pid else set()
        code, out, err = stack.cli("down", timeout=120)
        left = [p for p in below | ({pid} if pid else set()) if Path(f"/proc/{p}").exists()
                and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1][:3]]
        for p in left:
            os.kill(p, signal.SIGKILL)
        assert code == 0 and not left, (out, err, left)


def test_up_says_where_the_passwords_are_never_what(stack):
    """The supervisor password line names the file to read, not the variable, and the generated
    value never appears; the simulator started as the main app."""
    secrets = dict(line.split("=", 1) for line in
                   (stack.state / "secrets.env").read_text().splitlines())
    out = stack.up_output
    assert f"password: grep CEREBRO_SUPERVISOR_PASSWORD {stack.state}/secrets.env" in out
    assert "password: CEREBRO_SUPERVISOR_PASSWORD)" not in out
    assert not [name for name, value in secrets.items() if value in out]
    assert re.search(r"ready: simulator\s+/simulator/received 200", out)
    assert f"curl {stack.main}/simulator/received" in out


def test_the_readme_supervisorctl_command_works_without_variables(stack):
    """README's `supervisorctl -c var/supervisorctl.conf status` with nothing in the environment
    (supervisord.conf itself needs CEREBRO_STATE_DIR to be expanded)."""
    readme = (REPO / "README.md").read_text()
    assert ".venv/bin/supervisorctl -c var/supervisorctl.conf status" in readme
    bare = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(BIN / "supervisorctl"), "-c",
                             str(stack.state / "supervisorctl.conf"), "status"], env=bare,
                            capture_output=True, text=True, timeout=30)
    assert re.search(r"^cerebro:api\s+RUNNING", result.stdout, re.M), result.stdout + result.stderr
    assert re.search(r"^cerebro:simulator\s+RUNNING", result.stdout, re.M), result.stdout
    plain = subprocess.run([str(BIN / "supervisorctl"), "-c", str(REPO / "supervisord.conf"),
                            "status"], env=bare, capture_output=True, text=True, timeout=30)
    assert "ENV_CEREBRO_STATE_DIR" in plain.stdout + plain.stderr   # why the file exists


def test_settings_show_the_generated_callback_secret_as_set(stack):
    """`cerebro settings` in a shell without the secret: set, and where it comes from."""
    code, out, _ = stack.cli("settings")
    line = next(li for li in out.splitlines() if li.startswith("CEREBRO_CALLBACK_SECRET "))
    assert code == 0 and "<set>" in line and f"{stack.state}/secrets.env" in line


def test_status_lists_the_api_children_and_flags_an_orphan_on_its_port(stack):
    """Two prefork children under the supervised API, each listening, no orphan; then a
    process outside the API's tree listening on its port (SO_REUSEPORT, as an orphaned child
    keeps doing) is flagged as an orphan and makes the status unhealthy."""
    _, report = stack.status()
    api = next(p for p in report["programs"] if p["name"] == "api")
    assert len(api["children"]) == 2, api
    assert report["api"]["pid"] == api["pid"] and report["api"]["orphans"] == []
    assert set(report["api"]["listening"]) <= {api["pid"], *api["children"]}
    assert len(report["api"]["listening"]) >= 2
    environ = Path(f"/proc/{api['pid']}/environ").read_bytes().split(b"\0")
    assert f"LISTING_ENRICHMENT_AMENITIES_URL={stack.main}".encode() in environ
    # an orphaned API child keeps its SO_REUSEPORT socket listening (cerebro serve itself now
    # refuses to share the port, so a bare process plays the orphan)
    orphan = subprocess.Popen([sys.executable, "-c", ORPHAN, str(stack.port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert orphan.stdout.readline().strip() == "listening"
        code, report = stack.status()
        assert [o["pid"] for o in report["api"]["orphans"]] == [orphan.pid], report["api"]
        assert code == 1 and not report["healthy"]
        text = stack.cli("status")[1]
        assert f"API port {stack.port}: 1 ORPHAN process(es) listening" in text
        assert re.search(rf"pid {orphan.pid}\s+parent {os.getpid()}\s+\S*python", text), text
    finally:
        orphan.kill()
        orphan.wait()


def test_exit_2_is_never_restarted_and_status_says_why(stack):
    """A program exiting 2 stays EXITED (not restarted); one exiting 2 at every start ends
    FATAL after its few tries (kill -9 before it was restarted). `cerebro status` shows both
    failed with the last error line of their logs; a second `cerebro up` stops on them at once."""
    loop_pid = stack.infos()["crashloop"]["pid"]
    stack.trigger.touch()
    os.kill(loop_pid, signal.SIGKILL)          # an unexpected death: supervisord restarts it
    wait_for(lambda: stack.infos()["misconfigured"]["statename"] == "EXITED", 20,
             what="misconfigured EXITED")
    wait_for(lambda: stack.infos()["crashloop"]["statename"] == "FATAL", 30,
             what="crashloop FATAL")
    exited = stack.infos()["misconfigured"]
    assert exited["exitstatus"] == 2
    time.sleep(3)
    again = stack.infos()["misconfigured"]
    assert (again["statename"], again["start"]) == ("EXITED", exited["start"])   # not restarted

    code, report = stack.status()
    states = {p["name"]: p for p in report["programs"]}
    assert code == 1 and not report["healthy"]
    bad, loop = states["misconfigured"], states["crashloop"]
    assert bad["failed"] and bad["reason"].startswith("exit status 2: a misconfiguration, not "
                                                      "restarted")
    assert bad["reason"].endswith(BAD_LINE)          # the error line, not the last line
    assert loop["failed"] and loop["reason"].startswith("FATAL") and LOOP_LINE in loop["reason"]
    assert not states["api"]["failed"] and not states["simulator"]["failed"]
    text = stack.cli("status")[1]
    assert re.search(r"^  misconfigured\s+EXITED FAILED", text, re.M), text
    assert f"FAILED exit status 2: a misconfiguration, not restarted; log: {BAD_LINE}" in text

    started = time.monotonic()
    code, out, err = stack.cli("up", "--no-build", "--timeout", "60", timeout=90)
    assert code == 1 and time.monotonic() - started < 30, out + err
    assert re.search(r"program (misconfigured|crashloop) failed: ", err), err
