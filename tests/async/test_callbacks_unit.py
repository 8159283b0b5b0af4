"""Callbacks on their own: signing, URL allow-list, the worker's delivery with retries (its real
code, its countdown tasks run in place), dead letters."""

import json
import os
import random
import re
import stat
import time
from types import SimpleNamespace

import pytest

from cerebro.callbacks import (CallbackURLs, DeadLetterStore, PermanentDeliveryError,
                               RetryWindowExpired, SealedRetry, Sealer, SealError, open_retry,
                               signing)
from cerebro.clients.http import MainAppClient
from cerebro.errors import InvalidPayload
from cerebro.names import Names
from cerebro.outcomes import backoff_delay
from cerebro.settings import load_settings
from receiver import Receiver
from support import run_cli

SECRET = "s3cret"


TARGET = "/cerebro/callbacks/m/f"


def _verify(headers, body, target=TARGET, method="POST", key=None, now=1_700_000_010):
    """``signing.verify`` of a call with ``headers`` (key from them unless given)."""
    return signing.verify(SECRET, headers["X-Cerebro-Timestamp"], body,
                          headers["X-Cerebro-Signature"], now=now, method=method, target=target,
                          idempotency_key=headers["Idempotency-Key"] if key is None else key)


def test_sign_and_verify_round_trip_and_tamper():
    body = b'{"task_id": "t1"}'
    headers = signing.signed_headers(SECRET, body, "t1", target=TARGET, timestamp=1_700_000_000)
    assert headers["Idempotency-Key"] == "t1"
    sig = headers["X-Cerebro-Signature"]
    assert sig.startswith("v2=") and len(sig) == 3 + 64
    assert _verify(headers, body)
    assert not _verify(headers, body + b" ")
    assert not signing.verify("other", "1700000000", body, sig, now=1_700_000_010, method="POST",
                              target=TARGET, idempotency_key="t1")
    with pytest.raises(signing.SignatureError, match="replay"):
        signing.check(SECRET, "1700000000", body, sig, now=1_700_001_000, method="POST",
                      target=TARGET, idempotency_key="t1")
    with pytest.raises(ValueError):
        signing.sign("", 1, "POST", TARGET, "k", body)


def test_a_replayed_capture_with_a_fresh_key_another_path_or_method_fails():
    """The signature covers method, request target (query included) and Idempotency-Key: a
    captured call replayed within the tolerance verifies only exactly as it was sent."""
    body = b'{"task_id": "t1", "status": "succeeded"}'
    target = TARGET + "?tenant=7"
    headers = signing.signed_headers(SECRET, body, "t1", target=target, timestamp=1_700_000_000)
    assert _verify(headers, body, target)
    assert not _verify(headers, body, target, key="t1-fresh")        # a fresh Idempotency-Key
    assert not _verify(headers, body, "/cerebro/callbacks/m/other")  # another path
    assert not _verify(headers, body, TARGET)                        # the query dropped
    assert not _verify(headers, body, TARGET + "?tenant=8")          # another query
    assert not _verify(headers, body, target, method="PUT")          # another method
    with pytest.raises(signing.SignatureError, match="without the Idempotency-Key"):
        signing.check(SECRET, "1700000000", body, headers["X-Cerebro-Signature"],
                      now=1_700_000_010, method="POST", target=target)
    with pytest.raises(signing.SignatureError, match="without the method and request target"):
        signing.check(SECRET, "1700000000", body, headers["X-Cerebro-Signature"],
                      now=1_700_000_010, idempotency_key="t1")
    # the parts are split by line feeds: no shifting of text from one part to the next
    shifted = signing.message(1, "POST", "/a", "b.c", b"")
    assert signing.message(1, "POST", "/a.b", "c", b"") != shifted
    with pytest.raises(ValueError):
        signing.sign(SECRET, 1, "POST", TARGET, "k\nX-Injected: 1", b"")


def test_the_former_scheme_is_refused_with_a_clear_reason():
    """A ``sha256=`` signature over ``timestamp.body`` (the former scheme) no longer verifies."""
    import hashlib
    import hmac
    body = b"{}"
    old = "sha256=" + hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    with pytest.raises(signing.SignatureError, match="former 'sha256=' scheme"):
        signing.check(SECRET, "1700000000", body, old, now=1_700_000_000, method="POST",
                      target=TARGET, idempotency_key="k")


def test_known_vector():
    # The same vector is checked by the Java example (examples/java/CerebroExample.java) and
    # printed in docs/async.md.
    assert signing.sign("secret", 1700000000, "POST", "/cerebro/callbacks/jobs/square", "task-1",
                        b"{}") == \
        "f0bfb648328355e5c2b9463e5a74c69da2be04ed21a0ce646f0b3fe660c4a0d8"
    assert signing.message(1700000000, "POST", "/cerebro/callbacks/jobs/square", "task-1",
                           b"{}") == \
        b"cerebro-v2\n1700000000\nPOST\n/cerebro/callbacks/jobs/square\ntask-1\n{}"


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


def test_allow_list_entries_may_name_a_path_prefix():
    """``host[:port]/prefix`` allows only paths under the prefix (segment-wise); host and
    host:port entries keep allowing any path; dot segments and encoded separators are refused
    whatever the list; an entry naming the main app's host and port confines it too."""
    urls = CallbackURLs("http://main:8080", allowed_hosts=(
        "main.example:8443/cerebro/callbacks/", "hooks.example.com", "127.0.0.1:9000",
        "*.corp.example/cb", "[::1]:7000/v6/"))
    for good in ("https://main.example:8443/cerebro/callbacks/m/f",
                 "https://main.example:8443/cerebro/callbacks/m/f?tenant=1",
                 "http://hooks.example.com/any/path", "http://127.0.0.1:9000/x",
                 "https://a.corp.example/cb", "https://a.corp.example/cb/x",
                 "http://[::1]:7000/v6/a", "http://main:8080/anything"):
        assert urls.check(good) == good
    refusals = {
        "https://main.example:8443/admin": "not under a prefix allowed",
        "https://main.example:8443/cerebro/callbacksx": "not under a prefix allowed",
        "https://a.corp.example/cbx": "not under a prefix allowed",
        "https://main.example:8443/cerebro/callbacks/../admin": "'..' segment",
        "https://main.example:8443/cerebro/callbacks/%2e%2E/admin": "'..' segment",
        "https://main.example:8443/cerebro/callbacks/..;/admin": "'..' segment",
        "https://main.example:8443/cerebro/callbacks/%252e%252e/admin": "'..' segment",
        "https://main.example:8443/cerebro/callbacks%2F..%2Fadmin": "encoded slash",
        "http://main:8080/%0D%0AX-Injected:%201": "cannot hold",
        "https://main.example/cerebro/callbacks/x": "port 443 is not allowed",
    }
    for bad, reason in refusals.items():
        with pytest.raises(InvalidPayload, match=re.escape(reason)) as info:
            urls.check(bad)
        assert info.value.field == "callback_url"
    with pytest.raises(InvalidPayload) as info:
        urls.check("https://main.example:8443/admin")
    assert "allowed: /cerebro/callbacks/" in info.value.message
    confined = CallbackURLs("http://main:8080", allowed_hosts=("main:8080/cerebro/",))
    assert confined.check("http://main:8080/cerebro/callbacks/m/f")
    with pytest.raises(InvalidPayload):
        confined.check("http://main:8080/admin")
    for entry in ("main:http", "/no-host", "main/../up"):
        with pytest.raises(ValueError, match="CEREBRO_CALLBACK_ALLOWED_HOSTS"):
            CallbackURLs("http://main:8080", allowed_hosts=(entry,))


def test_backoff_grows_and_is_capped():
    rng = random.Random(1)
    delays = [backoff_delay(n, 1.0, 30.0, rng) for n in range(10)]
    assert 0.5 <= delays[0] <= 1.0 and 8 <= delays[4] <= 16
    assert all(15 <= d <= 30 for d in delays[6:])


def _worker(monkeypatch, tmp_path, receiver_url, urls=None, **settings):
    """The worker's callback path with this test's state; returns ``(state, run)``: ``run(body)``
    sends the first attempt, then runs every retry it schedules (sealed ``deliver_callback``
    messages, through the real task function) after its countdown, as RabbitMQ's delayed
    delivery does; it returns what was reported to Sherlock. ``state.scheduled`` keeps every
    message scheduled."""
    from cerebro.tasks import task
    config = load_settings().replace(queue_type="classic", callback_backoff=0.01,
                                     callback_backoff_max=0.05, **settings)
    state = SimpleNamespace(urls=urls or CallbackURLs(receiver_url), settings=config,
                            client=MainAppClient(SECRET, timeout=1),
                            deadletters=DeadLetterStore(tmp_path / "dl"), sealer=Sealer(SECRET),
                            core=SimpleNamespace(names=Names.from_settings(config)),
                            scheduled=[])
    monkeypatch.setattr(task, "_state", state)
    reported, pending = [], []
    monkeypatch.setattr(task, "report", lambda exc, *a, **kw: reported.append(exc))
    real_deliver = getattr(task.deliver_callback, "real", task.deliver_callback)
    monkeypatch.setattr(task, "deliver_callback", SimpleNamespace(
        apply_async=lambda args, countdown, queue: pending.append((args, countdown)),
        real=real_deliver))

    def run(body):
        """The first attempt, then each scheduled one, in turn (as deliver_callback runs it)."""
        if body is not None:
            task.send_callback(body, None, first_attempt_at=None, attempt=0)
        while pending:
            args, countdown = pending.pop(0)
            state.scheduled.append(args)
            time.sleep(countdown)
            real_deliver(*args)
        return reported

    state.deliver = real_deliver
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
        assert len({r["raw"] for r in got}) == 1  # every attempt sends the same bytes
        assert [args[3] for args in state.scheduled] == [1, 2, 3]
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
    receiver = Receiver(SECRET, statuses=[503])
    try:
        url = receiver.url + "/enrich"
        urls = CallbackURLs("http://main.invalid:8080",
                            paths=(f"listing_enrichment.enrich={url}",))
        state, run = _worker(monkeypatch, tmp_path, receiver.url, urls=urls)
        body = {"task_id": "t-abs", "module": "listing_enrichment", "function": "enrich",
                "status": "succeeded", "result": {"ok": True}}
        assert run(body) == []
        [args] = state.scheduled
        assert args[1] == url and args[3] == 1
        got = receiver.wait(2, timeout=5)
        assert [(r["path"], r["status"]) for r in got] == [("/enrich", 503), ("/enrich", 200)]
        assert state.deadletters.list() == []
    finally:
        receiver.stop()


def test_a_seal_holds_only_for_what_the_worker_sealed():
    """Every field is sealed; another secret, a callback signature used as a seal, an old
    (unsealed) message or a message of another shape is a SealError."""
    sealer = Sealer(SECRET)
    retry = SealedRetry(b'{"task_id": "t", "module": "m", "function": "f"}',
                        "http://main:8080/cerebro/callbacks/m/f", 1_764_000_000.25, 2)
    args = retry.message(sealer)
    assert open_retry(sealer, args, {}) == retry
    text, url, first, attempt, seal = args
    altered = [(text.replace('"t"', '"u"'), url, first, attempt, seal),
               (text, url + "x", first, attempt, seal),
               (text, url, first + 1, attempt, seal),
               (text, url, first, attempt + 1, seal),
               (text, url, first, attempt, SealedRetry(*retry.__dict__.values())
                .message(Sealer("another-secret"))[4]),
               (text, url, first, attempt, signing.sign(SECRET, first, "POST", url, "t",
                                                        text.encode()))]
    for forged in altered:
        with pytest.raises(SealError, match="does not match"):
            open_retry(sealer, forged, {})
    for shape, kwargs in [((json.loads(text), url, first, attempt), {}),   # the former message
                          (args[:4], {"seal": seal}), (args + ("x",), {}),
                          ((text, url, "soon", attempt, seal), {}),
                          ((text, url, first, True, seal), {}), ((text, url, first, 0, seal), {})]:
        with pytest.raises(SealError):
            open_retry(sealer, shape, kwargs)


def test_forged_delivery_messages_are_refused_reported_and_never_sent(monkeypatch, tmp_path):
    """deliver_callback called with an attacker's messages (the worker's real task function):
    nothing reaches the main app, each is reported as a SealError; a sealed message whose URL
    the rules no longer allow is dead-lettered, not sent."""
    receiver = Receiver(SECRET)
    try:
        state, run = _worker(monkeypatch, tmp_path, receiver.url)
        url = receiver.url + "/cerebro/callbacks/m/f"
        body = {"task_id": "evil", "module": "m", "function": "f", "status": "succeeded",
                "result": {"pay": 1000}}
        text = json.dumps(body)
        forged = [(body, url, time.time(), 1),                        # the former, unsealed shape
                  (text, url, time.time(), 1, "0" * 64),               # a made-up seal
                  (text, url, time.time(), 1,                          # a real signature as seal
                   signing.sign(SECRET, time.time(), "POST", "/cerebro/callbacks/m/f", "evil",
                                text.encode()))]
        for args in forged:
            state.deliver(*args)
        assert len(run(None)) == 3 and all(isinstance(e, SealError) for e in run(None))
        elsewhere = Receiver(SECRET)
        try:
            sealed = SealedRetry(text.encode(), elsewhere.url + "/steal", time.time(), 1)
            state.deliver(*sealed.message(state.sealer))
            assert isinstance(run(None)[-1], PermanentDeliveryError)
            assert state.deadletters.get("evil").url == elsewhere.url + "/steal"
            time.sleep(0.3)
            assert elsewhere.received == []
        finally:
            elsewhere.stop()
        assert receiver.received == []
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
               "CEREBRO_CALLBACK_SECRET": SECRET, "CEREBRO_MAIN_APP_URL": receiver.url}

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


def test_deadletter_retry_sends_only_where_the_rules_allow(tmp_path):
    """`cerebro callbacks retry` (the store built from settings) checks each entry's URL like
    the worker does: an entry aimed elsewhere (a hand-edited file, say) is kept, never sent."""
    receiver, elsewhere = Receiver(SECRET), Receiver(SECRET)
    try:
        settings = load_settings({"CEREBRO_MAIN_APP_URL": receiver.url,
                                  "CEREBRO_CALLBACK_SECRET": SECRET})
        store = DeadLetterStore.from_settings(settings.replace(
            callback_deadletter_dir=str(tmp_path / "dl")))
        body = {"task_id": "t1", "module": "m", "function": "f"}
        store.add(elsewhere.url + "/steal", body, "t1", "down")
        store.add(receiver.url + "/cerebro/callbacks/m/f", dict(body, task_id="t2"), "t2", "down")
        client = MainAppClient(SECRET, timeout=1)
        outcomes = {entry.id: result for entry, result in store.retry(client)}
        assert outcomes["t2"].ok and not outcomes["t1"].ok and not outcomes["t1"].retryable
        assert "callback rules refuse it" in outcomes["t1"].describe()
        assert [e.id for e in store.list()] == ["t1"] and store.get("t1").retries == 1
        assert elsewhere.received == [] and len(receiver.wait(1)) == 1
    finally:
        receiver.stop()
        elsewhere.stop()


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_deadletter_files_are_private_whatever_the_umask(tmp_path, umask):
    """Entry files are 0600 and the directories the store creates 0700, under any umask; a
    directory of ours left open by an older version is tightened on the next write."""
    old = os.umask(umask)
    try:
        store = DeadLetterStore(tmp_path / "volume" / ".callbacks" / "failed")
        store.add("http://127.0.0.1:1/cb", {"task_id": "t1"}, "t1", "down")
        store.add("http://127.0.0.1:1/cb", {"task_id": "t1"}, "t1", "down again")  # rewritten
    finally:
        os.umask(old)
    mode = stat.S_IMODE
    assert mode((store.directory / "t1.json").stat().st_mode) == 0o600
    for directory in (store.directory, store.directory.parent, store.directory.parent.parent):
        assert mode(directory.stat().st_mode) == 0o700, directory
    store.directory.chmod(0o755)
    store.add("http://127.0.0.1:1/cb", {"task_id": "t2"}, "t2", "down")
    assert mode(store.directory.stat().st_mode) == 0o700


def test_celerys_success_line_keeps_no_return_value():
    """The worker's filter on celery.app.trace rewrites the INFO success record: the line
    names the task, id and run time, never the value (nor the arguments in ``data``)."""
    import logging

    from celery.app import trace

    from cerebro.tasks import task
    assert any(isinstance(f, task.ResultlessSuccess) for f in trace.logger.filters)
    context = {"id": "t-1", "name": "cerebro.run", "return_value": "{'card': '4111'}",
               "runtime": 0.25, "args": "['jobs', 'square', {'x': 4111}]", "kwargs": "{}"}
    record = trace.logger.makeRecord(trace.logger.name, logging.INFO, __file__, 1,
                                     trace.LOG_SUCCESS, (context,), None,
                                     extra={"data": context})
    assert trace.logger.filter(record)
    assert record.getMessage() == "Task cerebro.run[t-1] succeeded in 0.25s"
    assert "4111" not in str(record.data) and "4111" not in record.getMessage()
