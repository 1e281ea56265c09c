"""Validate rendered custom resources (KEDA, Prometheus Operator) against their CRD schemas.

    python deploy/helm/validate_crds.py FILE.yaml …

kubernetes-validate knows the built-in kinds only; this does for the custom ones what its
--strict does for those: the openAPIV3Schema of each CRD (crd-schemas/, taken from the
KEDA and Prometheus Operator releases named in each file), with unknown fields refused
wherever the CRD does not keep them. Built-in kinds are skipped (kubernetes-validate's
job); a custom kind without a schema here is an error, so nothing goes unchecked. Runs in
the deploy tools' environment (jsonschema); exit status 1 lists every problem.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMAS = Path(__file__).resolve().parent / "crd-schemas"
BUILT_IN_GROUPS = {
    "v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2", "networking.k8s.io/v1",
}  # fmt: skip


def strict(schema: Any) -> Any:
    """Refuse unknown fields in every object the schema describes (as the API server prunes them)."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    keeps_unknown = result.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in result and "additionalProperties" not in result and not keeps_unknown:
        result["additionalProperties"] = False
    return result


def schema_for(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The strict schema of a custom resource, None for a built-in kind; KeyError if unknown."""
    api_version = str(resource.get("apiVersion", ""))
    if api_version in BUILT_IN_GROUPS:
        return None
    group, _, version = api_version.partition("/")
    path = SCHEMAS / f"{str(resource.get('kind', '')).lower()}-{group.split('.')[0]}-{version}.json"
    if not path.exists():
        raise KeyError(f"no schema for {resource.get('kind')} {api_version} in {SCHEMAS}")
    schema: dict[str, Any] = strict(json.loads(path.read_text(encoding="utf-8")))
    return schema


def problems(path: Path) -> list[str]:
    found = []
    for resource in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if not resource:
            continue
        name = f"{path}: {resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
        try:
            schema = schema_for(resource)
        except KeyError as exc:
            found.append(f"{name}: {exc.args[0]}")
            continue
        if schema is None:
            continue
        validator = jsonschema.Draft7Validator(schema)
        for error in sorted(validator.iter_errors(resource), key=lambda e: list(e.path)):
            where = ".".join(str(p) for p in error.absolute_path) or "(top)"
            found.append(f"{name}: {where}: {error.message}")
    return found


def main(argv: list[str]) -> int:
    found = [p for arg in argv for p in problems(Path(arg))]
    for line in found:
        print(f"ERROR {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
