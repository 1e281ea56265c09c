from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from megacity.testing import AuthKit
from tests.api.cluster import Cluster, start_cluster
from tests.hf_server import TransformersServer


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One router in front of four stand-in nodes, shared by a module's read-only tests."""
    c = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    c.stop()


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> AuthKit:
    """A signing key of region seoul (the clusters' first region) in a folder of the module's."""
    return AuthKit(tmp_path_factory.mktemp("keys"), "seoul")


@pytest.fixture(scope="session")
def generation_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-weight diffusers and VITS models saved to folders, built once a session."""
    from tests.image_models import build_tiny_sd
    from tests.tts_models import build_tiny_vits

    root = tmp_path_factory.mktemp("generation-models")
    return {
        "image": build_tiny_sd(root / "tiny-sd"),
        "tts": build_tiny_vits(root / "tiny-vits", uroman=True),
    }


@pytest.fixture(scope="session")
def hf_server() -> Iterator[TransformersServer]:
    """One `transformers serve` for the session; models load on their first request."""
    server = TransformersServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory, hf_server: TransformersServer) -> str:
    """The tiny LLaVA's folder, built and loaded into the server (its model id)."""
    from tests.vlm_models import build_tiny_llava

    folder = str(build_tiny_llava(tmp_path_factory.mktemp("tiny-llava")))
    hf_server.chat(folder, "warm up")
    return folder
