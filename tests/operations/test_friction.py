"""Friction a newcomer met (issue 13, point 8), each fixed and checked here for real: a module's
build.py run by a Python without the project, the callback allow-list naming the port it
refuses, `cerebro status` columns with long queue names, `cerebro settings` showing where a
generated secret is, and the digest saying which setting names the project."""

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cerebro.callbacks.urls import CallbackURLs
from cerebro.errors import InvalidPayload
from cerebro.ops import status
from support import REPO, run_cli

BASE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"


def _without_project(python):
    """True when ``python`` runs and has no Cerebro installed (as a fresh shell's python)."""
    if not python.is_file():
        return False
    probe = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                            "m.distribution('cerebro')"], capture_output=True, cwd="/")
    return probe.returncode != 0


needs_bare_python = pytest.mark.skipif(not _without_project(BASE_PYTHON),
                                       reason=f"{BASE_PYTHON} is not a Python without Cerebro")


def _bare_env(**extra):
    """An environment with no virtualenv activated and nothing of the project on the path."""
    import os
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


@needs_bare_python
def test_build_py_run_by_a_python_without_the_project_uses_the_projects_venv(tmp_path):
    """`python modules/<m>/src/build.py` with a Python lacking the project: it says so, runs
    itself with .venv's Python, and publishes the model."""
    volume = tmp_path / "volume"
    result = subprocess.run([str(BASE_PYTHON), "modules/listing_enrichment/src/build.py",
                             "--rows", "500", "--volume", str(volume)], cwd=REPO,
                            env=_bare_env(), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "does not have Cerebro installed; running: " in result.stderr
    assert f"{REPO / '.venv' / 'bin' / 'python'} modules/listing_enrichment/src/build.py" \
        in result.stderr
    assert json.loads((volume / "listing_enrichment" / "current.json").read_text())["version"]


@needs_bare_python
def test_build_py_without_any_venv_names_the_exact_commands(tmp_path):
    """No project virtualenv either: exit 2 with the set-up command and the command to run."""
    venv = tmp_path / "no-venv"
    result = subprocess.run([str(BASE_PYTHON), "modules/rent_predictor/src/build.py", "--help"],
                            cwd=REPO, env=_bare_env(CEREBRO_VENV=venv), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"bash {REPO / 'scripts' / 'setup.sh'}" in result.stderr
    assert f"then run: {venv / 'bin' / 'python'} modules/rent_predictor/src/build.py --help" \
        in result.stderr


def test_allow_list_refusal_names_the_port_when_the_host_is_allowed():
    """A host allowed on another port: the message blames the port and lists the allowed
    ones; a host not allowed at all is still blamed as the host."""
    urls = CallbackURLs("http://127.0.0.1:8080", allowed_hosts=("hooks.example.com:9000",
                                                                "*.corp.example:443"))
    with pytest.raises(InvalidPayload) as refused:
        urls.check("http://hooks.example.com:9999/done")
    message = str(refused.value)
    assert "port 9999" in message and "host 'hooks.example.com'" in message
    assert "allowed: 9000" in message and "not on the allow-list" not in message
    with pytest.raises(InvalidPayload, match="port 8081 is not allowed for host '127.0.0.1'"):
        urls.check("http://127.0.0.1:8081/cb")          # the main app's host, another port
    with pytest.raises(InvalidPayload, match="port 80 .*allowed: 443"):
        urls.check("http://a.corp.example/cb")
    with pytest.raises(InvalidPayload, match="host 'evil.example' is not on the allow-list"):
        urls.check("http://evil.example:9000/x")
    assert urls.check("http://hooks.example.com:9000/ok") == "http://hooks.example.com:9000/ok"


def test_status_columns_stay_aligned_with_long_queue_names():
    """Queue names of any length: every count column starts at the same place, no name is cut."""
    long_name = "cerebro.requests.a_module_with_a_rather_long_descriptive_name.retry"
    report = {"time": "now", "healthy": True, "errors": {}, "kafka": None, "sherlock": None,
              "api": None, "modules": [],
              "programs": [{"name": "a_plugin_with_a_long_name", "state": "RUNNING", "pid": 7,
                            "children": [8, 9], "uptime": 5, "description": "", "failed": False,
                            "reason": None, "log": "x"},
                           {"name": "api", "state": "RUNNING", "pid": 10, "children": [],
                            "uptime": 12345, "description": "", "failed": False,
                            "reason": None, "log": "x"}],
              "queues": [{"queue": "cerebro.rent", "messages": 3, "consumers": 1},
                         {"queue": long_name, "messages": 12345678, "consumers": 10}]}
    text = status.render(report)
    queues = [line for line in text.splitlines() if "cerebro." in line]
    assert len(queues) == 2 and long_name in queues[1]
    assert len({line.index(" / ") for line in queues}) == 1, queues
    assert len({len(line) for line in queues}) == 1, queues   # numbers right-aligned
    programs = [line for line in text.splitlines() if line.strip().startswith(("a_plugin", "api"))]
    assert len({line.index("RUNNING") for line in programs}) == 1, programs
    assert "pid 7, children 8 9" in text


def test_settings_show_a_generated_secret_as_set_and_where_it_is(tmp_path):
    """A secret `cerebro up` generated into the state dir (and not in this environment) is
    shown set, with its file; its value never appears."""
    (tmp_path / "secrets.env").write_text("CEREBRO_CALLBACK_SECRET=s3cr3t-value-123\n")
    code, out, err = run_cli({"CEREBRO_STATE_DIR": tmp_path, "CEREBRO_CALLBACK_SECRET": "",
                              "CEREBRO_FLOWER_PASSWORD": "given-in-env"}, "settings")
    assert code == 0, err
    line = next(li for li in out.splitlines() if li.startswith("CEREBRO_CALLBACK_SECRET "))
    assert "<set>" in line and str(tmp_path / "secrets.env") in line
    flower = next(li for li in out.splitlines() if li.startswith("CEREBRO_FLOWER_PASSWORD "))
    assert "<set>" in flower and "secrets.env" not in flower
    assert "s3cr3t-value-123" not in out and "given-in-env" not in out


def test_digest_says_which_setting_names_the_project():
    """The digest's footer names SHERLOCK_PROJECT beside the project name (both parts)."""
    from sherlock import digest
    day = datetime(2026, 11, 29, tzinfo=timezone.utc)
    _subject, text, html = digest.render(digest.Digest("Falcon", 24.0, day, 0.0, 1.0, []))
    assert '"Falcon" is SHERLOCK_PROJECT' in text
    assert "&ldquo;Falcon&rdquo; is <code>SHERLOCK_PROJECT</code>" in html
    from sherlock.settings import SherlockSettings
    assert "until you set it" in SherlockSettings.model_fields["project"].description
