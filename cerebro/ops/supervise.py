"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Bring Cerebro up under supervisord, wait until every part is really ready, bring it down.
Tagline: RUNNING is a promise; ready is a handshake.

``cerebro up`` = :func:`supervisor_environment` (every ``%(ENV_X)s`` of
supervisord.conf, derived from the settings; brokers already answering are used,
not started again) + :func:`build_missing` + starting supervisord + :func:`wait_ready`
(HTTP /readyz, a worker answering a ping, the consumer group's partitions
assigned, subscriber queues consumed...). ``cerebro down`` asks supervisord to
shut down and waits until it and every program it ran are gone.
"""

from __future__ import annotations

import http.client
import os
import secrets
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from cerebro.ops import conf, leftovers, probes, programs, secretfile
from cerebro.ops.inspection import address, api_url, flower_url, reachable, served_modules
from cerebro.roster import process_exists
from cerebro.settings import PROJECT_ROOT, ConfigurationError, parse_tristate

if TYPE_CHECKING:
    from cerebro.settings import Settings

SECRETS = ("CEREBRO_CALLBACK_SECRET", "CEREBRO_FLOWER_PASSWORD", "CEREBRO_SUPERVISOR_PASSWORD",
           "CEREBRO_MODEL_SIGNING_KEY")


# Addresses of this machine, where supervisord may start a broker.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "")


def load_secrets(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """Secrets missing from ``environ``, read from (or generated into) the state dir's
    ``secrets.env`` (mode 600), so a development box works with one command and keeps them."""
    path = secretfile.path(settings)
    stored = secretfile.read(settings)
    missing = {k: stored.get(k) or secrets.token_urlsafe(24) for k in SECRETS if not environ.get(k)}
    if any(k not in stored for k in missing):
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        stored.update(missing)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # O_CREAT's mode applies to a new file only
        with os.fdopen(fd, "w") as out:
            out.write("".join(f"{k}={v}\n" for k, v in sorted(stored.items())))
    elif path.exists():
        path.chmod(0o600)
    return missing


def _resolve(flag: str, answering: bool, can_start: bool) -> str:
    """``true``/``false`` for a broker program: ``auto`` starts it only when nothing answers."""
    if flag != "auto":
        return flag
    return "true" if (not answering and can_start) else "false"


def _run_mode(settings: Settings, row: programs.Program, env: Mapping[str, str]) -> str:
    """``auto``, ``true`` or ``false`` for a broker row: its setting (``CEREBRO_RUN_RABBITMQ``
    is ``settings.run_rabbitmq``), or, for a broker a plugin adds, its variable (default auto)."""
    mode = getattr(settings, row.run_flag.lower().removeprefix("cerebro_"), None)
    if isinstance(mode, str):
        return mode
    try:
        return parse_tristate(env.get(row.run_flag, "auto"))
    except ValueError as exc:
        raise ConfigurationError(f"{row.run_flag}={env.get(row.run_flag)!r} is not valid: "
                                 f"{exc}") from None


def wanted_services(settings: Settings) -> tuple[str, ...]:
    """The services supervisord starts: CEREBRO_PROGRAMS, or every service that runs by
    default. Raises ConfigurationError for a name that is not a service of the table."""
    known = [row.name for row in programs.services()]
    wanted = settings.programs or programs.default_services()
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ConfigurationError(f"CEREBRO_PROGRAMS names unknown programs {', '.join(unknown)} "
                                 f"(known: {', '.join(known)})")
    return wanted


def supervisor_environment(settings: Settings,
                           environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment supervisord is started with: ``environ`` plus every variable the
    generated supervisord.conf names, derived from ``settings`` and the program table.
    Raises ConfigurationError for an unknown program name in CEREBRO_PROGRAMS."""
    env = dict(os.environ if environ is None else environ)
    wanted = wanted_services(settings)
    env.update(load_secrets(settings, env))
    env.update({
        "CEREBRO_BIN": str(Path(sys.executable).parent),
        "CEREBRO_HOME": str(PROJECT_ROOT),
        "CEREBRO_STATE_DIR": str(settings.state_dir.resolve()),
        "CEREBRO_LOG_DIR": str(settings.log_dir.resolve()),
        "CEREBRO_DATA_VOLUME": str(settings.data_volume.resolve()),
        "CEREBRO_SUPERVISOR_PORT": str(settings.supervisor_port),
        "CEREBRO_SUPERVISOR_USER": settings.supervisor_user,
        "CEREBRO_EPMD_PORT": str(settings.epmd_port),
        "CEREBRO_RABBITMQ_MANAGEMENT_PORT": str(settings.rabbitmq_management_port),
    })
    for row in programs.table():
        if row.variables is not None:
            env.update(row.variables(settings, env))
    for row in programs.table():
        if row.kind == programs.BROKER and row.address is not None:
            host, port = row.address(settings)
            startable = host in LOCAL_HOSTS and (row.startable is None or row.startable())
            env[row.run_flag] = _resolve(_run_mode(settings, row, env),
                                         reachable(host, port), startable)
        elif row.kind == programs.SERVICE:
            env[row.run_flag] = "true" if row.name in wanted else "false"
    for row in programs.table():  # e.g. the simulator points the samples at itself
        if row.when_running is not None and env.get(row.run_flag) == "true":
            env.update(row.when_running(settings, env))
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def build_reason(settings: Settings, name: str, key: str | None) -> str | None:
    """Why module ``name`` needs a build before the services can serve it: no current model,
    or (with a signing key) a current version not signed with that key, as after a stack
    gained its key; ``None`` when it needs none."""
    from cerebro import volume
    where = settings.data_volume / name
    try:
        version = volume.current_version(settings.data_volume, name)
        if version is None:
            return f"no model in {where} yet"
        if key:
            meta = volume.read_metadata(settings.data_volume, name, version)
            volume.check_signature(settings.data_volume, name, version, meta, key)
    except volume.VolumeError as exc:
        return f"its current version cannot be served: {exc}"
    return None


def build_missing(settings: Settings, out: TextIO = sys.stdout) -> list[str]:
    """Build every module (of CEREBRO_MODULES) whose current model is missing or not signed
    with the signing key in force; return the names of those that failed."""
    from cerebro import modelsign
    failed: list[str] = []
    key = modelsign.configured_key(settings)
    for name in served_modules(settings):
        reason = build_reason(settings, name, key)
        if reason is None:
            continue
        out.write(f"[cerebro] building {name} ({reason})\n")
        out.flush()
        code = subprocess.call([sys.executable, "-m", "cerebro", "build", name],
                               env=dict(os.environ, CEREBRO_DATA_VOLUME=str(settings.data_volume)))
        if code:
            failed.append(name)
    return failed


class Supervisor:
    """supervisord's XML-RPC interface over its unix socket (owner only; no password needed)."""

    def __init__(self, settings: Settings) -> None:
        self.socket = settings.state_dir / "supervisor.sock"
        self.pidfile = settings.state_dir / "supervisord.pid"

    @property
    def rpc(self) -> xmlrpc.client.ServerProxy:
        """A fresh XML-RPC proxy (a failed call leaves supervisor's transport unusable)."""
        from supervisor.xmlrpc import SupervisorTransport
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def alive(self) -> bool:
        """True when supervisord answers on its socket."""
        try:
            # an XML-RPC struct: {"statecode": ..., "statename": ...}
            return cast("dict[str, Any]", self.rpc.supervisor.getState())["statename"] == "RUNNING"
        except (OSError, http.client.HTTPException, xmlrpc.client.Fault,
                xmlrpc.client.ProtocolError):
            return False

    def pid(self) -> int | None:
        """supervisord's pid from its pid file, or None."""
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def processes(self) -> dict[str, dict[str, Any]]:
        """``{name: info}`` of every program (statename, pid, description, exitstatus...)."""
        # an XML-RPC array of structs, one per program
        return {p["name"]: p for p in cast("list[dict[str, Any]]",
                                           self.rpc.supervisor.getAllProcessInfo())}


def write_conf(settings: Settings) -> Path:
    """Write the platform's supervisord.conf, generated from the program table (plugin rows
    included), into CEREBRO_STATE_DIR; return its path."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    path = settings.state_dir / "supervisord.conf"
    path.write_text(conf.platform_conf(programs.table()))
    return path


def start_supervisord(settings: Settings, env: MutableMapping[str, str],
                      config: Path | None = None, out: TextIO = sys.stdout) -> bool:
    """Start supervisord (it daemonizes) unless one already answers; return True if started.

    ``config`` defaults to the configuration generated from the program table."""
    sup = Supervisor(settings)
    if sup.alive():
        out.write(f"[cerebro] supervisord already running (pid {sup.pid()}); "
                  "not starting another\n")
        env.update(started_environment(settings))
        return False
    for directory in (settings.state_dir, settings.log_dir):
        directory.mkdir(parents=True, exist_ok=True)
    # what was decided (which brokers run here, ports), for later `cerebro up` and `status`
    decided = {k: v for k, v in env.items() if k.startswith("CEREBRO_RUN_") or k in (
        "CEREBRO_RABBITMQ_PORT", "CEREBRO_REDIS_PORT", "CEREBRO_KAFKA_PORT")}
    (settings.state_dir / "supervisord.env").write_text(
        "".join(f"{k}={v}\n" for k, v in sorted(decided.items())))
    supervisord = Path(sys.executable).parent / "supervisord"
    config = config or write_conf(settings)
    result = subprocess.run([str(supervisord), "-c", str(config)], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"supervisord did not start: {(result.stderr or result.stdout).strip()}")
    deadline = time.monotonic() + 15
    while not sup.alive():
        if time.monotonic() > deadline:
            raise RuntimeError(f"supervisord not answering on {sup.socket}; "
                               f"see {settings.log_dir / 'supervisord.log'}")
        time.sleep(0.1)
    return True


def started_environment(settings: Settings) -> dict[str, str]:
    """The CEREBRO_RUN_* decisions the running supervisord was started with ({} if unknown)."""
    path = settings.state_dir / "supervisord.env"
    if not path.exists():
        return {}
    pairs = (line.partition("=") for line in path.read_text().splitlines())
    return {key: value for key, sep, value in pairs if sep}


def wait_ready(settings: Settings, env: Mapping[str, str], timeout: float | None = None,
               out: TextIO = sys.stdout) -> dict[str, probes.Result]:
    """Wait until every started program is RUNNING *and* its probe passes; return
    ``{name: (ok, detail)}``. Raises RuntimeError naming what is not ready at the deadline,
    or at once when a program is FATAL, exited 2 (a misconfiguration) or the bootstrap build
    failed."""
    from cerebro.ops import failures
    sup = Supervisor(settings)
    checks = {row.name: row.probe for row in programs.table()
              if row.probe is not None and env.get(row.run_flag) == "true"}
    deadline = time.monotonic() + (timeout or settings.ready_timeout)
    ready: dict[str, probes.Result] = {}
    while True:
        infos = sup.processes()
        for name, info in infos.items():
            failed = failures.failure(info) if name != "bootstrap" else None
            if failed:  # FATAL, or exit 2 (a misconfiguration): waiting cannot help
                raise RuntimeError(f"program {name} failed: {failed}; see "
                                   f"{info['stdout_logfile']}")
        boot = infos.get("bootstrap")
        if boot and env.get("CEREBRO_RUN_BOOTSTRAP") == "true" and boot["statename"] == "EXITED" \
                and boot["exitstatus"] != 0:
            raise RuntimeError(f"the bootstrap build failed; see {boot['stdout_logfile']}")
        for name, probe in checks.items():
            if ready.get(name, (False,))[0]:
                continue
            if infos.get(name, {}).get("statename") != "RUNNING":
                ready[name] = (False, infos.get(name, {}).get("statename", "missing"))
                continue
            ready[name] = probes.check(probe, settings, env)
            if ready[name][0]:
                out.write(f"[cerebro] ready: {name:<11} {ready[name][1]}\n")
                out.flush()
        if all(ok for ok, _ in ready.values()) and len(ready) == len(checks):
            return ready
        if time.monotonic() > deadline:
            late = {n: d for n, (ok, d) in ready.items() if not ok}
            raise RuntimeError("not ready in time: "
                               + "; ".join(f"{n} ({d})" for n, d in late.items()))
        time.sleep(0.5)


def endpoints(settings: Settings, env: Mapping[str, str]) -> list[str]:
    """Lines telling where each UI and endpoint is (and where each password is, never it)."""
    from cerebro.ops import secretfile
    from cerebro.ops.inspection import main_app_origin
    api = api_url(settings)
    lines = [f"REST API        {api}/v1/<module>/<function>   (modules: {api}/v1/modules, "
             f"ready: {api}/readyz, metrics: {api}/metrics, OpenAPI: {api}/openapi.json)",
             f"Supervisor UI   http://127.0.0.1:{settings.supervisor_port}/   "
             f"(user {settings.supervisor_user}; password: " + secretfile.hint(
                 settings, "CEREBRO_SUPERVISOR_PASSWORD", settings.supervisor_password) + ")",
             f"supervisorctl   {Path(sys.executable).parent / 'supervisorctl'} -c "
             f"{settings.state_dir.resolve() / 'supervisorctl.conf'} status"]
    if env.get("CEREBRO_RUN_FLOWER") == "true":
        lines.append(f"Flower          {flower_url(settings)}/   (user {settings.flower_user}; "
                     "password: " + secretfile.hint(settings, "CEREBRO_FLOWER_PASSWORD",
                                                    settings.flower_password) + ")")
    rabbit_host, rabbit_port = address(settings.broker_url.get_secret_value(), 5672)
    started = "started here" if env.get("CEREBRO_RUN_RABBITMQ") == "true" else "already running"
    lines.append(f"RabbitMQ        amqp://{rabbit_host}:{rabbit_port}  ({started})")
    if env.get("CEREBRO_RUN_RABBITMQ") == "true":
        lines.append(f"RabbitMQ UI     http://127.0.0.1:{settings.rabbitmq_management_port}/")
    kafka_started = "tansu started here" if env.get("CEREBRO_RUN_KAFKA") == "true" else "external"
    lines.append(f"Kafka           {','.join(settings.kafka_bootstrap)}  ({kafka_started}; group "
                 f"{settings.kafka_group})")
    lines.append(f"Redis           {settings.result_backend}")
    lines.append(f"Main app        callbacks and events go to {settings.main_app_url}")
    if env.get("CEREBRO_RUN_SIMULATOR") == "true":
        lines.append(f"                (the main-app simulator, started here; what it received: "
                     f"curl {main_app_origin(settings)}/simulator/received)")
    lines.append(f"Logs            {settings.log_dir}/<program>.log;  secrets: "
                 f"{settings.state_dir / 'secrets.env'} (generated ones)")
    lines.append("Status / stop   cerebro status;  bash scripts/down.sh (cerebro down)")
    return lines


def _gone(pid: int) -> bool:
    """True when no process ``pid`` exists (or it is a zombie)."""
    return not process_exists(pid)


def stop_supervisord(settings: Settings, timeout: float = 90,
                     out: TextIO = sys.stdout) -> bool:
    """Shut supervisord down (every program stops in reverse priority order) and wait until it
    and every program process it had are gone. Returns False when nothing was running."""
    sup = Supervisor(settings)
    if not sup.alive():
        out.write(f"[cerebro] no supervisord answering on {sup.socket}\n")
        _sweep(settings, out)
        return False
    pids = {info["pid"] for info in sup.processes().values() if info["pid"]}
    main = sup.pid()
    sup.rpc.supervisor.shutdown()
    deadline = time.monotonic() + timeout
    watched = pids | ({main} if main else set())
    while any(not _gone(pid) for pid in watched):
        if time.monotonic() > deadline:
            left = sorted(pid for pid in watched if not _gone(pid))
            raise RuntimeError(f"still running after {timeout}s: pids {left}")
        time.sleep(0.2)
    out.write(f"[cerebro] stopped supervisord and {len(pids)} program(s)\n")
    _sweep(settings, out)
    return True


def _sweep(settings: Settings, out: TextIO) -> None:
    """Stop what the stack left behind (orphans of a killed program), and say so."""
    left = leftovers.sweep(settings.state_dir)
    if left:
        out.write(f"[cerebro] stopped {len(left)} leftover process(es) of the stack: "
                  f"pids {' '.join(map(str, left))}\n")
