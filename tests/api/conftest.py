from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.cluster import Cluster, start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One router in front of four stand-in nodes, shared by a module's read-only tests."""
    c = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield c
    c.stop()
