"""Cerebro as separate, scalable services, checked offline (no cluster, no Docker engine): every
Kubernetes manifest of deploy/k8s validates against the Kubernetes 1.30 schemas
(kubernetes-validate, strict: an unknown field fails too), docker-compose.scale.yml against the
compose spec; and what makes them work holds: every secret setting comes from the Secret, key
by key, and the Secret template holds every one of them, as placeholders; every service program
of the program table has a Deployment and a compose service running its command; the probes
point at the API's real routes and port, and the exec probes run `cerebro health --program`
for their own program (run here for real); the data volume is ReadWriteMany and read-only in
every serving pod; every node is named after its pod or container; the autoscalers, disruption
budgets and Services select what exists; no scaled compose service publishes a host port."""

import copy
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cerebro.ops import programs
from cerebro.settings import Settings
from sherlock.settings import SherlockSettings
from support import REPO, cerebro_env, free_port

BIN = Path(sys.executable).parent
K8S = REPO / "deploy" / "k8s"
COMPOSE = REPO / "docker-compose.scale.yml"
KUBERNETES = "1.30.0"
IMAGE_BIN = "/opt/venv/bin"
PROBE = [f"{IMAGE_BIN}/cerebro", "health", "--program"]
SECRET = "cerebro-secrets"
#: the one secret setting no pod gets: it guards supervisord, which none of these pods runs
NOT_DEPLOYED = {"CEREBRO_SUPERVISOR_PASSWORD"}
#: programs scaled out to several replicas: none may publish a fixed host port
SCALED = ("api", "worker", "consumer", "subscriber", "beat")
#: what each program cannot run without (cerebro/settings.py's help says who requires what):
#: Redis for every node's heartbeats (and beat's lock), RabbitMQ where Celery or pub-sub runs,
#: the signing key wherever models are loaded or published, the callback secret where the main
#: app is called, Flower's password for Flower, the SMTP password where the digest is sent
NEEDS = {
    "api": {"CEREBRO_BROKER_URL", "CEREBRO_RESULT_BACKEND", "CEREBRO_MAIN_APP_URL",
            "CEREBRO_MODEL_SIGNING_KEY", "CEREBRO_API_KEYS"},
    "worker": {"CEREBRO_BROKER_URL", "CEREBRO_RESULT_BACKEND", "CEREBRO_MAIN_APP_URL",
               "CEREBRO_CALLBACK_SECRET", "CEREBRO_MODEL_SIGNING_KEY", "SHERLOCK_SMTP_PASSWORD"},
    "consumer": {"CEREBRO_RESULT_BACKEND", "CEREBRO_MAIN_APP_URL", "CEREBRO_CALLBACK_SECRET",
                 "CEREBRO_MODEL_SIGNING_KEY"},
    "subscriber": {"CEREBRO_BROKER_URL", "CEREBRO_RESULT_BACKEND", "CEREBRO_MODEL_SIGNING_KEY"},
    "beat": {"CEREBRO_BROKER_URL", "CEREBRO_RESULT_BACKEND"},
    "flower": {"CEREBRO_BROKER_URL", "CEREBRO_RESULT_BACKEND", "CEREBRO_FLOWER_PASSWORD"},
    "bootstrap": {"CEREBRO_MODEL_SIGNING_KEY"},
}


def manifests():
    """``{file name: [documents]}`` of every manifest of deploy/k8s (empty documents left out)."""
    return {path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
            for path in sorted(K8S.glob("*.yaml"))}


def objects(kind=None):
    """Every Kubernetes object of deploy/k8s (the kustomization is not one), or those of
    ``kind``."""
    found = [doc for name, docs in manifests().items() if name != "kustomization.yaml"
             for doc in docs]
    return [doc for doc in found if kind is None or doc["kind"] == kind]


def by_name(kind):
    """``{name: object}`` of the objects of ``kind``."""
    return {doc["metadata"]["name"]: doc for doc in objects(kind)}


def component(workload):
    """The program a Deployment or Job runs: its ``app.kubernetes.io/component`` label."""
    return workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]


def workloads():
    """``{program: Deployment or Job}``."""
    return {component(w): w for w in objects("Deployment") + objects("Job")}


def container(workload):
    """The one container of a workload's pod."""
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, [c["name"] for c in containers]
    return containers[0]


def config():
    """The ConfigMap's data."""
    return by_name("ConfigMap")["cerebro-config"]["data"]


def secret_keys():
    """The keys of the Secret template."""
    return set(by_name("Secret")[SECRET]["stringData"])


def secret_settings():
    """The environment variable of every setting typed as a secret, Cerebro's and Sherlock's."""
    found = set()
    for cls in (Settings, SherlockSettings):
        secret = cls.secret_variables()
        found |= {var for field, var in cls.variables().items() if field in secret}
    return found


def compose(path=None):
    """docker-compose.scale.yml (or ``path``), parsed as compose reads it (YAML 1.2, merge
    keys)."""
    from ruamel.yaml import YAML   # installed with check-jsonschema
    return YAML(typ="safe").load((path or COMPOSE).read_text())


def check_compose_schema(path):
    """The suite's compose check (as test_slice_and_docker.py runs it): check-jsonschema with
    its vendored compose spec; the completed process."""
    return subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema",
                           "vendor.compose-spec", str(path)], capture_output=True, text=True)


def program_command(name):
    """A program's command from the program table, as the image runs it."""
    return programs.by_name(name).command.replace("%(ENV_CEREBRO_BIN)s", IMAGE_BIN).split()


def service_programs():
    """Every service of the program table except the one-shot bootstrap."""
    return [row.name for row in programs.services() if row.name != "bootstrap"]


@pytest.mark.parametrize("name", sorted(p.name for p in K8S.glob("*.yaml")
                                        if p.name != "kustomization.yaml"))
def test_manifest_validates_against_kubernetes_schema(name):
    """Every object of the file validates against Kubernetes 1.30's schema, strictly."""
    import kubernetes_validate
    docs = manifests()[name]
    assert docs, f"{name} holds no object"
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata']['name']}: "
                        f"{'.'.join(map(str, exc.path))}: {exc.message}")
        assert doc["metadata"].get("namespace") == "cerebro" or doc["kind"] == "Namespace"


def test_the_schema_check_can_fail():
    """A misspelt field, or a string where a number goes, is refused: the check above is real."""
    import kubernetes_validate
    api = by_name("Deployment")["cerebro-api"]
    typo = copy.deepcopy(api)
    typo["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES, strict=True)
    hpa = copy.deepcopy(by_name("HorizontalPodAutoscaler")["cerebro-api"])
    hpa["spec"]["minReplicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(hpa, KUBERNETES, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_template():
    """`kubectl apply -k deploy/k8s` applies every manifest, never the placeholders."""
    kustomization = manifests()["kustomization.yaml"][0]
    assert kustomization["kind"] == "Kustomization" and kustomization["namespace"] == "cerebro"
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.template.yaml"}
    assert set(kustomization["resources"]) == files
    assert len(kustomization["resources"]) == len(files)


def test_secret_template_holds_every_secret_setting_as_a_placeholder():
    """The Secret has a key for every setting typed as a secret (but the supervisord password:
    no pod runs supervisord), each value a marked placeholder; the file says it is a template."""
    assert secret_keys() == secret_settings() - NOT_DEPLOYED
    for key, value in by_name("Secret")[SECRET]["stringData"].items():
        assert "REPLACE-ME" in value, f"{key} is not a placeholder"
    text = (K8S / "secret.template.yaml").read_text()
    assert "TEMPLATE ONLY - NOT A SECRET" in text.splitlines()[0]


def test_secrets_come_from_the_secret_never_a_config_map_or_a_literal():
    """Every secret setting a container gets comes from a key of the Secret of the same name;
    the ConfigMap names none and carries no password; no container runs supervisord (each gives
    its command), so none needs its password."""
    secrets = secret_settings()
    keys = secret_keys()
    assert not secrets & set(config()), secrets & set(config())
    for key, value in config().items():
        assert not re.search(r"://[^/@\s]*:[^/@\s]+@", value), f"{key} carries a password"
    for program, workload in workloads().items():
        box = container(workload)
        assert box["command"][0].startswith(IMAGE_BIN) and "supervisord" not in box["command"][0]
        for source in box.get("envFrom", []):
            assert set(source) == {"configMapRef"}, (program, source)
        for item in box["env"]:
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if item["name"] in secrets:
                assert ref and "value" not in item, f"{program}: {item['name']} not from a Secret"
            if ref:
                assert ref["name"] == SECRET and ref["key"] in keys, (program, ref)
                assert ref["key"] == item["name"], (program, ref)
                assert not ref.get("optional"), (program, ref)
        assert not NOT_DEPLOYED & {item["name"] for item in box["env"]}


def test_each_program_gets_the_secrets_it_needs_and_no_other():
    """Least privilege: each pod gets exactly the secret keys its program needs."""
    for program, workload in workloads().items():
        given = {item["name"] for item in container(workload)["env"]
                 if "secretKeyRef" in item.get("valueFrom", {})}
        assert given == NEEDS[program], (program, given ^ NEEDS[program])
    assert set(workloads()) == set(NEEDS)


def test_every_service_program_has_a_deployment_and_a_compose_service():
    """Each service of the program table (but the one-shot bootstrap, a Job and compose's
    builder) runs as its own Deployment and compose service, with the table's command."""
    deployments = {component(d): d for d in objects("Deployment")}
    services = compose()["services"]
    for name in service_programs():
        assert name in deployments, f"no Deployment for {name}"
        assert container(deployments[name])["command"] == program_command(name)
        assert name in services, f"no compose service for {name}"
        entry = services[name]["entrypoint"]
        assert entry[:2] == ["/bin/sh", "-c"]
        assert entry[2].endswith("exec " + " ".join(program_command(name))), entry
        assert services[name]["image"] == services["builder"]["image"]
    assert set(deployments) == set(service_programs())
    job = by_name("Job")["cerebro-bootstrap"]
    assert container(job)["command"] == program_command("bootstrap")
    assert services["builder"]["entrypoint"][2].endswith(
        "exec " + " ".join(program_command("bootstrap")))
    version = re.search(r'^version = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M)[1]
    for workload in workloads().values():
        assert container(workload)["image"] == f"cerebro:{version}"
    assert services["builder"]["image"] == f"cerebro:{version}"


def _tornado_handler(path):
    """The handler class the real API routes ``GET path`` to."""
    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

    from cerebro.api.app import make_app
    request = HTTPServerRequest(start_line=RequestStartLine("GET", path, "HTTP/1.1"),
                                headers=HTTPHeaders({"Host": "cerebro"}))
    for rule in make_app(None).wildcard_router.rules:
        if rule.matcher.match(request) is not None:
            return rule.target
    return None


def test_api_probes_point_at_the_real_routes_and_port():
    """The API's readiness probe GETs /readyz, its liveness (and start-up) probe /healthz, on
    the container port that is CEREBRO_PORT; the Service targets that port."""
    from cerebro.api import handlers
    api = by_name("Deployment")["cerebro-api"]
    box = container(api)
    port = {p["name"]: p["containerPort"] for p in box["ports"]}
    assert port["http"] == int(config()["CEREBRO_PORT"]) == 8000
    probes = {kind: box[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe",
                                                      "startupProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/healthz"
    assert {p["port"] for p in probes.values()} == {"http"}
    assert _tornado_handler("/readyz") is handlers.ReadyHandler
    assert _tornado_handler("/healthz") is handlers.HealthHandler
    service = by_name("Service")["cerebro-api"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    flower = container(by_name("Deployment")["cerebro-flower"])
    assert flower["ports"][0]["containerPort"] == int(config()["CEREBRO_FLOWER_PORT"])
    assert by_name("Service")["cerebro-flower"]["spec"]["ports"][0]["targetPort"] == "http"


def exec_probes():
    """``{(where, program): command}`` of every exec probe: Deployments' and compose's."""
    found = {}
    for program, workload in workloads().items():
        box = container(workload)
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            if "exec" in box.get(kind, {}):
                found[(f"k8s {kind}", program)] = box[kind]["exec"]["command"]
    for name, service in compose()["services"].items():
        test = service.get("healthcheck", {}).get("test")
        if test and "health --program" in " ".join(test):
            assert test[0] == "CMD", (name, test)
            found[("compose", name)] = test[1:]
    return found


def test_other_programs_probe_their_own_program():
    """Every Deployment but the API's, and every compose service of a program, is probed by
    `cerebro health --program <its program>`, a program whose probe runs standalone."""
    found = exec_probes()
    for name in service_programs():
        if name != "api":
            assert found[("k8s readinessProbe", name)] == [*PROBE, name]
        assert found[("compose", name)] == [*PROBE, name]
        assert programs.by_name(name).probe is not None
    for (where, program), command in found.items():
        assert command == [*PROBE, program], (where, command)


def test_the_exec_probe_commands_run_and_name_their_program(tmp_path):
    """Each distinct probe command, run here with nothing listening where it looks: exit 1
    with its one line, NOT READY for a reason of its own probe (not an unknown program, not a
    missing probe, not a bug of the probe), within the command's deadline."""
    closed = free_port()
    env = cerebro_env(CEREBRO_PORT=free_port(), CEREBRO_FLOWER_PORT=free_port(),
                      CEREBRO_FLOWER_PASSWORD="probe-test",
                      CEREBRO_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{closed}//",
                      CEREBRO_RESULT_BACKEND=f"redis://127.0.0.1:{closed}/0",
                      CEREBRO_KAFKA_BOOTSTRAP=f"127.0.0.1:{closed}",
                      CEREBRO_STATE_DIR=tmp_path, CEREBRO_DATA_VOLUME=tmp_path / "volume")
    commands = {tuple(command) for command in exec_probes().values()}
    started = time.monotonic()
    running = {command: subprocess.Popen([sys.executable, "-m", "cerebro", *command[1:]],
                                         env=env,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
               for command in sorted(commands)}
    for command, proc in running.items():
        out, err = proc.communicate(timeout=60)
        program = command[-1]
        assert proc.returncode == 1, (command, out, err)
        assert re.fullmatch(rf"cerebro health --program {program}: NOT READY: .+\n", out), out
        assert "no program" not in out and "no readiness probe" not in out, out
        assert not re.search(r"(Import|ModuleNotFound|Attribute|Name|Type|Key)Error", out), out
    assert time.monotonic() - started < 30


def test_data_volume_is_shared_and_read_only_where_models_are_served():
    """The data, Sherlock and shared-runtime claims are ReadWriteMany; every serving pod
    mounts the data read-only (volume and mount) at CEREBRO_DATA_VOLUME, the builder Job
    read-write; Sherlock's folder and the shared runtime directory are mounted read-write where
    the ConfigMap says; each pod's state is its own emptyDir; pods run as the image's user."""
    claims = by_name("PersistentVolumeClaim")
    assert set(claims) == {"cerebro-data", "cerebro-sherlock", "cerebro-shared"}
    for claim in claims.values():
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"], claim["metadata"]["name"]
    where = {"cerebro-data": config()["CEREBRO_DATA_VOLUME"],
             "cerebro-sherlock": config()["SHERLOCK_DIR"],
             "cerebro-shared": config()["CEREBRO_SHARED_DIR"]}
    user = re.search(r"^USER (\d+):(\d+)$", (REPO / "Dockerfile").read_text(), re.M)
    for program, workload in workloads().items():
        pod = workload["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {}
        for mount in container(workload)["volumeMounts"]:
            volume = volumes[mount["name"]]
            claim = volume.get("persistentVolumeClaim")
            if claim:
                assert mount["mountPath"] == where[claim["claimName"]], (program, mount)
                mounts[claim["claimName"]] = (bool(mount.get("readOnly")),
                                              bool(claim.get("readOnly")))
            else:
                assert set(volume) == {"name", "emptyDir"}, (program, volume)
                mounts[mount["mountPath"]] = "emptyDir"
        if program == "bootstrap":
            assert mounts["cerebro-data"] == (False, False)
        elif program in ("api", "worker", "consumer", "subscriber"):
            assert mounts["cerebro-data"] == (True, True), program
            assert mounts["cerebro-shared"] == (False, False), program
        assert mounts["cerebro-sherlock"] == (False, False), program
        assert mounts[config()["CEREBRO_STATE_DIR"]] == "emptyDir", program
        assert mounts["/tmp"] == "emptyDir", program
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True
        assert (str(security["runAsUser"]), str(security["runAsGroup"])) == user.groups()
        assert container(workload)["securityContext"]["readOnlyRootFilesystem"] is True
        assert container(workload)["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["automountServiceAccountToken"] is False


def test_every_node_is_named_after_its_pod_or_container():
    """CEREBRO_NODE and SHERLOCK_NODE are the pod's name (downward API) in every pod, and the
    container's host name in every compose service of the image."""
    for program, workload in workloads().items():
        env = {item["name"]: item for item in container(workload)["env"]}
        for name in ("CEREBRO_NODE", "SHERLOCK_NODE"):
            assert env[name]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, \
                (program, name)
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("cerebro:") and name != "shared-init":
            command = service["entrypoint"][2]
            assert command.startswith(
                "CEREBRO_NODE=$$(hostname) SHERLOCK_NODE=$$(hostname) exec "), (name, command)


def _selects(selector, workload):
    """True when ``selector`` (matchLabels or a Service's selector) selects the workload's
    pods."""
    labels = workload["spec"]["template"]["metadata"]["labels"]
    wanted = selector.get("matchLabels", selector)
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def test_autoscalers_budgets_and_services_select_what_exists():
    """Each HorizontalPodAutoscaler (autoscaling/v2) scales an existing Deployment (api and
    worker at least), which then leaves its replica count to it; each PodDisruptionBudget and
    Service selects exactly one Deployment's pods (api and worker have a budget); the consumer,
    bounded by its partitions, and beat and Flower, one each, have no autoscaler."""
    deployments = by_name("Deployment")
    scaled = set()
    for hpa in objects("HorizontalPodAutoscaler"):
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        assert target["name"] in deployments, target
        assert "replicas" not in deployments[target["name"]]["spec"], target["name"]
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        scaled.add(component(deployments[target["name"]]))
    assert {"api", "worker"} <= scaled
    assert not scaled & {"consumer", "beat", "flower"}
    budgets = set()
    for budget in objects("PodDisruptionBudget"):
        chosen = [d for d in deployments.values() if _selects(budget["spec"]["selector"], d)]
        assert len(chosen) == 1, budget["metadata"]["name"]
        budgets.add(component(chosen[0]))
    assert {"api", "worker"} <= budgets
    for service in objects("Service"):
        chosen = [d for d in deployments.values() if _selects(service["spec"]["selector"], d)]
        assert len(chosen) == 1, service["metadata"]["name"]
    for deployment in deployments.values():
        selector = deployment["spec"]["selector"]
        assert _selects(selector, deployment), deployment["metadata"]["name"]
        assert not [d for d in deployments.values() if d is not deployment
                    and _selects(selector, d)], deployment["metadata"]["name"]


def test_single_and_bounded_replicas():
    """Flower runs one replica, beat one or two (one active: the Redis lock); the consumer no
    more than the partition count of compose's Kafka, and the manifest says why."""
    deployments = {component(d): d for d in objects("Deployment")}
    assert deployments["flower"]["spec"]["replicas"] == 1
    assert deployments["flower"]["spec"]["strategy"]["type"] == "Recreate"
    assert 1 <= deployments["beat"]["spec"]["replicas"] <= 2
    assert "partition" in (K8S / "consumer.yaml").read_text()
    spec = compose()
    partitions = int(spec["services"]["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"])
    assert spec["services"]["consumer"]["deploy"]["replicas"] <= partitions
    assert spec["services"]["beat"]["deploy"]["replicas"] == 1
    assert "replicas" not in spec["services"]["flower"].get("deploy", {})


def test_compose_scale_file_is_valid():
    """docker-compose.scale.yml passes the suite's compose-spec check; a copy with an unknown
    key does not (the check can fail)."""
    result = check_compose_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_can_fail(tmp_path):
    """An unknown service key is refused by the same check."""
    broken = tmp_path / "docker-compose.scale.yml"
    broken.write_text(COMPOSE.read_text().replace("    init: true\n", "    inti: true\n", 1))
    result = check_compose_schema(broken)
    assert result.returncode != 0 and "inti" in result.stdout + result.stderr


def test_compose_scales_without_fixed_host_ports():
    """Scaled services publish no host port (lb is the API's one entry); the only published
    ports are on 127.0.0.1; the brokers are docker-compose.yml's; the data volume is read-only
    but to the builder; Sherlock's and the shared runtime volumes are mounted read-write at the
    paths the settings give; each program's container is health-checked on its own program."""
    spec = compose()
    services = spec["services"]
    base = compose(REPO / "docker-compose.yml")
    for name in SCALED:
        assert "ports" not in services[name], f"{name} publishes a host port: cannot scale"
        assert "container_name" not in services[name] and "hostname" not in services[name]
    assert services["api"]["expose"] == [str(int(config()["CEREBRO_PORT"]))]
    published = {name: service["ports"] for name, service in services.items()
                 if "ports" in service}
    assert published == {"lb": ["127.0.0.1:8000:8000"], "flower": ["127.0.0.1:5555:5555"],
                         "rabbitmq": ["127.0.0.1:15672:15672"]}
    for broker in ("rabbitmq", "redis", "kafka"):
        assert services[broker] == base["services"][broker], broker
    env = spec["x-cerebro-env"]
    assert env["CEREBRO_SHARED_DIR"] == "/shared" and env["SHERLOCK_DIR"] == "/sherlock"
    for name, service in services.items():
        if not service.get("image", "").startswith("cerebro:") or name == "shared-init":
            continue
        volumes = service["volumes"]
        assert "sherlock:/sherlock" in volumes, name
        if name == "builder":
            assert "cerebro-data:/data" in volumes
        elif name in ("api", "worker", "consumer", "subscriber"):
            assert "cerebro-data:/data:ro" in volumes and "cerebro-shared:/shared" in volumes
        assert not [v for v in volumes if v.startswith("cerebro-data:/data") and
                    name != "builder" and not v.endswith(":ro")], name
        for key in secret_settings() & set(service["environment"]):
            assert service["environment"][key].lstrip().startswith("${") or \
                re.search(r"\$\{\w+:\?", service["environment"][key]), (name, key)
    assert services["builder"]["healthcheck"] == {"disable": True}
    assert {"cerebro-data", "sherlock", "cerebro-shared"} <= set(spec["volumes"])


def test_load_balancer_checks_readyz_on_every_api_replica():
    """HAProxy's configuration (mounted by the lb service) spreads over every replica the
    compose name `api` resolves to on CEREBRO_PORT, checks each on GET /readyz, and sets the
    client address itself; `haproxy -c` accepts it where HAProxy is installed."""
    lb = compose()["services"]["lb"]
    mount = [v for v in lb["volumes"] if v.endswith(":/usr/local/etc/haproxy/haproxy.cfg:ro")]
    assert len(mount) == 1 and lb["image"].startswith("haproxy:")
    cfg = REPO / mount[0].split(":")[0]
    text = cfg.read_text()
    assert re.search(rf"^\s*server-template api \d+ api:{config()['CEREBRO_PORT']}$", text, re.M)
    assert re.search(r"^\s*http-check send meth GET uri /readyz$", text, re.M)
    assert re.search(r"^\s*http-check expect status 200$", text, re.M)
    assert re.search(r"^\s*http-request set-header X-Real-Ip %\[src\]$", text, re.M)
    assert re.search(r"^\s*bind :8000$", text, re.M)
    assert compose()["services"]["api"]["environment"]["CEREBRO_TRUST_PROXY_HEADERS"] == "true"
    haproxy = shutil.which("haproxy")
    if haproxy:
        result = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True,
                                text=True)
        assert result.returncode == 0, result.stdout + result.stderr
