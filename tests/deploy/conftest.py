"""The deploy checks' tools and the chart rendered for every region, once per session.

The tools (hadolint, helm-python-sdk, kubernetes-validate, checkov) live in their own
environment, .venv-deploy (`make deploy-tools`; MEGACITY_DEPLOY_VENV names another). A
missing tool fails the tests under CI=true and skips them otherwise, saying how to get it.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "megacity"
RENDER = ROOT / "deploy" / "helm" / "render.py"
REGIONS = ("kr-seoul", "jp-tokyo", "us-east")
NAMESPACE = "megacity"
RELEASE = "megacity"


def chart_values(name: str) -> dict[str, Any]:
    """The values a release renders with: the chart's values.yaml, then values-<name>.yaml
    (none for "default"), merged by deploy/helm/render.py as `helm -f` merges them."""
    return copy.deepcopy(_chart_values(name))


@functools.cache
def _chart_values(name: str) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("megacity_chart_render", RENDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = [CHART / "values.yaml"] + ([] if name == "default" else [CHART / f"values-{name}.yaml"])
    values: dict[str, Any] = module.load_values(files)
    return values


def deploy_venv() -> Path:
    return Path(os.environ.get("MEGACITY_DEPLOY_VENV", ROOT / ".venv-deploy"))


def require_tool(name: str) -> Path:
    """A tool of the deploy environment; a missing one fails under CI=true, else skips."""
    path = deploy_venv() / "bin" / name
    if not path.exists():
        message = f"{path} is missing: `make deploy-tools` installs the deploy checks' tools"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_tool(
    args: list[str | Path], timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


@dataclass
class Render:
    """One release rendered: its manifest files and the resources in them."""

    name: str
    out: Path
    resources: list[dict[str, Any]] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return sorted(self.out.rglob("*.yaml"))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [r for r in self.of_kind(kind) if r["metadata"]["name"] == name]
        assert found, f"{self.name}: no {kind} {name}"
        return found[0]

    def workloads(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(resource, pod spec) of every Deployment, Job and Pod."""
        pods = []
        for r in self.resources:
            if r["kind"] in ("Deployment", "Job"):
                pods.append((r, r["spec"]["template"]["spec"]))
            elif r["kind"] == "Pod":
                pods.append((r, r["spec"]))
        return pods

    def topology(self) -> dict[str, Any]:
        config = self.get("ConfigMap", f"{RELEASE}-config")
        data: dict[str, Any] = yaml.safe_load(config["data"]["topology.yaml"])
        return data


def render_chart(
    out: Path, values: list[Path], name: str = "default"
) -> tuple[Render, subprocess.CompletedProcess[str]]:
    python = require_tool("python")
    args: list[str | Path] = [python, RENDER, "--out", out, "--release", RELEASE]
    args += ["--namespace", NAMESPACE]
    for path in values:
        args += ["-f", path]
    done = run_tool(args, timeout=120)
    render = Render(name, out)
    if done.returncode == 0:
        for path in render.files:
            render.resources += [r for r in yaml.safe_load_all(path.read_text()) if r]
    return render, done


@pytest.fixture(scope="session")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Render]:
    """The chart's defaults and each values-<region>.yaml, rendered."""
    base = tmp_path_factory.mktemp("chart")
    result = {}
    for name in ("default", *REGIONS):
        values = [] if name == "default" else [CHART / f"values-{name}.yaml"]
        render, done = render_chart(base / name, values, name)
        assert done.returncode == 0, f"{name}: {done.stderr}"
        result[name] = render
    return result
