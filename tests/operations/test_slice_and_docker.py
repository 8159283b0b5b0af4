"""`cerebro slice vigilante` output starts on its own (its own supervisord.conf, from its own
folder) and serves vigilante at the same URLs; hadolint on both Dockerfiles, whose HEALTHCHECK is
`cerebro health`; the compose file is valid and every supervisord.conf variable has a value in the
Docker image."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kafka_broker import FAST_GROUP, KafkaBroker
from procs import wait_for
from support import REPO, cerebro_env, free_port, http

BIN = Path(sys.executable).parent


def test_hadolint_dockerfile():
    """The platform Dockerfile passes hadolint (errors fail; it is warning-clean too)."""
    result = subprocess.run([str(BIN / "hadolint"), "--failure-threshold", "error",
                             str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM .* AS base$", text, re.M) and "FROM base AS deploy" in text
    for needle in ("USER 10001", 'VOLUME ["/data", "/sherlock"]',
                   "CEREBRO_DATA_VOLUME=/data", 'ENTRYPOINT ["/opt/venv/bin/supervisord"'):
        assert needle in text
    assert_health_is_cerebro_health(text)
    # the base image can be replaced (an engine reaching no registry builds on a local one,
    # scripts/docker-base-image.sh), python:3.11-slim-bookworm by default
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\} AS base$", text, re.M)
    # no frontend fetched from Docker Hub; code and configuration stay root's (read-only to
    # the services' user)
    assert "# syntax=" not in text and "COPY --chown" not in text
    assert re.search(r"^COPY \. /app$", text, re.M)


def assert_health_is_cerebro_health(dockerfile):
    """The one HEALTHCHECK of ``dockerfile`` runs `cerebro health` (every program supervisord
    runs, RUNNING and ready), within Docker's 5 s timeout, and no longer just GETs /healthz."""
    checks = re.findall(r"^HEALTHCHECK (.*)\\\n\s*CMD (.*)$", dockerfile, re.M)
    assert len(checks) == 1, checks
    options, command = checks[0]
    assert command == '["/opt/venv/bin/cerebro", "health"]'
    assert "--timeout=5s" in options


def test_docker_env_covers_supervisord_conf():
    """Every %(ENV_X)s of supervisord.conf is set by the image, except the supervisor password
    (a secret given at run time, and by docker-compose.yml)."""
    conf = "\n".join(line for line in (REPO / "supervisord.conf").read_text().splitlines()
                     if not line.lstrip().startswith(";"))
    names = set(re.findall(r"%\(ENV_(\w+)\)s", conf))
    docker = (REPO / "Dockerfile").read_text()
    missing = {n for n in names if not re.search(rf"^\s*(ENV\s+)?{n}=", docker, re.M)}
    assert missing == {"CEREBRO_SUPERVISOR_PASSWORD"}
    assert "CEREBRO_SUPERVISOR_PASSWORD" in (REPO / "docker-compose.yml").read_text()


def test_compose_file_is_valid():
    """docker-compose.yml validates against the compose spec (check-jsonschema's vendored copy;
    also `docker-compose config -q` when installed) and has the expected shape."""
    result = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema",
                             "vendor.compose-spec", str(REPO / "docker-compose.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    compose = shutil.which("docker-compose")
    if compose:
        env = cerebro_env(RABBITMQ_PASSWORD="x", CEREBRO_CALLBACK_SECRET="x",
                          CEREBRO_SUPERVISOR_PASSWORD="x", CEREBRO_FLOWER_PASSWORD="x")
        result = subprocess.run([compose, "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
                                capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
    from ruamel.yaml import YAML   # installed with check-jsonschema
    spec = YAML(typ="safe").load((REPO / "docker-compose.yml").read_text())
    assert set(spec["services"]) == {"builder", "cerebro", "vigilante", "rabbitmq", "redis",
                                     "kafka"}
    assert spec["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in spec["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert spec["services"]["vigilante"]["environment"]["CEREBRO_MODULES"] == "vigilante"
    builder = spec["services"]["builder"]   # builds every module; the only writer
    assert "cerebro-data:/data" in builder["volumes"] and "bootstrap" in builder["entrypoint"]
    assert builder["healthcheck"] == {"disable": True}   # a one shot: no supervisord to ask
    assert "CEREBRO_MODULES" not in builder["environment"]
    for name in ("cerebro", "vigilante"):   # serve only: read the models
        service = spec["services"][name]
        assert "healthcheck" not in service   # the image's: cerebro health
        assert "cerebro-data:/data:ro" in service["volumes"]
        assert service["environment"]["CEREBRO_RUN_BOOTSTRAP"] == "false"
        assert service["depends_on"]["builder"]["condition"] == "service_completed_successfully"
    for name in ("builder", "cerebro", "vigilante"):
        assert "sherlock:/sherlock" in spec["services"][name]["volumes"]
    assert {"cerebro-data", "sherlock"} <= set(spec["volumes"])
    for name in ("cerebro", "vigilante"):   # the main app on the Docker host, on Linux too
        assert "host.docker.internal:host-gateway" in spec["services"][name]["extra_hosts"]
    env = spec["x-cerebro-env"]   # no broker, Redis or signing key without a secret of yours
    assert "${REDIS_PASSWORD:?" in env["CEREBRO_RESULT_BACKEND"]
    assert "${RABBITMQ_PASSWORD:?" in env["CEREBRO_BROKER_URL"]
    assert env["CEREBRO_MODEL_SIGNING_KEY"].startswith("${CEREBRO_MODEL_SIGNING_KEY:?")
    assert "--requirepass" in " ".join(spec["services"]["redis"]["command"])


@pytest.fixture
def sliced(tmp_path):
    """`cerebro slice vigilante` into a fresh folder."""
    folder = tmp_path / "vigilante-slice"
    result = subprocess.run([sys.executable, "-m", "cerebro", "slice", "vigilante", str(folder)],
                            capture_output=True, text=True, env=cerebro_env())
    assert result.returncode == 0, result.stderr
    return folder


def test_slice_contents(sliced):
    """The folder: the module's code, the platform as a dependency, Dockerfile (lint-clean),
    supervisord.conf and README."""
    assert (sliced / "modules" / "__init__.py").is_file()
    assert (sliced / "modules" / "vigilante" / "expose.py").is_file()
    assert not (sliced / "modules" / "rent_predictor").exists()
    assert 'dependencies = ["cerebro==0.1.0"]' in (sliced / "pyproject.toml").read_text()
    conf = (sliced / "supervisord.conf").read_text()
    assert "[program:api]" in conf and "[program:consumer]" in conf
    assert 'CEREBRO_MODULES="vigilante"' in conf
    assert "POST /v1/vigilante/screen" in (sliced / "README.md").read_text()
    assert_health_is_cerebro_health((sliced / "Dockerfile").read_text())
    result = subprocess.run([str(BIN / "hadolint"), "--failure-threshold", "error",
                             str(sliced / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_slice_starts_on_its_own_and_serves_vigilante(sliced, built_volume, tmp_path,
                                                      rabbit_url, redis_url):
    """The slice's own supervisord.conf, run from its folder with its code first on the path:
    vigilante (only) answers at /v1/vigilante/screen."""
    broker = KafkaBroker(log_path=tmp_path / "tansu.log").start()
    port = free_port()
    env = cerebro_env(PYTHONPATH="", CEREBRO_BIN=BIN, CEREBRO_STATE_DIR=tmp_path / "state",
                      CEREBRO_LOG_DIR=tmp_path / "logs", CEREBRO_DATA_VOLUME=built_volume,
                      SHERLOCK_DIR=tmp_path / "sherlock", CEREBRO_PORT=port,
                      CEREBRO_PROCESSES=1, CEREBRO_BROKER_URL=rabbit_url,
                      CEREBRO_RESULT_BACKEND=redis_url, CEREBRO_KAFKA_BOOTSTRAP=broker.bootstrap,
                      CEREBRO_KAFKA_GROUP=f"slice-{port}", CEREBRO_CALLBACK_SECRET="slice",
                      CEREBRO_PUBSUB_REQUESTS_EXCHANGE=f"slice-{port}.requests",
                      CEREBRO_PUBSUB_RESULTS_EXCHANGE=f"slice-{port}.results",
                      CEREBRO_PUBSUB_DLX=f"slice-{port}.dlx", **FAST_GROUP)
    for d in ("state", "logs"):
        (tmp_path / d).mkdir()
    where = subprocess.run([sys.executable, "-c", "import modules.vigilante.expose as e; "
                            "print(e.__file__)"], cwd=sliced, capture_output=True, text=True,
                           env=dict(env, PYTHONPATH=str(sliced)))
    assert where.stdout.strip().startswith(str(sliced)), where
    supervisorctl = [str(BIN / "supervisorctl"), "-c", str(sliced / "supervisord.conf")]
    subprocess.run([str(BIN / "supervisord"), "-c", str(sliced / "supervisord.conf")],
                   cwd=sliced, env=env, check=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http("GET", url + "/readyz", timeout=2)[0] == 200
                 if _answers(url) else False, 60, what="the slice's API ready")
        modules = http("GET", url + "/v1/modules")[2]["modules"]
        assert [m["name"] for m in modules] == ["vigilante"]
        example = modules[0]["functions"][0]["example"]
        status, _, body = http("POST", url + "/v1/vigilante/screen", example)
        assert status == 200 and body["verdict"] and body["model_version"], body
        assert http("POST", url + "/v1/rent_predictor/predict", {})[0] == 404

        def states():
            """supervisorctl's view of the slice's programs."""
            return subprocess.run([*supervisorctl, "status"], env=env, capture_output=True,
                                  text=True).stdout

        # the API can answer before supervisord's startsecs have passed: RUNNING comes later
        wait_for(lambda: states().count("RUNNING") == 3, 30, what="every slice program RUNNING")
        assert states().count("RUNNING") == 3, states()
    finally:
        subprocess.run([*supervisorctl, "shutdown"], env=env, capture_output=True)
        pidfile = tmp_path / "state" / "supervisord.pid"
        wait_for(lambda: not pidfile.exists(), 60, what="the slice's supervisord stopped")
        broker.stop()
        _delete_pubsub_topology(rabbit_url, f"slice-{port}")


def _delete_pubsub_topology(url, prefix):
    """Remove the slice subscriber's queues and exchanges from the shared broker."""
    from kombu import Connection
    with Connection(url, connect_timeout=2) as conn:
        for queue in (f"{prefix}.requests.vigilante", f"{prefix}.requests.vigilante.retry",
                      f"{prefix}.dlx"):
            conn.channel().queue_delete(queue)
        for exchange in (f"{prefix}.requests", f"{prefix}.results", f"{prefix}.dlx"):
            conn.channel().exchange_delete(exchange)


def _answers(url):
    """True when the server answers /healthz."""
    try:
        return http("GET", url + "/healthz", timeout=2)[0] == 200
    except OSError:
        return False
