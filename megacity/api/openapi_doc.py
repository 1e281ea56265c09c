"""Keeping the OpenAPI document resolvable: nested `$defs` become components.

A handler that documents its own body (`openapi_extra`) with a pydantic model's JSON
schema brings that model's nested models as `$defs` and refers to them as
`#/$defs/Name`, which no OpenAPI tool resolves. `hoist_defs` moves every `$defs` entry,
wherever it sits in the document, into `components.schemas` and rewrites the references,
so a generated client sees one flat set of named schemas.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

MODEL_ENUM = "x-megacity-models"  # on a model field: "llm", "speech" … (filled with the names)
LOCAL_PREFIX = "#/$defs/"
COMPONENTS_PREFIX = "#/components/schemas/"


def hoist_defs(document: dict[str, Any]) -> dict[str, Any]:
    """Move every nested `$defs` into components.schemas and point the `$ref`s there.

    ValueError when two different schemas carry the same name (one would be lost).
    """
    components = document.setdefault("components", {}).setdefault("schemas", {})
    pending: dict[str, Any] = {}
    _collect(document, pending)
    while pending:
        name, schema = pending.popitem()
        _collect(schema, pending)  # a nested model's own nested models
        _add(components, name, schema)
    _rewrite(document)
    return document


def _collect(node: Any, found: dict[str, Any]) -> None:
    """Pop every `$defs` under `node` into `found` (name → schema)."""
    if isinstance(node, dict):
        defs = node.pop("$defs", None)
        if isinstance(defs, dict):
            for name, schema in defs.items():
                _add(found, name, schema)
        for value in node.values():
            _collect(value, found)
    elif isinstance(node, list):
        for value in node:
            _collect(value, found)


def _add(into: dict[str, Any], name: str, schema: Any) -> None:
    existing = into.get(name)
    if existing is not None and _canonical(existing) != _canonical(schema):
        raise ValueError(f"two different schemas are both named {name!r}")
    into[name] = schema


def _canonical(schema: Any) -> str:
    return json.dumps(_rewrite(copy.deepcopy(schema)), sort_keys=True)


def _rewrite(node: Any) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(LOCAL_PREFIX):
            node["$ref"] = COMPONENTS_PREFIX + ref[len(LOCAL_PREFIX) :]
        for value in node.values():
            _rewrite(value)
    elif isinstance(node, list):
        for value in node:
            _rewrite(value)
    return node


def fill_model_enums(document: Any, names: Mapping[str, Sequence[str]]) -> None:
    """Replace each `x-megacity-models: <engine>` marker by the enum of that engine's names.

    The names (models, aliases, `auto`) come from the router's own registry, so the
    document lists exactly the values the router accepts, not "any string".
    """
    if isinstance(document, dict):
        engine = document.pop(MODEL_ENUM, None)
        if isinstance(engine, str):
            document["enum"] = list(names.get(engine, ()))
        for value in document.values():
            fill_model_enums(value, names)
    elif isinstance(document, list):
        for value in document:
            fill_model_enums(value, names)
