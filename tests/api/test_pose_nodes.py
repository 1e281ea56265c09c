"""Remote pose nodes (`megacity engine pose`) behind the router: the node's own API, balancing,
a bad video's 4xx passed on unchanged, and failover when a node dies."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest

from megacity.engines.keypoints import PoseExtraction
from megacity.testing import PoseNodeProcess, RouterProcess
from tests.api.dance_cluster import add_reference, analyze, pose_node, start_router
from tests.video import POSE_MODEL, moving_person, zero_frames


@dataclass
class PoseCluster:
    router: RouterProcess
    nodes: dict[str, PoseNodeProcess]

    def stop(self) -> None:
        self.router.stop()
        for node in self.nodes.values():
            node.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PoseCluster]:
    nodes: dict[str, PoseNodeProcess] = {}
    router = None
    try:
        for name in ("pose-a", "pose-b"):
            nodes[name] = PoseNodeProcess(name, POSE_MODEL, None, "--workers", "1")
            nodes[name].start(timeout_s=60)
        topology = [pose_node(name, node.url) for name, node in nodes.items()]
        router = start_router(tmp_path_factory.mktemp("pose-nodes"), topology)
        yield PoseCluster(router, nodes)
    finally:
        if router is not None:
            router.stop()
        for node in nodes.values():
            node.stop()


def test_a_node_answers_keypoints_as_npz(cluster: PoseCluster) -> None:
    node = cluster.nodes["pose-a"]
    health = httpx.get(f"{node.url}/health", timeout=5).json()
    assert health["status"] == "ok"
    resp = httpx.post(
        f"{node.url}/v1/pose/extract",
        files={"file": ("a.mp4", moving_person(2.0), "video/mp4")},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/x-npz"
    ext = PoseExtraction.from_npz(resp.content)
    assert ext.keypoints.shape == (30, 33, 4) and ext.coverage == 1.0
    assert np.allclose(np.diff(ext.timestamps), 1 / 15, atol=1e-3)
    with np.load(io.BytesIO(resp.content), allow_pickle=False) as npz:
        assert "keypoints" in npz.files
    metrics = httpx.get(f"{node.url}/metrics", timeout=5).text
    assert "megacity_engine_model_loaded 1.0" in metrics


def test_router_balances_passes_4xx_and_fails_over(cluster: PoseCluster) -> None:
    with httpx.Client(base_url=cluster.router.url, timeout=120) as client:
        served: set[str] = set()
        ref_ids = []
        for i in range(4):
            resp = add_reference(client, moving_person(2.0), f"ref {i}")
            assert resp.status_code == 201, resp.text
            served.add(resp.headers["x-megacity-node"])
            ref_ids.append(resp.json()["id"])
        assert served == {"pose-a", "pose-b"}  # idle nodes: ties rotate

        resp = add_reference(client, zero_frames())
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "no_frames"

        cluster.nodes["pose-a"].kill()
        for _ in range(3):  # before and after the health monitor notices
            resp = analyze(client, moving_person(2.0, offset_s=0.3), ref_ids[0])
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-megacity-node"] == "pose-b"
            assert resp.json()["score"] >= 80
