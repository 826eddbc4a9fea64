"""docker-compose.yml and its Dockerfile, checked without a Docker engine (none runs in CI).

Compose itself validates the file (`docker compose config`, or Debian's `docker-compose`), and
these tests check what compose cannot: every path, volume, port, command and variable the
file names exists in the project, and the image pins every dependency at a version
pyproject.toml allows.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from reports.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
DOCKERFILE = (ROOT / "config" / "docker" / "Dockerfile").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
OURS = {name: s for name, s in COMPOSE["services"].items() if "build" in s}
PROFILES = sorted({p for s in COMPOSE["services"].values() for p in s.get("profiles", [])})


def _compose() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True)
    if shutil.which("docker") and plugin.returncode == 0:
        return ["docker", "compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed (.ci/run installs it)")


def _dockerfile(instruction: str) -> list[list[str]]:
    """The arguments of every `instruction` line, continuation lines joined."""
    text = DOCKERFILE.replace("\\\n", " ")
    return [
        shlex.split(line.split(None, 1)[1])
        for line in text.splitlines()
        if line.split(None, 1)[:1] == [instruction]
    ]


def _made_by_image() -> set[PurePosixPath]:
    """Folders the image has: its WORKDIR, what it COPYs there, and what `install -d` makes."""
    [[workdir]] = _dockerfile("WORKDIR")
    made = {PurePosixPath(workdir)}
    made |= {PurePosixPath(workdir, args[-1]) for args in _dockerfile("COPY")}
    made |= {PurePosixPath(p) for p in re.findall(r"(/[\w./-]+)", " ".join(
        " ".join(a) for a in _dockerfile("RUN") if "install" in a and "-d" in a))}  # fmt: skip
    return made


def _listen_ports(service: dict[str, Any]) -> set[int]:
    command = service["command"]
    return {
        int(command[i + 1]) for i, a in enumerate(command) if a in ("--listen-port", "--dns-port")
    }


def test_compose_accepts_the_file_with_every_profile():
    profiles = [arg for profile in PROFILES for arg in ("--profile", profile)]
    result = subprocess.run(
        [*_compose(), *profiles, "config", "--quiet"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert PROFILES == ["dns", "postgres", "transparent"]


def test_the_image_is_built_from_the_project():
    for service in OURS.values():
        assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    for args in _dockerfile("COPY"):
        for source in args[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the project"
    assert _dockerfile("FROM") == [["python:3.12-slim"]]
    [[user]] = _dockerfile("USER")
    assert user not in ("root", "0")


def test_every_volume_is_a_project_folder_or_a_declared_volume():
    made = _made_by_image()
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (ROOT / source).is_dir(), f"{name}: {source} is not in the project"
            else:
                assert source in COMPOSE["volumes"], f"{name}: volume {source} is not declared"
            if name in OURS:
                assert PurePosixPath(target) in made, f"{name}: the image has no {target}"


def test_every_command_is_a_schoolgate_command_and_ports_match():
    parser = build_parser()
    for name, service in OURS.items():
        args = parser.parse_args(service["command"])
        if args.command == "every":
            parser.parse_args(args.schoolgate_args)
        published = {int(str(p).split(":")[1].split("/")[0]) for p in service.get("ports", [])}
        assert published <= _listen_ports(service), name
        if "healthcheck" in service:
            test = service["healthcheck"]["test"]
            assert test[:3] == ["CMD", "schoolgate", "status"]
            port = int(test[test.index("--proxy") + 1].rsplit(":", 1)[1])
            assert port in _listen_ports(service), name
    assert {8080} == {int(p) for [p] in _dockerfile("EXPOSE")} == _listen_ports(OURS["proxy"])


def test_every_variable_is_read_by_the_project_or_documented():
    code = "\n".join(
        p.read_text() for folder in ("addons", "reports") for p in (ROOT / folder).glob("*.py")
    )
    config_path = PurePosixPath(OURS["proxy"]["environment"]["SCHOOLGATE_CONFIG"])
    assert (ROOT / "config" / config_path.name).is_file()  # mounted from ./config
    for service in OURS.values():
        for variable in service["environment"]:
            assert f'"{variable}"' in code or f"password_env: {variable}" in README, variable
    text = (ROOT / "docker-compose.yml").read_text()
    for variable in set(re.findall(r"\$\{(\w+)", text)):
        assert variable in README, f"${{{variable}}} is not explained in the README"


def test_the_image_pins_every_dependency_within_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [
        Requirement(r)
        for r in project["dependencies"] + project["optional-dependencies"]["postgres"]
    ]
    pins = {}
    for line in (ROOT / "config" / "docker" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    for requirement in wanted:
        version = pins.get(canonicalize_name(requirement.name))
        assert version is not None, (
            f"{requirement.name} is not pinned: see constraints.txt's header"
        )
        assert requirement.specifier.contains(version), (
            f"{requirement.name}=={version} ∉ {requirement}"
        )
