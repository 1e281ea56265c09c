"""The chart's migrations job, router and worker, started as real processes with exactly the
arguments and environment the rendered manifests give them (secrets filled in, files where
the ConfigMap would mount them, PostgreSQL, Redis and S3 on loopback): the schema
migrates, the router serves its probes and the metric the HPA reads, and the worker
creates the consumer group on the very streams KEDA watches."""

from __future__ import annotations

import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import redis as sync_redis
import yaml

from megacity.jobs.keys import Keys
from megacity.jobs.testing import WorkerProcess, redis_url_or_skip, unique_prefix, wipe
from megacity.testing import ServerProcess, free_port
from tests.db.conftest import pg_admin_url, pg_url  # noqa: F401  (fixtures)
from tests.deploy.conftest import RELEASE, Render, run_tool
from tests.storage.test_s3 import ACCESS_KEY, SECRET_KEY, moto_url  # noqa: F401  (fixture)

DEADLINE_S = 60.0


def container(render: Render, kind: str, name: str) -> dict[str, Any]:
    resource = render.get(kind, f"{RELEASE}-{name}")
    spec: dict[str, Any] = resource["spec"]["template"]["spec"]["containers"][0]
    return spec


def pod_env(spec: dict[str, Any], secret: dict[str, str], local: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it; `local` moves it onto loopback."""
    env = {}
    for item in spec.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        if ref["key"] in secret:
            env[item["name"]] = secret[ref["key"]]
        else:
            assert ref["optional"], f"the Secret lacks {ref['key']}"
    assert set(local) <= set(env) | {"S3_ENDPOINT_URL", "AWS_EC2_METADATA_DISABLED"}
    return {**env, **local}


def loopback_topology(text: str) -> str:
    """The rendered topology with every node moved to a closed port on 127.0.0.1 (no DNS)."""
    topology = yaml.safe_load(text)
    for node in topology["nodes"]:
        node["url"] = f"http://127.0.0.1:{free_port()}"
    return yaml.safe_dump(topology, allow_unicode=True)


def wait_until(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise TimeoutError(f"not within {DEADLINE_S} s: {what}")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_migrations_router_and_worker_start_as_the_chart_runs_them(
    renders: dict[str, Render],
    pg_url: str,  # noqa: F811
    moto_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    redis_url = redis_url_or_skip()
    render = renders["default"]
    config_map = render.get("ConfigMap", f"{RELEASE}-config")["data"]
    config = tmp_path / "config"
    config.mkdir()
    (config / "topology.yaml").write_text(loopback_topology(config_map["topology.yaml"]))
    (config / "protected_identities.yaml").write_text(config_map["protected_identities.yaml"])
    secret = {
        "DATABASE_URL": pg_url,
        "MEGACITY_USER_HASH_KEY": secrets.token_hex(32),
        "MEGACITY_URL_SIGNING_KEY": secrets.token_hex(32),
        "S3_ACCESS_KEY_ID": ACCESS_KEY,
        "S3_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    prefix = unique_prefix()
    local = {
        "MEGACITY_CONFIG": str(config / "topology.yaml"),
        "MEGACITY_PROTECTED_IDENTITIES_FILE": str(config / "protected_identities.yaml"),
        "MEGACITY_DATA_DIR": str(tmp_path / "data"),
        "MEGACITY_AUTH_KEYS_DIR": str(tmp_path / "keys"),
        "REDIS_URL": redis_url,
        "MEGACITY_JOBS_KEY_PREFIX": prefix,
        "S3_ENDPOINT_URL": moto_url,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    job = container(render, "Job", "migrations")
    migrate = run_tool(
        [sys.executable, "-m", "megacity", *job["args"]],
        env=pod_env(job, secret, {"MEGACITY_DATA_DIR": local["MEGACITY_DATA_DIR"]}),
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "upgraded from an empty database" in migrate.stdout

    spec = container(render, "Deployment", "router")
    args = list(spec["args"])
    port = free_port()
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = str(port)
    router = ServerProcess(args, port, pod_env(spec, secret, local))
    router.start("/healthz", timeout_s=DEADLINE_S)
    try:
        assert get(router.url + "/healthz")[0] == 200
        # No node answers on loopback: once probed, /readyz takes the replica out.
        _, body = wait_until(
            lambda: (r := get(router.url + "/readyz"))[0] == 503 and r, "readyz 503"
        )
        engines = json.loads(body)["engines"]
        assert set(engines) == {"llm", "speech", "pose", "image", "tts"}
        assert "kr-seoul-vllm-llama-8b" in engines["llm"]["nodes"]
        _, metrics = get(router.url + "/metrics")
        assert b'megacity_node_in_flight{node="kr-seoul-vllm-llama-8b"} 0.0' in metrics
    finally:
        router.stop()

    spec = container(render, "Deployment", "worker")
    streams = [
        t["metadata"]["stream"].replace("megacity:jobs", prefix)
        for t in render.get("ScaledObject", f"{RELEASE}-worker")["spec"]["triggers"]
    ]
    worker = WorkerProcess(spec["args"][1:], pod_env(spec, secret, local))
    client = sync_redis.Redis.from_url(redis_url)
    try:

        def groups_exist() -> bool:
            try:
                return all(
                    any(g["name"] == b"workers" for g in client.xinfo_groups(s)) for s in streams
                )
            except sync_redis.ResponseError:  # a stream not created yet
                return False

        wait_until(groups_exist, f"consumer groups on {streams}\n{worker.output()}")
        assert worker.stop() == 0, worker.output()
    finally:
        worker.close()
        client.close()
        wipe(redis_url, Keys(prefix))
