"""What a key holder can read about a failed task: its kind, never its exception text."""

from cerebro.api.tasks import describe


def test_a_failed_task_shows_its_kind_not_its_text():
    """A task Celery marked failed answers with the exception type only; the text (which may
    carry payload data or internals) stays in Sherlock."""
    for stored in ({"exc_type": "KeyError", "exc_message": ["card 4111-1111"]},
                   KeyError("card 4111-1111")):
        body = describe("t1", {"status": "FAILURE", "result": stored, "args": ["m", "f"]})
        assert body["status"] == "failed" and "KeyError" in body["error"]["message"]
        assert "4111" not in str(body)


def test_a_non_ascii_signature_is_refused_not_a_crash():
    """signing.check answers a signature in any script with SignatureError, not TypeError."""
    import time

    import pytest

    from cerebro.callbacks.signing import SignatureError, check
    with pytest.raises(SignatureError):
        check("secret", int(time.time()), b"{}", "sha256=é" * 8)


def test_the_access_log_never_records_a_query_string(server_factory, tmp_path):
    """Query strings may carry data or keys: the access log keeps the path only."""
    server = server_factory({"CEREBRO_MODULES_PACKAGE": "fixture_modules",
                             "CEREBRO_MODULES": "echo", "CEREBRO_ACCESS_LOG": "true"})
    server.get("/readyz?module=echo&token=hunter2-secret")
    server.get("/readyz?module=%ff&api_key=hunter2-secret")  # Tornado's own 400 warning
    server.post("/v1/echo/say?api_key=hunter2-secret", {"text": "a"})
    server.stop()
    log = next(tmp_path.glob("serve-*.log")).read_text()
    assert "GET /readyz" in log and "POST /v1/echo/say" in log
    assert "hunter2" not in log
