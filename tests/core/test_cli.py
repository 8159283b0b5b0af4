"""The cerebro CLI: help with defaults, module listing, lint verdicts."""

import os
import subprocess
import sys

import pytest

from support import REPO, cerebro_env, run_cli

COMMANDS = ["serve", "build", "modules", "new", "lint", "settings"]


def _cerebro(*args, **env):
    """Run the cerebro CLI."""
    return subprocess.run([sys.executable, "-m", "cerebro", *args], capture_output=True,
                          text=True, env=cerebro_env(**env))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    """`cerebro <command> --help` exits 0 and shows the usage."""
    result = _cerebro(command, "--help")
    assert result.returncode == 0
    assert f"usage: cerebro {command}" in result.stdout


def test_serve_help_shows_defaults():
    """Defaults come from the settings and are shown."""
    out = _cerebro("serve", "--help", CEREBRO_PORT="9123").stdout
    assert "(default: 9123)" in out and "(default: 127.0.0.1)" in out


def test_modules_lists_status(tmp_path):
    """`cerebro modules` prints each module with status and its functions."""
    result = _cerebro("modules", CEREBRO_MODULES_PACKAGE="fixture_modules",
                      CEREBRO_DATA_VOLUME=tmp_path, SHERLOCK_DIR=tmp_path)
    assert result.returncode == 0
    assert "broken_import" in result.stdout and "broken" in result.stdout
    assert "sync  say" in result.stdout
    strict = _cerebro("modules", "--strict", CEREBRO_MODULES_PACKAGE="fixture_modules",
                      CEREBRO_DATA_VOLUME=tmp_path, SHERLOCK_DIR=tmp_path)
    assert strict.returncode == 1


def test_bad_setting_fails_loudly():
    """A setting that does not parse names the variable."""
    result = _cerebro("settings", CEREBRO_PORT="eighty")
    assert result.returncode == 2 and "CEREBRO_PORT" in result.stderr


def test_repository_passes_lint():
    """The project's own code follows the house conventions."""
    result = _cerebro("lint")
    assert result.returncode == 0, result.stdout


def test_lint_catches_missing_header_and_docstring(tmp_path):
    """A file without the header block or a docstring fails lint."""
    bad = tmp_path / "bad.py"
    bad.write_text('"""Just a docstring."""\n\ndef f():\n    return 1\n')
    result = _cerebro("lint", str(bad), "--modules-dir", str(tmp_path / "none"))
    assert result.returncode == 1
    assert "header block misses Author:, Date:, Subject:, Tagline:" in result.stdout
    assert "function 'f' has no docstring" in result.stdout


def test_lint_checks_module_shape(tmp_path):
    """A module folder missing conventional files fails lint."""
    module = tmp_path / "half"
    (module / "src").mkdir(parents=True)
    (module / "expose.py").write_text(
        '"""\nAuthor:  a\nDate:    d\nSubject: s\nTagline: t\n"""\n')
    (module / "src" / "eda.ipynb").write_text("{not json")
    result = _cerebro("lint", str(module), "--modules-dir", str(tmp_path))
    assert result.returncode == 1
    for missing in ("README.md", "src/build.py", "src/utilities.py"):
        assert f"missing {missing}" in result.stdout
    assert "not a valid notebook" in result.stdout


def test_build_unknown_module_is_clear():
    """Building a module that does not exist says so."""
    result = _cerebro("build", "no_such_module")
    assert result.returncode == 2 and "no module named 'no_such_module'" in result.stderr


def test_build_takes_a_module_name_never_a_path(tmp_path):
    """`cerebro build ../../x` never runs a build.py outside the modules package."""
    rogue = tmp_path / "rogue"
    (rogue / "src").mkdir(parents=True)
    (rogue / "expose.py").write_text("")
    marker = tmp_path / "ran"
    (rogue / "src" / "build.py").write_text(f"open({str(marker)!r}, 'w')\n")
    relative = os.path.relpath(rogue, REPO / "modules")
    code, _, err = run_cli({}, "build", relative)
    assert code == 2 and "no module named" in err and not marker.exists()


def test_reserved_module_names_are_refused(tmp_path):
    """A module called like an API path (``/v1/tasks``) could never be reached: `cerebro new`
    refuses the name, and a folder of that name is listed as broken, naming the reason."""
    created = _cerebro("new", "tasks", "--dir", str(tmp_path / "pkg"))
    assert created.returncode != 0 and "reserved" in created.stderr
    package = tmp_path / "reserved_pkg"
    (package / "tasks").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Modules."""\n')
    (package / "tasks" / "__init__.py").write_text('"""Tasks."""\n')
    (package / "tasks" / "expose.py").write_text(
        '"""Expose."""\n\n\ndef run(x: int = 1):\n    """Echo."""\n    return x\n')
    listed = _cerebro("modules", CEREBRO_MODULES_PACKAGE="reserved_pkg",
                      PYTHONPATH=str(tmp_path), CEREBRO_DATA_VOLUME=tmp_path / "v",
                      SHERLOCK_DIR=tmp_path)
    assert "tasks" in listed.stdout and "broken" in listed.stdout
    assert "reserved by the REST API" in listed.stdout + listed.stderr


@pytest.mark.parametrize("env", [{"CEREBRO_PUBLISH_CONFIRM": "enabled"},
                                 {"CEREBRO_LOG_LEVEL": "verbose"}])
def test_bad_flag_or_log_level_fails_loudly(env):
    """A typo in a boolean or a log level is exit 2 naming the variable, never a silent default."""
    [var] = env
    result = _cerebro("settings", **env)
    assert result.returncode == 2 and var in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_lint_missing_path_is_a_problem(tmp_path):
    """A path that does not exist is reported, and lint fails, instead of "0 problem(s)"."""
    missing = tmp_path / "does" / "not" / "exist"
    result = _cerebro("lint", str(missing), "--modules-dir", str(tmp_path / "none"))
    assert result.returncode == 1
    assert f"{missing}: does not exist" in result.stdout
    assert "1 problem(s)" in result.stderr


def _closed_stdout(*args, **env):
    """Run the cerebro CLI with a stdout pipe whose reader is gone (as `| head -1` ends)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "cerebro", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=cerebro_env(**env))
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [["settings"], ["modules"], ["modules", "--json"]])
def test_closed_stdout_exits_quietly(args, tmp_path):
    """`cerebro settings | head -1`: no BrokenPipeError traceback, exit 141 like a SIGPIPE."""
    result = _closed_stdout(*args, CEREBRO_MODULES_PACKAGE="fixture_modules",
                            CEREBRO_DATA_VOLUME=tmp_path, SHERLOCK_DIR=tmp_path)
    assert result.returncode == 141, result.stderr
    assert result.stderr == ""
