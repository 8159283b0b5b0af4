"""The consumer's batch path in process (no broker needed): a polled batch is dispatched per
endpoint through Dispatcher.run_batch in chunks of the function's max_size, a poison record is
bisected out without dead-lettering its neighbours, row errors fail only their row, a transient
whole-batch failure is retried as a batch, and every outcome reaches a real main-app receiver."""

import json
import threading
from collections import namedtuple

import pytest

from cerebro.clients.http import MainAppClient
from cerebro.consumer.notify import Notifier
from cerebro.consumer.processor import DONE, Processor
from cerebro.consumer.router import Router
from cerebro.core import Core
from cerebro.settings import load_settings
from conftest import SECRET

Record = namedtuple("Record", "topic partition offset key value headers")
TOPIC = "scored"


class Sent:
    """A dead-letter send that the broker acknowledged."""

    is_done = True

    @staticmethod
    def succeeded():
        """Always acknowledged."""
        return True


class DeadLetters:
    """Collects dead-lettered records instead of producing them."""

    def __init__(self):
        self.sent = []

    def send(self, record, error, stage, event_key, function=None):
        """Remember the record, its stage and error type."""
        self.sent.append((event_key, stage, getattr(error, "type", type(error).__name__)))
        return Sent()

    def flush(self, timeout):
        """Nothing pending."""


@pytest.fixture
def scored():
    """The fixture module with its call log and failure switch reset."""
    from kafka_batch_fixtures.scored import expose
    expose.CALLS.clear()
    expose.FAIL_NEXT[0] = 0
    return expose


@pytest.fixture
def processor(receiver, tmp_path):
    """A processor over ``kafka_batch_fixtures`` posting to a real receiver."""
    main_app = receiver()
    core = Core.start("consumer", load_settings().replace(
        modules_package="kafka_batch_fixtures", modules=(), data_volume=tmp_path,
        consumer_concurrency=4, retries=2, retry_backoff=0.01, max_backoff=0.05),
        watch=False, configure_logging=False)
    router = Router(core.registry, (TOPIC,))
    client = MainAppClient(SECRET, timeout=5, connections=2, pipeline=8)
    notifier = Notifier(client, main_app.url, "/cerebro/events/{module}/{function}",
                        retries=1, backoff=0.01, max_backoff=0.05)
    dead = DeadLetters()
    proc = Processor(router, core, notifier, dead, stop_event=threading.Event())
    proc.main_app, proc.dead = main_app, dead
    yield proc
    proc.close()
    notifier.close()


def records(payloads):
    """Kafka-like records of JSON payloads (bytes taken as they are), offsets 0.."""
    return [Record(TOPIC, 0, i, None, p if isinstance(p, bytes) else json.dumps(p).encode(), [])
            for i, p in enumerate(payloads)]


def test_batch_is_dispatched_in_chunks_and_every_outcome_posted(processor, scored):
    """20 valid events: calls of at most max_size (8) rows, 20 'ok' main-app calls."""
    outcomes = processor.process_batch(records([{"event_id": f"e{i}", "n": i}
                                                for i in range(20)]))
    assert [o.status for o in outcomes] == [DONE] * 20
    assert scored.CALLS == [8, 8, 4]
    stats = processor.main_app.stats(keys=True)
    assert stats["unique"] == 20 and stats["by_status"] == {"ok": 20}
    assert stats["signature_errors"] == 0
    assert processor.dead.sent == []


def test_poison_record_is_bisected_out_and_row_errors_stay_in_their_row(processor, scored):
    """A poison row fails its whole call: it alone is dead-lettered (after its retries),
    the other 15 rows pass; a rejected row is dead-lettered at once; invalid and
    undecodable records are dead-lettered individually."""
    payloads = [{"event_id": f"e{i}", "n": i} for i in range(16)]
    payloads[5]["poison"] = True
    payloads[11]["reject"] = True
    payloads.append({"event_id": "bad", "n": -1})
    payloads.append(b'{"event_id": "broken", ')
    outcomes = processor.process_batch(records(payloads))
    assert all(o.status == DONE for o in outcomes)
    dead = {key: (stage, kind) for key, stage, kind in processor.dead.sent}
    assert dead == {"e5": ("handler", "internal"), "e11": ("handler", "invalid_payload"),
                    "bad": ("validate", "invalid_payload"),
                    f"{TOPIC}-0-17": ("decode", "invalid_payload")}
    stats = processor.main_app.stats(keys=True)
    ok = {k for k, v in stats["keys"].items() if v[1] == "ok"}
    assert ok == {f"e{i}" for i in range(16)} - {"e5", "e11"}
    assert {k for k, v in stats["keys"].items() if v[1] == "dead_lettered"} == set(dead)
    # First chunk: 8 fails, halves 4 (ok) + 4 (fails), then 2 + 2, then 1 + 1: row 5 alone.
    # Second chunk: one call (a row error is no whole-call failure). Retries: row 5 alone.
    assert scored.CALLS == [8, 4, 4, 2, 2, 1, 1, 8, 1, 1]


def test_transient_whole_batch_failure_is_retried_as_a_batch(processor, scored):
    """Every call failing for a while (not one record's fault): the batch is retried
    whole after a backoff, nothing is dead-lettered and no call runs row by row."""
    scored.FAIL_NEXT[0] = 3  # the first call and both halves of its bisection
    outcomes = processor.process_batch(records([{"event_id": f"e{i}", "n": i}
                                                for i in range(8)]))
    assert all(o.status == DONE for o in outcomes)
    assert processor.dead.sent == []
    assert scored.CALLS == [8, 4, 4, 8]
    assert processor.main_app.stats()["by_status"] == {"ok": 8}


def test_persistent_global_failure_dead_letters_after_the_retries(processor, scored):
    """A failure that never ends: retried as a batch, then every row on its own on the
    last attempt, then dead-lettered (each with the bug's error id)."""
    scored.FAIL_NEXT[0] = 10_000
    outcomes = processor.process_batch(records([{"event_id": f"e{i}", "n": i}
                                                for i in range(4)]))
    assert all(o.status == DONE for o in outcomes)
    assert sorted(processor.dead.sent) == [(f"e{i}", "handler", "internal") for i in range(4)]
    # attempts 1 and 2: 4 + 2 + 2; attempt 3 (last): 4 + 2 + 2, then rows one by one
    assert scored.CALLS == [4, 2, 2, 4, 2, 2, 4, 2, 2, 1, 1, 1, 1]


def test_one_handler_waiting_for_its_model_waits_only_model_wait(receiver, tmp_path):
    """A topic with two handlers, one whose model never loads: the event is tried again for
    CEREBRO_MODEL_WAIT seconds, then dead-lettered for that handler, although the other
    handler succeeds on it every time (its success does not restart the wait)."""
    main_app = receiver()
    core = Core.start("consumer", load_settings().replace(
        modules_package="kafka_batch_fixtures", modules=("paired",), data_volume=tmp_path,
        model_wait=0.3, model_retry_delay=0.05), watch=False, configure_logging=False)
    notifier = Notifier(MainAppClient(SECRET, timeout=5), main_app.url,
                        "/cerebro/events/{module}/{function}", retries=1, backoff=0.01,
                        max_backoff=0.05)
    dead = DeadLetters()
    proc = Processor(Router(core.registry, ("paired",)), core, notifier, dead,
                     stop_event=threading.Event())
    record = Record("paired", 0, 0, None, b'{"event_id": "p1", "n": 1}', [])
    try:
        rounds = 0
        while True:
            rounds += 1
            [outcome] = proc.process_batch([record])
            if outcome.status == DONE or rounds > 50:
                break
            assert outcome.retry_after == 0.05
            threading.Event().wait(outcome.retry_after)
        assert outcome.status == DONE and 3 <= rounds <= 20, rounds
        assert dead.sent == [("p1", "handler", "model_not_ready")]
        assert proc.first_failed == {}
    finally:
        proc.close()
        notifier.close()
