"""The container fact's parser against output captured from the engines (podman 4.3 here; docker
20.10's forms: `sha256:` ids, `<no value>` for a missing label, a daemon that does not answer)."""

from __future__ import annotations

import shutil
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


ID = "1b4cd1e911ec0b7688ea15c965e71d0688190180a638de1087337abf4e2345a0"


def stub_engine(folder: Path, name: str, *, answers: bool, images: dict[str, str]) -> None:
    """An engine CLI that answers (or, like docker without its daemon, does not) and resolves names to ids,
    printing ids as that engine does (docker: `sha256:` first)."""
    prefix = "sha256:" if name == "docker" else ""
    cases = " ".join(f"{ref}) echo {prefix}{image};;" for ref, image in images.items())
    down = "" if answers else "echo 'Cannot connect to the Docker daemon' >&2; exit 1"
    answer = f'[ "$1 $2" = "image inspect" ] || exit 0\ncase "${{@: -1}}" in {cases} *) exit 125;; esac'
    (folder / name).write_text(f"#!/bin/bash\n{down}\n{answer}\n")
    (folder / name).chmod(0o755)


@pytest.mark.parametrize(
    "engines, setting, have, misnamed",
    [
        ({"podman": (True, {ID: ID, "vendor:1": ID})}, "auto", "podman", ()),
        ({"podman": (True, {ID: ID, "vendor:1": "cd" * 32})}, "auto", "podman", ("vendor:1",)),
        # docker installed, its daemon down: podman is the engine `up` would use, and it has the image
        ({"docker": (False, {}), "podman": (True, {ID: ID, "vendor:1": ID})}, "auto", "podman", ()),
        # docker answers but lacks the image: `up` would use docker, so the full query decides
        ({"docker": (True, {}), "podman": (True, {ID: ID})}, "auto", None, ()),
        ({"docker": (True, {ID: ID, "vendor:1": ID})}, "auto", "docker", ()),
        ({"podman": (True, {})}, "podman", None, ()),
        ({"docker": (True, {ID: ID}), "podman": (True, {ID: ID, "vendor:1": ID})}, "podman", "podman", ()),
        ({}, "auto", None, ()),
    ],
)
def test_image_present_asks_the_engine_up_would_use(
    tmp_path: Path, engines: dict[str, tuple[bool, dict[str, str]]], setting: str, have: str | None, misnamed: tuple
) -> None:
    from toolkit.facts.container import image_present_command, parse_image_present

    for name, (answers, images) in engines.items():
        stub_engine(tmp_path, name, answers=answers, images=images)
    command = image_present_command(setting, ID, ("vendor:1",))
    tools = tmp_path / "tools"  # sed only: the machine's own engines stay out of PATH
    tools.mkdir()
    (tools / "sed").symlink_to(shutil.which("sed") or "/bin/sed")
    env = {"PATH": f"{tmp_path}:{tools}"}
    out = subprocess.run([shutil.which("bash") or "/bin/bash", "-c", command], capture_output=True, text=True, env=env)
    found = parse_image_present(Raw(out.stdout, out.returncode))
    assert out.returncode == 0 and (found.engine, found.misnamed) == (have, misnamed), out.stdout + out.stderr
