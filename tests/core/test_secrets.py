"""Secrets are typed as secrets: never printed by `cerebro settings`, repr, `cerebro up`, logs or
Sherlock records, passwords inside URLs included."""

import json
import logging

import pytest

from cerebro.settings import load_settings
from support import run_cli

SECRETS = {
    "CEREBRO_BROKER_URL": ("amqp://cerebro:rabbit-pw-123@broker:5672//", "rabbit-pw-123"),
    "CEREBRO_RESULT_BACKEND": ("redis://:redis-pw-456@cache:6379/0", "redis-pw-456"),
    "CEREBRO_MAIN_APP_URL": ("https://svc:main-pw-789@main.example:8443", "main-pw-789"),
    "CEREBRO_API_KEYS": ("api-key-one-0123456789,api-key-two-0123456789", "api-key-one-0123456789"),
    "CEREBRO_CALLBACK_SECRET": ("callback-secret-abc", "callback-secret-abc"),
    "CEREBRO_FLOWER_PASSWORD": ("flower-pw-def", "flower-pw-def"),
    "CEREBRO_SUPERVISOR_PASSWORD": ("supervisor-pw-ghi", "supervisor-pw-ghi"),
}
ENV = {var: value for var, (value, _) in SECRETS.items()}
HIDDEN = [hidden for _, hidden in SECRETS.values()] + ["api-key-two-0123456789"]


def _leaks(text):
    """The secret values found in ``text``."""
    return [secret for secret in HIDDEN if secret in text]


def test_repr_and_str_of_settings_hide_every_secret():
    """repr() of the settings (what a debugger or a log of the object shows) has no secret."""
    settings = load_settings(ENV)
    assert not _leaks(repr(settings)) and not _leaks(str(settings))
    assert settings.broker_url.get_secret_value() == ENV["CEREBRO_BROKER_URL"]
    assert str(settings.broker_url) == "amqp://cerebro:***@broker:5672//"


def test_cerebro_settings_prints_no_secret():
    """`cerebro settings` shows URLs with the password masked and secrets only as set."""
    code, out, err = run_cli(ENV, "settings")
    assert code == 0, err
    assert not _leaks(out + err)
    assert "redis://:***@cache:6379/0" in out and "amqp://cerebro:***@broker:5672//" in out
    line = next(line for line in out.splitlines() if line.startswith("CEREBRO_CALLBACK_SECRET"))
    assert "<set>" in line


def test_cerebro_up_endpoint_lines_print_no_secret():
    """The lines `cerebro up` prints (Redis, RabbitMQ, main app) carry no password."""
    from cerebro.ops import supervise
    settings = load_settings(ENV)
    lines = "\n".join(supervise.endpoints(settings, {"CEREBRO_RUN_RABBITMQ": "true"}))
    assert not _leaks(lines)
    assert "redis://:***@cache:6379/0" in lines


def test_logs_and_sherlock_records_mask_secrets(tmp_path, monkeypatch, capsys):
    """A log line or an exception carrying a secret or a URL password is masked on the console
    and in Sherlock's file."""
    import sherlock
    from cerebro import logsetup
    from cerebro.reporting import report
    monkeypatch.setenv("SHERLOCK_DIR", str(tmp_path))
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [logging.StreamHandler()]  # the console handler basicConfig would make
    try:
        logsetup.configure(load_settings(ENV), "test")
        logging.getLogger("cerebro.test").warning("connecting to %s with %s",
                                                  ENV["CEREBRO_RESULT_BACKEND"],
                                                  "callback-secret-abc")
        try:
            raise ConnectionError(f"cannot reach {ENV['CEREBRO_BROKER_URL']}")
        except ConnectionError as exc:
            report(exc, service="test", module="m", function="f", url=ENV["CEREBRO_MAIN_APP_URL"])
    finally:
        sherlock.uninstall()
        root.handlers = saved
    console = capsys.readouterr().err
    assert "connecting to redis://:***@cache:6379/0 with ***" in console
    assert "cannot reach amqp://cerebro:***@broker:5672//" in console
    assert not _leaks(console)
    records = [json.loads(line) for line in (tmp_path / "sherlock.jsonl").read_text().splitlines()]
    assert len(records) == 1
    assert "amqp://cerebro:***@broker:5672//" in records[0]["message"]
    assert not _leaks(json.dumps(records))


@pytest.mark.parametrize("text, shown", [
    ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:***@127.0.0.1:5672//"),
    ("redis://:pw@h:6379/0 and http://u:p@x/y", "redis://:***@h:6379/0 and http://u:***@x/y"),
    ("http://host:8080/path", "http://host:8080/path"),
])
def test_redact_masks_only_url_passwords(text, shown):
    """A password inside a URL is masked; host:port and paths are left alone."""
    from envsettings import redact
    assert redact(text) == shown


def test_dead_lettered_callbacks_are_listed_without_the_url_password(tmp_path):
    """`cerebro callbacks failed` (text and --json) never prints a password of the callback URL;
    the file keeps the whole URL, to send it again."""
    from cerebro.callbacks import DeadLetterStore
    from cerebro.clients.http import AttemptResult
    url = "https://svc:main-pw-789@main.example:8443/cerebro/callbacks/m/f"
    store = DeadLetterStore(tmp_path / "dl")
    store.add(url, {"task_id": "t1"}, "t1", AttemptResult(url, 503).describe(), attempts=3)
    assert store.get("t1").url == url
    env = {"CEREBRO_CALLBACK_DEADLETTER_DIR": tmp_path / "dl"}
    for args in (("callbacks", "failed"), ("callbacks", "failed", "--json")):
        code, out, err = run_cli(env, *args)
        assert code == 0, err
        assert "main-pw-789" not in out + err and "svc:***@main.example" in out


def test_a_refused_secret_is_not_echoed_in_the_error():
    """A secret setting that does not validate is named, its value masked."""
    with pytest.raises(ValueError) as refused:
        load_settings({"CEREBRO_API_KEYS": "short-key-xyz"})
    assert "CEREBRO_API_KEYS=***" in str(refused.value)
    assert "short-key-xyz" not in str(refused.value)
