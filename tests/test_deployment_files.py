"""The deployment files agree with the project and with each other.

Reads docker-compose.yml, the Dockerfile, prometheus.yml and the Kubernetes
manifests of deploy/ and of its Component deploy/cluster/ (no Docker, no
cluster, no network); checks the operators' custom resources of
deploy/cluster/ against the JSON schemas beside them. `.ci/run` also renders
both layouts with kubectl, checks the built-in kinds against the Kubernetes
schemas and runs these tests again on that rendering, lints the Dockerfile
and lets docker-compose read its file.
"""

import functools
import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

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


# --- Kubernetes (deploy/ and deploy/cluster/) -------------------------------
#
# Two layouts: "base" (deploy/) and "cluster" (deploy/ with the Component
# deploy/cluster/). Without a cluster or kubectl, the tests put each layout
# together themselves: the base's resources, then the Component's resources
# and patches, merged as kustomize merges the fields the patches use (maps
# key by key, null deletes, lists of named items by name: the patch's items
# first, then the others). `.ci/run` runs them again on kubectl's own
# rendering (LOCALNEWS_RENDERED_BASE / LOCALNEWS_RENDERED_CLUSTER: the output
# of `kubectl kustomize`), so that this merge cannot drift from kustomize's.

CLUSTER = DEPLOY / "cluster"
SCHEMAS = CLUSTER / "schemas"
RENDERED = {
    "base": os.environ.get("LOCALNEWS_RENDERED_BASE"),
    "cluster": os.environ.get("LOCALNEWS_RENDERED_CLUSTER"),
}
# The Secrets the operators create for a RabbitmqCluster / a CloudNativePG
# Cluster of that name, and the keys of theirs that pods may use.
OPERATOR_SECRETS = {
    "RabbitmqCluster": ("{}-default-user", {"username", "password", "host", "port"}),
    "Cluster": ("{}-app", {"username", "password", "host", "port", "dbname", "uri"}),
}
HOSTNAME, ZONE = "kubernetes.io/hostname", "topology.kubernetes.io/zone"
# $(NAME) in an env value: kubelet puts in the value of a variable defined
# before it in the same container.
REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def resources_of(directory, kustomization):
    documents = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        assert path.is_file(), f"{directory.name}: lists {resource}, which does not exist"
        for doc in load_documents(path):
            assert doc.get("apiVersion") and doc.get("kind"), f"{resource}: not a resource"
            assert doc.get("metadata", {}).get("name"), (
                f"{resource}: a {doc['kind']} without a name"
            )
            documents.append(doc)
    return documents


def strategic_merge(target, patch):
    """kustomize's strategic merge, for the fields deploy/cluster/ patches."""
    if isinstance(patch, dict):
        merged = dict(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = strategic_merge(merged.get(key), value)
        return merged
    if isinstance(patch, list):
        if isinstance(target, list) and all(
            isinstance(item, dict) and "name" in item for item in patch + target
        ):
            originals = {item["name"]: item for item in target}
            merged = [strategic_merge(originals.get(item["name"]), item) for item in patch]
            patched = {item["name"] for item in patch}
            return merged + [item for item in target if item["name"] not in patched]
        return [strategic_merge(None, item) for item in patch]
    return patch


def generated_secrets(directory, kustomization, secrets):
    """Apply the kustomization's secretGenerator to {name: keys}."""
    for generator in kustomization.get("secretGenerator", []):
        keys = set()
        for env in generator.get("envs", []):
            assert (directory / env).is_file(), f"secretGenerator reads {env}: no such file"
            keys |= set(env_file(directory / env))
        for literal in generator.get("literals", []):
            keys.add(literal.partition("=")[0])
        behavior = generator.get("behavior", "create")
        if behavior == "create":
            assert generator["name"] not in secrets, f"Secret {generator['name']} twice"
            secrets[generator["name"]] = keys
        else:
            assert generator["name"] in secrets, f"{behavior}: no Secret {generator['name']}"
            secrets[generator["name"]] = keys | (
                secrets[generator["name"]] if behavior == "merge" else set()
            )
    return secrets


def operator_secrets(manifests):
    secrets = {}
    for doc in manifests:
        if doc["kind"] in OPERATOR_SECRETS and "." in doc["apiVersion"]:
            name, keys = OPERATOR_SECRETS[doc["kind"]]
            secrets[name.format(doc["metadata"]["name"])] = keys
    return secrets


@functools.cache
def layout(name):
    """(manifests, {name: keys} of the Secrets it makes) of a layout."""
    if RENDERED[name]:
        manifests = load_documents(Path(RENDERED[name]))
        secrets = {
            doc["metadata"]["name"]: set(doc.get("data", {})) | set(doc.get("stringData", {}))
            for doc in manifests
            if doc["kind"] == "Secret"
        }
        return manifests, secrets
    base = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    manifests = resources_of(DEPLOY, base)
    secrets = generated_secrets(DEPLOY, base, {})
    if name == "cluster":
        component = yaml.safe_load((CLUSTER / "kustomization.yaml").read_text())
        manifests = manifests + resources_of(CLUSTER, component)
        for entry in component.get("patches", []):
            assert set(entry) == {"path"}, f"deploy/cluster: a patch other than a file: {entry}"
            for patch in load_documents(CLUSTER / entry["path"]):
                key = (patch["kind"], patch["metadata"]["name"])
                found = [
                    i
                    for i, doc in enumerate(manifests)
                    if (doc["kind"], doc["metadata"]["name"]) == key
                ]
                assert len(found) == 1, f"{entry['path']}: no single {key[0]} {key[1]} to patch"
                manifests[found[0]] = strategic_merge(manifests[found[0]], patch)
        secrets = generated_secrets(CLUSTER, component, secrets)
    return manifests, secrets


@pytest.fixture(scope="module")
def kustomization():
    return yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def component():
    return yaml.safe_load((CLUSTER / "kustomization.yaml").read_text())


@pytest.fixture(scope="module", params=["base", "cluster"])
def layout_name(request):
    return request.param


@pytest.fixture(scope="module")
def manifests(layout_name):
    return layout(layout_name)[0]


@pytest.fixture(scope="module")
def secret_keys(layout_name):
    """{Secret name: keys}: those the layout makes, and the operators' ones."""
    manifests, secrets = layout(layout_name)
    return {**secrets, **operator_secrets(manifests)}


@pytest.fixture(scope="module")
def cluster():
    return layout("cluster")[0]


def config_maps_of(manifests):
    return {
        doc["metadata"]["name"]: doc.get("data", {})
        for doc in manifests
        if doc["kind"] == "ConfigMap"
    }


@pytest.fixture(scope="module")
def config_maps(manifests):
    return config_maps_of(manifests)


def of_kind(manifests, kind):
    return [doc for doc in manifests if doc["kind"] == kind]


def only(manifests, kind):
    found = of_kind(manifests, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


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


def referenced(value):
    return set(REFERENCE.findall(str(value)))


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
    job = only(manifests, "Job")
    assert job["spec"].get("backoffLimit") is not None
    assert job["spec"].get("ttlSecondsAfterFinished") is not None
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    (container,) = containers(job)
    assert container["command"] == BOOTSTRAP
    check_pod_security(job, "the migration Job")


def test_manifests_set_only_known_variables_and_existing_secret_keys(
    layout_name, manifests, config_maps, secret_keys
):
    known = known_variables()
    for name, data in config_maps.items():
        unknown = set(data) - known
        assert not unknown, f"ConfigMap {name}: config.yml reads no {sorted(unknown)}"
    for name, keys in layout(layout_name)[1].items():
        unknown = keys - known
        assert not unknown, f"Secret {name}: config.yml reads no {sorted(unknown)}"
    for workload in of_kind(manifests, "Deployment") + of_kind(manifests, "Job"):
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            # Variables config.yml does not read may only be parts of others
            # (a login, put into a URL with $(NAME)).
            parts = set().union(*(referenced(v.get("value")) for v in container.get("env", [])))
            for variable in container.get("env", []):
                assert variable["name"] in known | parts, (
                    f"{where}: config.yml reads no {variable['name']}, and no variable uses it"
                )
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    assert ref["key"] in secret_keys.get(ref["name"], set()), (
                        f"{where}: Secret {ref['name']} has no key {ref['key']}"
                    )
            # Every process checks APP_ENV=production against these two.
            env = environment(container, config_maps)
            assert {"JWT_SECRET", "ADMIN_PASSWORD", "AMQP_URI"} <= set(env), where


def test_variable_references_refer_to_earlier_variables(manifests, config_maps):
    for workload in of_kind(manifests, "Deployment") + of_kind(manifests, "Job"):
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            defined = set()
            for source in container.get("envFrom", []):
                defined |= set(config_maps[source["configMapRef"]["name"]])
            for variable in container.get("env", []):
                missing = referenced(variable.get("value")) - defined
                assert not missing, (
                    f"{where}: {variable['name']} uses $({', '.join(sorted(missing))}), "
                    "not defined before it: kubelet would leave it as it is"
                )
                defined.add(variable["name"])


def test_each_service_gets_its_own_database_only(manifests, config_maps):
    db_variables = {f"{name.upper()}_DB_URL" for name in SERVICE_NAMES}
    for process in PROCESSES:
        (container,) = containers(deployment_for(manifests, process))
        given = db_variables & set(environment(container, config_maps))
        expected = set() if process == "gateway" else {f"{process.upper()}_DB_URL"}
        assert given == expected, f"{process}: database URLs {sorted(given)}"
    (container,) = containers(only(manifests, "Job"))
    assert db_variables <= set(environment(container, config_maps)), "the Job migrates them all"


# --- deploy/cluster/: several machines ---------------------------------------


def config_database_urls():
    """{USERS_DB_URL: the default URL config.yml gives it, ...}."""
    text = (ROOT / "config.yml").read_text()
    return dict(re.findall(r"\$\{([A-Z_]+_DB_URL):([^}]+)\}", text))


def custom_resources(manifests):
    """The resources of an operator's API (a group with a dot, not *.k8s.io)."""
    return [
        doc
        for doc in manifests
        if "/" in doc["apiVersion"]
        and "." in (group := doc["apiVersion"].split("/")[0])
        and not group.endswith(".k8s.io")
    ]


@functools.cache
def schemas():
    """{(apiVersion, kind): JSON schema} of deploy/cluster/schemas/."""
    import jsonschema

    found = {}
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        key = (schema["properties"]["apiVersion"]["const"], schema["properties"]["kind"]["const"])
        assert key not in found, f"{path.name}: a second schema for {key}"
        found[key] = schema
    return found


def schema_errors(doc):
    import jsonschema

    schema = schemas()[(doc["apiVersion"], doc["kind"])]
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(doc)
    ]


def rabbitmq_cluster(cluster):
    return only(
        [doc for doc in cluster if doc["apiVersion"].startswith("rabbitmq.com/")], "RabbitmqCluster"
    )


def postgres_cluster(cluster):
    return only(
        [doc for doc in cluster if doc["apiVersion"].startswith("postgresql.cnpg.io/")], "Cluster"
    )


def rabbitmq_setting(rabbitmq, key):
    """A key of spec.rabbitmq.additionalConfig (rabbitmq.conf: key = value lines)."""
    for line in rabbitmq["spec"].get("rabbitmq", {}).get("additionalConfig", "").splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip()
    return None


def workloads(manifests):
    return of_kind(manifests, "Deployment") + of_kind(manifests, "Job")


def pod_labels(workload):
    return workload["spec"]["template"]["metadata"]["labels"]


def selects(selector, labels):
    assert set(selector) <= {"matchLabels"}, f"selector {selector}: matchLabels only"
    return selector["matchLabels"].items() <= labels.items()


def secret_reference(container, name):
    """(Secret, key) a variable of the container takes its value from."""
    for variable in container.get("env", []):
        if variable["name"] == name:
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            assert ref, f"{container['name']}: {name} is not taken from a Secret"
            return ref["name"], ref["key"]
    raise AssertionError(f"{container['name']}: no variable {name}")


def check_login(container, url, secret, where):
    """url's user and password are $(USER):$(PASSWORD), both from `secret`."""
    user, _, password = url.netloc.rpartition("@")[0].partition(":")
    user_var, password_var = REFERENCE.fullmatch(user), REFERENCE.fullmatch(password)
    assert user_var and password_var, f"{where}: login {user}:{password} is not $(USER):$(PASSWORD)"
    assert secret_reference(container, user_var.group(1)) == (secret, "username"), where
    assert secret_reference(container, password_var.group(1)) == (secret, "password"), where


def test_cluster_is_a_component_on_top_of_the_base(component, kustomization):
    # kustomize refuses a kustomization that includes a directory above its
    # own: deploy/cluster/ is a Component, added by a kustomization elsewhere.
    assert component["kind"] == "Component"
    assert component["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert not any(".." in resource for resource in component.get("resources", []))
    assert "cluster" not in str(kustomization.get("resources")) + str(
        kustomization.get("components")
    ), "the base stays the single-broker, external-database layout"
    assert component.get("namespace") == kustomization["namespace"]


def test_cluster_rabbitmq_is_a_three_node_cluster_with_a_budget(cluster):
    rabbitmq = rabbitmq_cluster(cluster)
    name, spec = rabbitmq["metadata"]["name"], rabbitmq["spec"]
    assert spec["replicas"] == 3
    assert is_pinned(spec["image"]), f"RabbitmqCluster {name}: pin the image"
    # The operator labels the pods app.kubernetes.io/name=<name>.
    pods = {"app.kubernetes.io/name": name}
    budgets = [
        doc
        for doc in of_kind(cluster, "PodDisruptionBudget")
        if selects(doc["spec"]["selector"], pods)
    ]
    assert len(budgets) == 1, (
        f"one PodDisruptionBudget for the RabbitMQ nodes, found {len(budgets)}"
    )
    # A drain keeps a majority of the nodes: quorum queues go on.
    assert budgets[0]["spec"].get("maxUnavailable") == 1
    assert "minAvailable" not in budgets[0]["spec"]
    terms = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert {term["podAffinityTerm"]["topologyKey"] for term in terms} == {HOSTNAME, ZONE}
    for term in terms:
        assert term["podAffinityTerm"]["labelSelector"] == {"matchLabels": pods}
    # A fresh vhost of its own, on which the default user gets every permission.
    assert rabbitmq_setting(rabbitmq, "default_vhost") not in (None, "/")


def test_cluster_postgres_has_synchronous_standbys(cluster):
    postgres = postgres_cluster(cluster)
    spec = postgres["spec"]
    assert spec["instances"] >= 2, "a primary and at least one standby"
    assert is_pinned(spec["imageName"])
    assert spec.get("enablePDB", True) is True, "the operator's budgets for primary and standbys"
    synchronous = spec["postgresql"]["synchronous"]
    # A commit is on a standby too; a standby may be down without stopping writes.
    assert synchronous["number"] >= 1
    assert synchronous["number"] < spec["instances"] - 1 or (
        synchronous.get("dataDurability") == "preferred"
    ), "with dataDurability required, writes would stop with one standby down"
    affinity = spec["affinity"]
    assert affinity.get("enablePodAntiAffinity", True) is True
    assert affinity.get("topologyKey", HOSTNAME) == HOSTNAME
    assert affinity.get("podAntiAffinityType", "preferred") == "preferred"
    zone_terms = affinity["additionalPodAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert [term["podAffinityTerm"]["topologyKey"] for term in zone_terms] == [ZONE]
    assert zone_terms[0]["podAffinityTerm"]["labelSelector"] == {
        "matchLabels": {"cnpg.io/cluster": postgres["metadata"]["name"]}
    }


def test_cluster_postgres_creates_every_service_database(cluster):
    postgres = postgres_cluster(cluster)
    initdb = postgres["spec"]["bootstrap"]["initdb"]
    expected = {}
    for url in config_database_urls().values():
        parts = urlsplit(url)
        expected[parts.path.lstrip("/")] = parts.username
    assert set(expected) == set(SERVICE_NAMES), "config.yml: one database a service"
    databases = [
        doc
        for doc in of_kind(cluster, "Database")
        if doc["apiVersion"].startswith("postgresql.cnpg.io/")
    ]
    assert sorted(doc["spec"]["name"] for doc in databases) == sorted(expected)
    for doc in databases:
        spec = doc["spec"]
        assert spec["cluster"]["name"] == postgres["metadata"]["name"], doc["metadata"]["name"]
        # The role config.yml logs in as, which initdb creates.
        assert spec["owner"] == expected[spec["name"]] == initdb["owner"], spec["name"]
        assert spec.get("ensure", "present") == "present"
        assert spec.get("databaseReclaimPolicy", "retain") == "retain", "never drop data on delete"
    assert initdb["database"] in expected


def test_cluster_makes_every_durable_queue_a_quorum_queue(cluster):
    from servicekit.queues import durable_queue_arguments

    config_maps = config_maps_of(cluster)
    for workload in workloads(cluster):
        for container in containers(workload):
            value = environment(container, config_maps).get("AMQP_QUEUE_TYPE")
            assert durable_queue_arguments({"AMQP_QUEUE_TYPE": value}) == {
                "x-queue-type": "quorum"
            }, f"{workload['metadata']['name']}: AMQP_QUEUE_TYPE={value}"


def test_cluster_processes_use_the_rabbitmq_cluster(cluster):
    rabbitmq = rabbitmq_cluster(cluster)
    name = rabbitmq["metadata"]["name"]
    secret = OPERATOR_SECRETS["RabbitmqCluster"][0].format(name)
    config_maps = config_maps_of(cluster)
    for workload in workloads(cluster):
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            url = urlsplit(environment(container, config_maps)["AMQP_URI"])
            # The operator's Service for the cluster is named like it.
            assert (url.scheme, url.hostname, url.port) == ("amqp", name, 5672), where
            assert url.path.lstrip("/") == rabbitmq_setting(rabbitmq, "default_vhost"), where
            check_login(container, url, secret, where)


def test_cluster_database_urls_point_at_the_read_write_service(cluster):
    postgres = postgres_cluster(cluster)
    name = postgres["metadata"]["name"]
    secret = OPERATOR_SECRETS["Cluster"][0].format(name)
    defaults = config_database_urls()
    config_maps = config_maps_of(cluster)
    seen = set()
    for workload in workloads(cluster):
        for container in containers(workload):
            for variable, value in environment(container, config_maps).items():
                if variable not in defaults:
                    continue
                where = f"{workload['metadata']['name']}/{container['name']}: {variable}"
                url = urlsplit(value)
                # <cluster>-rw: the Service CloudNativePG keeps on the primary.
                assert (url.scheme, url.hostname, url.port) == ("postgresql", f"{name}-rw", 5432), (
                    where
                )
                assert url.path == urlsplit(defaults[variable]).path, f"{where}: another database"
                check_login(container, url, secret, where)
                seen.add(variable)
    assert seen == set(defaults)


def test_cluster_secret_holds_no_broker_or_database_url():
    keys = set(env_file(CLUSTER / "secrets.env"))
    assert "AMQP_URI" not in keys
    assert not {key for key in keys if key.endswith("_DB_URL")}, "the operators' Secrets hold them"


@pytest.mark.parametrize("process", PROCESSES)
def test_cluster_process_runs_spread_copies_with_a_budget(cluster, process):
    deployment = deployment_for(cluster, process)
    labels = pod_labels(deployment)
    replicas = deployment["spec"]["replicas"]
    assert replicas >= 2, f"{process}: one copy is one machine's failure from an outage"

    others = [pod_labels(doc) for doc in workloads(cluster) if doc is not deployment]
    budgets = [
        doc
        for doc in of_kind(cluster, "PodDisruptionBudget")
        if selects(doc["spec"]["selector"], labels)
    ]
    assert len(budgets) == 1, f"{process}: one PodDisruptionBudget, found {len(budgets)}"
    spec = budgets[0]["spec"]
    assert not any(selects(spec["selector"], pods) for pods in others), (
        f"{process}: budget selects others"
    )
    down = spec["maxUnavailable"] if "maxUnavailable" in spec else replicas - spec["minAvailable"]
    assert isinstance(down, int) and 1 <= down < replicas, (
        f"{process}: a drain must be able to evict a copy, and keep one running"
    )

    anti_affinity = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti_affinity, (
        f"{process}: preferred only: copies must still start on fewer machines"
    )
    terms = anti_affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert sorted(term["podAffinityTerm"]["topologyKey"] for term in terms) == sorted(
        [HOSTNAME, ZONE]
    )
    for term in terms:
        selector = term["podAffinityTerm"]["labelSelector"]
        assert selector == deployment["spec"]["selector"], f"{process}: spread its own copies"
        assert selects(selector, labels)
        assert not any(selects(selector, pods) for pods in others)


def test_cluster_custom_resources_match_their_schemas(cluster):
    found = custom_resources(cluster)
    assert {(doc["apiVersion"], doc["kind"]) for doc in found} == set(schemas()), (
        "one schema in deploy/cluster/schemas/ for each kind of custom resource, and no other"
    )
    for doc in found:
        errors = schema_errors(doc)
        assert not errors, f"{doc['kind']} {doc['metadata']['name']}: {errors}"


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("RabbitmqCluster", ("spec", "replica"), 3),  # misspelt
        ("RabbitmqCluster", ("spec", "replicas"), -1),
        ("RabbitmqCluster", ("spec", "rabbitmq", "additionalPlugins"), ["rabbitmq-shovel"]),
        ("RabbitmqCluster", ("spec", "persistence", "storage"), "ten gigabytes"),
        ("Cluster", ("spec", "instance"), 3),  # misspelt
        ("Cluster", ("spec", "instances"), 0),
        ("Cluster", ("spec", "postgresql", "synchronous", "method"), "all"),
        ("Cluster", ("spec", "affinity", "podAntiAffinityType"), "soft"),
        ("Cluster", ("spec", "bootstrap", "initdb", "postInitSQL"), ["SELECT 1"]),  # not used
        ("Database", ("spec", "name"), "postgres"),
        ("Database", ("spec", "databaseReclaimPolicy"), "drop"),
        ("Database", ("spec", "clusterName"), "localnews-postgres"),  # misspelt
        ("Database", ("status",), {"applied": True}),
    ],
)
def test_cluster_schemas_refuse_unknown_fields_and_bad_values(cluster, kind, path, value):
    (doc,) = [doc for doc in custom_resources(cluster) if doc["kind"] == kind][:1]
    broken = json.loads(json.dumps(doc))
    node = broken
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    assert schema_errors(broken), f"{kind}: {'.'.join(path)}={value!r} passes the schema"
