"""The main-app simulator (`cerebro simulate`), a real process on a free port: it checks the
signature of every call Cerebro's own client sends, counts idempotency keys with duplicates
apart, refuses bad signatures, shows what it received and resets; and the development stack's
settings point listing_enrichment's amenities call at it (no supervisord needed)."""

import json
import subprocess
import sys
import time

import pytest

from cerebro.callbacks import signing
from cerebro.callbacks.urls import CallbackURLs
from cerebro.clients.http import MainAppClient
from cerebro.settings import load_settings
from procs import Proc, wait_for
from support import REPO, free_port, http

SECRET = "simulator-test-secret"


def _simulator(tmp_path, env):
    """A running `cerebro simulate` with ``env``; returns (process, base URL)."""
    url = env["CEREBRO_MAIN_APP_URL"]
    proc = Proc(["cerebro", "simulate"], env, tmp_path / "simulator.log").start()
    wait_for(lambda: _answers(url, proc), 20, what="the simulator answering")
    return proc, url


def _answers(url, proc):
    """True once GET /simulator/received answers (fails early if the process died)."""
    if proc.proc.poll() is not None:
        raise AssertionError(f"cerebro simulate exited {proc.proc.returncode}: {proc.log()}")
    try:
        return http("GET", url + "/simulator/received", timeout=1)[0] == 200
    except OSError:
        return False


@pytest.fixture
def simulator(tmp_path):
    """The simulator as the main app of CEREBRO_MAIN_APP_URL, with the stack's secret."""
    env = {"CEREBRO_MAIN_APP_URL": f"http://127.0.0.1:{free_port()}", "CEREBRO_SIMULATOR_KEEP": 3,
           "CEREBRO_CALLBACK_SECRET": SECRET, "CEREBRO_STATE_DIR": tmp_path / "state"}
    proc, url = _simulator(tmp_path, env)
    yield url, env
    proc.stop()


def received(url, query="?keys=1"):
    """The simulator's report."""
    status, _, body = http("GET", url + "/simulator/received" + query)
    assert status == 200, body
    return body


def test_signed_calls_are_counted_by_key_and_bad_signatures_refused(simulator):
    """Callbacks and consumer outcomes signed by Cerebro's own client are accepted and counted
    exactly (a re-delivery counted as a duplicate); a wrong secret and a replayed timestamp get
    401 and are counted apart; the last bodies are shown; reset starts again at zero."""
    url, env = simulator
    urls = CallbackURLs.from_settings(load_settings({k: str(v) for k, v in env.items()}))
    callback = urls.default("listing_enrichment", "enrich")
    event_path = load_settings({}).consumer_callback_path.format(module="vigilante",
                                                                 function="screen")
    client, forger = MainAppClient(SECRET), MainAppClient("not-the-secret")
    try:
        done = {"task_id": "t-1", "status": "succeeded", "result": {"demand_tier": "high"}}
        assert client.attempt(callback, done, "t-1").status == 200
        assert client.attempt(callback, done, "t-1").status == 200      # at-least-once
        assert client.attempt(callback, dict(done, task_id="t-2", status="failed"),
                              "t-2").status == 200
        outcomes = [(url + event_path, json.dumps({"event_id": f"ev-{n}", "status": "ok"})
                     .encode(), f"ev-{n}") for n in range(5)]
        assert all(r.status == 200 for r in client.post_many(outcomes))
        refused = forger.attempt(callback, dict(done, task_id="t-3"), "t-3")
        assert refused.status == 401 and b"bad signature" in refused.response_body
    finally:
        client.close()
        forger.close()
    body = b'{"status": "succeeded"}'
    path = "/cerebro/callbacks/listing_enrichment/enrich"
    stale = signing.signed_headers(SECRET, body, "t-4", target=path, timestamp=time.time() - 3600)
    assert http("POST", callback, body, stale)[0] == 401
    # scheme v2: the signature covers the key and the target (query included), as received
    fresh = signing.signed_headers(SECRET, body, "t-5", target=path + "?tenant=1")
    assert http("POST", callback + "?tenant=1", body, fresh)[0] == 200
    assert http("POST", callback + "?tenant=2", body, fresh)[0] == 401
    assert http("POST", callback, body, dict(fresh, **{"Idempotency-Key": "t-6"}))[0] == 401

    report = received(url)
    events = "/cerebro/events/vigilante/screen"
    assert (report["calls"], report["unique"], report["duplicates"], report["bad_signatures"],
            report["missing_key"]) == (9, 8, 1, 4, 0)
    assert report["by_path"][path] == {"calls": 4, "unique": 3, "duplicates": 1,
                                       "missing_key": 0, "bad_signatures": 4}
    assert report["by_path"][events]["unique"] == 5
    assert report["by_status"] == {"succeeded": 3, "failed": 1, "ok": 5}
    assert report["keys"] == {path: {"t-1": 2, "t-2": 1, "t-5": 1},
                              events: {f"ev-{n}": 1 for n in range(5)}}
    last = report["last"]                        # CEREBRO_SIMULATOR_KEEP=3: the newest three
    assert [c["idempotency_key"] for c in last] == ["t-5", "t-5", "t-6"]
    assert [c["verified"] for c in last] == [True, False, False]
    assert "does not match" in last[1]["error"] and "does not match" in last[2]["error"]
    assert last[0]["body"] == {"status": "succeeded"}
    assert "keys" not in received(url, "") and received(url, "?last=1")["last"] == last[-1:]

    assert http("POST", url + "/simulator/reset", b"")[0] == 200
    assert (received(url)["calls"], received(url)["bad_signatures"], received(url)["keys"]) \
        == (0, 0, {})


def test_without_a_secret_it_refuses_to_start(tmp_path):
    """No CEREBRO_CALLBACK_SECRET and no generated one: exit 2 (a misconfiguration), saying
    why, rather than accepting calls it cannot check."""
    result = subprocess.run([sys.executable, "-m", "cerebro", "simulate", "--port",
                             str(free_port())], capture_output=True, text=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin", "CEREBRO_STATE_DIR": str(tmp_path),
                                 "CEREBRO_CALLBACK_SECRET": ""})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "CEREBRO_CALLBACK_SECRET is empty" in result.stderr


def test_the_stacks_settings_send_enrich_amenities_call_to_the_simulator(tmp_path):
    """With nothing at CEREBRO_MAIN_APP_URL, `cerebro up`'s environment runs the simulator there
    and points LISTING_ENRICHMENT_AMENITIES_URL at it; listing_enrichment.enrich's amenities
    call, made in a process with that environment, reaches the simulator and gets the sample's
    deterministic neighbourhood. A main app that answers is used instead; the image never runs
    the simulator."""
    from cerebro.ops.supervise import supervisor_environment
    from modules.listing_enrichment.src.utilities import neighbourhood
    main = f"http://127.0.0.1:{free_port()}"
    given = {"PATH": "/usr/bin:/bin", "CEREBRO_MAIN_APP_URL": main,
             "CEREBRO_STATE_DIR": str(tmp_path / "state"), "SHERLOCK_DIR": str(tmp_path)}
    env = supervisor_environment(load_settings(given), given)
    assert env["CEREBRO_RUN_SIMULATOR"] == "true"
    assert env["LISTING_ENRICHMENT_AMENITIES_URL"] == main and env["CEREBRO_CALLBACK_SECRET"]
    proc, url = _simulator(tmp_path, env)
    try:
        call = ("import json; from modules.listing_enrichment.expose import _neighbourhood; "
                "print(json.dumps(_neighbourhood(12.9352, 77.6245)))")
        result = subprocess.run([sys.executable, "-c", call], env=env, cwd=REPO,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == neighbourhood(12.9352, 77.6245)
        assert received(url)["amenities"] == 1
        answered = supervisor_environment(load_settings(given), given)   # a main app answers
        assert answered["CEREBRO_RUN_SIMULATOR"] == "false"
        assert "LISTING_ENRICHMENT_AMENITIES_URL" not in answered
    finally:
        proc.stop()
    own = dict(given, LISTING_ENRICHMENT_AMENITIES_URL="http://amenities.internal")
    assert supervisor_environment(load_settings(own), own)["LISTING_ENRICHMENT_AMENITIES_URL"] \
        == "http://amenities.internal"
    assert "CEREBRO_RUN_SIMULATOR=false" in (REPO / "Dockerfile").read_text()
