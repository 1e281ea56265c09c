"""The OpenAPI document is valid OpenAPI, and every reference in it resolves.

Checked over the whole document, whatever routes exist, so an endpoint added later with
a nested model in its `openapi_extra` (`#/$defs/...`) fails here, not in a client generator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from megacity.api.app import create_app
from megacity.api.openapi_doc import MODEL_ENUM, hoist_defs
from megacity.api.schemas import MAX_TEXT_CHARS
from megacity.config.settings import Settings
from megacity.config.topology import Topology
from megacity.scoring import pronunciation
from tests.api.test_schema import _schema_topology


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("openapi")
    topo = Topology.model_validate(_schema_topology("http://127.0.0.1:9"))
    settings = Settings(topology=topo, data_dir=Path(tmp), auth_enabled=False)
    return create_app(settings).openapi()


def walk(node: Any, path: str = "#") -> list[tuple[str, Any]]:
    """Every (JSON pointer, value) pair under `node`."""
    found = [(path, node)]
    if isinstance(node, dict):
        for key, value in node.items():
            found += walk(value, f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += walk(value, f"{path}/{i}")
    return found


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"not a local reference: {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert len(document["paths"]) >= 25


def test_every_reference_resolves_and_no_schema_is_left_nested(document: dict[str, Any]) -> None:
    refs = [
        (where, value["$ref"])
        for where, value in walk(document)
        if isinstance(value, dict) and "$ref" in value
    ]
    assert len(refs) > 50
    for where, ref in refs:
        assert isinstance(resolve(document, ref), dict), where
    leftovers = [
        where
        for where, value in walk(document)
        if isinstance(value, dict) and ("$defs" in value or MODEL_ENUM in value)
    ]
    assert leftovers == []
    # the two the fuzzer found are components now
    schemas = document["components"]["schemas"]
    assert {"KeypointTrack", "RecognizedWordIn"} <= set(schemas)


def test_model_fields_list_the_models_the_router_knows(document: dict[str, Any]) -> None:
    def form(path: str) -> dict[str, Any]:
        body = document["paths"][path]["post"]["requestBody"]["content"]
        schema = next(iter(body.values()))["schema"]
        return schema  # type: ignore[no-any-return]

    transcribe = form("/v1/audio/transcriptions")["properties"]
    assert transcribe["model"]["enum"] == ["auto", "whisper-x"]
    assert "ko" in transcribe["language"]["enum"] and "xx" not in transcribe["language"]["enum"]
    analyze = form("/api/v1/kzone/voice/analyze")["properties"]
    assert analyze["reference_text"]["maxLength"] == MAX_TEXT_CHARS
    tutor = form("/api/v1/tutor/math_tutor")["properties"]
    assert "auto" in tutor["model"]["enum"] and "kr-tutor" in tutor["model"]["enum"]
    assert "pattern" in tutor["problem"]
    dance = form("/api/v1/kzone/dance/analyze")["properties"]
    assert dance["reference_id"]["pattern"] == "^[0-9a-f]{32}$"


def test_the_text_limit_agrees_with_the_scorer() -> None:
    assert MAX_TEXT_CHARS == pronunciation.MAX_TEXT_CHARS


def test_hoisting_refuses_two_different_schemas_of_one_name() -> None:
    doc = {
        "paths": {
            "/a": {"post": {"x": {"$defs": {"Item": {"type": "string"}}, "$ref": "#/$defs/Item"}}},
            "/b": {"post": {"x": {"$defs": {"Item": {"type": "integer"}}}}},
        }
    }
    with pytest.raises(ValueError, match="Item"):
        hoist_defs(doc)
    same = {"paths": {"/a": {"x": {"$defs": {"T": {"type": "string"}}, "$ref": "#/$defs/T"}}}}
    hoisted = hoist_defs(same)
    assert hoisted["paths"]["/a"]["x"] == {"$ref": "#/components/schemas/T"}
    assert hoisted["components"]["schemas"]["T"] == {"type": "string"}
