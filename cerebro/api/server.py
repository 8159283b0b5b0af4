"""
Author:  Cerebro team
Date:    2026-11-24
Subject: ``cerebro serve``: bind, fork one process per core, load models, serve, stop cleanly.
Tagline: Load first, then listen; later, swap without a blink.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import errno
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from typing import TYPE_CHECKING, Any

from tornado.netutil import bind_sockets

from cerebro import logsetup
from cerebro.settings import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from cerebro.core import Core
    from cerebro.settings import Settings

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 6  # within supervisord's 8 s stop, within Docker's 10 s grace
CLOSE_SECONDS = 1.0  # then idle keep-alive connections are closed
BROKERS_CLOSE_SECONDS = 0.5  # then RabbitMQ and Redis: 7.5 s at worst in all
BIND_PATIENCE_SECONDS = SHUTDOWN_GRACE_SECONDS + 5  # an old server's drain, and its close


def serve(settings: Settings) -> None:
    """Run the REST API with ``settings.processes`` processes (0: one per core).

    Blocks until SIGTERM or SIGINT.
    """
    logsetup.configure(settings, "api")
    if not settings.access_log:  # 4xx and 5xx are still logged, as warnings and errors
        logging.getLogger("tornado.access").setLevel(logging.WARNING)
    processes = settings.processes or os.cpu_count() or 1
    if processes > 1:
        prepare_multiprocess_metrics()
    reuse = processes > 1 and settings.reuse_port and hasattr(socket, "SO_REUSEPORT")
    sockets = bind_with_patience(settings.port, settings.host, reuse)
    core = _load(settings)
    port = sockets[0].getsockname()[1]
    log.info("Cerebro REST API on http://%s:%d with %d process(es)%s", settings.host, port,
             processes, ", one SO_REUSEPORT socket each" if reuse else "")
    index = 0
    if processes > 1:
        from cerebro.api.prefork import fork_workers
        reserved = _reserve(sockets) if reuse else []
        if reuse:  # the parent must not listen: connections the kernel gave it would hang
            for sock in sockets:
                sock.close()
        index = fork_workers(processes)
        if reuse:
            for sock in reserved:
                sock.close()
            sockets = bind_sockets(port, settings.host, reuse_port=True)
    pin_to_cpu(settings.cpu_affinity, index, processes)
    try:
        run_loop(settings.event_loop, _run(settings, sockets, core))
    finally:
        from cerebro import metrics
        metrics.flush()  # the requests of its last second, down to those cancelled at the end


def run_loop(kind: str, main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` to the end on a new event loop of ``kind`` (``CEREBRO_EVENT_LOOP``):
    ``uvloop`` (libuv: each loop turn and callback costs less, measured in
    ``bench/async_ack.py``) or ``asyncio`` (the standard library's)."""
    if kind == "uvloop":
        import uvloop
        uvloop.run(main)
    else:
        asyncio.run(main)


def _load(settings: Settings) -> Core:
    """The core with every model loaded, before the processes fork: they share its pages
    (copy on write) instead of each loading its own copy; each then follows the volume."""
    from cerebro import metrics
    from cerebro.core import Core
    core = Core.start("api", settings, watch=False, configure_logging=False,
                      on_refresh=metrics.set_model_versions)
    gc.freeze()  # what is loaded now stays out of the collector: its pages stay shared
    return core


def bind_with_patience(port: int, host: str, reuse: bool,
                       patience: float = BIND_PATIENCE_SECONDS) -> list[socket.socket]:
    """Bind the API's sockets, waiting up to ``patience`` seconds while the port is in use.

    After a ``kill -9`` of an earlier ``cerebro serve``, its children drain their
    requests and exit (they die with their parent, see :mod:`.prefork`); the
    restarted server waits for the port instead of failing, and fails with a
    clear message when something else keeps it.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            return bind_sockets(port, host, reuse_port=reuse)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or time.monotonic() >= deadline:
                if exc.errno == errno.EADDRINUSE:
                    raise ConfigurationError(
                        f"port {port} on {host} is in use by another process after waiting "
                        f"{patience:.0f}s (CEREBRO_PORT); `cerebro status` lists Cerebro's "
                        "own") from None
                raise
            log.warning("port %d is still in use (an earlier server draining?); waiting", port)
            time.sleep(0.5)


def _reserve(sockets: list[socket.socket]) -> list[socket.socket]:
    """Bound but never listening twins of ``sockets`` (``SO_REUSEPORT``), kept by the parent.

    With ``CEREBRO_REUSE_PORT`` every API process listens on a socket of its own
    and the kernel spreads new connections across them (one shared socket lets
    whichever process wakes first accept a whole burst: a Java connection pool
    opened at once would land on one process). The parent holds these twins so
    the port stays Cerebro's while children start and restart; a socket that
    does not listen is never handed a connection.
    """
    reserved = []
    for listening in sockets:
        sock = socket.socket(listening.family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if listening.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(listening.getsockname())
        reserved.append(sock)
    return reserved


def pin_to_cpu(mode: str, index: int, processes: int) -> int | None:
    """Pin this API process to one CPU (``CEREBRO_CPU_AFFINITY``); return that CPU or ``None``.

    A process hands every model call from its IOLoop thread to a runner thread
    and back. When the two threads share a CPU, each hand-over is a context
    switch on a busy CPU; when they sit on different CPUs, each one wakes an
    idle CPU, which costs 60-80 us more per call on a virtual machine (measured:
    30-36 us against 93-115 us per round trip). ``auto`` pins process ``i`` to
    the ``i``-th allowed CPU when there is exactly one process per allowed CPU
    (the default ``--processes``); ``true`` pins whenever it can; ``false`` never.
    """
    if mode == "false" or not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if mode == "auto" and processes != len(cpus):
        return None
    cpu = cpus[index % len(cpus)]
    os.sched_setaffinity(0, {cpu})
    log.info("API process %d pinned to CPU %d (CEREBRO_CPU_AFFINITY=%s)", index, cpu, mode)
    return cpu


def prepare_multiprocess_metrics() -> None:
    """Point prometheus_client at a fresh shared folder, removed when the parent exits.

    Must run before ``prometheus_client`` is first imported (``cerebro serve``
    calls it first thing); :mod:`cerebro.metrics` refuses to start otherwise.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    folder = tempfile.mkdtemp(prefix="cerebro-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    parent = os.getpid()

    def remove() -> None:
        """Remove the folder when the parent exits (children exit too, and must leave it)."""
        if os.getpid() == parent:
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove)


async def _run(settings: Settings, sockets: list[socket.socket], core: Core) -> None:
    """Serve on ``sockets`` in this process, with ``core`` (loaded before the fork), until a
    stop signal."""
    from cerebro.api.app import Context, log_request, make_app
    from cerebro.api.endpoint_route import EndpointLane
    from cerebro.api.limits import BoundedHTTPServer
    from cerebro.api.submit import Submitter

    # Every model was loaded before the fork; a process restarted later catches up with the
    # volume before taking connections: it never answers with an older version, nor 503
    # while a sibling is ready.
    loop = asyncio.get_running_loop()
    submitter = Submitter.from_settings(settings)  # connects to RabbitMQ meanwhile
    await loop.run_in_executor(None, core.refresh)
    core.on_modules_changed(submitter.modules_changed)
    ctx = Context(core, submitter)
    core.on_modules_changed(lambda added, removed: loop.call_soon_threadsafe(
        ctx.forget, [*added, *removed]))
    server = BoundedHTTPServer(
        make_app(ctx), xheaders=settings.trust_proxy_headers,
        # a backstop above our own cap: the handlers answer 413 themselves (from
        # Content-Length, or once chunks pass the limit)
        max_connections=settings.max_connections,
        max_body_size=2 * settings.max_body_bytes + 65536,
        idle_timeout=settings.idle_timeout,  # kept by server.heads (cerebro.api.deadlines)
        lane=EndpointLane(ctx, log_request))  # endpoint calls, before Tornado's router
    await server.serve(sockets)
    core.watch()
    # What this process built to serve (its app, clients, imports) lives as long as it does:
    # out of the collector too, so a full collection walks only what requests leave behind
    # (9.5 ms -> 0.5 ms per full pass here, each of which holds the IOLoop)
    gc.freeze()

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("stopping: no new connections, finishing requests in flight")
    core.stop()
    server.stop()
    # Answer what is in flight (each answer says Connection: close), then close the idle
    # keep-alive connections, then stop the model threads: no request is cut off.
    left = await ctx.drain(SHUTDOWN_GRACE_SECONDS)
    if left:
        log.warning("%d request(s) still in flight after %ds; closing", left,
                    SHUTDOWN_GRACE_SECONDS)
    try:
        await asyncio.wait_for(server.close_all_connections(), CLOSE_SECONDS)
    except asyncio.TimeoutError:
        log.warning("connections still open after the grace period; closing")
    ctx.shutdown()
    # Close RabbitMQ and Redis here, not in asyncio.run's cancel-everything teardown: there
    # the connection could close under the publisher's supervisor (with aiormq, its reader was
    # cancelled), which logged an outage and reconnected, and the new connection kept the
    # process from exiting until SIGKILL (about one stop in twenty).
    try:
        await asyncio.wait_for(submitter.close(), BROKERS_CLOSE_SECONDS)
    except asyncio.TimeoutError:
        log.warning("the RabbitMQ connection did not close within %.1fs; leaving it",
                    BROKERS_CLOSE_SECONDS)
