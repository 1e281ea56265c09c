"""What the rendered chart says, checked against how the router really works: the scaling
signals (HPA on in-flight requests, KEDA on queue depth and stream lag), probes, GPU
requests, non-root pods, network policies, and the topology, environment and command
lines the router, workers and engine nodes will read."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from megacity.cli import _parser
from megacity.config.settings import Settings
from megacity.config.topology import Topology, parse_topology
from megacity.db.jobs import Priority
from megacity.jobs.keys import GROUP, Keys
from megacity.pipelines.generation import THUMBNAIL, TTS
from megacity.routing.signals import ENGINE_WAITING, WAITING
from tests.deploy.conftest import NAMESPACE, RELEASE, ROOT, Render, chart_values, render_chart

GPU = "nvidia.com/gpu"
GPU_ENGINES = ("speech", "image", "tts")
APP_COMPONENTS = ("router", "worker", "migrations")


def values(region: str) -> dict[str, Any]:
    return chart_values(region)


def component(resource: dict[str, Any]) -> str:
    return str(resource["metadata"]["labels"]["app.kubernetes.io/component"])


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod.get("initContainers", [])) + list(pod["containers"])


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        if expr["operator"] == "In" and labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def renders_with(renders: dict[str, Render], kind: str) -> list[Render]:
    return [r for r in renders.values() if r.of_kind(kind)]


# ---- security ---------------------------------------------------------------------------


def test_no_container_runs_as_root_or_writes_its_root_filesystem(
    renders: dict[str, Render],
) -> None:
    checked = 0
    for render in renders.values():
        for resource, pod in render.workloads():
            where = f"{render.name}: {resource['kind']}/{resource['metadata']['name']}"
            assert pod["securityContext"]["runAsNonRoot"] is True, where
            assert pod["securityContext"]["runAsUser"] > 0, where
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert pod["automountServiceAccountToken"] is False, where
            assert not pod.get("hostNetwork") and not pod.get("hostPID"), where
            for c in containers(pod):
                ctx = c["securityContext"]
                assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] > 0, where
                assert ctx["allowPrivilegeEscalation"] is False, where
                assert ctx["readOnlyRootFilesystem"] is True, where
                assert ctx["capabilities"]["drop"] == ["ALL"], where
                assert "add" not in ctx["capabilities"], where
                mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
                if resource["kind"] != "Pod":
                    assert "/tmp" in mounts, f"{where}: nowhere to write temporary files"
                requests, limits = c["resources"]["requests"], c["resources"]["limits"]
                assert {"cpu", "memory"} <= set(requests) and {"cpu", "memory"} <= set(limits)
                checked += 1
    assert checked > 30


def test_network_policies_admit_engines_only_from_router_and_workers(
    renders: dict[str, Render],
) -> None:
    for render in renders.values():
        policies = render.of_kind("NetworkPolicy")
        engines = render.get("NetworkPolicy", f"{RELEASE}-engines")
        sources = engines["spec"]["ingress"][0]["from"]
        clients = [s["podSelector"]["matchLabels"] for s in sources if "podSelector" in s]
        assert clients == [
            {"app.kubernetes.io/instance": RELEASE, "megacity.ai/engine-client": "true"}
        ]
        blocks = [s["ipBlock"]["cidr"] for s in sources if "ipBlock" in s]
        assert blocks == values(render.name)["crossRegion"]["allowedCIDRs"] or not blocks
        for resource, pod in render.workloads():
            labels = (
                resource["spec"]["template"]["metadata"]["labels"]
                if resource["kind"] != "Pod"
                else resource["metadata"]["labels"]
            )
            where = f"{render.name}: {resource['metadata']['name']}"
            selected = [p for p in policies if labels_match(p["spec"]["podSelector"], labels)]
            assert selected, f"{where}: no NetworkPolicy selects it"
            is_client = labels.get("megacity.ai/engine-client") == "true"
            assert is_client == (component(resource) in ("router", "worker")), where
            if labels.get("megacity.ai/role") == "engine":
                assert engines in selected, where
                ports = {c["containerPort"] for c in containers(pod)[0]["ports"]}
                assert ports <= {p["port"] for p in engines["spec"]["ingress"][0]["ports"]}
            if component(resource) in ("worker", "migrations", "test"):
                assert all(not p["spec"].get("ingress") for p in selected), where


def test_every_deployment_has_a_disruption_budget(renders: dict[str, Render]) -> None:
    for render in renders.values():
        budgets = render.of_kind("PodDisruptionBudget")
        for deployment in render.of_kind("Deployment"):
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            matching = [b for b in budgets if labels_match(b["spec"]["selector"], labels)]
            assert len(matching) == 1, deployment["metadata"]["name"]
            # maxUnavailable, never a minAvailable that would block draining a 1-replica node
            assert matching[0]["spec"] == {**matching[0]["spec"], "maxUnavailable": 1}


# ---- probes and GPUs ----------------------------------------------------------------------


def probe_paths(container: dict[str, Any]) -> dict[str, str]:
    ports = {p["name"] for p in container["ports"]}
    paths = {}
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[kind]["httpGet"]
        assert probe["port"] in ports, f"{container['name']}: {kind} on an unknown port"
        paths[kind] = probe["path"]
    return paths


def test_probes_ask_the_endpoints_each_server_has(renders: dict[str, Render]) -> None:
    expected = {
        "router": ("/healthz", "/readyz", "/healthz"),
        "engine": ("/health", "/health", "/metrics"),  # megacity/api/engine_node.py
        "vllm": ("/health", "/health", "/health"),
    }
    seen = set()
    for render in renders.values():
        for deployment in render.of_kind("Deployment"):
            name = component(deployment)
            if name == "worker":
                continue
            kind = (
                "router" if name == "router" else "vllm" if name.startswith("vllm-") else "engine"
            )
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            paths = probe_paths(container)
            assert tuple(paths.values()) == expected[kind], deployment["metadata"]["name"]
            seen.add(kind)
    assert seen == set(expected)


def test_the_router_really_answers_its_probe_paths() -> None:
    from megacity.api.ops import router

    paths = {getattr(route, "path", "") for route in router.routes}
    assert {"/healthz", "/readyz", "/metrics"} <= paths


def test_gpu_servers_request_their_gpus_and_tolerate_gpu_nodes(renders: dict[str, Render]) -> None:
    for render in renders.values():
        settings = values(render.name)
        for deployment in render.of_kind("Deployment"):
            name = component(deployment)
            pod = deployment["spec"]["template"]["spec"]
            resources = pod["containers"][0]["resources"]
            if name.startswith("vllm-"):
                gpus = settings["vllm"]["deployments"][name.removeprefix("vllm-")]["gpus"]
                args = pod["containers"][0]["args"]
                if gpus > 1:
                    assert args[args.index("--tensor-parallel-size") + 1] == str(gpus)
            elif name in settings["engines"]:
                gpus = settings["engines"][name]["gpus"]
            else:
                gpus = 0
            where = f"{render.name}: {name}"
            if name in GPU_ENGINES or name.startswith("vllm-"):
                assert gpus >= 1, where
            if gpus:
                assert resources["limits"][GPU] == gpus == resources["requests"][GPU], where
                assert pod["nodeSelector"]["nvidia.com/gpu.present"] == "true", where
                assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in pod[
                    "tolerations"
                ]
            else:
                assert GPU not in resources["limits"] and GPU not in resources["requests"], where
                assert not any(t["key"] == GPU for t in pod.get("tolerations", [])), where
    pose = renders["default"].get("Deployment", f"{RELEASE}-pose")
    assert GPU not in pose["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]


# ---- scaling -----------------------------------------------------------------------------


def test_router_hpa_scales_on_in_flight_requests_served_by_prometheus_adapter(
    renders: dict[str, Render],
) -> None:
    from megacity.config.topology import Node
    from megacity.observability.metrics import Metrics
    from megacity.routing.balancer import NodeState
    from megacity.routing.breaker import CircuitBreaker

    adapter = yaml.safe_load((ROOT / "deploy/helm/prometheus-adapter-values.yaml").read_text())
    (rule,) = adapter["rules"]["custom"]
    series = rule["seriesQuery"].split("{")[0]
    node = Node(name="n1", engine="llm", url="http://n1:8000", models=("m",), region="r")
    state = NodeState(node, CircuitBreaker())
    state.in_flight = 3
    exposed = Metrics(lambda: [state]).render().decode()
    assert f'{series}{{node="n1"}} 3.0' in exposed, "the adapter reads a series the router exposes"
    for render in renders_with(renders, "HorizontalPodAutoscaler"):
        (hpa,) = render.of_kind("HorizontalPodAutoscaler")
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": f"{RELEASE}-router",
        }  # fmt: skip
        by_type = {m["type"]: m for m in hpa["spec"]["metrics"]}
        assert set(by_type) == {"Pods", "Resource"}
        assert by_type["Pods"]["pods"]["metric"]["name"] == rule["name"]["as"]
        assert by_type["Pods"]["pods"]["target"]["type"] == "AverageValue"
        assert by_type["Resource"]["resource"]["name"] == "cpu"
        router = render.get("Deployment", f"{RELEASE}-router")
        assert "replicas" not in router["spec"], "the HPA owns the replica count"


def test_vllm_and_engines_scale_on_queue_depth_never_gpu_utilisation(
    renders: dict[str, Render],
) -> None:
    for render in renders.values():
        settings = values(render.name)
        deployments = {
            component(d): d
            for d in render.of_kind("Deployment")
            if component(d) not in APP_COMPONENTS
        }
        scaled = {so["spec"]["scaleTargetRef"]["name"]: so for so in render.of_kind("ScaledObject")}
        for name, deployment in deployments.items():
            so = scaled[deployment["metadata"]["name"]]
            (trigger,) = so["spec"]["triggers"]
            metric = WAITING if name.startswith("vllm-") else ENGINE_WAITING
            service = render.get("Service", deployment["metadata"]["name"])
            assert trigger["type"] == "prometheus"
            assert trigger["metadata"]["query"] == (
                f'sum({metric}{{namespace="{NAMESPACE}",service="{service["metadata"]["name"]}"}})'
            )
            if name.startswith("vllm-"):
                scale = settings["vllm"]["deployments"][name.removeprefix("vllm-")]["autoscaling"]
            else:
                scale = settings["engines"][name]["autoscaling"]
            assert trigger["metadata"]["threshold"] == str(scale["waitingPerReplica"])
            assert so["spec"]["minReplicaCount"] >= 1, "queue depth cannot wake a server at zero"
            assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
        text = "\n".join(json.dumps(s) for s in render.of_kind("ScaledObject"))
        text += "\n".join(json.dumps(h) for h in render.of_kind("HorizontalPodAutoscaler"))
        assert "DCGM" not in text and "gpu_util" not in text.lower()


def test_workers_scale_on_the_lag_and_pending_jobs_of_their_streams(
    renders: dict[str, Render],
) -> None:
    for render in renders_with(renders, "ScaledObject"):
        settings = values(render.name)["worker"]
        if not values(render.name)["worker"]["enabled"]:
            continue
        so = render.get("ScaledObject", f"{RELEASE}-worker")
        keys = Keys(settings["keyPrefix"])
        region = values(render.name)["region"]
        streams = {keys.stream(p, kind, region) for p in Priority for kind in settings["kinds"]}
        triggers = so["spec"]["triggers"]
        assert {t["metadata"]["stream"] for t in triggers} == streams
        assert {t["type"] for t in triggers} == {"redis-streams"}
        assert {t["metadata"]["consumerGroup"] for t in triggers} == {GROUP}
        counts = sorted(
            next(k for k in ("lagCount", "pendingEntriesCount") if k in t["metadata"])
            for t in triggers
        )
        assert counts == ["lagCount"] * len(streams) + ["pendingEntriesCount"] * len(streams)
        formula = so["spec"]["advanced"]["scalingModifiers"]["formula"]
        assert sorted(formula.split(" + ")) == sorted(t["name"] for t in triggers)
        assert so["spec"]["minReplicaCount"] >= 1, "the chores run on workers"
        assert set(settings["kinds"]) <= {THUMBNAIL, TTS, "noop"}
        worker = render.get("Deployment", f"{RELEASE}-worker")
        pod = worker["spec"]["template"]["spec"]
        grace = int(env_of(pod["containers"][0])["MEGACITY_JOBS_SHUTDOWN_GRACE_S"]["value"])
        assert pod["terminationGracePeriodSeconds"] > grace, "the worker may hand its jobs back"
        redis = values(render.name)["redis"]
        address = {t["metadata"]["address"] for t in triggers}
        assert address == {f"{redis['host']}:{redis['port']}"}
        url = env_of(pod["containers"][0])["REDIS_URL"]["value"]
        assert urlsplit(url).hostname == redis["host"] and urlsplit(url).port == redis["port"]


# ---- coherence with the router -----------------------------------------------------------


def settings_env_names() -> set[str]:
    """Every environment variable pydantic-settings reads into Settings."""
    names = set()
    for field_name, info in Settings.model_fields.items():
        names.add(f"MEGACITY_{field_name.upper()}")
        alias = info.validation_alias
        choices = getattr(alias, "choices", None) or ([alias] if isinstance(alias, str) else [])
        names |= {str(choice) for choice in choices}
    return names


# Not Settings fields, and why they are set.
OTHER_ENV = {
    "REDIS_PASSWORD",  # expanded into REDIS_URL by Kubernetes ($(REDIS_PASSWORD))
}
ENGINE_ENV = {"MEGACITY_MODELS_DIR", "HF_HOME", "HF_HUB_OFFLINE", "HF_TOKEN"}


def test_every_environment_variable_is_one_the_program_reads(renders: dict[str, Render]) -> None:
    known = settings_env_names()
    assert {"DATABASE_URL", "REDIS_URL", "S3_BUCKET", "MEGACITY_REGION"} <= known
    for render in renders.values():
        for resource, pod in render.workloads():
            for c in containers(pod):
                names = set(env_of(c))
                if component(resource) in APP_COMPONENTS:
                    assert names <= known | OTHER_ENV, names - known - OTHER_ENV
                elif c["name"] != "vllm":
                    assert names <= ENGINE_ENV, names - ENGINE_ENV


def test_shared_keys_come_from_the_secret_so_every_replica_agrees(
    renders: dict[str, Render],
) -> None:
    router = renders["kr-seoul"].get("Deployment", f"{RELEASE}-router")
    env = env_of(router["spec"]["template"]["spec"]["containers"][0])
    for name in (
        "DATABASE_URL",
        "DATABASE_READ_URL",
        "MEGACITY_USER_HASH_KEY",
        "MEGACITY_URL_SIGNING_KEY",
        "REDIS_PASSWORD",
    ):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "megacity-secrets", "key": name, "optional": False}, name
    assert env["REDIS_URL"]["value"].startswith("rediss://:$(REDIS_PASSWORD)@")
    assert env["MEGACITY_DB_AUTO_UPGRADE"]["value"] == "false"
    assert env["MEGACITY_REGION"]["value"] == "kr-seoul"
    default = renders["default"].get("Deployment", f"{RELEASE}-router")
    assert "DATABASE_READ_URL" not in env_of(default["spec"]["template"]["spec"]["containers"][0])


def test_command_lines_are_ones_the_megacity_cli_accepts(renders: dict[str, Render]) -> None:
    parser = _parser()
    seen = set()
    for render in renders.values():
        for resource, pod in render.workloads():
            for c in containers(pod):
                if c["name"] in ("vllm", "readyz"):
                    continue
                name = component(resource)
                argv = c["args"] if name in APP_COMPONENTS else ["engine", *c["args"]]
                try:
                    args = parser.parse_args([str(a) for a in argv])
                except SystemExit:
                    pytest.fail(f"{render.name}: megacity {shlex.join(argv)} is refused")
                seen.add(argv[0] if name in APP_COMPONENTS else argv[1])
                if name not in APP_COMPONENTS:
                    port = c["ports"][0]["containerPort"]
                    assert args.port == port and args.host == "0.0.0.0"
                    assert args.name == f"{values(render.name)['region']}-{name}"
    assert seen == {"serve", "worker", "db", "speech", "pose", "image", "tts"}


def topology_of(render: Render) -> Topology:
    return parse_topology(render.topology(), f"{render.name} topology ConfigMap")


def test_topology_configmap_is_one_the_router_accepts_and_names_the_charts_services(
    renders: dict[str, Render],
) -> None:
    for render in renders_with(renders, "ConfigMap"):
        if not any(
            c["metadata"]["name"] == f"{RELEASE}-config" for c in render.of_kind("ConfigMap")
        ):
            continue
        topo = topology_of(render)
        region = values(render.name)["region"]
        assert region in {r.name for r in topo.regions}
        services = {
            (
                f"{s['metadata']['name']}.{NAMESPACE}.svc.cluster.local",
                s["spec"]["ports"][0]["port"],
            ): s
            for s in render.of_kind("Service")
        }
        local = [n for n in topo.nodes if n.region == region]
        assert local, f"{render.name}: the release's own nodes are missing"
        for node in local:
            url = urlsplit(node.url)
            service = services.get((url.hostname, url.port))
            assert service, f"{render.name}: {node.name} points at {node.url}, no such Service"
            deployment = render.get("Deployment", service["metadata"]["name"])
            if node.engine == "llm":
                args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
                served = set(args[args.index("--served-model-name") + 1 :])
                for model_name in node.models:
                    model = topo.model(model_name)
                    active = next(v for v in model.versions if v.active)
                    assert (active.served_as or model.name) in served, (node.name, model_name)
        identities = yaml.safe_load(
            render.get("ConfigMap", f"{RELEASE}-config")["data"]["protected_identities.yaml"]
        )
        assert identities and all(i["kinds"] for i in identities)


def test_other_regions_nodes_are_what_their_releases_expose(renders: dict[str, Render]) -> None:
    local_nodes = {}
    exposed = {}
    for name in ("kr-seoul", "jp-tokyo", "us-east"):
        render = renders[name]
        settings = values(name)
        for s in render.of_kind("Service"):
            host = (
                s["metadata"]
                .get("annotations", {})
                .get("external-dns.alpha.kubernetes.io/hostname")
            )
            if host:
                assert s["spec"]["type"] == "LoadBalancer"
                exposed[host] = s["spec"]["ports"][0]["port"]
        for deployment in render.of_kind("Deployment"):
            comp = component(deployment)
            if comp in APP_COMPONENTS:
                continue
            if comp.startswith("vllm-"):
                spec = settings["vllm"]["deployments"][comp.removeprefix("vllm-")]
            else:
                spec = settings["engines"][comp]
            local_nodes[f"{name}-{comp}"] = (tuple(spec["serves"]), settings["nodeKind"])
    checked = 0
    for name in ("kr-seoul", "jp-tokyo"):
        topo = topology_of(renders[name])
        for node in topo.nodes:
            if node.region == name:
                continue
            url = urlsplit(node.url)
            assert node.name in local_nodes, f"{name}: {node.name} is deployed by no region"
            assert (node.models, node.kind) == local_nodes[node.name], node.name
            assert exposed.get(url.hostname) == url.port, f"{name}: {node.url} is not exposed"
            checked += 1
        other_regions = {n.region for n in topo.nodes} - {name}
        assert other_regions == {"kr-seoul", "jp-tokyo", "us-east"} - {name}
    assert checked > 10


def test_a_topology_change_rolls_the_router_and_the_workers(renders: dict[str, Render]) -> None:
    seoul, tokyo = renders["kr-seoul"], renders["jp-tokyo"]
    for name in ("router", "worker"):
        a = seoul.get("Deployment", f"{RELEASE}-{name}")["spec"]["template"]["metadata"]
        b = tokyo.get("Deployment", f"{RELEASE}-{name}")["spec"]["template"]["metadata"]
        assert a["annotations"]["checksum/config"] != b["annotations"]["checksum/config"]
        mounts = {
            m["mountPath"]
            for m in seoul.get("Deployment", f"{RELEASE}-{name}")["spec"]["template"]["spec"][
                "containers"
            ][0]["volumeMounts"]
        }
        assert {
            "/etc/megacity/config",
            "/etc/megacity/keys/kr-seoul",
            "/etc/megacity/keys/jp-tokyo",
        } <= mounts


def test_migrations_run_before_the_release_and_only_in_the_primary_region(
    renders: dict[str, Render],
) -> None:
    job = renders["kr-seoul"].get("Job", f"{RELEASE}-migrations")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    assert not renders["jp-tokyo"].of_kind("Job") and not renders["us-east"].of_kind("Job")
    for name in ("kr-seoul", "jp-tokyo"):
        for deployment in ("router", "worker"):
            pod = renders[name].get("Deployment", f"{RELEASE}-{deployment}")["spec"]["template"][
                "spec"
            ]
            assert env_of(pod["containers"][0])["MEGACITY_DB_AUTO_UPGRADE"]["value"] == "false"


def test_a_chart_made_secret_exists_before_the_migrations_job(tmp_path: Path) -> None:
    extra = tmp_path / "secrets.yaml"
    extra.write_text(
        yaml.safe_dump(
            {"secrets": {"create": True, "values": {"DATABASE_URL": "postgresql://x@db/megacity"}}}
        )
    )
    render, done = render_chart(tmp_path / "out", [extra])
    assert done.returncode == 0, done.stderr
    (secret,) = render.of_kind("Secret")
    (job,) = render.of_kind("Job")
    weight = int(secret["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert (
        secret["metadata"]["annotations"]["helm.sh/hook"]
        == job["metadata"]["annotations"]["helm.sh/hook"]
    )
    assert weight < int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert secret["metadata"]["name"] == f"{RELEASE}-secrets"


def test_metrics_scraped_and_dashboard_read_series_that_exist(renders: dict[str, Render]) -> None:
    from megacity.observability.metrics import Metrics

    monitor = renders["default"].get("ServiceMonitor", RELEASE)
    selector = monitor["spec"]["selector"]
    scraped = {
        s["metadata"]["name"]
        for s in renders["default"].of_kind("Service")
        if labels_match(selector, s["metadata"]["labels"])
    }
    assert scraped == {s["metadata"]["name"] for s in renders["default"].of_kind("Service")}
    assert all(
        p["name"] == monitor["spec"]["endpoints"][0]["port"]
        for s in renders["default"].of_kind("Service")
        for p in s["spec"]["ports"]
    )
    dashboard = json.loads(
        renders["default"].get("ConfigMap", f"{RELEASE}-dashboard")["data"]["megacity.json"]
    )
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert WAITING in exprs and "DCGM_FI_DEV_GPU_UTIL" in exprs and ENGINE_WAITING in exprs
    router_metrics = Metrics().render().decode()
    engine_source = (ROOT / "megacity/api/engine_node.py").read_text()
    for name in set(re.findall(r"\bmegacity_[a-z_]+", exprs)):
        base = re.sub(r"_(total|bucket|sum|count)$", "", name)
        assert base in router_metrics or name in engine_source, f"the dashboard reads {name}"


def test_a_stopping_router_drains_then_gives_open_streams_their_grace(
    renders: dict[str, Render],
) -> None:
    routers = [
        r for render in renders.values() for r in render.of_kind("Deployment")
        if r["metadata"]["name"] == f"{RELEASE}-router"
    ]  # fmt: skip
    assert routers, "some region runs routers"
    for router in routers:
        pod = router["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        drain = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        grace_env = env_of(container)["MEGACITY_SHUTDOWN_GRACE_S"]["value"]
        settings = Settings(shutdown_grace_s=grace_env)  # the router accepts what it is given
        assert settings.shutdown_grace_s >= 10, "an LLM stream needs more than a few seconds"
        assert pod["terminationGracePeriodSeconds"] > drain + settings.shutdown_grace_s, (
            "the kubelet must not kill the router before its streams had their grace"
        )
