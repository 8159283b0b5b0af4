"""The Java 17 example compiled with javac and run against a live Cerebro + worker: it verifies
signature scheme v2 on Cerebro's real callback, deduplicates on the signed Idempotency-Key, and
refuses that callback replayed with a fresh key or to another path."""

import shutil
import subprocess

import pytest

from conftest import SECRET
from support import REPO

JAVA_SOURCE = REPO / "examples" / "java" / "CerebroExample.java"


@pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None,
                    reason="no JDK installed (javac/java not on PATH): the Java example is not run")
def test_java_client_sync_async_and_signed_callback(async_env, server_factory, worker_factory,
                                                    tmp_path):
    out = tmp_path / "classes"
    subprocess.run(["javac", "-d", str(out), str(JAVA_SOURCE)], check=True, timeout=120)
    port = int(async_env["CEREBRO_MAIN_APP_URL"].rsplit(":", 1)[1])
    server = server_factory(async_env)
    worker_factory(async_env)
    run = subprocess.run(["java", "-cp", str(out), "CerebroExample", server.url, SECRET, str(port)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert "TAMPERED REJECTED 401" in lines
    assert any(line.startswith("SYNC 200 ") and '"sum":3.0' in line for line in lines)
    assert any(line.startswith("ASYNC 202 task ") for line in lines)
    assert any(line.startswith("CALLBACK VERIFIED ") and '"square":144' in line for line in lines)
    # Cerebro's real callback replayed: a duplicate as it is, refused with a fresh key or path
    assert "REPLAY SAME KEY DUPLICATE 200" in lines
    assert "REPLAY FRESH KEY REJECTED 401" in lines
    assert "REPLAY OTHER PATH REJECTED 401" in lines
    assert lines[-1] == "OK"
