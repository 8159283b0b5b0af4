"""
Author:  Cerebro team
Date:    2026-11-29
Subject: supervisord.conf, generated from the program table: the platform's and a slice's.
Tagline: Write the stage directions from the cast list, never by hand.

``cerebro up`` writes the platform's configuration into ``CEREBRO_STATE_DIR``
from :func:`cerebro.ops.programs.table` (so a program a plugin adds runs
too); the repository's ``supervisord.conf`` (the Docker image's entry point)
is the same text for the built-in rows, and a test keeps it so
(``cerebro programs --conf > supervisord.conf`` rewrites it). ``cerebro slice``
renders its programs with :func:`slice_conf`. Every key is commented.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cerebro.ops.programs import BROKER, Program

HEADER = """; Cerebro under Supervisor 4: every service of the platform in one supervisord.
;
; GENERATED from the program table (cerebro/ops/programs.py) by `cerebro programs --conf`: do not
; edit by hand; add or change a program by its row (a test checks this file against the table).
;
; Start it with `cerebro up` (bash scripts/run.sh), which fills in every %(ENV_X)s below from
; Cerebro's settings (`cerebro settings`), decides which brokers to run here, waits until every
; program is really ready and prints where everything is; `cerebro down` stops it all. The Docker
; image runs `supervisord -n -c /app/supervisord.conf` as its entry point, with the same variables
; set by the Dockerfile's ENV and docker-compose.yml.
;
; Design:
; * Every value comes from the environment (%(ENV_X)s; supervisord refuses to start when one is
;   missing, so nothing runs half-configured). The Cerebro programs also *inherit* supervisord's
;   environment: `cerebro serve`, `cerebro worker`... read their CEREBRO_* / SHERLOCK_* settings
;   from it, exactly as when run by hand.
; * Which programs start is decided by CEREBRO_RUN_<PROGRAM>=true|false (autostart). `cerebro up`
;   sets CEREBRO_RUN_RABBITMQ / _REDIS / _KAFKA to false when a broker already answers at the
;   configured address (it is used instead of starting a second one), CEREBRO_RUN_SIMULATOR to
;   false when a main app answers at CEREBRO_MAIN_APP_URL, and the CEREBRO_RUN_<X> of the
;   Cerebro programs from CEREBRO_PROGRAMS (empty: every program whose row runs by default).
;   A program not started still shows (STOPPED) in `cerebro status` and the web UI, and can be
;   started by hand there.
; * Priorities order start-up: epmd, then the brokers, then the models' bootstrap build, then
;   the services. Shutdown stops them all at once (one group, below), each within 8 s.
;   Programs that need a broker retry until it is up (Celery:
;   broker_connection_retry_on_startup; the consumer and subscriber back off), so start-up
;   order is a courtesy, not a requirement. RUNNING is not ready: `cerebro up` probes
;   readiness itself (HTTP /readyz, worker ping, consumer group assignment, queue consumers).
; * A Cerebro program that exits 2 met a misconfiguration that restarting cannot fix (a setting
;   the broker refuses, a wrong password): it is not restarted (autorestart=unexpected,
;   exitcodes=2) and `cerebro status` shows it failed, with the last error line of its log.
;   Any other exit (a crash, kill -9) is restarted; a crash loop at start gives up (FATAL).
; * stopasgroup/killasgroup on every program: prefork API processes, Celery pool children and
;   RabbitMQ's Erlang children are all stopped with their parent, so a stop leaves no process.
; * '%' must be written '%%' in values (Celery's %h host-name placeholder would be %%h).

[unix_http_server]
; supervisorctl talks to supervisord through this socket (only the owner may use it)
file=%(ENV_CEREBRO_STATE_DIR)s/supervisor.sock
; socket permissions: owner only
chmod=0700

[inet_http_server]
; the web UI and XML-RPC (cerebro status/down use it): loopback only, always with a password
port=127.0.0.1:%(ENV_CEREBRO_SUPERVISOR_PORT)s
; user name of the web UI (CEREBRO_SUPERVISOR_USER)
username=%(ENV_CEREBRO_SUPERVISOR_USER)s
; password of the web UI (CEREBRO_SUPERVISOR_PASSWORD; cerebro up generates one when empty)
password=%(ENV_CEREBRO_SUPERVISOR_PASSWORD)s

[supervisord]
; supervisord's own log
logfile=%(ENV_CEREBRO_LOG_DIR)s/supervisord.log
; rotate it at 10 MB
logfile_maxbytes=10MB
; keep 5 rotated files
logfile_backups=5
; info: state changes of every program
loglevel=info
; pid file (cerebro down and the tests use it to find supervisord)
pidfile=%(ENV_CEREBRO_STATE_DIR)s/supervisord.pid
; where AUTO child logs would go (every program below names its log explicitly)
childlogdir=%(ENV_CEREBRO_LOG_DIR)s
; daemonize (cerebro up); the Docker entry point passes -n to stay in the foreground
nodaemon=false
; raise the open-files limit to at least this (the Erlang VM and Celery want plenty)
minfds=16384
; a name for this supervisord in logs and the UI
identifier=cerebro
; added to every program's environment (on top of supervisord's own): one BLAS/OpenMP
; thread per process, since Cerebro scales with processes
environment=OMP_NUM_THREADS="1",PYTHONUNBUFFERED="1"

[rpcinterface:supervisor]
; the standard XML-RPC interface used by supervisorctl, the web UI and cerebro status/down
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
; supervisorctl -c supervisord.conf uses the unix socket above (with CEREBRO_STATE_DIR set, as in
; the Docker image); outside it, `cerebro up` writes CEREBRO_STATE_DIR/supervisorctl.conf with the
; path filled in: supervisorctl -c var/supervisorctl.conf status
serverurl=unix://%(ENV_CEREBRO_STATE_DIR)s/supervisor.sock
"""

CTL_CONF = """; supervisorctl for the Cerebro stack of {state}, written by `cerebro up`:
;   supervisorctl -c {path} status
; (supervisord.conf's own [supervisorctl] needs CEREBRO_STATE_DIR in the environment; this file
; has the socket's path filled in. The socket is owner-only: no password is needed or kept here.)

[supervisorctl]
serverurl=unix://{socket}
"""

BROKERS_RULE = ("; ---------------------------------------------------------------- "
                "brokers (development / one box)\n")
SERVICES_RULE = "; ---------------------------------------------------------------- Cerebro\n"


def _comment(text: str) -> list[str]:
    """``text`` as comment lines (one per line of text)."""
    return [f"; {line}" for line in text.splitlines()]


def _spares_config_exit(row: Program) -> bool:
    """True when supervisord restarts the row's program after any exit but a misconfiguration's."""
    return row.restart and row.config_exit is not None


def _restart_lines(row: Program) -> list[str]:
    """``autorestart`` of one row, commented."""
    if _spares_config_exit(row):
        return [*_comment(row.restart_note),
                "; unexpected: after any exit but the exit code(s) below (a crash, a signal, "
                "kill -9)", "autorestart=unexpected"]
    return [*_comment(row.restart_note), f"autorestart={str(row.restart).lower()}"]


def _exitcodes_lines(row: Program) -> list[str]:
    """``exitcodes`` of one row, commented (none when supervisord's default is meant)."""
    if _spares_config_exit(row):
        return [f"; exit status {row.config_exit}: a misconfiguration that a restart cannot fix "
                "(cerebro exits 2 on one):",
                "; left EXITED, never restarted, shown failed by `cerebro status` with its log's "
                "last error line",
                "; (exiting so within startsecs is a failed start: startretries tries, then "
                "FATAL)", f"exitcodes={row.config_exit}"]
    if row.exitcodes:
        return [*_comment(row.exitcodes_note), f"exitcodes={row.exitcodes}"]
    return []


def program_section(row: Program, directory: str = "") -> str:
    """The ``[program:x]`` section of one row, every key commented."""
    autostart = row.autostart_note or f"CEREBRO_PROGRAMS contains {row.name}"
    lines = [f"[program:{row.name}]", *_comment(row.about), f"command={row.command}"]
    if directory:
        lines += ["; run from this folder", f"directory={directory}"]
    if row.environment:
        lines += [*_comment(row.environment_note), f"environment={row.environment}"]
    lines += [*_comment(autostart), f"autostart=%(ENV_{row.run_flag})s", *_restart_lines(row),
              *_comment(row.priority_note), f"priority={row.priority}",
              *_comment(row.start_note), f"startsecs={row.start_seconds}"]
    if row.start_retries is not None:
        lines += [*_comment(row.retries_note), f"startretries={row.start_retries}"]
    lines += _exitcodes_lines(row)
    group = "; stop/kill the whole process group"
    if row.group_note:
        group += f" ({row.group_note})"
    lines += [*_comment(row.stop_note), "stopsignal=TERM", f"stopwaitsecs={row.stop_seconds}",
              group, "stopasgroup=true", "killasgroup=true",
              *_comment(row.log_note), f"stdout_logfile=%(ENV_CEREBRO_LOG_DIR)s/{row.name}.log",
              "redirect_stderr=true", f"stdout_logfile_maxbytes={row.log_max}",
              f"stdout_logfile_backups={row.log_backups}"]
    return "\n".join(lines) + "\n"


def write_ctl_conf(state_dir: Path) -> Path:
    """Write ``state_dir/supervisorctl.conf`` (supervisorctl's settings with nothing to expand);
    return its path."""
    state = state_dir.resolve()
    path = state / "supervisorctl.conf"
    path.write_text(CTL_CONF.format(state=state, path=path, socket=state / "supervisor.sock"))
    return path


GROUP = """; ---------------------------------------------------------------- one stop for all
[group:cerebro]
; Every program in one group. supervisord stops the programs of one group all at once (each
; within its own stopwaitsecs, 8 s at most), where programs in groups of their own are stopped one
; after another (16-24 s in all, past Docker's 10 s grace). Nothing is lost by stopping together:
; a Celery task not yet acknowledged is redelivered, a Kafka offset not committed is consumed
; again. Start-up still follows the priorities. supervisorctl names them cerebro:<program>.
programs={programs}
"""


def platform_conf(rows: Iterable[Program]) -> str:
    """The whole platform's supervisord.conf: brokers first, then the Cerebro programs, all in
    one group (stopped together)."""
    rows = list(rows)
    brokers = [r for r in rows if r.kind == BROKER]
    services = [r for r in rows if r.kind != BROKER]
    return (HEADER + "\n" + BROKERS_RULE + "".join("\n" + program_section(r) for r in brokers)
            + "\n" + SERVICES_RULE + "".join("\n" + program_section(r) for r in services)
            + "\n" + GROUP.format(programs=",".join(r.name for r in rows)))


def slice_conf(name: str, rows: Iterable[Program]) -> str:
    """The supervisord.conf of module ``name``'s slice: its programs, run from its folder."""
    head = f"""; supervisord for the {name} slice: the services {name} needs, restricted to it.
; GENERATED by `cerebro slice` from the program table (cerebro/ops/programs.py).
; Settings come from the environment (CEREBRO_*, see `cerebro settings`); %(here)s is this folder,
; put first on PYTHONPATH so its `modules` package (only {name}) is the one served.

[unix_http_server]
; supervisorctl -c supervisord.conf talks through this socket (owner only)
file=%(ENV_CEREBRO_STATE_DIR)s/supervisor.sock
chmod=0700

[supervisord]
; supervisord's log, pid file and program logs under CEREBRO_LOG_DIR / CEREBRO_STATE_DIR
logfile=%(ENV_CEREBRO_LOG_DIR)s/supervisord.log
pidfile=%(ENV_CEREBRO_STATE_DIR)s/supervisord.pid
childlogdir=%(ENV_CEREBRO_LOG_DIR)s
; the Docker entry point passes -n (foreground)
nodaemon=false
; every program serves only this module, from this folder's code
environment=CEREBRO_MODULES="{name}",PYTHONPATH="%(here)s",OMP_NUM_THREADS="1"

[rpcinterface:supervisor]
; XML-RPC for supervisorctl
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
; through the unix socket above
serverurl=unix://%(ENV_CEREBRO_STATE_DIR)s/supervisor.sock
"""
    sections = []
    for row in rows:
        section = program_section(row, directory="%(here)s")
        # a slice starts every program it has: nothing decides CEREBRO_RUN_* for it
        sections.append(section.replace(f"autostart=%(ENV_{row.run_flag})s", "autostart=true"))
    return head + "".join("\n" + s for s in sections)
