"""Playbook files: bundled ones load; bad ones name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.config.playbook import available
from toolkit.errors import InvalidFile
from toolkit.steps import load_playbook


def test_bundled_playbooks_load() -> None:
    names = available()
    assert {"facts", "env"} <= set(names)
    for name in names:
        book = load_playbook(name)
        assert book.stages


@pytest.mark.parametrize(
    "text,line,path,words",
    [
        ("name: x\nstages:\n  - {name: a, step: gather_fact}\n", 3, "stages[0].step", "did you mean 'gather_facts'"),
        (
            "name: x\nstages:\n  - {name: a, step: env_file}\n  - {name: a, step: env_file}\n",
            4,
            "stages[1].name",
            "duplicate stage",
        ),
        ("name: x\nstages:\n  - {name: a, step: env_file, hosts: some}\n", 3, "stages[0].hosts", "not allowed"),
        (
            "name: x\nstages:\n  - {name: a, step: env_file, retries: -1}\n",
            3,
            "stages[0].retries",
            "greater than or equal to 0",
        ),
        ("name: x\nstages:\n  - {name: a, step: env_file, templat: '{{x}}'}\n", 3, "stages[0].templat", "unknown key"),
        ("name: x\nstages: []\n", 2, "stages", "at least 1"),
    ],
)
def test_bad_playbooks(tmp_path: Path, text: str, line: int, path: str, words: str) -> None:
    f = tmp_path / "book.yaml"
    f.write_text(text)
    with pytest.raises(InvalidFile) as info:
        load_playbook(str(f))
    issue = next(i for i in info.value.issues if i.path == path)
    assert issue.line == line and words in issue.render()
