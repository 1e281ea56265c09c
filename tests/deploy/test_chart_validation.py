"""The chart, validated offline: schema, lint and rendering (helm-python-sdk), the rendered
manifests against the Kubernetes API schemas (kubernetes-validate --strict) and the CRD
schemas (KEDA, Prometheus Operator), and checkov's policy checks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import CHART, REGIONS, ROOT, Render, render_chart, require_tool, run_tool

CRD_SCHEMAS = ROOT / "deploy" / "helm" / "crd-schemas"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest known.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")


def every_file(renders: dict[str, Render]) -> list[Path]:
    return [path for render in renders.values() for path in render.files]


def test_each_region_renders_what_it_runs(renders: dict[str, Render]) -> None:
    kinds = {name: {r["kind"] for r in render.resources} for name, render in renders.items()}
    for name in ("default", "kr-seoul"):
        assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ScaledObject", "Job"} <= kinds[
            name
        ]
        assert {"PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor", "ConfigMap"} <= kinds[
            name
        ]
    assert "Job" not in kinds["jp-tokyo"], "only the primary region migrates"
    us_east = {r["metadata"]["name"] for r in renders["us-east"].of_kind("Deployment")}
    assert us_east and all("-vllm-" in name for name in us_east), us_east


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"router": {"replicass": 3}}, "replicass"),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "runAsNonRoot"),
        ({"engines": {"speech": {"gpus": -1}}}, "gpus"),
        ({"nodeKind": "edge"}, "nodeKind"),
    ],
    ids=["typo", "root", "negative-gpus", "unknown-kind"],
)
def test_the_schema_refuses_bad_values(
    tmp_path: Path, values: dict[str, object], complaint: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(values))
    _, done = render_chart(tmp_path / "out", [bad])
    assert done.returncode == 2, done.stdout
    assert complaint in done.stderr


def test_the_chart_refuses_a_release_without_a_shared_object_store(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"storage": {"s3": {"bucket": ""}}}))
    _, done = render_chart(tmp_path / "out", [values])
    assert done.returncode == 2
    assert "storage.s3.bucket" in done.stderr


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_pass_kubernetes_validate_strict(
    renders: dict[str, Render], version: str
) -> None:
    tool = require_tool("kubernetes-validate")
    done = run_tool([tool, "--strict", "--quiet", "-k", version, *every_file(renders)])
    assert done.returncode == 0, done.stdout + done.stderr
    # Custom kinds have no schema there: each must be one test_custom_resources… checks.
    custom = {p.stem for p in CRD_SCHEMAS.glob("*.json")}
    for line in done.stdout.splitlines():
        match = re.search(r"find schema for kind (\w+) with api version ([\w.]+)/(\w+)", line)
        assert match, f"unexpected output: {line}"
        kind, group, api = match.groups()
        assert f"{kind.lower()}-{group.split('.')[0]}-{api}" in custom, line


def test_custom_resources_match_their_crd_schemas(renders: dict[str, Render]) -> None:
    python = require_tool("python")
    done = run_tool([python, ROOT / "deploy" / "helm" / "validate_crds.py", *every_file(renders)])
    assert done.returncode == 0, done.stdout + done.stderr
    custom = {
        r["kind"]
        for render in renders.values()
        for r in render.resources
        if r["apiVersion"].split("/")[0] in ("keda.sh", "monitoring.coreos.com")
    }
    assert custom == {"ScaledObject", "ServiceMonitor", "TriggerAuthentication"}


def test_crd_validation_refuses_unknown_fields(tmp_path: Path, renders: dict[str, Render]) -> None:
    python = require_tool("python")
    scaled = renders["kr-seoul"].of_kind("ScaledObject")[0]
    bad = {**scaled, "spec": {**scaled["spec"], "minReplicas": 1}}  # KEDA says minReplicaCount
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    done = run_tool([python, ROOT / "deploy" / "helm" / "validate_crds.py", path])
    assert done.returncode == 1
    assert "'minReplicas' was unexpected" in done.stdout


def test_checkov_finds_nothing_outside_the_commented_skip_list(
    renders: dict[str, Render], tmp_path: Path
) -> None:
    tool = require_tool("checkov")
    config = ROOT / "deploy" / "helm" / "checkov.yaml"
    skipped = yaml.safe_load(config.read_text())["skip-check"]
    text = config.read_text()
    for check in skipped:  # each skip has its reason written above it
        assert re.search(rf"#[^\n]*\n(\s*#[^\n]*\n)*\s*- {check}\n", text), check
    out = tmp_path / "manifests"
    for render in renders.values():
        for path in render.files:
            target = out / render.name / path.relative_to(render.out)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text())
    done = run_tool(
        [tool, "--framework", "kubernetes", "--skip-download", "--config-file", config,
         "-d", out, "-o", "json"],
        timeout=600,
    )  # fmt: skip
    report = json.loads(done.stdout)
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']})"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    # checkov counts each resource, and each container once more
    assert summary["resource_count"] >= sum(len(r.resources) for r in renders.values())
    assert summary["passed"] > 1000
    # What is skipped is exactly the chart-wide list plus the per-resource annotations.
    annotated = {
        (r["metadata"]["name"], value.split("=")[0])
        for render in renders.values()
        for r in render.resources
        for key, value in (r["metadata"].get("annotations") or {}).items()
        if key.startswith("checkov.io/skip")
    }
    assert {check for _, check in annotated} == {"CKV_K8S_8", "CKV_K8S_9"}
    assert {name.split("-", 1)[1] for name, _ in annotated} == {
        "worker",
        "migrations",
        "test-ready",
    }


def test_chart_app_version_is_the_projects(renders: dict[str, Render]) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version and chart["appVersion"] == version.group(1)
    assert set(REGIONS) <= {p.stem.removeprefix("values-") for p in CHART.glob("values-*.yaml")}
