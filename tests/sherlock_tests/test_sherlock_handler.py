"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Tests of capture: the root-logger handler, install(), watch and watching.
Tagline: No footprint goes unnoticed, none is counted twice.

Capture: the root-logger handler, install(), watch/watching, uncaught exceptions.
"""

import json
import logging
import threading

import pytest

import sherlock
from cerebro.errors import InvalidPayload
from cerebro.reporting import report
from sherlock.handler import SherlockHandler
from sherlock_helpers import divide, lookup, raise_and_log


def records(directory):
    """Every record in ``directory``'s current file."""
    path = directory / "sherlock.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_install_is_idempotent(sherlock_dir):
    """Installing twice leaves one handler, reconfigured with the latest service."""
    first = sherlock.install("api")
    second = sherlock.install("worker")
    assert first is second
    handlers = [h for h in logging.getLogger().handlers if isinstance(h, SherlockHandler)]
    assert handlers == [first]
    assert first.service == "worker"
    assert sherlock_dir.is_dir()


def test_report_is_recorded_with_its_context(sherlock_dir):
    """cerebro.reporting.report() -> a record with service, module, function and ids."""
    sherlock.install("api")
    try:
        divide(3)
    except ZeroDivisionError as exc:
        report(exc, service="api", module="boom", function="explode",
               request_id="req-1", error_id="err-1")
    [record] = records(sherlock_dir)
    assert record["service"] == "api"
    assert (record["module"], record["function"]) == ("boom", "explode")
    assert (record["request_id"], record["error_id"]) == ("req-1", "err-1")
    assert record["logger"] == "cerebro"
    assert record["log_message"].startswith("ZeroDivisionError in boom.explode")
    assert "ZeroDivisionError: division by zero" in record["traceback"]


def test_any_logger_error_with_exc_info_is_recorded(sherlock_dir):
    """Tornado's or Celery's own loggers count too; the installed service is the default."""
    sherlock.install("worker")
    try:
        lookup("missing")
    except KeyError:
        logging.getLogger("celery.app.trace").error("Task failed", exc_info=True)
    [record] = records(sherlock_dir)
    assert record["service"] == "worker"
    assert record["logger"] == "celery.app.trace"
    assert record["type"] == "KeyError"


def test_errors_without_exc_info_and_warnings_are_not_recorded(sherlock_dir):
    """Only ERROR+ records carrying an exception are recorded."""
    sherlock.install("api")
    log = logging.getLogger("tests.sherlock")
    log.error("no exception here")
    try:
        divide(1)
    except ZeroDivisionError:
        log.warning("only a warning", exc_info=True)
    assert records(sherlock_dir) == []


def test_client_errors_are_never_recorded(sherlock_dir):
    """A 4xx CerebroError (client_error=True) is skipped even if someone logs it."""
    sherlock.install("api")
    try:
        raise InvalidPayload("text is required", "text")
    except InvalidPayload as exc:
        logging.getLogger("tornado.application").exception("bad request")
        report(exc, service="api", module="echo", function="say")
    assert records(sherlock_dir) == []


def test_one_exception_logged_twice_is_one_record(sherlock_dir):
    """report() then the framework's own log of the same exception: one record."""
    sherlock.install("worker")
    try:
        divide(2)
    except ZeroDivisionError as exc:
        report(exc, service="worker", module="boom", function="explode", task_id="t-9")
        logging.getLogger("celery.app.trace").exception("Task raised")
    [record] = records(sherlock_dir)
    assert record["task_id"] == "t-9"


def test_watch_decorator_records_and_reraises(sherlock_dir):
    """@sherlock.watch records with its context and lets the exception propagate."""
    @sherlock.watch(service="build", module="churn")
    def build():
        """A build step that fails."""
        divide(5)

    with pytest.raises(ZeroDivisionError):
        build()
    [record] = records(sherlock_dir)
    assert (record["service"], record["module"]) == ("build", "churn")
    assert record["function"] == "divide"


def test_bare_watch_and_nested_watching_record_once(sherlock_dir):
    """Bare @watch works; nested blocks record an exception once, innermost context."""
    @sherlock.watch
    def inner():
        """Fail inside a watched function."""
        with sherlock.watching(service="build", module="rent", task_id="b-1"):
            lookup("x")

    with pytest.raises(KeyError):
        with sherlock.watching(service="build", module="outer"):
            inner()
    [record] = records(sherlock_dir)
    assert (record["module"], record["task_id"]) == ("rent", "b-1")


def test_watching_context_applies_to_logged_exceptions(sherlock_dir):
    """An exception logged (not raised) inside a watching block gets the block's context."""
    sherlock.install("build")
    with sherlock.watching(module="rent", event_id="ev-3"):
        raise_and_log(divide, 1)
    [record] = records(sherlock_dir)
    assert (record["service"], record["module"], record["event_id"]) == ("build", "rent", "ev-3")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_uncaught_thread_exception_is_recorded(sherlock_dir):
    """An exception ending a thread is recorded (threading.excepthook is chained)."""
    sherlock.install("consumer")
    thread = threading.Thread(target=divide, args=(4,), name="kafka-poller")
    thread.start()
    thread.join()
    [record] = records(sherlock_dir)
    assert record["service"] == "consumer"
    assert record["context"] == {"uncaught": True, "thread": "kafka-poller"}


def test_logging_never_raises_when_the_directory_is_unusable(tmp_path, monkeypatch, capsys):
    """SHERLOCK_DIR under a regular file: the service logs on; stderr explains, once."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("SHERLOCK_DIR", str(blocker / "sherlock"))
    try:
        sherlock.install("api")
        for n in range(3):
            raise_and_log(divide, n)
        err = capsys.readouterr().err
        assert "sherlock: cannot create" in err
        assert "sherlock: could not record ZeroDivisionError" in err
        assert "Traceback" not in err.split("\n", 1)[0]
    finally:
        sherlock.uninstall()


def test_watch_works_on_coroutine_functions(sherlock_dir):
    """@sherlock.watch on an ``async def`` records what escapes the coroutine."""
    import asyncio

    @sherlock.watch(service="consumer", module="score")
    async def handle_event():
        """An event handler that fails."""
        await asyncio.sleep(0)
        lookup("missing")

    with pytest.raises(KeyError):
        asyncio.run(handle_event())
    [record] = records(sherlock_dir)
    assert (record["service"], record["module"]) == ("consumer", "score")
    assert record["type"] == "KeyError"
