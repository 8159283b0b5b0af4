"""`cerebro health`, the container's HEALTHCHECK, on a real stack brought up by `cerebro up`
(its own RabbitMQ, Redis and tansu, every program): healthy (exit 0) with every program ready,
quickly and without printing a secret; exit 1 naming the program once one is stopped
(`supervisorctl stop cerebro:worker`), healthy again once it is back; a probe that hangs is cut
at the deadline. Without a supervisord it exits 1 with a clear message at once.

One program per container, no supervisord (`cerebro health --program NAME`, the
probe of docker-compose.scale.yml and deploy/k8s): a real `cerebro serve` is not ready while
nothing listens or its models are missing (503), ready once they are loaded; a worker answering
from another host does not make this one ready, a worker of this host does (real workers on a
private RabbitMQ); an unknown program, or one with nothing to probe, exits 1 saying so; a probe
that hangs is cut at the deadline.

One bring-up for the whole module (tests run in file order and share it; the `--program` tests
come first and do not need it)."""

import re
import socket
import subprocess
import sys
import time

import pytest

from procs import Proc, wait_for
from rabbit import private_rabbit  # noqa: F401 - a RabbitMQ of the worker test's own
from stack import running_stack
from support import REPO, TESTS, cerebro_env, free_port, run_cli

CEREBRO = [sys.executable, "-m", "cerebro"]
HEALTH = [sys.executable, "-m", "cerebro", "health"]


@pytest.fixture(scope="module")
def stack(built_volume, tmp_path_factory):
    """`cerebro up` on test ports; torn down with `cerebro down` (and a hard stop if needed)."""
    with running_stack(built_volume, tmp_path_factory.mktemp("health")) as stack:
        yield stack


def health(stack, *args, **env):
    """`cerebro health` with the stack's environment (plus ``env``): (code, out, err, seconds)."""
    started = time.monotonic()
    result = subprocess.run([*CEREBRO, "health", *args], env={**stack.env, **env},
                            capture_output=True, text=True, timeout=30, cwd=stack.tmp)
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


def test_no_supervisord_is_not_healthy_and_says_why(tmp_path):
    """No socket at all, then a socket nobody listens on: exit 1 at once, with the reason."""
    state = tmp_path / "state"
    state.mkdir()
    code, out, err = run_cli({"CEREBRO_STATE_DIR": state}, "health", timeout=30)
    assert code == 1 and not out, (out, err)
    assert f"cerebro health: NOT HEALTHY: no supervisord socket at {state}/supervisor.sock" in err
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(state / "supervisor.sock"))   # left behind by a supervisord that died
    stale.close()
    started = time.monotonic()
    code, out, err = run_cli({"CEREBRO_STATE_DIR": state}, "health", timeout=30)
    assert code == 1 and time.monotonic() - started < 5, (out, err)
    assert re.search(r"NOT HEALTHY: supervisord does not answer on \S+supervisor\.sock: "
                     r"ConnectionRefusedError", err), err


def program_health(name, *args, **env):
    """`cerebro health --program NAME *args` with ``env`` added to the test
    environment: (code, out, err, seconds)."""
    started = time.monotonic()
    result = subprocess.run([*HEALTH, "--program", name, *args], env=cerebro_env(**env),
                            capture_output=True, text=True, timeout=30)
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


def test_program_mode_unknown_or_unprobed_program_is_not_ready_and_says_why(tmp_path):
    """No supervisord anywhere (an empty state directory): an unknown program and the two
    programs with no probe of their own exit 1 at once with one line saying why."""
    code, out, err, took = program_health("nosuch", CEREBRO_STATE_DIR=tmp_path)
    assert code == 1 and took < 5 and not err, (out, err)
    assert out.startswith("cerebro health --program nosuch: NOT READY: no program 'nosuch' in "
                          "the program table (known: epmd, "), out
    assert len(out.splitlines()) == 1 and "subscriber" in out
    for name, why in (("bootstrap", "bootstrap is a one shot with no readiness probe: its exit "
                                    "status is its health"),
                      ("epmd", "epmd has no readiness probe in the program table: only "
                               "supervisord can tell whether it runs")):
        code, out, err, _ = program_health(name, CEREBRO_STATE_DIR=tmp_path)
        assert code == 1 and out.startswith(f"cerebro health --program {name}: NOT READY: "
                                            f"{why}"), (out, err)
        assert len(out.splitlines()) == 1


def test_program_mode_api_follows_a_real_server(server_factory, built_volume, tmp_path):
    """The API's probe run without supervisord (none runs here): not ready while nothing
    listens, nor while a real server answers but can serve none of its models (signed with
    another key: /readyz 503); ready once a real server has loaded every model; each answer
    within Docker's 5 s."""
    state = {"CEREBRO_STATE_DIR": tmp_path}
    code, out, err, took = program_health("api", CEREBRO_PORT=free_port(), **state)
    assert (code, out) == (1, "cerebro health --program api: NOT READY: /readyz None\n"), err
    assert took < 5 and "supervisord" not in out + err
    refused = server_factory({"CEREBRO_DATA_VOLUME": built_volume,
                              "CEREBRO_MODEL_SIGNING_KEY": "not-the-key-the-models-were-signed"})
    code, out, err, took = program_health("api", CEREBRO_PORT=refused.port, **state)
    assert (code, out) == (1, "cerebro health --program api: NOT READY: /readyz 503\n"), err
    server = server_factory({"CEREBRO_DATA_VOLUME": built_volume}, ready=True)
    code, out, err, took = program_health("api", CEREBRO_PORT=server.port, **state)
    assert (code, out) == (0, "cerebro health --program api: ready: /readyz 200\n"), err
    assert took < 5


def test_program_mode_worker_counts_only_this_hosts_workers(private_rabbit, redis_url,
                                                            queue_prefix, tmp_path):
    """A worker named after another host answers the ping, but this host has none: not ready,
    saying so; once a worker of this host (the default node name, cerebro-<pid>@<host>) runs,
    ready. A RabbitMQ of the test's own: no other worker of this machine answers."""
    env = {"PYTHONPATH": f"{REPO}:{TESTS}", "CEREBRO_MODULES_PACKAGE": "fixture_modules",
           "CEREBRO_MODULES": "jobs", "CEREBRO_BROKER_URL": private_rabbit.url,
           "CEREBRO_RESULT_BACKEND": redis_url, "CEREBRO_QUEUE_PREFIX": f"{queue_prefix}-hp",
           "CEREBRO_CALLBACK_SECRET": "health-test", "CEREBRO_STATE_DIR": str(tmp_path),
           "CEREBRO_DATA_VOLUME": str(tmp_path / "vol"), "SHERLOCK_DIR": str(tmp_path / "sh")}
    host = re.escape(socket.gethostname())
    elsewhere = Proc(["cerebro", "worker", "--concurrency", "1", "--hostname",
                      "cerebro-test@elsewhere.invalid"], env, tmp_path / "elsewhere.log")
    here = Proc(["cerebro", "worker", "--concurrency", "1"], env, tmp_path / "here.log")
    try:
        elsewhere.start().wait_log(" ready.")
        code, out, err, took = program_health("worker", **env)
        assert code == 1 and took < 5, (out, err)
        assert re.fullmatch(rf"cerebro health --program worker: NOT READY: 0 worker\(s\) of "
                            rf"this host \({host}\) answered ping, 1 elsewhere\n", out), out
        here.start().wait_log(" ready.")
        code, out, err, took = program_health("worker", **env)
        assert code == 0 and took < 5, (out, err)
        assert re.fullmatch(rf"cerebro health --program worker: ready: 1 worker\(s\) of this "
                            rf"host \({host}\) answered ping, 1 elsewhere\n", out), out
    finally:
        here.stop()
        elsewhere.stop()


def test_program_mode_probe_that_hangs_is_cut_at_the_deadline(tmp_path):
    """A RabbitMQ that accepts connections and never answers: `--program rabbitmq` still ends
    at its deadline, saying its probe did not answer in time."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        url = f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}//"
        code, out, err, took = program_health("rabbitmq", "--timeout", "1.5",
                                              CEREBRO_BROKER_URL=url, CEREBRO_STATE_DIR=tmp_path)
    finally:
        silent.close()
    assert code == 1 and took < 4, (took, out, err)
    assert out == ("cerebro health --program rabbitmq: NOT READY: its probe did not answer in "
                   "time\n"), out


def test_healthy_when_every_program_is_running_and_ready(stack):
    """Exit 0 well inside Docker's 5 s HEALTHCHECK timeout; one line per program: every started
    program ready, the bootstrap done, the simulator idle (not started here); no secret shown."""
    code, out, err, took = health(stack)
    print(f"\ncerebro health in {took:.2f}s:\n{out}")
    assert code == 0, out + err
    assert took < 5, f"cerebro health took {took:.1f}s"
    lines = {m.group(1): m.group(2, 3) for m in
             re.finditer(r"^  (\w+)\s+([A-Z]+)\s+(ready|done|idle|NOT READY|FAILED)\s", out, re.M)}
    started = {"epmd", "rabbitmq", "redis", "kafka", "api", "worker", "beat", "flower",
               "consumer", "subscriber"}
    assert {name for name, (_, verdict) in lines.items() if verdict == "ready"} == started, out
    assert lines["bootstrap"] == ("EXITED", "done") and lines["simulator"] == ("STOPPED", "idle")
    assert re.search(r"^  worker\s+RUNNING\s+ready\s+1 worker\(s\) answered ping$", out, re.M)
    # the two probes discovering the modules ran one after the other (discovery re-imports them)
    assert re.search(r"^  consumer\s+RUNNING\s+ready\s+group e2e-\w+ Stable", out, re.M), out
    assert re.search(r"^  subscriber\s+RUNNING\s+ready\s+every request queue consumed$", out,
                     re.M), out
    assert out.splitlines()[-1] == ("cerebro health: healthy: 10 program(s) running and ready, "
                                    "1 one-shot(s) done, 1 not started here")
    secrets = [line.split("=", 1)[1] for line in
               (stack.state / "secrets.env").read_text().splitlines()]
    secrets.append(stack.env["CEREBRO_CALLBACK_SECRET"])
    assert not [s for s in secrets if s in out + err]


def test_a_stopped_program_makes_it_unhealthy_by_name(stack):
    """`supervisorctl stop cerebro:worker`: exit 1, the worker named STOPPED in its line and in
    the verdict; started again, the stack is healthy again."""
    rpc = stack.supervisor().rpc
    rpc.supervisor.stopProcess("cerebro:worker")
    try:
        code, out, err, took = health(stack)
        print(f"\ncerebro health, worker stopped, in {took:.2f}s:\n{out}")
        assert code == 1 and took < 5, out + err
        assert re.search(r"^  worker\s+STOPPED\s+NOT READY\s+stopped, but supervisord is "
                         r"configured to run it$", out, re.M), out
        assert re.search(r"^  api\s+RUNNING\s+ready\s", out, re.M), out
        verdict = out.splitlines()[-1]
        assert verdict.startswith("cerebro health: NOT HEALTHY: worker not ready (stopped"), out
    finally:
        rpc = stack.supervisor().rpc
        rpc.supervisor.startProcess("cerebro:worker")
    wait_for(lambda: health(stack)[0] == 0, 60, what="healthy again once the worker is back")


def test_a_probe_that_hangs_is_cut_at_the_deadline(stack):
    """A broker that accepts connections and never answers (the AMQP probes hang): the check
    still ends at its deadline, naming what did not answer in time."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)   # the kernel completes the handshake; nobody ever reads or writes
    try:
        url = f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}//"
        # 4 s: the other probes (threads of one process, importing their clients) must answer
        # in time even on a box loaded by a parallel test run; 1.5 s was not always enough
        code, out, err, took = health(stack, "--timeout", "4", CEREBRO_BROKER_URL=url)
    finally:
        silent.close()
    assert code == 1 and took < 7, (took, out, err)
    assert re.search(r"^  rabbitmq\s+RUNNING\s+NOT READY\s+its probe did not answer in time$",
                     out, re.M), out
    assert re.search(r"^  api\s+RUNNING\s+ready\s", out, re.M), out
