"""The container fact's parser against output captured from the engines (podman 4.3 here; docker
20.10's forms: `sha256:` ids, `<no value>` for a missing label, a daemon that does not answer)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from toolkit.facts import Raw
from toolkit.facts.container import container_command, labelled_command, parse_container, parse_labelled

pytestmark = pytest.mark.facts
GOLDEN = Path(__file__).parent / "golden"

PODMAN = (GOLDEN / "container.podman").read_text()
DOCKER = (GOLDEN / "container.docker").read_text()
NONE = (GOLDEN / "container.none").read_text()


def test_podman_with_image_and_running_container() -> None:
    f = parse_container(Raw(PODMAN, 0))
    assert f.engine == "podman" and [(e.name, e.installed, e.answers) for e in f.engines] == [
        ("docker", True, False),
        ("podman", True, True),
    ]
    assert f.image_id == "1b4cd1e911ec0b7688ea15c965e71d0688190180a638de1087337abf4e2345a0"
    assert f.image_digests == (
        "localhost/mini@sha256:0aea1335e50e31f4bf8e3b7e85ad1ee5f7b82c8f196fa47892730068931791f9",
    )
    assert f.container is not None and f.container.running and f.container.config_hash == "aa6845a1d7aa0035"
    assert f.container.image_id == f.image_id and f.labelled == ("ascend-deploy-t",)


def test_docker_ids_lose_their_prefix_and_a_missing_label_is_empty() -> None:
    f = parse_container(Raw(DOCKER, 0))
    assert f.engine == "docker" and f.image_id and not f.image_id.startswith("sha256:") and f.image_digests == ()
    assert f.container is not None and f.container.image_id == f.image_id
    assert not f.container.running and f.container.config_hash == ""


def test_no_engine_says_why_for_each() -> None:
    f = parse_container(Raw(NONE, 0))
    assert f.engine is None and f.image_id is None and f.container is None
    assert f.why_no_engine() == "docker: not installed; podman: not installed"
    down = parse_container(Raw(PODMAN.splitlines()[0] + "\nENGINE podman missing -\n", 0))
    assert down.why_no_engine().startswith("docker: Cannot connect to the Docker daemon")


def test_labelled_lines() -> None:
    raw = Raw("LABELLED podman ascend-deploy-e2e\nLABELLED docker other\nnoise\n", 0)
    assert parse_labelled(raw) == [("podman", "ascend-deploy-e2e"), ("docker", "other")]


def test_the_commands_are_valid_shell_and_quote_their_arguments() -> None:
    for command in (container_command("auto", "n;x", "img$(id)", "c'q"), labelled_command("c'q")):
        assert subprocess.run(["bash", "-n"], input=command, capture_output=True, text=True).returncode == 0
        assert "'img$(id)'" in command or "c'\"'\"'q" in command
