"""The program table is the one place programs are declared: the shipped supervisord.conf, the
Docker files and the README follow it, and a new transport is one package plus one row (an
entry point), proven here with a trivial extra program that `cerebro up` runs, `cerebro status`
sees, `cerebro slice` includes and `cerebro down` stops."""

import json
import re
import subprocess
import sys
import textwrap

import pytest

from cerebro.ops import conf, programs
from procs import wait_for
from support import REPO, TESTS, cerebro_env, free_port, run_cli


def test_shipped_supervisord_conf_is_the_one_generated_from_the_table():
    """supervisord.conf is `cerebro programs --conf` of the built-in rows, byte for byte."""
    assert (REPO / "supervisord.conf").read_text() == conf.platform_conf(programs.BUILT_IN)
    code, out, err = run_cli({}, "programs", "--conf")
    assert code == 0, err
    assert out == (REPO / "supervisord.conf").read_text()


def test_every_program_has_a_commented_section_and_a_run_flag():
    """Each row renders a section whose every key is commented, switched by its run flag."""
    text = conf.platform_conf(programs.BUILT_IN)
    for row in programs.BUILT_IN:
        section = text.split(f"[program:{row.name}]\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert f"autostart=%(ENV_{row.run_flag})s" in section
        keys = [i for i, line in enumerate(section) if not line.startswith(";")]
        for i in keys:
            # each key is preceded by a comment, or belongs to a commented group of keys
            assert section[i - 1].startswith(";") or "=" in section[i - 1], (row.name, section[i])


def test_docker_files_and_readme_follow_the_table():
    """The image sets every run flag, compose names only flags of the table, the README lists
    every program."""
    flags = {row.run_flag for row in programs.BUILT_IN}
    docker = (REPO / "Dockerfile").read_text()
    assert flags <= set(re.findall(r"(CEREBRO_RUN_\w+)=", docker))
    compose = (REPO / "docker-compose.yml").read_text()
    assert set(re.findall(r"(CEREBRO_RUN_\w+):", compose)) <= flags
    readme = (REPO / "README.md").read_text()
    for row in programs.BUILT_IN:
        assert f"| `{row.name}` |" in readme, row.name


def test_cerebro_programs_defaults_to_every_default_service(tmp_path):
    """An empty CEREBRO_PROGRAMS means every service whose row runs by default."""
    from cerebro.ops.supervise import supervisor_environment
    from cerebro.settings import load_settings
    state = {"CEREBRO_STATE_DIR": str(tmp_path)}
    env = supervisor_environment(load_settings({"CEREBRO_PROGRAMS": "", **state}), {})
    for row in programs.services():
        assert env[row.run_flag] == ("true" if row.default else "false"), row.name
    with pytest.raises(ValueError, match="unknown programs nope"):
        supervisor_environment(load_settings({"CEREBRO_PROGRAMS": "api,nope", **state}), {})


PLUGIN = '''
"""A trivial extra transport: JSON lines over TCP into the core, declared by one row."""

import json
import os
import socketserver

from cerebro.ops.programs import Program


def ready(settings, env):
    """It answers a call to echo.say."""
    import socket
    with socket.create_connection(("127.0.0.1", int(os.environ["ECHO_PORT"])), timeout=2) as s:
        s.sendall(b'{"module": "echo", "function": "say", "payload": {"text": "hi"}}\\n')
        answer = json.loads(s.makefile().readline())
    return answer == {"result": {"text": "hi", "ratio": 0.5}}, repr(answer)


def serve(args, settings):
    """cerebro echo: every line is a call, every answer a line."""
    from cerebro.core import Core
    from cerebro.errors import CerebroError
    core = Core.start("echo", settings)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                call = json.loads(line)
                try:
                    prepared = core.dispatcher.prepare(call["module"], call["function"],
                                                       call["payload"])
                    answer = {"result": core.dispatcher.run(prepared, service="echo")}
                except CerebroError as error:
                    answer = {"error": error.to_dict()}
                self.wfile.write(json.dumps(answer).encode() + b"\\n")

    socketserver.TCPServer.allow_reuse_address = True
    with socketserver.TCPServer(("127.0.0.1", int(os.environ["ECHO_PORT"])), Handler) as server:
        server.serve_forever()


def register(subparsers, settings, formatter):
    """Add `cerebro echo`."""
    subparsers.add_parser("echo", help="the echo transport").set_defaults(func=serve)


PROGRAM = Program("echo", "%(ENV_CEREBRO_BIN)s/cerebro echo", "the echo transport (a test)",
                  default=False, probe=ready, needed_by=lambda module: True, cli="echo_transport",
                  stop_seconds=5)
'''


@pytest.fixture
def plugin(tmp_path):
    """An installed package declaring program `echo` through the cerebro.programs entry point."""
    root = tmp_path / "site"
    (root / "echo_transport-0.1.dist-info").mkdir(parents=True)
    (root / "echo_transport-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: echo-transport\nVersion: 0.1\n")
    (root / "echo_transport-0.1.dist-info" / "entry_points.txt").write_text(
        "[cerebro.programs]\necho = echo_transport:PROGRAM\n")
    (root / "echo_transport.py").write_text(textwrap.dedent(PLUGIN))
    return root


def test_a_new_transport_is_one_package_plus_one_row(plugin, tmp_path):
    """With only the plugin installed: `cerebro programs` lists echo, `cerebro up` runs it and
    waits for its probe, `cerebro status` shows it, `cerebro slice` includes it, `cerebro down`
    stops it."""
    port = free_port()
    env = {"PYTHONPATH": f"{plugin}:{REPO}:{TESTS}", "ECHO_PORT": port,
           "CEREBRO_MODULES_PACKAGE": "fixture_modules", "CEREBRO_MODULES": "echo",
           "CEREBRO_PROGRAMS": "echo", "CEREBRO_RUN_RABBITMQ": "false",
           "CEREBRO_RUN_REDIS": "false", "CEREBRO_RUN_KAFKA": "false",
           "CEREBRO_RUN_SIMULATOR": "false", "CEREBRO_STATE_DIR": tmp_path / "state",
           "CEREBRO_LOG_DIR": tmp_path / "logs",
           "CEREBRO_SUPERVISOR_PORT": free_port(), "CEREBRO_DATA_VOLUME": tmp_path / "volume",
           "SHERLOCK_DIR": tmp_path / "sherlock"}
    code, out, err = run_cli(env, "programs")
    assert code == 0 and re.search(r"^echo\s+service\s+when CEREBRO_PROGRAMS names it", out,
                                   re.M), out + err
    code, out, err = run_cli(env, "programs", "--conf")
    assert "[program:echo]\n; the echo transport (a test)\ncommand=%(ENV_CEREBRO_BIN)s/cerebro " \
           "echo\n" in out
    try:
        code, out, err = run_cli(env, "up", "--no-build", "--timeout", "60", timeout=90)
        assert code == 0, out + err
        assert re.search(r"ready: echo\s+\{'result'", out), out
        status = subprocess.run([sys.executable, "-m", "cerebro", "status", "--json"],
                                env=cerebro_env(**env), capture_output=True, text=True,
                                timeout=60)
        report = json.loads(status.stdout)
        states = {p["name"]: p["state"] for p in report["programs"]}
        assert states["echo"] == "RUNNING" and states["api"] == "STOPPED", states
        code, out, err = run_cli(env, "slice", "echo", str(tmp_path / "echo-slice"))
        assert code == 0, err
        assert "[program:echo]" in (tmp_path / "echo-slice" / "supervisord.conf").read_text()
    finally:
        code, out, err = run_cli(env, "down", timeout=60)
    assert code == 0, out + err
    wait_for(lambda: not (tmp_path / "state" / "supervisord.pid").exists(), 20,
             what="supervisord gone")


def test_a_plugin_broker_row_is_decided_like_the_built_in_ones(monkeypatch, tmp_path):
    """A broker row from a plugin (no setting of its own): its CEREBRO_RUN_<FLAG> is read from
    the environment (auto by default) and decided by whether something answers."""
    from cerebro.ops import supervise
    from cerebro.settings import load_settings
    port = free_port()
    nats = programs.Program("nats", "nats-server -p %(ENV_NATS_PORT)s", "a broker of a plugin",
                            kind=programs.BROKER, address=lambda settings: ("127.0.0.1", port))
    monkeypatch.setattr(programs, "table", lambda: programs.BUILT_IN + (nats,))
    settings = load_settings({"CEREBRO_STATE_DIR": str(tmp_path)})
    assert supervise.supervisor_environment(settings, {})["CEREBRO_RUN_NATS"] == "true"
    env = supervise.supervisor_environment(settings, {"CEREBRO_RUN_NATS": "off"})
    assert env["CEREBRO_RUN_NATS"] == "false"
    with pytest.raises(ValueError, match="CEREBRO_RUN_NATS='maybe'"):
        supervise.supervisor_environment(settings, {"CEREBRO_RUN_NATS": "maybe"})
