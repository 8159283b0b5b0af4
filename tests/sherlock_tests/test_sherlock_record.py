"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Tests of records: fields, fingerprints, bounded size, client errors.
Tagline: Same crime, same signature, whatever the alibi.

Records: fields, fingerprints that group by type and place, bounded size, client errors.
"""

import json

import pytest

from cerebro.errors import InternalError, InvalidPayload, NotFound
from sherlock.record import build, fingerprint, should_record
from sherlock.store import encode
from sherlock_helpers import divide, divide_elsewhere, lookup


def caught(func, arg):
    """The exception ``func(arg)`` raises."""
    try:
        func(arg)
    except Exception as exc:
        return exc
    raise AssertionError("expected an exception")


def test_fingerprint_ignores_the_message_but_not_type_or_place():
    """Same type from the same place groups; another place or type does not."""
    assert fingerprint(caught(divide, 3)) == fingerprint(caught(divide, 7))
    assert fingerprint(caught(divide, 3)) != fingerprint(caught(divide_elsewhere, 3))
    assert fingerprint(caught(divide, 3)) != fingerprint(caught(lookup, "a"))
    assert fingerprint(caught(lookup, "a")) == fingerprint(caught(lookup, "b"))


def test_record_fields():
    """A record carries service, module, function, ids, host, pid, type, message and traceback."""
    exc = caught(divide, 3)
    record = build(exc, service="worker",
                   context={"module": "boom", "function": "explode", "task_id": "t-1",
                            "error_id": "e-1", "path": "/v1/boom/explode"})
    assert record["service"] == "worker"
    assert (record["module"], record["function"]) == ("boom", "explode")
    assert record["task_id"] == "t-1" and record["error_id"] == "e-1"
    assert record["request_id"] is None
    assert record["type"] == "ZeroDivisionError"
    assert record["message"] == "division by zero"
    assert record["host"] and isinstance(record["pid"], int)
    assert "ZeroDivisionError" in record["traceback"] and "in divide" in record["traceback"]
    assert record["context"] == {"path": "/v1/boom/explode"}
    assert record["fingerprint"] == fingerprint(exc)


def test_module_and_function_default_to_the_innermost_project_frame():
    """Without context, the innermost frame of project code names the place."""
    record = build(caught(lookup, "k"), service="api")
    assert record["module"] == "sherlock_helpers"
    assert record["function"] == "lookup"
    assert record["type"] == "KeyError"


def test_context_service_wins_over_default():
    """The service in the context (set by report()) wins over the installed default."""
    record = build(caught(divide, 1), service="api", context={"service": "consumer"})
    assert record["service"] == "consumer"


@pytest.mark.parametrize("exc, recorded", [
    (InvalidPayload("bad", "text"), False),
    (NotFound("no such module"), False),
    (InternalError(), True),
    (ValueError("x"), True),
    (KeyboardInterrupt(), False),
])
def test_client_errors_are_not_exceptions(exc, recorded):
    """4xx client errors (client_error=True) and interrupts are never recorded."""
    assert should_record(exc) is recorded


def test_tornado_4xx_http_errors_are_not_recorded():
    """A Tornado HTTPError with a 4xx status is a client mistake; a 5xx one is ours."""
    from tornado.web import HTTPError

    assert not should_record(HTTPError(404))
    assert should_record(HTTPError(502))


def test_lines_stay_bounded_and_keep_the_innermost_frames():
    """A huge message and a deep traceback still give one bounded, valid JSON line."""
    def recurse(depth):
        """Fail at the bottom of a deep stack with a huge message."""
        if depth == 0:
            raise RuntimeError("x" * 1_000_000)
        return recurse(depth - 1)

    exc = caught(recurse, 400)
    record = build(exc, service="build", context={"blob": "y" * 100_000})
    line = encode(record, 64 * 1024)
    assert len(line) <= 64 * 1024
    decoded = json.loads(line)
    assert decoded["fingerprint"] == record["fingerprint"]
    assert "truncated by Sherlock" in decoded["traceback"]
    last_lines = decoded["traceback"].rstrip().splitlines()[-3:]
    assert any(line.startswith("RuntimeError: xxx") for line in last_lines)
    assert "in recurse" in decoded["traceback"]
