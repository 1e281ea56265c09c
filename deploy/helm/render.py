"""Render the MegaCity chart offline, the way `helm template` would, without a helm binary.

    python deploy/helm/render.py --values deploy/helm/megacity/values-kr-seoul.yaml --out DIR

It runs in the deploy tools' environment (`make deploy-tools`: .venv-deploy), where
helm-python-sdk binds Helm's own Go SDK (libhelm_c): the values are merged as `helm -f`
merges files, checked against values.schema.json, linted (`helm lint`; a warning fails),
and every template is rendered into DIR/<template path>. Exit status 2 names the first
problem. `make chart` renders every region into build/chart/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parent / "megacity"
LINT_WARNING = 2  # Helm's lint severities: 1 info, 2 warning, 3 error


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge `override` into `base` as `helm -f a.yaml -f b.yaml` does: maps deeply, the rest replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_values(files: list[Path]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: values must be a mapping")
        values = merge(values, data)
    return values


def render(chart: Path, values: dict[str, Any], release: str, namespace: str) -> dict[str, str]:
    """Schema check, lint, render: {template path: manifest} (YAML ones, not empty).

    ValueError names the first problem (a value the schema refuses, a lint warning, a
    template that fails)."""
    import helm_python as helm  # the deploy tools' environment only; tests import merge()

    try:
        return _render(helm, chart, values, release, namespace)
    except helm.HelmError as exc:
        raise ValueError(str(exc)) from None


def _render(
    helm: Any, chart: Path, values: dict[str, Any], release: str, namespace: str
) -> dict[str, str]:
    with helm.Chart.load(chart) as loaded:
        loaded.validate_schema(loaded.merge_values(values))
        report = helm.lint(chart, values)
        problems = [m for m in report["messages"] if m["severity"] >= LINT_WARNING]
        if problems or report["errors"]:
            lines = [f"{m['path']}: {m['error']}" for m in problems] + list(report["errors"])
            raise ValueError("helm lint:\n  " + "\n  ".join(lines))
        manifests = loaded.render(values, name=release, namespace=namespace, is_install=True)
    return {p: text for p, text in manifests.items() if p.endswith(".yaml") and text.strip()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", type=Path, default=CHART)
    parser.add_argument("--values", "-f", type=Path, action="append", default=[])
    parser.add_argument("--release", default="megacity")
    parser.add_argument("--namespace", default="megacity")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        manifests = render(args.chart, load_values(args.values), args.release, args.namespace)
    except (ValueError, OSError, yaml.YAMLError) as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    for path, text in sorted(manifests.items()):
        target = args.out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    print(f"render: {len(manifests)} templates into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
