"""The `megacity` command: a bad topology stops start-up with the key named and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topology.yaml"


def _megacity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "megacity", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_accepts_the_example() -> None:
    result = _megacity("check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "5 zones" in result.stdout


def test_serve_refuses_a_bad_topology_naming_the_key(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["nodes"][0]["url"] = "not a url"
    data["zones"]["ktube"]["colour"] = "blue"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = _megacity("serve", "--config", str(bad), "--port", "0")
    assert result.returncode == 2
    assert "nodes.gpu-seoul-a.url" in result.stderr
    assert "zones.ktube.colour: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_missing_file_and_a_bad_region(tmp_path: Path) -> None:
    result = _megacity("serve", "--config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "cannot read topology file" in result.stderr
    env_result = subprocess.run(
        [sys.executable, "-m", "megacity", "serve", "--config", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"MEGACITY_REGION": "mars", "PATH": "/usr/bin:/bin"},
    )
    assert env_result.returncode == 2
    assert "MEGACITY_REGION" in env_result.stderr


def test_no_command_prints_help() -> None:
    result = _megacity()
    assert result.returncode == 2
    assert "serve" in result.stdout


def test_check_config_validates_in_process_engine_options(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    pose = next(n for n in data["nodes"] if n["engine"] == "pose")
    pose["options"]["fps"] = 100
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = _megacity("check-config", str(bad))
    assert result.returncode == 2
    assert f"nodes.{pose['name']}.options: pose engine: fps" in result.stderr
