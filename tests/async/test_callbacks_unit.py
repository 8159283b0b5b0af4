"""Callbacks on their own: signing, URL allow-list, the worker's delivery with retries (its real
code, its countdown tasks run in place), dead letters."""

import json
import random
import time
from types import SimpleNamespace

import pytest

from cerebro.callbacks import (CallbackURLs, DeadLetterStore, PermanentDeliveryError,
                               RetryWindowExpired, signing)
from cerebro.clients.http import MainAppClient
from cerebro.errors import InvalidPayload
from cerebro.names import Names
from cerebro.outcomes import backoff_delay
from cerebro.settings import load_settings
from receiver import Receiver
from support import run_cli

SECRET = "s3cret"


def test_sign_and_verify_round_trip_and_tamper():
    body = b'{"task_id": "t1"}'
    headers = signing.signed_headers(SECRET, body, "t1", timestamp=1_700_000_000)
    assert headers["Idempotency-Key"] == "t1"
    sig = headers["X-Cerebro-Signature"]
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert signing.verify(SECRET, "1700000000", body, sig, now=1_700_000_010)
    assert not signing.verify(SECRET, "1700000000", body + b" ", sig, now=1_700_000_010)
    assert not signing.verify("other", "1700000000", body, sig, now=1_700_000_010)
    with pytest.raises(signing.SignatureError, match="replay"):
        signing.check(SECRET, "1700000000", body, sig, now=1_700_001_000)
    with pytest.raises(ValueError):
        signing.sign("", 1, body)


def test_known_vector():
    # The same vector is checked by the Java example (examples/java/CerebroExample.java).
    assert signing.sign("secret", 1700000000, b"{}") == \
        "b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"


def test_urls_default_paths_and_allow_list():
    urls = CallbackURLs("http://main:8080/", paths=("m.special=/hooks/special",),
                        allowed_hosts=("hooks.example.com", "127.0.0.1:9000", "*.corp.example"))
    assert urls.default("m", "f") == "http://main:8080/cerebro/callbacks/m/f"
    assert urls.default("m", "special") == "http://main:8080/hooks/special"
    assert urls.resolve("m", "f") == "http://main:8080/cerebro/callbacks/m/f"
    assert urls.check("http://main:8080/x") == "http://main:8080/x"
    assert urls.check("https://hooks.example.com/cb")
    assert urls.check("http://127.0.0.1:9000/cb")
    assert urls.check("https://a.corp.example/cb")
    for bad in ("http://127.0.0.1:9001/cb", "http://169.254.169.254/latest",
                "ftp://hooks.example.com/", "http://hooks.example.com@evil.com/",
                "http://evil.com\\@hooks.example.com/", "http://corp.example/", "/relative", "", 42,
                "http://hooks.example.com.evil.com/"):
        with pytest.raises(InvalidPayload) as info:
            urls.check(bad)
        assert info.value.field == "callback_url"


def test_backoff_grows_and_is_capped():
    rng = random.Random(1)
    delays = [backoff_delay(n, 1.0, 30.0, rng) for n in range(10)]
    assert 0.5 <= delays[0] <= 1.0 and 8 <= delays[4] <= 16
    assert all(15 <= d <= 30 for d in delays[6:])


def _worker(monkeypatch, tmp_path, receiver_url, **settings):
    """The worker's callback path with this test's state; returns ``(state, run)``: ``run(body)``
    sends the first attempt, then runs every retry it schedules after its countdown (what
    RabbitMQ's delayed delivery does), and returns what was reported to Sherlock."""
    from cerebro.tasks import task
    config = load_settings().replace(queue_type="classic", callback_backoff=0.01,
                                     callback_backoff_max=0.05, **settings)
    state = SimpleNamespace(urls=CallbackURLs(receiver_url), settings=config,
                            client=MainAppClient(SECRET, timeout=1),
                            deadletters=DeadLetterStore(tmp_path / "dl"),
                            core=SimpleNamespace(names=Names.from_settings(config)))
    monkeypatch.setattr(task, "_state", state)
    reported, scheduled = [], []
    monkeypatch.setattr(task, "report", lambda exc, *a, **kw: reported.append(exc))
    monkeypatch.setattr(task, "deliver_callback", SimpleNamespace(
        apply_async=lambda args, countdown, queue: scheduled.append((args, countdown))))

    def run(body):
        """The first attempt, then each scheduled one, in turn (as deliver_callback runs it)."""
        task.send_callback(body, None, first_attempt_at=None, attempt=0)
        while scheduled:
            (body, url, first_attempt_at, attempt), countdown = scheduled.pop(0)
            time.sleep(countdown)
            task.attempt_callback(body, url, first_attempt_at=first_attempt_at, attempt=attempt)
        return reported

    return state, run


def test_delivery_retries_5xx_then_succeeds(monkeypatch, tmp_path):
    receiver = Receiver(SECRET, statuses=[503, 500, 429])
    try:
        state, run = _worker(monkeypatch, tmp_path, receiver.url)
        body = {"task_id": "k1", "module": "m", "function": "f", "status": "succeeded"}
        assert run(body) == [] and state.deadletters.list() == []
        got = receiver.wait(4)
        assert [r["status"] for r in got] == [503, 500, 429, 200]
        assert all(r["verified"] and r["headers"]["Idempotency-Key"] == "k1" for r in got)
    finally:
        receiver.stop()


def test_delivery_4xx_is_final_and_window_expires(monkeypatch, tmp_path):
    receiver = Receiver(SECRET, statuses=[404])
    body = {"task_id": "k2", "module": "m", "function": "f", "status": "succeeded"}
    try:
        state, run = _worker(monkeypatch, tmp_path, receiver.url)
        [error] = run(body)
        assert isinstance(error, PermanentDeliveryError)
        assert len(receiver.received) == 1 and state.deadletters.get("k2").attempts == 1
    finally:
        receiver.stop()
    started = time.time()
    state, run = _worker(monkeypatch, tmp_path / "gone", receiver.url,
                         callback_retry_window=0.5)
    [error] = run(dict(body, task_id="k3"))
    assert isinstance(error, RetryWindowExpired)
    assert error.attempts >= 2 and time.time() - started < 3


def test_deadletter_store_list_and_retry(tmp_path):
    store = DeadLetterStore(tmp_path / "dl")
    assert store.list() == []
    entry = store.add("http://127.0.0.1:1/cb", {"task_id": "t/1"}, "t/1", "down", attempts=5)
    assert entry.id == "t_1" and [e.id for e in store.list()] == ["t_1"]
    client = MainAppClient(SECRET, timeout=1)
    [(kept, result)] = store.retry(client)
    assert not result.ok and store.get("t_1").retries == 1
    receiver = Receiver(SECRET)
    try:
        store.add(receiver.url + "/cb", {"task_id": "t/1"}, "t/1", "down")
        [(_, result)] = store.retry(client, "t_1")
        assert result.ok and store.list() == []
        assert receiver.wait(1)[0]["body"] == {"task_id": "t/1"}
    finally:
        receiver.stop()
    with pytest.raises(KeyError):
        store.retry(client, "nope")


def test_retry_to_a_configured_absolute_url_is_not_checked_against_the_allow_list(
        monkeypatch, tmp_path):
    # An absolute URL in CEREBRO_CALLBACK_PATHS on a host outside the allow-list: the first
    # attempt gets a 503, the scheduled retry must deliver to the same URL, not dead-letter it.
    from cerebro.tasks import task
    receiver = Receiver(SECRET, statuses=[503])
    try:
        url = receiver.url + "/enrich"
        urls = CallbackURLs("http://main.invalid:8080",
                            paths=(f"listing_enrichment.enrich={url}",))
        settings = load_settings()
        fake = SimpleNamespace(urls=urls, client=MainAppClient(SECRET, timeout=2),
                               deadletters=DeadLetterStore(tmp_path / "dl"), settings=settings,
                               core=SimpleNamespace(names=Names.from_settings(settings)))
        monkeypatch.setattr(task, "_state", fake)
        reported = []
        monkeypatch.setattr(task, "report", lambda *a, **kw: reported.append(a))
        scheduled = []
        real_deliver = task.deliver_callback
        monkeypatch.setattr(task, "deliver_callback", SimpleNamespace(
            apply_async=lambda args, **kw: scheduled.append(args)))
        body = {"task_id": "t-abs", "module": "listing_enrichment", "function": "enrich",
                "status": "succeeded", "result": {"ok": True}}
        task.send_callback(body, None, first_attempt_at=None, attempt=0)
        [args] = scheduled
        assert args[1] == url and args[3] == 1
        real_deliver(*args)
        got = receiver.wait(2, timeout=5)
        assert [(r["path"], r["status"]) for r in got] == [("/enrich", 503), ("/enrich", 200)]
        assert fake.deadletters.list() == [] and reported == [] and len(scheduled) == 1
    finally:
        receiver.stop()


def test_corrupt_deadletter_files_are_skipped_with_a_warning_and_kept(tmp_path):
    directory = tmp_path / "dl"
    store = DeadLetterStore(directory)
    receiver = Receiver(SECRET)
    try:
        store.add(receiver.url + "/cb", {"task_id": "good1"}, "good1", "down", attempts=3)
        store.add(receiver.url + "/cb", {"task_id": "good2"}, "good2", "down", attempts=3)
        corrupt = {"truncated.json": '{"id": "truncated", "url": ',
                   "notadict.json": "[1, 2]",
                   "wrongkeys.json": '{"id": "x", "colour": "red"}',
                   "badtime.json": json.dumps(dict(store.get("good1").to_dict(),
                                                   id="badtime", failed_at="yesterday"))}
        for name, text in corrupt.items():
            (directory / name).write_text(text)
        (directory / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
        bad = sorted(list(corrupt) + ["binary.json"])
        env = {"CEREBRO_CALLBACK_DEADLETTER_DIR": str(directory),
               "CEREBRO_CALLBACK_SECRET": SECRET}

        code, out, err = run_cli(env, "callbacks", "failed")
        assert code == 0, err
        assert "good1" in out and "good2" in out and "Traceback" not in err
        for name in bad:
            assert str(directory / name) in err
        assert "2 failed callback(s)" in err and "5 unreadable" in err
        code, out, err = run_cli(env, "callbacks", "failed", "--json")
        assert code == 0 and sorted(e["id"] for e in json.loads(out)) == ["good1", "good2"]

        # the functions too: list() skips (and reports) them
        skipped = []
        assert [e.id for e in store.list(on_unreadable=lambda p, r: skipped.append(p.name))] == \
            ["good1", "good2"]
        assert sorted(skipped) == bad

        code, out, err = run_cli(env, "callbacks", "retry", "--id", "truncated")
        assert code == 2 and "truncated.json" in err and "Traceback" not in err
        code, out, err = run_cli(env, "callbacks", "retry")
        assert code == 1, out + err  # delivered the good ones, but some entries need a look
        assert "good1  delivered" in out and "good2  delivered" in out
        assert "Traceback" not in err and "5 unreadable" in err
        assert sorted(r["body"]["task_id"] for r in receiver.wait(2)) == ["good1", "good2"]
        assert sorted(p.name for p in directory.glob("*.json")) == bad
    finally:
        receiver.stop()
    # the worker dead-lettering a callback whose key names a corrupt file replaces that file
    (directory / "k.json").write_text("{")
    store.add("http://127.0.0.1:1/cb", {"task_id": "k"}, "k", "down")
    assert store.get("k").reason == "down"
