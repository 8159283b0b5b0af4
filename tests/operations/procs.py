"""Helpers of the operations tests: real processes in their own groups, a real SMTP inbox, waits."""

import email
import os
import signal
import subprocess
import sys
import threading
import time
from email import policy

from aiosmtpd.controller import Controller

from support import cerebro_env


def wait_for(predicate, timeout=30, interval=0.2, what="condition"):
    """Poll ``predicate`` until it returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not met in {timeout}s")


class Proc:
    """A `python -m cerebro ...` (or any) command in its own process group, logging to a file."""

    def __init__(self, args, env, log_path, cwd=None, python=True):
        self.args = [sys.executable, "-m", *args] if python else list(args)
        self.env = cerebro_env(**env)
        self.log_path = log_path
        self.cwd = cwd
        self.proc = None

    def start(self):
        """Start the process."""
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=self.cwd,
                                     stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def log(self):
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text, timeout=60):
        """Wait until ``text`` appears in the log (fail early if the process exits)."""
        def seen():
            """True once the text is logged; raises when the process died."""
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.args} exited {self.proc.returncode}: "
                                     f"{self.log()[-3000:]}")
            return text in self.log()
        return wait_for(seen, timeout, what=f"{text!r} in {self.log_path.name}")

    def stop(self, timeout=20):
        """SIGTERM the group, SIGKILL if it lingers."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Senders:
    """Threads sending steady traffic until told to stop: subclasses pass their send loops
    (each watching ``self.stop``) to ``__init__``."""

    def __init__(self, *loops):
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=loop, daemon=True) for loop in loops]

    def start(self):
        """Start sending."""
        for thread in self.threads:
            thread.start()
        return self

    def finish(self):
        """Stop sending and wait for the senders."""
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


class Inbox:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 keeping every message it accepts."""

    def __init__(self, port):
        self.port = port
        self.messages = []
        self.controller = Controller(self, hostname="127.0.0.1", port=port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        """Keep the message and accept it."""
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def start(self):
        """Start listening."""
        self.controller.start()
        return self

    def stop(self):
        """Stop listening."""
        self.controller.stop()
