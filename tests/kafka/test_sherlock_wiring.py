"""Sherlock wiring of the consumer: an exception raised in a consumer handler, in a real
`cerebro consume` process, lands in Sherlock's JSONL file with service "consumer", the
handler's module and function, the event id and the handler's traceback."""

import json

from conftest import events, produce, wait_for


def sherlock_records(folder):
    """Every record of every ``sherlock.jsonl*`` file in ``folder``."""
    found = []
    for path in sorted(folder.glob("sherlock.jsonl*")):
        for line in path.read_text(errors="replace").splitlines():
            if line.strip():
                found.append(json.loads(line))
    return found


def test_handler_exception_is_recorded_by_sherlock(broker, receiver, consumers, tmp_path,
                                                   topic):
    """The always-failing handler's RuntimeError is in sherlock.jsonl with its context."""
    broker.create_topics(topic, partitions=1)
    produce(broker, topic, [{"event_id": "kaboom-1", "n": 3, "explode": True}] + events(3),
            partition=0)
    main_app = receiver()
    consumer = consumers(main_app.url, CEREBRO_CONSUMER_RETRIES="0")
    folder = tmp_path / "sherlock"

    def handler_record():
        """The record of the handler's own exception, once written."""
        for record in sherlock_records(folder) if folder.is_dir() else []:
            if record.get("event_id") == "kaboom-1" and "RuntimeError" in record.get(
                    "traceback", ""):
                return record
        return None

    record = wait_for(handler_record, 60, message="the handler's exception in sherlock.jsonl")
    wait_for(lambda: main_app.stats()["unique"] >= 4, 30, message="4 outcomes")
    assert consumer.terminate() == 0
    assert record["service"] == "consumer"
    assert record["module"] == "events" and record["function"] == "handle"
    assert record["event_id"] == "kaboom-1"
    assert record["error_id"]
    assert "handler exploded on n=3" in record["traceback"]
    assert "in handle" in record["traceback"]  # the handler's own frame
    stats = main_app.stats(keys=True)
    assert stats["keys"]["kaboom-1"][1] == "dead_lettered"
    dead = broker.read_all(f"{topic}.dlq", expected=1)
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["cerebro-error-id"] == record["error_id"]
