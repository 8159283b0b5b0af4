"""Shared test helpers: free ports, a real `cerebro serve` process, a tiny HTTP client."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"

# Smaller-than-default builds for modules whose full build is slow; every
# other module is built with its defaults.
QUICK_BUILD_ARGS = {"rent_predictor": ["--rows", "5000"]}


def module_names():
    """Every module folder of the repository (a folder with an expose.py)."""
    return sorted(p.parent.name for p in (REPO / "modules").glob("*/expose.py"))


def free_port():
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=10):
    """Send one request; return (status, headers, parsed JSON or raw bytes)."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    headers = dict(headers or {})
    if data is not None and not any(h.lower() == "content-type" for h in headers):
        headers["Content-Type"] = "application/json"  # what the API takes (else 415)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, head, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, head, raw = error.code, dict(error.headers), error.read()
    try:
        return status, head, json.loads(raw)
    except ValueError:
        return status, head, raw


TEST_SIGNING_KEY = "test-model-signing-key-0123456789"


def cerebro_env(**extra):
    """Environment for a Cerebro subprocess: the test fixture modules importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("CEREBRO_MODEL_SIGNING_KEY", TEST_SIGNING_KEY)  # builds sign, services check
    env.update({k: str(v) for k, v in extra.items()})
    return env


def build_module(module, volume, *args, timeout=180, cwd=None):
    """Run ``modules/<module>/src/build.py *args`` as a real subprocess publishing into
    ``volume``; assert it succeeded and return the completed process."""
    result = subprocess.run([sys.executable, str(REPO / "modules" / module / "src" / "build.py"),
                             *args], cwd=cwd, env=cerebro_env(CEREBRO_DATA_VOLUME=volume),
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result


def published_version_dir(volume, module):
    """The folder of the version ``volume/<module>/current.json`` points at."""
    version = json.loads((Path(volume) / module / "current.json").read_text())["version"]
    return Path(volume) / module / "versions" / version


def run_cli(env, *args, timeout=60):
    """Run the cerebro CLI with ``env`` (added to :func:`cerebro_env`); return (exit code,
    stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "cerebro", *args], env=cerebro_env(**env),
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


class CerebroProcess:
    """A long-running `cerebro <command>` process in its own process group, logging to a file."""

    def __init__(self, command, env, log_path, append=False):
        self.log_path = log_path
        self.proc = subprocess.Popen([sys.executable, "-m", "cerebro", command], env=env,
                                     stdout=open(log_path, "ab" if append else "wb"),
                                     stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True)

    def log(self):
        """The process's output so far."""
        return self.log_path.read_text(errors="replace")

    def alive(self):
        """True while the process runs."""
        return self.proc.poll() is None

    def terminate(self, timeout=30):
        """SIGTERM and wait; returns the exit code."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self):
        """kill -9, as a crash would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


class CerebroServer:
    """A real `cerebro serve` subprocess on a free port, stopped with SIGTERM."""

    def __init__(self, env=None, processes=1, log_path=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = cerebro_env(**(env or {}))
        self.processes = processes
        self.log_path = log_path
        self.proc = None

    def start(self, ready=False, timeout=60):
        """Start and wait for /healthz (and /readyz when ``ready``)."""
        out = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cerebro", "serve", "--port", str(self.port),
             "--processes", str(self.processes)],
            env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        path = "/readyz" if ready else "/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"cerebro serve exited with {self.proc.returncode}")
            try:
                if http("GET", self.url + path, timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"cerebro serve not answering {path} after {timeout}s")

    def wait_ready(self, timeout=60):
        """Wait until /readyz says ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if http("GET", self.url + "/readyz")[0] == 200:
                return
            time.sleep(0.1)
        raise RuntimeError("not ready in time")

    def post(self, path, body=None, headers=None):
        """POST JSON to a path of this server."""
        return http("POST", self.url + path, {} if body is None else body, headers)

    def get(self, path, headers=None):
        """GET a path of this server."""
        return http("GET", self.url + path, None, headers)

    def stop(self):
        """SIGTERM the process group and wait."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class AmenitiesServer:
    """A small real amenities service for listing_enrichment: ``GET /amenities?lat=&lon=``
    answers the deterministic neighbourhood and records each call; with ``broken_at_zero``,
    latitude 0 gets a broken answer (``{}``), for tests of a failing task; ``delay`` seconds
    before each answer make every task last that long (tasks in flight when a node dies)."""

    def __init__(self, broken_at_zero=False, delay=0.0):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        from modules.listing_enrichment.src.utilities import neighbourhood
        self.calls = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            """One amenities lookup."""

            def do_GET(self):
                """Answer the neighbourhood of the coordinate asked about."""
                query = parse_qs(urlsplit(self.path).query)
                lat, lon = float(query["lat"][0]), float(query["lon"][0])
                outer.calls.append((lat, lon))
                if delay:
                    time.sleep(delay)
                answer = {} if broken_at_zero and lat == 0 else neighbourhood(lat, lon)
                data = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the asking worker died meanwhile (a node-kill test)

            def log_message(self, *args):
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
