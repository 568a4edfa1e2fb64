"""The Kubernetes manifests (docker/kubernetes/), rendered and validated offline.

`kubectl kustomize` renders the base and the production overlay (the overlay with its Secret generated
from `secret.env.example`, as an operator's copy would be), and every rendered document is validated
with kubernetes-validate's strict schemas for fixed Kubernetes versions: an unknown field fails, and so
does a kind it has no schema for (which its command line only warns about). Then the properties the
deployment relies on are asserted on the rendered objects: the probes, the non-root read-only pods and
their writable directories, resources everywhere, the routes of the live-event streams and their timeouts,
the NetworkPolicies, the autoscalers and disruption budgets pointing at the Deployments, the migration
Job, a Secret of placeholders only, and that every variable the ConfigMap, the Secret and the containers
set is a documented setting.

kubectl is found through the KUBECTL variable (default `kubectl` on PATH). A missing kubectl fails the
tests instead of skipping them unnoticed: the machines this project runs its tests on have it.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from django.conf import settings
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

from tests.live import executable

ROOT = Path(settings.BASE_DIR)
TREE = ROOT / "docker/kubernetes"
BASE = "base"
PRODUCTION = "overlays/production"
DIRECTORIES = (BASE, PRODUCTION)
# The oldest Kubernetes the manifests support (native gRPC probes, the preStop sleep action, the
# topology spread's nodeTaintsPolicy) and the newest kubernetes-validate==1.37.0 carries.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
USER = 10001
PRODUCTION_IMAGE = "registry.example.com/taskhub/taskhub"
PRODUCTION_TAG = "1.0.0"
PLACEHOLDER = "CHANGE-ME"
# A variable the containers set that is not a taskhub setting: the pod's own address (for DJANGO_ALLOWED_HOSTS).
NOT_SETTINGS = {"POD_IP"}
PUBLIC_PATHS_NEVER_ROUTED = ("/metrics", "/healthz", "/readyz")
ALLOWED_EGRESS_PORTS = {53, 5432, 6379}

KUBECTL = executable("KUBECTL", "kubectl")


# -- rendering ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of docker/kubernetes whose production overlay has its secret.env: the committed template."""
    copy = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(TREE, copy, ignore=shutil.ignore_patterns("secret.env"))
    shutil.copy(copy / PRODUCTION / "secret.env.example", copy / PRODUCTION / "secret.env")
    return copy


def render(directory: Path) -> list[dict[str, Any]]:
    if KUBECTL is None:
        pytest.fail("kubectl is not installed: put it on PATH, or name it with KUBECTL=/path/to/kubectl.")
    result = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="module")
def rendered(tree: Path) -> dict[str, list[dict[str, Any]]]:
    return {directory: render(tree / directory) for directory in DIRECTORIES}


@pytest.fixture(params=DIRECTORIES)
def documents(request: pytest.FixtureRequest, rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered[request.param]


@pytest.fixture
def production(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered[PRODUCTION]


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [document for document in documents if document["kind"] == kind]


def one(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [document for document in of_kind(documents, kind) if document["metadata"]["name"] == name]
    return found


def workloads(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return of_kind(documents, "Deployment") + of_kind(documents, "Job")


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    pod = workload["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {variable["name"]: variable for variable in container.get("env", [])}


# -- schema validation ---------------------------------------------------------------------------------------


def validation_errors(documents: list[dict[str, Any]]) -> list[str]:
    """Every finding of kubernetes-validate's strict schemas, a missing schema (unknown kind or
    apiVersion: the command line's mere warning) included."""
    errors = []
    for document in documents:
        where = f"{document.get('kind')}/{document.get('metadata', {}).get('name')}"
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except SchemaNotFoundError as error:
                errors.append(f"{where} ({version}): {error.message}")
            except ValidationError as error:
                path = ".".join(map(str, error.path))
                errors.append(f"{where} ({version}): {path}: {error.message}")
    return errors


def test_every_rendered_document_is_valid_kubernetes(documents: list[dict[str, Any]]) -> None:
    assert documents
    assert validation_errors(documents) == []


def test_validation_fails_on_an_unknown_field_and_an_unknown_kind(production: list[dict[str, Any]]) -> None:
    """What the test above would report: a misspelt field, and a misspelt kind (only a warning for the
    command line)."""
    web = one(production, "Deployment", "taskhub-web")
    misspelt_field = yaml.safe_load(yaml.safe_dump(web))
    misspelt_field["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True
    misspelt_kind = {**yaml.safe_load(yaml.safe_dump(web)), "kind": "Deploymnet"}
    field_errors = validation_errors([misspelt_field])
    assert len(field_errors) == len(KUBERNETES_VERSIONS)
    assert all("readOnlyRootFilesytem" in error for error in field_errors), field_errors
    kind_errors = validation_errors([misspelt_kind])
    assert len(kind_errors) == len(KUBERNETES_VERSIONS)
    assert all("Couldn't find schema for kind Deploymnet" in error for error in kind_errors), kind_errors


def test_a_misspelt_field_in_the_sources_fails_validation(tmp_path: Path) -> None:
    copy = tmp_path / "kubernetes"
    shutil.copytree(TREE, copy, ignore=shutil.ignore_patterns("secret.env"))
    source = copy / BASE / "web.yaml"
    source.write_text(source.read_text().replace("readinessProbe:", "readinesProbe:", 1))
    errors = validation_errors(render(copy / BASE))
    assert errors and all("readinesProbe" in error for error in errors), errors


# -- the workloads ---------------------------------------------------------------------------------------------


def container_of(documents: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    container: dict[str, Any] = one(documents, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]
    return container


HTTP_DEPLOYMENTS = ("taskhub-web", "taskhub-events")


def test_every_deployment_has_startup_liveness_and_readiness_probes(documents: list[dict[str, Any]]) -> None:
    grpc = container_of(documents, "taskhub-grpc")
    for deployment in of_kind(documents, "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(container), container["name"]
    # HTTP (web and events): liveness never touches the database; readiness does.
    for http in (container_of(documents, name) for name in HTTP_DEPLOYMENTS):
        assert http["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert http["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert http["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # gRPC: readiness is the native gRPC health probe on the serving port; liveness is not (the health
    # service is NOT_SERVING while the database is down, which must not restart the pods).
    ports = {port["name"]: port["containerPort"] for port in grpc["ports"]}
    assert grpc["readinessProbe"]["grpc"]["port"] == ports["grpc"] == 50051
    assert "service" not in grpc["readinessProbe"]["grpc"]  # "": the whole server
    assert "grpc" not in grpc["livenessProbe"] and "grpc" not in grpc["startupProbe"]
    assert grpc["livenessProbe"]["tcpSocket"]["port"] == "grpc"


def test_the_probes_host_is_allowed(documents: list[dict[str, Any]]) -> None:
    """The kubelet and Prometheus send `Host: <pod IP>:8000`: the web and events pods allow their own IP."""
    [config] = of_kind(documents, "ConfigMap")
    assert config["data"]["DJANGO_ALLOWED_HOSTS"]  # what $(DJANGO_ALLOWED_HOSTS) expands to (envFrom)
    for http in (container_of(documents, name) for name in HTTP_DEPLOYMENTS):
        names = [variable["name"] for variable in http["env"]]
        env = env_of(http)
        assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
        assert env["DJANGO_ALLOWED_HOSTS"]["value"] == "$(DJANGO_ALLOWED_HOSTS),$(POD_IP)"
        assert names.index("POD_IP") < names.index("DJANGO_ALLOWED_HOSTS")  # only earlier variables expand
        assert http["envFrom"][0]["configMapRef"]["name"] == config["metadata"]["name"]


def test_pods_run_as_non_root_with_a_read_only_root(documents: list[dict[str, Any]]) -> None:
    for workload in workloads(documents):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == USER
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == "taskhub"
        assert pod["enableServiceLinks"] is False
        for container in containers(workload):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True and context["runAsUser"] == USER
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert context["seccompProfile"]["type"] == "RuntimeDefault"
    [account] = of_kind(documents, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


def test_tmp_and_the_metrics_directory_are_writable_empty_dirs(documents: list[dict[str, Any]]) -> None:
    for workload in workloads(documents):
        pod = workload["spec"]["template"]["spec"]
        empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
        for container in containers(workload):
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            metrics_dir = env_of(container)["PROMETHEUS_MULTIPROC_DIR"]["value"]
            for path in ("/tmp", metrics_dir):
                assert mounts.get(path) in empty_dirs, (workload["metadata"]["name"], path, mounts)
            assert not any(mount.get("readOnly") for mount in container["volumeMounts"])


def test_every_container_has_requests_and_limits(documents: list[dict[str, Any]]) -> None:
    for workload in workloads(documents):
        for container in containers(workload):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), (container["name"], resources)


def test_the_image_is_the_release_for_every_role(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for directory, expected in ((BASE, "taskhub:latest"), (PRODUCTION, f"{PRODUCTION_IMAGE}:{PRODUCTION_TAG}")):
        roles = {}
        for workload in workloads(rendered[directory]):
            [container] = containers(workload)
            assert container["image"] == expected, directory
            roles[container["name"]] = container["args"]
        assert roles == {"web": ["web"], "events": ["events"], "grpc": ["grpc"], "migrate": ["migrate"]}


def test_pods_leave_the_endpoints_before_sigterm_and_spread_over_nodes(documents: list[dict[str, Any]]) -> None:
    for deployment in of_kind(documents, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert 5 <= pre_stop < pod["terminationGracePeriodSeconds"] - 10
        spread = {constraint["topologyKey"]: constraint for constraint in pod["topologySpreadConstraints"]}
        assert (
            spread["kubernetes.io/hostname"]["labelSelector"]["matchLabels"]
            == deployment["spec"]["selector"]["matchLabels"]
        )
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        assert "replicas" not in deployment["spec"]  # the HorizontalPodAutoscaler owns it


def test_the_events_pods_give_their_streams_the_shutdown_grace(documents: list[dict[str, Any]]) -> None:
    """After preStop, uvicorn gives the streams EVENTS_SHUTDOWN_GRACE seconds to end with their retryable reason;
    the kubelet's kill must come after both."""
    pod = one(documents, "Deployment", "taskhub-events")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    grace = float(env_of(container)["EVENTS_SHUTDOWN_GRACE"]["value"])
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop + grace + 5 <= pod["terminationGracePeriodSeconds"]


def test_the_migration_job_is_named_by_the_release(rendered: dict[str, list[dict[str, Any]]]) -> None:
    [job] = of_kind(rendered[PRODUCTION], "Job")
    assert job["metadata"]["name"] == f"taskhub-migrate-{PRODUCTION_TAG}"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    [base_job] = of_kind(rendered[BASE], "Job")
    assert base_job["metadata"]["name"] == "taskhub-migrate"


# -- traffic ---------------------------------------------------------------------------------------------------


def test_services_name_the_container_ports(documents: list[dict[str, Any]]) -> None:
    for deployment in of_kind(documents, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        [service] = [
            s for s in of_kind(documents, "Service") if s["metadata"]["name"] == deployment["metadata"]["name"]
        ]
        assert service["spec"]["selector"].items() <= labels.items()
        ports = {port["name"] for port in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert {port["targetPort"] for port in service["spec"]["ports"]} == ports
    grpc = one(documents, "Service", "taskhub-grpc")
    protocols = {port["name"]: port.get("appProtocol") for port in grpc["spec"]["ports"]}
    assert protocols == {"grpc": "grpc", "metrics": "http"}


# Which Service each Ingress sends to: HTTP on one host (GraphQL's websocket upgrades and the SSE route to the
# events pods), gRPC on the other.
INGRESS_BACKENDS = {
    "taskhub-web": "taskhub-web",
    "taskhub-graphql": "taskhub-web",
    "taskhub-graphql-websocket": "taskhub-events",
    "taskhub-events": "taskhub-events",
    "taskhub-grpc": "taskhub-grpc",
    "taskhub-grpc-streams": "taskhub-grpc",
}
# The read timeout of a stream must outlast the silence between two of its frames by far: the SSE heartbeat
# (EVENTS_HEARTBEAT, 15 s) and uvicorn's websocket ping (20 s).
STREAM_READ_TIMEOUT = 3600
ANNOTATION = "nginx.ingress.kubernetes.io/"


def annotations(ingress: dict[str, Any]) -> dict[str, str]:
    return {
        key.removeprefix(ANNOTATION): value
        for key, value in ingress["metadata"].get("annotations", {}).items()
        if key.startswith(ANNOTATION)
    }


def test_ingresses_route_http_and_grpc_with_tls_and_keep_the_internal_paths_private(
    documents: list[dict[str, Any]],
) -> None:
    ingresses = {ingress["metadata"]["name"]: ingress for ingress in of_kind(documents, "Ingress")}
    assert set(ingresses) == set(INGRESS_BACKENDS)
    for name in ("taskhub-grpc", "taskhub-grpc-streams"):
        assert annotations(ingresses[name])["backend-protocol"] == "GRPC"
    for name, ingress in ingresses.items():
        [tls] = ingress["spec"]["tls"]
        assert tls["secretName"]
        assert tls["hosts"] == [rule["host"] for rule in ingress["spec"]["rules"]]
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["name"] == INGRESS_BACKENDS[name], (name, path)
                assert path["path"] not in PUBLIC_PATHS_NEVER_ROUTED and path["path"] != "/"
    [config] = of_kind(documents, "ConfigMap")
    allowed = config["data"]["DJANGO_ALLOWED_HOSTS"].split(",")
    for name in ("taskhub-web", "taskhub-graphql", "taskhub-events"):
        assert all(rule["host"] in allowed for rule in ingresses[name]["spec"]["rules"])


def routes(ingress: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (rule["host"], path["path"], path["pathType"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }


def test_the_live_event_streams_reach_the_events_pods_unbuffered_and_with_long_timeouts(
    documents: list[dict[str, Any]],
) -> None:
    """SSE: its exact path, unbuffered. GraphQL websockets: a canary Ingress by `Upgrade: websocket` on the very
    host and path of the /graphql Ingress of the web pods, whose timeouts it inherits (ingress-nginx ignores a
    canary's own). gRPC: the two streaming methods, exactly. Every stream gets the long read and send timeouts."""
    sse = one(documents, "Ingress", "taskhub-events")
    [(host, path, kind)] = routes(sse)
    assert (path, kind) == ("/api/v1/tasks/events", "Exact")
    assert annotations(sse)["proxy-buffering"] == "off"

    graphql = one(documents, "Ingress", "taskhub-graphql")
    canary = one(documents, "Ingress", "taskhub-graphql-websocket")
    assert routes(canary) == routes(graphql) == {(host, "/graphql", "Prefix")}
    assert annotations(canary) == {
        "canary": "true",
        "canary-by-header": "Upgrade",
        "canary-by-header-value": "websocket",
    }
    assert "canary" not in annotations(graphql)
    web = one(documents, "Ingress", "taskhub-web")
    assert not {path for _, path, _ in routes(web)} & {"/graphql", "/api/v1/tasks/events"}
    assert int(annotations(web)["proxy-read-timeout"]) <= 60  # request/response traffic keeps a short one

    streams = one(documents, "Ingress", "taskhub-grpc-streams")
    assert {(path, kind) for _, path, kind in routes(streams)} == {
        ("/tasks.v1.TaskService/WatchTasks", "Exact"),
        ("/tasks.v1.TaskService/SyncTasks", "Exact"),
    }
    for ingress in (sse, graphql, streams):
        for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
            assert int(annotations(ingress)[timeout]) >= STREAM_READ_TIMEOUT, (ingress["metadata"]["name"], timeout)


def test_network_policies_admit_only_the_ingress_controller_and_prometheus(documents: list[dict[str, Any]]) -> None:
    policies = {policy["metadata"]["name"]: policy["spec"] for policy in of_kind(documents, "NetworkPolicy")}
    default = policies["taskhub-default"]
    assert default["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "taskhub"}
    assert set(default["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in default
    egress_ports = {port["port"] for rule in default["egress"] for port in rule["ports"]}
    assert egress_ports == ALLOWED_EGRESS_PORTS
    for rule in default["egress"]:
        assert rule["to"], rule  # never "anywhere"

    def sources(name: str) -> dict[int, set[str]]:
        admitted: dict[int, set[str]] = {}
        for rule in policies[name]["ingress"]:
            namespaces = {
                peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in rule["from"]
            }
            for port in rule["ports"]:
                admitted.setdefault(port["port"], set()).update(namespaces)
        return admitted

    assert sources("taskhub-web-ingress") == {8000: {"ingress-nginx", "monitoring"}}
    assert sources("taskhub-events-ingress") == {8000: {"ingress-nginx", "monitoring"}}
    assert sources("taskhub-grpc-ingress") == {50051: {"ingress-nginx"}, 9464: {"monitoring"}}


def test_autoscalers_and_disruption_budgets_target_the_deployments(documents: list[dict[str, Any]]) -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind(documents, "Deployment")}
    scaled = set()
    for autoscaler in of_kind(documents, "HorizontalPodAutoscaler"):
        assert autoscaler["apiVersion"] == "autoscaling/v2"
        target = autoscaler["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        assert target["name"] in deployments
        assert 2 <= autoscaler["spec"]["minReplicas"] <= autoscaler["spec"]["maxReplicas"]
        [metric] = autoscaler["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        scaled.add(target["name"])
    assert scaled == set(deployments)
    budgeted = set()
    for budget in of_kind(documents, "PodDisruptionBudget"):
        assert budget["apiVersion"] == "policy/v1"
        selector = budget["spec"]["selector"]["matchLabels"]
        [name] = [n for n, d in deployments.items() if selector == d["spec"]["selector"]["matchLabels"]]
        budgeted.add(name)
    assert budgeted == set(deployments)


# -- configuration and secrets -------------------------------------------------------------------------------------


@cache
def documented_settings() -> tuple[set[str], tuple[str, ...]]:
    """The variables of docs/configuration.md's tables (first cell), and the prefixes it documents as `X_*`."""
    names: set[str] = set()
    for line in (ROOT / "docs/configuration.md").read_text().splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*\*?)`", line.split("|")[1]))
    prefixes = tuple(name[:-1] for name in names if name.endswith("*"))
    return {name for name in names if not name.endswith("*")}, prefixes


def documented(name: str) -> bool:
    names, prefixes = documented_settings()
    return name in names or name.startswith(prefixes)


def test_the_documented_settings_are_read() -> None:
    names, prefixes = documented_settings()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "TRUSTED_PROXY_COUNT", "GRPC_METRICS_PORT"} <= names
    assert "OTEL_BSP_" in prefixes
    assert not documented("TRUSTED_PROXIES_COUNT")


def test_every_variable_set_is_a_documented_setting(documents: list[dict[str, Any]]) -> None:
    keys = set()
    for kind in ("ConfigMap", "Secret"):
        for document in of_kind(documents, kind):
            keys |= set(document.get("data", {}))
    for workload in workloads(documents):
        for container in containers(workload):
            keys |= set(env_of(container)) - NOT_SETTINGS
    undocumented = sorted(key for key in keys if not documented(key))
    assert undocumented == [], "not in docs/configuration.md: " + ", ".join(undocumented)


def test_the_config_map_holds_the_production_settings(documents: list[dict[str, Any]]) -> None:
    [config] = of_kind(documents, "ConfigMap")
    data = config["data"]
    assert data["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert data["TRUSTED_PROXY_COUNT"] == "1"
    assert data["SECURE_PROXY_SSL_HEADER_ENABLED"] == "true"
    assert data["API_DOCS_ENABLED"] == "false"
    assert data["OTEL_TRACES_EXPORTER"] == "none"
    assert data["GRPC_HOST"] == "0.0.0.0" and data["GRPC_METRICS_PORT"] == "9464"
    assert not {"DJANGO_DEBUG", "DJANGO_SECRET_KEY", "JWT_SIGNING_KEY", "METRICS_TOKEN"} & set(data)


SECRET_KEYS = {"DJANGO_SECRET_KEY", "JWT_SIGNING_KEY", "METRICS_TOKEN", "DATABASE_URL", "REDIS_URL"}
RANDOM_LOOKING = re.compile(r"[A-Fa-f0-9]{16,}|[A-Za-z0-9+/_-]{24,}")


def test_the_secret_is_a_template_of_placeholders(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert of_kind(rendered[BASE], "Secret") == []
    [secret] = of_kind(rendered[PRODUCTION], "Secret")
    values = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert set(values) == SECRET_KEYS
    for key, value in values.items():
        assert PLACEHOLDER in value, key
        assert not RANDOM_LOOKING.search(value), key
    # Every workload takes it, under its generated name.
    for workload in workloads(rendered[PRODUCTION]):
        for container in containers(workload):
            refs = [source["secretRef"]["name"] for source in container["envFrom"] if "secretRef" in source]
            assert refs == [secret["metadata"]["name"]]


def test_no_secret_file_is_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "docker/kubernetes"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert f"docker/kubernetes/{PRODUCTION}/secret.env.example" in tracked
    assert not [name for name in tracked if name.endswith("secret.env")]
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", f"docker/kubernetes/{PRODUCTION}/secret.env"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, "secret.env must be ignored by git"


def test_the_apply_order_selectors_pick_the_documented_phases(production: list[dict[str, Any]]) -> None:
    """docs/kubernetes.md, "Apply order": configuration first, then the migration, then everything."""
    page = (ROOT / "docs/kubernetes.md").read_text()
    component = "app.kubernetes.io/component"
    assert f"kubectl apply -k . -l '!{component}'" in page
    assert f"kubectl apply -k . -l {component}=migrate" in page
    first = {(d["kind"], d["metadata"]["name"]) for d in production if component not in d["metadata"].get("labels", {})}
    assert {kind for kind, _ in first} == {"ServiceAccount", "ConfigMap", "Secret", "NetworkPolicy"}
    assert ("NetworkPolicy", "taskhub-default") in first  # the migration's egress to PostgreSQL and DNS
    migration = [d for d in production if d["metadata"].get("labels", {}).get(component) == "migrate"]
    assert [d["kind"] for d in migration] == ["Job"]
