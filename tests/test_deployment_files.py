"""The deployment files agree with the project and with each other.

Reads docker-compose.yml, the Dockerfile, prometheus.yml and the Kubernetes
manifests of deploy/ (no Docker, no cluster, no network). `.ci/run` also
renders the kustomization and checks the manifests against the Kubernetes
schemas, lints the Dockerfile and lets docker-compose read its file.
"""

import re
from pathlib import Path

import pytest
import yaml

from tools import SERVICE_NAMES

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"

APP_IMAGE = "localnews-backend"
OPS_PORT = 9102
GATEWAY_PORT = 8000
APP_USER = 10001
# Every process that `nameko run` starts: the gateway and the domain services.
PROCESSES = ("gateway", *SERVICE_NAMES)
BOOTSTRAP = ["python", "-m", "tools.bootstrap"]


# --- helpers ----------------------------------------------------------------


def config_variables():
    """The environment variables config.yml reads: its ``${VAR`` names."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", (ROOT / "config.yml").read_text()))


def runner_variables():
    """Variables read directly by servicekit's scripts (e.g. GATEWAY_PROCESSES
    by the runner, LOCALNEWS_CONFIG by the configuration loader)."""
    pattern = re.compile(
        r"""os\.(?:environ\.get|getenv)\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']"""
        r"""|os\.environ\[\s*["']([A-Za-z_][A-Za-z0-9_]*)["']\s*\]"""
    )
    names = set()
    for path in (ROOT / "servicekit").glob("*.py"):
        if path.name == "testing.py":  # the pytest plugin, not a runner
            continue
        for match in pattern.finditer(path.read_text()):
            names.add(match.group(1) or match.group(2))
    return names


def known_variables():
    return config_variables() | runner_variables()


def shutdown_grace_default():
    match = re.search(r"\$\{SHUTDOWN_GRACE_SECONDS:(\d+)\}", (ROOT / "config.yml").read_text())
    assert match, "config.yml no longer reads ${SHUTDOWN_GRACE_SECONDS:<default>}"
    return int(match.group(1))


def seconds(duration):
    """Compose durations: 30s, 1m30s, 1h, 500ms (or a plain number of seconds)."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    return sum(float(n) * units[u] for n, u in parts)


def is_pinned(image):
    """A tag other than `latest`, or a digest."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # no tag at all (a colon only in a registry port)
        return False
    return tag != "latest" and not tag.startswith("$")


def nameko_service(command):
    """`nameko run --config config.yml articles.service` -> "articles"."""
    if isinstance(command, str):
        command = command.split()
    if command[:4] == ["nameko", "run", "--config", "config.yml"] and len(command) == 5:
        module = command[4]
        assert module.endswith(".service"), command
        return module.removesuffix(".service")
    return None


def load_documents(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def env_file(path):
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        values[key.strip()] = value
    return values


# --- the Dockerfile ---------------------------------------------------------


def dockerfile_instructions():
    """(INSTRUCTION, arguments) for each logical line (continuations joined)."""
    text = (ROOT / "Dockerfile").read_text()
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_runs_as_a_numeric_non_root_user():
    users = [args for instruction, args in dockerfile_instructions() if instruction == "USER"]
    assert users, "the Dockerfile has no USER: the image would run as root"
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1].strip()), (
        f"USER {users[-1]}: use a numeric uid[:gid], so that runAsNonRoot can verify it"
    )
    assert int(users[-1].split(":")[0]) == APP_USER


def test_dockerfile_stops_with_sigterm():
    for instruction, args in dockerfile_instructions():
        if instruction == "STOPSIGNAL":
            assert args.strip().upper() in ("SIGTERM", "TERM", "15"), (
                f"STOPSIGNAL {args}: the services stop gracefully on SIGTERM"
            )


def test_dockerfile_exposes_the_api_and_operations_ports():
    exposed = set()
    for instruction, args in dockerfile_instructions():
        if instruction == "EXPOSE":
            exposed |= {int(port.split("/")[0]) for port in args.split()}
    assert {GATEWAY_PORT, OPS_PORT} <= exposed


def test_dockerfile_installs_runtime_requirements_only():
    runs = " ".join(args for instruction, args in dockerfile_instructions() if instruction == "RUN")
    copies = " ".join(
        args for instruction, args in dockerfile_instructions() if instruction == "COPY"
    )
    assert "requirements.txt" in runs and "requirements.txt" in copies
    assert "requirements-dev" not in runs + copies


def test_dockerfile_base_images_are_pinned():
    stages = set()
    for instruction, args in dockerfile_instructions():
        if instruction != "FROM":
            continue
        words = [word for word in args.split() if not word.startswith("--")]
        image = words[0]
        if image not in stages:
            assert is_pinned(image), f"FROM {image}: pin a tag (not latest)"
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.add(words[2])


def test_dockerignore_keeps_tests_and_local_state_out():
    patterns = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".venv", ".git", "tests", "**/tests", "bench", "**/__pycache__"):
        assert needed in patterns, f".dockerignore should exclude {needed}/"


# --- docker-compose.yml -----------------------------------------------------


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def app_services(compose):
    """{compose service name: definition} of the containers of our image."""
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).split(":")[0] == APP_IMAGE or "build" in service
    }


def is_one_off(service):
    command = service.get("command", "")
    command = command.split() if isinstance(command, str) else command
    return command == BOOTSTRAP


def compose_environment(service):
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.partition("=")[::2] for item in environment)
    return environment


def test_compose_has_no_version_key(compose):
    # docker-compose 1.29 and compose v2 both read the Compose Specification.
    assert "version" not in compose


def test_compose_runs_every_process_and_the_bootstrap_step(compose):
    apps = app_services(compose)
    started = {nameko_service(service["command"]) for service in apps.values()}
    assert set(PROCESSES) <= started
    assert any(is_one_off(service) for service in apps.values()), "no bootstrap (migrate) step"


def test_compose_every_container_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        healthcheck = service.get("healthcheck")
        assert healthcheck, f"{name}: no healthcheck"
        if is_one_off(service):
            # A one-off's health is its exit code (service_completed_successfully).
            assert healthcheck.get("disable") is True, f"{name}: a one-off has no readiness"
        else:
            assert healthcheck.get("test"), f"{name}: healthcheck without a test"
            assert not healthcheck.get("disable"), f"{name}: healthcheck disabled"


def test_compose_app_containers_serve_and_probe_the_operations_port(compose):
    for name, service in app_services(compose).items():
        assert str(compose_environment(service).get("OPS_PORT")) == str(OPS_PORT), name
        if is_one_off(service):
            continue
        probe = " ".join(service["healthcheck"]["test"])
        if nameko_service(service["command"]) == "gateway":
            assert f":{GATEWAY_PORT}/health" in probe or f":{OPS_PORT}/readyz" in probe, name
        else:
            assert f":{OPS_PORT}/readyz" in probe, f"{name}: probe /readyz on the operations port"


def test_compose_stops_with_sigterm_and_enough_grace(compose):
    grace = shutdown_grace_default()
    for name, service in app_services(compose).items():
        signal = service.get("stop_signal", "SIGTERM")
        assert signal in ("SIGTERM", "TERM", "15"), (
            f"{name}: stop_signal {signal}: the services stop gracefully on SIGTERM"
        )
        assert seconds(service.get("stop_grace_period", "10s")) > grace, (
            f"{name}: stop_grace_period must exceed SHUTDOWN_GRACE_SECONDS ({grace} s)"
        )


def test_compose_keeps_the_image_user(compose):
    for name, service in app_services(compose).items():
        user = str(service.get("user", APP_USER))
        assert re.fullmatch(r"[1-9]\d*(:\d+)?", user), f"{name}: user {user}: not root, numeric"


def test_compose_sets_only_known_variables(compose):
    known = known_variables()
    for name, service in app_services(compose).items():
        unknown = set(compose_environment(service)) - known
        assert not unknown, f"{name}: config.yml reads no {sorted(unknown)}"


def test_compose_images_are_pinned(compose):
    for name, service in compose["services"].items():
        assert "image" in service, f"{name}: name the image (and its tag)"
        assert is_pinned(service["image"]), f"{name}: {service['image']} is not pinned"


def test_compose_prometheus_is_optional_and_uses_prometheus_yml(compose):
    prometheus = compose["services"]["prometheus"]
    assert prometheus.get("profiles") == ["metrics"]
    assert any(
        str(volume).startswith("./prometheus.yml:") for volume in prometheus.get("volumes", [])
    )
    for name, service in compose["services"].items():
        if name != "prometheus":
            assert "profiles" not in service, f"{name} must start without a profile"


def test_prometheus_scrapes_every_process():
    config = yaml.safe_load((ROOT / "prometheus.yml").read_text())
    targets = set()
    for job in config["scrape_configs"]:
        job_targets = set()
        for static in job.get("static_configs", []):
            job_targets |= set(static["targets"])
        for dns in job.get("dns_sd_configs", []):
            job_targets |= {f"{name}:{dns['port']}" for name in dns["names"]}
        if any(target.endswith(f":{OPS_PORT}") for target in job_targets):
            assert job.get("metrics_path", "/metrics") == "/metrics", job["job_name"]
        targets |= job_targets
    for process in PROCESSES:
        assert f"{process}:{OPS_PORT}" in targets, f"prometheus.yml does not scrape {process}"


# --- Kubernetes (deploy/) ---------------------------------------------------


@pytest.fixture(scope="module")
def kustomization():
    return yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def manifests(kustomization):
    documents = []
    for resource in kustomization["resources"]:
        path = DEPLOY / resource
        assert path.is_file(), f"kustomization.yaml lists {resource}, which does not exist"
        for doc in load_documents(path):
            assert doc.get("apiVersion") and doc.get("kind"), f"{resource}: not a resource"
            assert doc.get("metadata", {}).get("name"), (
                f"{resource}: a {doc['kind']} without a name"
            )
            documents.append(doc)
    return documents


@pytest.fixture(scope="module")
def secret_keys(kustomization):
    keys = {}
    for generator in kustomization.get("secretGenerator", []):
        names = set()
        for env in generator.get("envs", []):
            assert (DEPLOY / env).is_file(), f"secretGenerator reads {env}, which does not exist"
            names |= set(env_file(DEPLOY / env))
        for literal in generator.get("literals", []):
            names.add(literal.partition("=")[0])
        keys[generator["name"]] = names
    return keys


@pytest.fixture(scope="module")
def config_maps(manifests):
    return {
        doc["metadata"]["name"]: doc.get("data", {})
        for doc in manifests
        if doc["kind"] == "ConfigMap"
    }


def of_kind(manifests, kind):
    return [doc for doc in manifests if doc["kind"] == kind]


def containers(workload):
    return workload["spec"]["template"]["spec"]["containers"]


def deployment_for(manifests, process):
    found = [
        doc
        for doc in of_kind(manifests, "Deployment")
        if any(
            nameko_service(container.get("command", [])) == process for container in containers(doc)
        )
    ]
    assert len(found) == 1, f"expected one Deployment running {process}.service, found {len(found)}"
    return found[0]


def named_port(container, port):
    if isinstance(port, int):
        return port
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return declared["containerPort"]
    raise AssertionError(f"{container['name']}: no port named {port}")


def environment(container, config_maps):
    """The container's variables: name -> value (secrets as "<secret>")."""
    values = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            assert name in config_maps, f"{container['name']}: no ConfigMap {name}"
            values.update(config_maps[name])
        else:
            raise AssertionError(f"{container['name']}: envFrom a Secret hides which keys it takes")
    for variable in container.get("env", []):
        values[variable["name"]] = variable.get("value", "<secret>")
    return values


def check_pod_security(workload, where):
    pod = workload["spec"]["template"]["spec"]
    pod_context = pod.get("securityContext", {})
    assert pod.get("automountServiceAccountToken") is False, f"{where}: no API token needed"
    assert pod.get("enableServiceLinks") is False, (
        f"{where}: Service links would set variables such as GATEWAY_PORT=tcp://..."
    )
    grace = pod.get("terminationGracePeriodSeconds", 30)
    for container in pod["containers"]:
        context = {**pod_context, **container.get("securityContext", {})}
        assert context.get("runAsNonRoot") is True, f"{where}: runAsNonRoot"
        assert context.get("runAsUser") == APP_USER, f"{where}: runAsUser {APP_USER}"
        assert context.get("allowPrivilegeEscalation") is False, f"{where}"
        assert context.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: drop ALL"
        assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}"
        if context.get("readOnlyRootFilesystem"):
            mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{where}: a read-only root needs a writable /tmp"
        resources = container.get("resources", {})
        assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{where}: requests"
        assert "memory" in resources.get("limits", {}), f"{where}: memory limit"
        assert is_pinned(container["image"]), f"{where}: {container['image']} is not pinned"
    return grace


def test_kustomization_resources_exist_and_parse(manifests, kustomization):
    assert kustomization["kind"] == "Kustomization"
    kinds = {doc["kind"] for doc in manifests}
    assert {"Deployment", "Service", "Job", "ConfigMap"} <= kinds


def test_kustomization_pins_the_image(kustomization):
    images = {image["name"]: image for image in kustomization.get("images", [])}
    assert APP_IMAGE in images, f"kustomization.yaml: set the {APP_IMAGE} tag under images:"
    tag = str(images[APP_IMAGE].get("newTag", ""))
    assert tag and tag != "latest"


def test_every_process_has_a_deployment(manifests):
    for process in PROCESSES:
        deployment_for(manifests, process)


@pytest.mark.parametrize("process", PROCESSES)
def test_deployment_probes_and_operations_port(manifests, config_maps, process):
    deployment = deployment_for(manifests, process)
    (container,) = containers(deployment)
    assert container["image"].split(":")[0] == APP_IMAGE
    assert container["command"] == ["nameko", "run", "--config", "config.yml", f"{process}.service"]
    assert OPS_PORT in [port["containerPort"] for port in container["ports"]]
    assert str(environment(container, config_maps).get("OPS_PORT")) == str(OPS_PORT)

    readiness, liveness = container.get("readinessProbe"), container.get("livenessProbe")
    assert readiness and liveness, f"{process}: readiness and liveness probes"
    assert readiness["httpGet"]["path"] == "/readyz", process
    assert liveness["httpGet"]["path"] == "/livez", process
    assert readiness != liveness
    for probe in (readiness, liveness, container.get("startupProbe")):
        if probe:
            assert named_port(container, probe["httpGet"]["port"]) == OPS_PORT, process

    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/scrape") == "true"
    assert annotations.get("prometheus.io/port") == str(OPS_PORT)
    assert annotations.get("prometheus.io/path", "/metrics") == "/metrics"


@pytest.mark.parametrize("process", PROCESSES)
def test_deployment_security_and_graceful_stop(manifests, config_maps, process):
    deployment = deployment_for(manifests, process)
    grace = check_pod_security(deployment, process)
    (container,) = containers(deployment)
    shutdown = int(
        environment(container, config_maps).get("SHUTDOWN_GRACE_SECONDS", shutdown_grace_default())
    )
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_stop_seconds = int(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0
    assert grace > shutdown + pre_stop_seconds, (
        f"{process}: terminationGracePeriodSeconds {grace} must exceed "
        f"SHUTDOWN_GRACE_SECONDS ({shutdown}) and the preStop pause ({pre_stop_seconds})"
    )


def test_gateway_service_reaches_the_api_port(manifests, config_maps):
    gateway = deployment_for(manifests, "gateway")
    (container,) = containers(gateway)
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    services = [
        doc
        for doc in of_kind(manifests, "Service")
        if doc["spec"]["selector"].items() <= labels.items()
    ]
    assert len(services) == 1, "one Service in front of the gateway"
    (port,) = services[0]["spec"]["ports"]
    assert port["port"] == 80
    assert named_port(container, port["targetPort"]) == GATEWAY_PORT
    assert str(environment(container, config_maps).get("GATEWAY_PORT", GATEWAY_PORT)) == str(
        GATEWAY_PORT
    )


def test_migration_job(manifests):
    (job,) = of_kind(manifests, "Job")
    assert job["spec"].get("backoffLimit") is not None
    assert job["spec"].get("ttlSecondsAfterFinished") is not None
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    (container,) = containers(job)
    assert container["command"] == BOOTSTRAP
    check_pod_security(job, "the migration Job")


def test_manifests_set_only_known_variables_and_existing_secret_keys(
    manifests, config_maps, secret_keys
):
    known = known_variables()
    for name, data in config_maps.items():
        unknown = set(data) - known
        assert not unknown, f"ConfigMap {name}: config.yml reads no {sorted(unknown)}"
    for name, keys in secret_keys.items():
        unknown = keys - known
        assert not unknown, f"Secret {name}: config.yml reads no {sorted(unknown)}"
    for workload in of_kind(manifests, "Deployment") + of_kind(manifests, "Job"):
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            for variable in container.get("env", []):
                assert variable["name"] in known, f"{where}: config.yml reads no {variable['name']}"
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    assert ref["key"] in secret_keys.get(ref["name"], set()), (
                        f"{where}: Secret {ref['name']} has no key {ref['key']}"
                    )
            # Every process checks APP_ENV=production against these two.
            env = environment(container, config_maps)
            assert {"JWT_SECRET", "ADMIN_PASSWORD", "AMQP_URI"} <= set(env), where


def test_each_service_gets_its_own_database_only(manifests, config_maps):
    db_variables = {f"{name.upper()}_DB_URL" for name in SERVICE_NAMES}
    for process in PROCESSES:
        (container,) = containers(deployment_for(manifests, process))
        given = db_variables & set(environment(container, config_maps))
        expected = set() if process == "gateway" else {f"{process.upper()}_DB_URL"}
        assert given == expected, f"{process}: database URLs {sorted(given)}"
    (job,) = of_kind(manifests, "Job")
    (container,) = containers(job)
    assert db_variables <= set(environment(container, config_maps)), "the Job migrates them all"
