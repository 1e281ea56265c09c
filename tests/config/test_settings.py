"""Settings: MEGACITY_* environment variables plus the topology file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from megacity.config.settings import DEFAULT_TOPOLOGY, Settings
from megacity.config.topology import TopologyError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "topology.yaml"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the MEGACITY_* variables they set themselves."""
    for name in list(os.environ):
        if name.startswith("MEGACITY_"):
            monkeypatch.delenv(name)


def test_defaults_load_the_example_topology() -> None:
    settings = Settings.load(config=EXAMPLE)
    assert settings.port == 8000
    assert settings.connect_timeout_s == 2.0
    assert settings.config == EXAMPLE
    assert set(settings.topo.zones) >= {"univprep", "dreamseed"}
    assert DEFAULT_TOPOLOGY.resolve() == EXAMPLE.resolve()


@pytest.mark.parametrize(
    ("var", "value", "attr", "expected"),
    [
        ("MEGACITY_PORT", "9123", "port", 9123),
        ("MEGACITY_CONNECT_TIMEOUT_S", "0.5", "connect_timeout_s", 0.5),
        ("MEGACITY_QUEUE_TIMEOUT_S", "0", "queue_timeout_s", 0.0),
        ("MEGACITY_BREAKER_FAILURES", "7", "breaker_failures", 7),
        ("MEGACITY_REGION", "jp-tokyo", "region", "jp-tokyo"),
        ("MEGACITY_REQUEST_LOG", "false", "request_log", False),
        ("MEGACITY_HOST", "0.0.0.0", "host", "0.0.0.0"),
    ],
)
def test_environment_is_read(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, attr: str, expected: object
) -> None:
    monkeypatch.setenv(var, value)
    assert getattr(Settings.load(config=EXAMPLE), attr) == expected


def test_admin_token_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEGACITY_ADMIN_TOKEN", "s3cret")
    settings = Settings.load(config=EXAMPLE)
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_keyword_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEGACITY_PORT", "9123")
    assert Settings.load(config=EXAMPLE, port=7000).port == 7000


def test_config_argument_wins_over_megacity_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MEGACITY_CONFIG", str(tmp_path / "does-not-exist.yaml"))
    settings = Settings.load(config=EXAMPLE)
    assert settings.config == EXAMPLE
    assert "univprep" in settings.topo.zones


def test_megacity_config_is_used_without_argument(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    copy = tmp_path / "site.yaml"
    shutil.copy(EXAMPLE, copy)
    monkeypatch.setenv("MEGACITY_CONFIG", str(copy))
    assert Settings.load().config == copy


def test_missing_topology_file_is_a_topology_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MEGACITY_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(TopologyError, match=r"missing\.yaml"):
        Settings.load()


def test_speech_model_override_reaches_the_topology(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEGACITY_SPEECH_MODEL", "medium")
    topo = Settings.load(config=EXAMPLE).topo
    speech = next(n for n in topo.nodes if n.name == "speech-local")
    assert speech.options["model"] == "medium"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("MEGACITY_PORT", "http"),
        ("MEGACITY_PORT", "70000"),
        ("MEGACITY_CONNECT_TIMEOUT_S", "soon"),
        ("MEGACITY_CONNECT_TIMEOUT_S", "0"),
        ("MEGACITY_BREAKER_FAILURES", "0"),
        ("MEGACITY_RETRY_AFTER_S", "0"),
        ("MEGACITY_MAX_BODY_BYTES", "10"),
    ],
)
def test_invalid_environment_value(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as info:
        Settings.load(config=EXAMPLE)
    field = var.removeprefix("MEGACITY_").lower()
    assert any(field in err["loc"] for err in info.value.errors())


def test_settings_are_frozen() -> None:
    settings = Settings.load(config=EXAMPLE)
    with pytest.raises(ValidationError):
        settings.port = 1


def test_topo_without_load_is_an_error() -> None:
    with pytest.raises(RuntimeError, match=r"Settings\.load\(\)"):
        _ = Settings().topo
