"""
Author:  Cerebro team
Date:    2026-11-29
Subject: ``cerebro health``: every program supervisord runs is up *and* ready (the HEALTHCHECK).
Tagline: Healthy means every player can play, not just that the lights are on.

Asks the running supervisord (its unix socket in ``CEREBRO_STATE_DIR``, as
``cerebro status`` does) which programs it is configured to start (autostart)
and in which state each is, then runs the readiness probe of every RUNNING
program (:mod:`cerebro.ops.probes`, the ones ``cerebro up`` waits on), all at
once, each bounded by one deadline. Healthy means: every program configured to
start is RUNNING and its probe passes (a one-shot such as the bootstrap build
has exited 0). One line per program, then the verdict; exit 0 healthy, 1
otherwise (supervisord not answering included). Nothing it prints carries a
secret: every line goes through :func:`envsettings.redact`.

Three probes, three audiences: ``GET /healthz`` (the API process is alive: an
orchestrator's liveness probe), ``GET /readyz`` (the API can serve: a load
balancer's), ``cerebro health`` (the whole one-container stack is ready: the
container's ``HEALTHCHECK``); docs/docker.md tells which to use where.

One program per container (docker-compose.scale.yml, deploy/k8s/): no
supervisord to ask, so ``python -m cerebro.ops.health --program NAME`` runs
that program's readiness probe from the program table directly, within the
same deadline: exit 0 and one line when ready, 1 and one line saying why
otherwise (an unknown program, a program with nothing to probe without
supervisord, a probe failing or not answering in time). Every probe of a
service works so, reading only the settings and the environment; the worker's
is narrowed to this host (the table's counts a worker anywhere), while the
consumer's and the subscriber's answer for their whole group (the Kafka group
has partitions assigned, every request queue has a consumer). epmd and the
bootstrap have no probe: only supervisord (``cerebro health``) or the
orchestrator (a Job's exit status) can tell their state. docs/deploy.md.
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import os
import socket
import sys
import threading
import time
import xmlrpc.client
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, cast
from urllib.parse import urlsplit

from envsettings import redact

from cerebro.ops import failures, probes, programs, secretfile, supervise

if TYPE_CHECKING:
    from cerebro.settings import Settings

#: Seconds the whole command may take by default, counted from the start of the process (its
#: interpreter's start-up included: seconds on a loaded machine): Docker's HEALTHCHECK kills it
#: at 5 s, and a check cut there says nothing about why.
DEFAULT_TIMEOUT = 4.0
#: The least time the probes get, however late the command started them.
MIN_PROBE_SECONDS = 0.5
#: States in which supervisord is on its way to running a program: not ready yet.
_COMING = ("STARTING", "BACKOFF")


class Unreachable(Exception):
    """supervisord does not answer on its socket (not started, stopping, or another state
    directory)."""


@dataclass
class Line:
    """One program's verdict: its supervisord state, whether it counts against health, why."""

    name: str
    state: str
    verdict: str   # ready | done | idle | NOT READY | FAILED
    detail: str
    ok: bool


def _deadline_call(fn: Any, deadline: float) -> tuple[bool, Any]:
    """``(True, fn())`` when ``fn`` returns before ``deadline`` (``time.monotonic``), else
    ``(False, None)``; ``fn`` runs on a daemon thread, which an exit does not wait for.
    An exception of ``fn`` is re-raised here."""
    box: dict[str, Any] = {}

    def run() -> None:
        """Call ``fn`` and keep what it returned or raised."""
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc

    worker = threading.Thread(target=run, name="cerebro-health", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        return False, None
    if "error" in box:
        raise box["error"]
    return True, box.get("value")


Answer = tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]


def _ask_supervisord(settings: Settings, deadline: float) -> Answer:
    """``(config of every program, {name: process info})`` from the running supervisord;
    raises :class:`Unreachable` when it does not answer (in time)."""
    sup = supervise.Supervisor(settings)
    if not sup.socket.exists():
        raise Unreachable(f"no supervisord socket at {sup.socket} (is the stack up? `cerebro up`, "
                          "or the container's entry point, starts supervisord)")

    def ask() -> Answer:
        """Both XML-RPC calls, each on a fresh proxy."""
        config = cast("list[dict[str, Any]]", sup.rpc.supervisor.getAllConfigInfo())
        return config, sup.processes()

    try:
        answered, result = _deadline_call(ask, deadline)
    except xmlrpc.client.Fault as exc:
        if "SHUTDOWN_STATE" in exc.faultString:   # docker stop, cerebro down
            raise Unreachable(f"supervisord on {sup.socket} is shutting down") from None
        raise Unreachable(f"supervisord on {sup.socket} refused: {exc.faultString}") from None
    except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as exc:
        raise Unreachable(f"supervisord does not answer on {sup.socket}: "
                          f"{type(exc).__name__}: {exc}") from None
    if not answered:
        raise Unreachable(f"supervisord did not answer on {sup.socket} in time")
    return cast("Answer", result)


def process_age() -> float:
    """Seconds since this process started (its interpreter's start-up included); 0 when the
    system does not say (/proc)."""
    try:
        with open("/proc/self/stat") as stat:
            started = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as uptime:
            now = float(uptime.read().split()[0])
    except (OSError, IndexError, ValueError):
        return 0.0
    return max(0.0, now - started / os.sysconf("SC_CLK_TCK"))


def _row(name: str) -> programs.Program | None:
    """The program table's row (None for a program of a hand-written supervisord.conf)."""
    try:
        return programs.by_name(name)
    except KeyError:
        return None


def probe_environment(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """What the probes read besides the settings: ``environ`` with the secrets ``cerebro up``
    generated into the state dir for the programs it runs (the Flower password) when
    ``environ`` lacks them, and the decisions it started supervisord with."""
    env = {**supervise.started_environment(settings), **environ}
    for key, value in secretfile.read(settings).items():
        if key in supervise.SECRETS and not env.get(key):
            env[key] = value
    return env


def _secrets(settings: Settings, env: Mapping[str, str]) -> list[str]:
    """Every secret value a line could carry, to mask: the settings' secrets, the passwords of
    their URLs and the secret variables of ``env``."""
    found = list(settings.secret_values())
    for url in (settings.broker_url, settings.result_backend, settings.main_app_url):
        password = urlsplit(url.get_secret_value()).password
        if password:
            found.append(password)
    found += [env[key] for key in supervise.SECRETS if env.get(key)]
    return found


def _not_running(info: Mapping[str, Any], row: programs.Program | None) -> Line:
    """The line of a program configured to start that is not RUNNING (or a one-shot)."""
    name, state = info["name"], info["statename"]
    one_shot = row is not None and not row.restart
    if one_shot and state == "EXITED" and info.get("exitstatus") == 0:
        return Line(name, state, "done", "one shot, exited 0", True)
    if one_shot and state in ("RUNNING", *_COMING):
        return Line(name, state, "NOT READY", "one shot still running (the first build of the "
                                              "models)", False)
    reason = failures.failure(info)
    if reason:
        return Line(name, state, "FAILED", reason, False)
    if state in _COMING:
        return Line(name, state, "NOT READY", "starting", False)
    return Line(name, state, "NOT READY", f"{state.lower()}, but supervisord is configured to "
                                          "run it", False)


#: What the built-in probes import when first called, imported before their threads start: two
#: threads importing kombu at once can meet it half initialized (its modules import each other).
_PROBE_IMPORTS = ("kombu", "cerebro.taskqueue.celery_app", "cerebro.clients.redis", "kafka",
                  "cerebro.core")

#: Probes that discover the modules (``cerebro.registry``: not thread-safe, it re-imports them):
#: they run one after the other on one thread, every other probe on a thread of its own.
_DISCOVERING: tuple[probes.Probe, ...] = (probes.subscriber, probes.consumer)


def _probe_all(settings: Settings, env: Mapping[str, str],
               wanted: Mapping[str, probes.Probe | None], deadline: float) -> dict[str, Line]:
    """Run the probes at once on daemon threads, all bounded by ``deadline``."""
    for name in _PROBE_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            pass   # the probe needing it meets the same error and reports it
    results: dict[str, probes.Result] = {}
    lanes: dict[str, list[tuple[str, probes.Probe]]] = {}
    for name, probe in wanted.items():
        if probe is not None:
            lanes.setdefault("modules" if probe in _DISCOVERING else name, []).append(
                (name, probe))

    def run(lane: list[tuple[str, probes.Probe]]) -> None:
        """The lane's probes in turn; each result (or why it raised) lands in ``results``."""
        for name, probe in lane:
            results[name] = probes.check(probe, settings, env)

    threads = [threading.Thread(target=run, args=(lane,), name=f"probe-{key}", daemon=True)
               for key, lane in lanes.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    lines = {}
    for name, probe in wanted.items():
        if probe is None:
            lines[name] = Line(name, "RUNNING", "ready", "running (no readiness probe)", True)
        elif name not in results:
            lines[name] = Line(name, "RUNNING", "NOT READY", "its probe did not answer in time",
                               False)
        else:
            ok, detail = results[name]
            lines[name] = Line(name, "RUNNING", "ready" if ok else "NOT READY", detail, ok)
    return lines


def check(settings: Settings, environ: Mapping[str, str] | None = None,
          timeout: float = DEFAULT_TIMEOUT) -> list[Line]:
    """One :class:`Line` per program supervisord knows, in start-up order; raises
    :class:`Unreachable` when supervisord does not answer. ``timeout`` bounds the whole."""
    deadline = time.monotonic() + timeout
    config, infos = _ask_supervisord(settings, deadline)
    env = probe_environment(settings, os.environ if environ is None else environ)
    order = sorted(config, key=lambda c: (c["process_prio"], c["name"]))
    lines: dict[str, Line] = {}
    running: dict[str, probes.Probe | None] = {}
    for item in order:
        name = item["name"]
        info = infos.get(name) or {"name": name, "statename": "UNKNOWN"}
        row = _row(name)
        state = info["statename"]
        if state == "RUNNING" and (row is None or row.restart):
            running[name] = row.probe if row is not None else None
        elif item["autostart"]:
            lines[name] = _not_running(info, row)
        else:
            flag = f" ({row.run_flag}=false)" if row is not None else ""
            lines[name] = Line(name, state, "idle", f"not started here{flag}", True)
    lines.update(_probe_all(settings, env, running, deadline))
    return [lines[item["name"]] for item in order]


def render(lines: list[Line], out: TextIO, secrets: list[str]) -> bool:
    """Print one line per program and the verdict; True when healthy."""
    width = max((len(line.name) for line in lines), default=0)
    for line in lines:
        out.write(redact(f"  {line.name:<{width}}  {line.state:<8}  {line.verdict:<9}  "
                         f"{line.detail}", secrets)[:300] + "\n")
    bad = [line for line in lines if not line.ok]
    if not lines:
        out.write("cerebro health: NOT HEALTHY: supervisord runs no program\n")
        return False
    if bad:
        reasons = "; ".join(f"{line.name} {line.verdict.lower()} ({line.detail})" for line in bad)
        out.write(redact(f"cerebro health: NOT HEALTHY: {reasons}", secrets)[:600] + "\n")
        return False
    count = {verdict: sum(1 for line in lines if line.verdict == verdict)
             for verdict in ("ready", "done", "idle")}
    out.write(f"cerebro health: healthy: {count['ready']} program(s) running and ready, "
              f"{count['done']} one-shot(s) done, {count['idle']} not started here\n")
    return True


def run(settings: Settings, timeout: float = DEFAULT_TIMEOUT, out: TextIO = sys.stdout,
        err: TextIO = sys.stderr) -> int:
    """``cerebro health``: print the verdicts; 0 healthy, 1 not (or supervisord unreachable).
    ``timeout`` counts from the start of the process."""
    env = probe_environment(settings, os.environ)
    secrets = _secrets(settings, env)
    try:
        lines = check(settings, env, timeout=max(MIN_PROBE_SECONDS, timeout - process_age()))
    except Unreachable as exc:
        err.write(redact(f"cerebro health: NOT HEALTHY: {exc}", secrets) + "\n")
        return 1
    return 0 if render(lines, out, secrets) else 1


def hanging() -> bool:
    """True when a probe thread is still running (its probe outlived the deadline)."""
    return any(t.name.startswith("probe-") or t.name == "cerebro-health"
               for t in threading.enumerate() if t.is_alive() and t.daemon)


# One program, no supervisord: `python -m cerebro.ops.health --program NAME`.

def this_host_worker(settings: Settings, _env: Mapping[str, str]) -> probes.Result:
    """A worker of this host answers a Celery ping: its node name ends in ``@<host name>``
    (``cerebro worker --hostname``'s ``%h``), the container or pod this runs in. The table's
    probe counts a worker anywhere in the deployment: the probe of one replica among several."""
    from cerebro.taskqueue.celery_app import make_app
    replies = make_app(settings, schedules=False).control.ping(timeout=1.0)
    host = socket.gethostname()
    names = [name for reply in replies or [] for name in reply]
    mine = [name for name in names if name.rpartition("@")[2] == host]
    elsewhere = f", {len(names) - len(mine)} elsewhere" if len(names) > len(mine) else ""
    return bool(mine), f"{len(mine)} worker(s) of this host ({host}) answered ping{elsewhere}"


#: The probe ``--program`` runs instead of a table probe that answers for the deployment as a
#: whole where one container's own readiness is asked.
STANDALONE_PROBES: dict[probes.Probe, probes.Probe] = {probes.worker: this_host_worker}


def _nothing_to_probe(row: programs.Program) -> str:
    """Why a program without a readiness probe cannot be checked without supervisord."""
    if not row.restart:
        return (f"{row.name} is a one shot with no readiness probe: its exit status is its "
                "health (supervisord's EXITED 0 in `cerebro health`, a Job's completion, "
                "compose's service_completed_successfully)")
    return (f"{row.name} has no readiness probe in the program table: only supervisord can tell "
            "whether it runs (`cerebro health` where supervisord runs it)")


def check_program(settings: Settings, name: str, environ: Mapping[str, str] | None = None,
                  timeout: float = DEFAULT_TIMEOUT) -> Line:
    """Program ``name``'s readiness probe, run here without asking supervisord, bounded by
    ``timeout``: the :class:`Line` says ready or not, and why (an unknown program, or one with
    nothing to probe, is not ready)."""
    deadline = time.monotonic() + timeout
    row = _row(name)
    if row is None:
        known = ", ".join(r.name for r in programs.table())
        return Line(name, "UNKNOWN", "NOT READY",
                    f"no program {name!r} in the program table (known: {known})", False)
    if row.probe is None:
        return Line(name, "-", "NOT READY", _nothing_to_probe(row), False)
    env = probe_environment(settings, os.environ if environ is None else environ)
    probe = STANDALONE_PROBES.get(row.probe, row.probe)
    return _probe_all(settings, env, {name: probe}, deadline)[name]


def run_program(settings: Settings, name: str, timeout: float = DEFAULT_TIMEOUT,
                out: TextIO = sys.stdout) -> int:
    """``--program NAME``: one line, ``cerebro health --program NAME: ready: <detail>`` and 0,
    or ``...: NOT READY: <why>`` and 1. ``timeout`` counts from the start of the process."""
    env = probe_environment(settings, os.environ)
    line = check_program(settings, name, env,
                         timeout=max(MIN_PROBE_SECONDS, timeout - process_age()))
    out.write(redact(f"cerebro health --program {name}: {line.verdict}: {line.detail}",
                     _secrets(settings, env))[:300] + "\n")
    return 0 if line.ok else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--program`` option (``cerebro health`` takes ``--timeout`` already)."""
    parser.add_argument("--program", metavar="NAME", default=None,
                        help="check this one program of the program table without supervisord "
                             "(one program per container: docker-compose.scale.yml, deploy/k8s)")
