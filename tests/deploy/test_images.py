"""The container images (deploy/docker/): hadolint, pinned bases, non-root users, health
checks, the build context, and command lines the megacity CLI accepts. They cannot be
built here (no Docker daemon): `make images` builds them where Docker runs."""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from pathlib import Path

import pytest

from megacity.cli import _parser
from tests.deploy.conftest import ROOT, require_tool, run_tool

DOCKER = ROOT / "deploy" / "docker"
DOCKERFILES = sorted(DOCKER.glob("*.Dockerfile"))
# Dockerfile → the final stages `make images` builds from it
TARGETS = {
    "router.Dockerfile": ("router", "worker"),
    "speech-pose.Dockerfile": (None,),
    "generation.Dockerfile": (None,),
}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        pending += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            lines.append((word.upper(), rest.strip()))
            pending = ""
    return lines


def stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Each stage's instructions, by stage name (the last one also as "final")."""
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for word, rest in instructions(path):
        if word == "FROM":
            current = []
            name = rest.split(" AS ")[-1].strip() if " AS " in rest else str(len(result))
            result[name] = current
            result["final"] = current
        current.append((word, rest))
    return result


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = require_tool("hadolint")
    config = DOCKER / ".hadolint.yaml"
    done = run_tool([hadolint, "--config", config, "--no-color", *DOCKERFILES])
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(TARGETS) == {p.name for p in DOCKERFILES}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_bases_are_pinned_and_builds_are_multi_stage(dockerfile: Path) -> None:
    steps = instructions(dockerfile)
    args = dict(
        rest.split("=", 1) for word, rest in steps if word == "ARG" and "=" in rest
    )  # fmt: skip
    froms = [rest.split()[0] for word, rest in steps if word == "FROM"]
    assert len(froms) >= 2, "build and runtime are separate stages"
    for base in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        if image in (s for s in stages(dockerfile)):
            continue  # FROM an earlier stage
        assert "@sha256:" in image or re.search(r":\d+\.\d+\.\d+-", image), f"unpinned {image}"
        assert "-slim" in image


def final_stages(dockerfile: Path) -> list[list[tuple[str, str]]]:
    by_name = stages(dockerfile)
    return [by_name[t] if t else by_name["final"] for t in TARGETS[dockerfile.name]]


def effective(dockerfile: Path, stage: list[tuple[str, str]], word: str) -> str | None:
    """The last `word` instruction that applies to a final stage (following FROM <stage>)."""
    by_name = stages(dockerfile)
    chain = [stage]
    while chain[-1] and chain[-1][0][1].split()[0] in by_name:
        chain.append(by_name[chain[-1][0][1].split()[0]])
    for steps in chain:
        found = [rest for w, rest in steps if w == word]
        if found:
            return found[-1]
    return None


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_run_as_a_non_root_user_with_a_health_check(dockerfile: Path) -> None:
    for stage in final_stages(dockerfile):
        user = effective(dockerfile, stage, "USER")
        assert user and re.fullmatch(r"[1-9]\d{3,}:[1-9]\d{3,}", user), f"USER {user}"
        assert effective(dockerfile, stage, "HEALTHCHECK") is not None
        entrypoint = json.loads(effective(dockerfile, stage, "ENTRYPOINT") or "[]")
        cmd = json.loads(effective(dockerfile, stage, "CMD") or "[]")
        assert entrypoint[0] == "megacity"
        argv = entrypoint[1:] + cmd
        try:
            _parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"megacity {' '.join(argv)} is refused")


def test_the_router_image_has_no_torch() -> None:
    router = (DOCKER / "router.Dockerfile").read_text()
    installs = " ".join(
        rest for word, rest in instructions(DOCKER / "router.Dockerfile") if word == "RUN"
    )
    assert "pip install" in installs and "torch" not in installs and "[" not in installs
    assert "generation" not in re.sub(r"#.*", "", router).replace("generation.Dockerfile", "")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if re.match(r"torch\b", d)]


def test_worker_image_has_no_health_check_but_says_why() -> None:
    (worker,) = [s for s in final_stages(DOCKER / "router.Dockerfile")][1:]
    assert effective(DOCKER / "router.Dockerfile", worker, "HEALTHCHECK") == "NONE"


def dockerignore_allows(path: str) -> bool:
    """Whether the repository's .dockerignore lets `path` into the build context."""
    allowed = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if re.fullmatch(regex + "(/.*)?", path):
            allowed = negate
    return allowed


def test_the_build_context_holds_what_the_images_copy_and_nothing_else() -> None:
    sources = set()
    for dockerfile in DOCKERFILES:
        for word, rest in instructions(dockerfile):
            if word == "COPY" and "--from=" not in rest:
                sources |= set(rest.split()[:-1])
    assert sources >= {"pyproject.toml", "README.md", "megacity", "deploy/docker/healthcheck.py"}
    for source in sources:
        assert (ROOT / source).exists(), source
        assert dockerignore_allows(source), f"COPY {source}: .dockerignore leaves it out"
    for secret in (".venv/bin/python", "var/megacity.db", ".git/config", "tests/conftest.py"):
        assert not dockerignore_allows(secret), secret
    assert not dockerignore_allows("megacity/__pycache__/cli.cpython-311.pyc")


def test_make_images_builds_every_image_the_chart_runs() -> None:
    from tests.deploy.conftest import chart_values

    makefile = (ROOT / "Makefile").read_text()
    built = set(re.findall(r"-t \$\(REGISTRY\)/([\w-]+):\$\(TAG\)", makefile))
    values = chart_values("default")
    used = {values["router"]["image"], values["worker"]["image"]}
    used |= {engine["image"] for engine in values["engines"].values()}
    assert used <= built, used - built
    for dockerfile, targets in TARGETS.items():
        assert f"deploy/docker/{dockerfile}" in makefile
        for target in targets:
            if target:
                assert f"--target {target}" in makefile


def load_healthcheck():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("healthcheck", DOCKER / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("argv", "env", "url"),
    [
        (["megacity", "serve"], {}, "http://127.0.0.1:8000/healthz"),
        (["megacity", "serve"], {"MEGACITY_PORT": "9000"}, "http://127.0.0.1:9000/healthz"),
        (
            ["/opt/venv/bin/megacity", "serve", "--port", "8080"],
            {},
            "http://127.0.0.1:8080/healthz",
        ),
        (["megacity", "engine", "speech", "--host", "0.0.0.0"], {}, "http://127.0.0.1:8101/health"),
        (["megacity", "engine", "pose", "--port=9102"], {}, "http://127.0.0.1:9102/health"),
        (["megacity", "engine", "image"], {"MEGACITY_PORT": "1"}, "http://127.0.0.1:8103/health"),
        (["megacity", "engine", "tts", "--port", "8204"], {}, "http://127.0.0.1:8204/health"),
    ],
)
def test_the_health_check_asks_the_port_the_process_listens_on(
    argv: list[str], env: dict[str, str], url: str
) -> None:
    assert load_healthcheck().health_url(argv, env) == url
