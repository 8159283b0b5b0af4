"""
Author:  Cerebro team
Date:    2026-11-24
Subject: Tests of the sherlock command line and the Celery beat schedule.
Tagline: Ask politely, every morning at seven.

The ``sherlock`` command line and the Celery beat schedule.
"""

import os
import subprocess
import sys

import pytest

from sherlock import cli, schedule
from sherlock.settings import load_settings
from sherlock_helpers import divide, lookup, raise_and_capture


def test_help_shows_defaults(sherlock_dir, capsys):
    """``sherlock digest --help`` shows the defaults (ArgumentDefaultsHelpFormatter)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["digest", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--dry-run" in out and "(default: 24.0)" in out


def test_settings_command_masks_the_password(sherlock_dir, monkeypatch, capsys):
    """``sherlock settings`` lists every variable and never prints the password."""
    monkeypatch.setenv("SHERLOCK_SMTP_PASSWORD", "topsecret-123")
    assert cli.main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "topsecret-123" not in out and "<set>" in out
    for var in ("SHERLOCK_DIR", "SHERLOCK_PROJECT", "SHERLOCK_HOURS", "SHERLOCK_MAX_BYTES",
                "SHERLOCK_BACKUPS", "SHERLOCK_SMTP_SECURITY", "SHERLOCK_RECIPIENTS",
                "SHERLOCK_ALL_CLEAR", "SHERLOCK_DIGEST_AT"):
        assert var in out
    assert "topsecret-123" not in repr(load_settings())


def test_bad_setting_is_one_line_and_exit_2(sherlock_dir, monkeypatch, capsys):
    """An unparsable variable: exit 2 and one line naming it."""
    monkeypatch.setenv("SHERLOCK_SMTP_SECURITY", "tls-please")
    assert cli.main(["digest"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sherlock: error: SHERLOCK_SMTP_SECURITY='tls-please' is not valid")
    assert len(err.splitlines()) == 1


def test_tail_and_stats(sherlock_dir, capsys):
    """``tail`` prints the newest records; ``stats`` counts kinds without touching the watermark."""
    for n in range(3):
        raise_and_capture(divide, n, service="api", module="boom", function="explode",
                          request_id=f"r{n}")
    raise_and_capture(lookup, "k", service="worker")
    assert cli.main(["tail", "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "api boom.explode ZeroDivisionError: division by zero request_id=r2" in lines[0]
    assert "worker" in lines[1] and "KeyError" in lines[1]
    assert cli.main(["stats"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 exception(s) in 2 kind(s) in the last 24.0 hours")
    assert "       3  ZeroDivisionError" in out
    assert not (sherlock_dir / "digest-state.json").exists()


def test_beat_entry_uses_digest_at(sherlock_dir, monkeypatch):
    """SHERLOCK_DIGEST_AT=06:45 -> a daily crontab at 06:45 for task ``sherlock.digest``."""
    pytest.importorskip("celery")
    monkeypatch.setenv("SHERLOCK_DIGEST_AT", "06:45")
    entry = schedule.beat_entry(load_settings())
    [(name, value)] = entry.items()
    assert name == schedule.ENTRY_NAME and value["task"] == "sherlock.digest"
    cron = value["schedule"]
    assert cron.hour == {6} and cron.minute == {45}
    assert cron.day_of_week == set(range(7))


@pytest.mark.parametrize("value", ["7", "25:00", "07:60", "seven"])
def test_bad_digest_at_is_refused(sherlock_dir, monkeypatch, value):
    """A malformed SHERLOCK_DIGEST_AT fails loudly when settings load."""
    monkeypatch.setenv("SHERLOCK_DIGEST_AT", value)
    with pytest.raises(ValueError, match="SHERLOCK_DIGEST_AT"):
        load_settings()


def test_register_adds_task_and_beat_entry(sherlock_dir):
    """register(app) wires task ``sherlock.digest`` and its beat entry into a Celery app."""
    import celery  # a dependency of the platform: never skipped
    app = celery.Celery("sherlock-test", set_as_current=False)
    app.conf.beat_schedule = {"other": {"task": "x", "schedule": 60}}
    task = schedule.register(app, load_settings())
    assert task.name == "sherlock.digest" and "sherlock.digest" in app.tasks
    assert set(app.conf.beat_schedule) == {"other", schedule.ENTRY_NAME}


@pytest.mark.parametrize("command", ["digest", "stats"])
@pytest.mark.parametrize("hours", ["nan", "NaN", "inf", "-inf", "1e999", "-5", "0", "-0.0",
                                   "soon", ""])
def test_bad_hours_is_a_usage_error(sherlock_dir, capsys, command, hours):
    """``--hours`` must be a finite number > 0: anything else is exit 2 with one clear line
    (no ValueError/OverflowError traceback from deep inside the digest)."""
    extra = ["--dry-run"] if command == "digest" else []
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, f"--hours={hours}", *extra])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --hours" in err and "finite number greater than zero" in err
    assert "Traceback" not in err


def test_negative_hours_as_separate_argument(sherlock_dir, capsys):
    """``sherlock stats --hours -5`` (the reviewer's spelling) is refused too."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["stats", "--hours", "-5"])
    assert exit_info.value.code == 2
    assert "finite number greater than zero" in capsys.readouterr().err


@pytest.mark.parametrize("hours", ["0.5", "24", "1e3"])
def test_good_hours_are_accepted(sherlock_dir, capsys, hours):
    """Positive finite numbers are fine for both commands."""
    assert cli.main(["stats", "--hours", hours]) == 0
    assert f"in the last {float(hours)} hours" in capsys.readouterr().out
    assert cli.main(["digest", "--hours", hours, "--dry-run"]) == 0


@pytest.mark.parametrize("var", ["SHERLOCK_HOURS", "SHERLOCK_SMTP_TIMEOUT"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1"])
def test_non_finite_float_settings_are_refused(sherlock_dir, monkeypatch, var, value):
    """NaN and infinity are not "greater than zero" numbers a window or timeout can use."""
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=f"^{var}="):
        load_settings()


@pytest.mark.parametrize("value", ["enabled", "ture", "2", "y"])
def test_flag_typo_is_refused(sherlock_dir, monkeypatch, value):
    """A typo in SHERLOCK_ALL_CLEAR fails loudly instead of silently meaning false."""
    monkeypatch.setenv("SHERLOCK_ALL_CLEAR", value)
    with pytest.raises(ValueError, match="^SHERLOCK_ALL_CLEAR="):
        load_settings()


@pytest.mark.parametrize("value, expected", [("TRUE", True), (" on ", True), ("Off", False),
                                             ("0", False), ("", False), ("  ", False)])
def test_flag_words(sherlock_dir, monkeypatch, value, expected):
    """1/true/yes/on and 0/false/no/off in any case; empty means the default (false)."""
    monkeypatch.setenv("SHERLOCK_ALL_CLEAR", value)
    assert load_settings().all_clear is expected


class _ClosedPipe:
    """An output stream whose reader has gone away, as stdout of ``sherlock ... | head -1``."""

    def write(self, _text):
        """Fail as a write to a pipe nobody reads."""
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        """Nothing buffered, nothing to fail."""


@pytest.mark.parametrize("command", [["settings"], ["tail"], ["stats"], ["digest", "--dry-run"]])
def test_closed_output_exits_quietly(sherlock_dir, capsys, command):
    """A closed stdout is the reader's choice, not an error: exit 141, nothing on stderr."""
    raise_and_capture(divide, 1, service="api")
    assert cli.main(command, out=_ClosedPipe()) == 141
    assert capsys.readouterr().err == ""


def test_closed_stdout_of_a_real_process(sherlock_dir):
    """``sherlock settings | head -1`` in a real process: no 'Exception ignored' noise."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "sherlock.cli", "settings"],
                                stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert result.returncode == 141 and result.stderr == ""
