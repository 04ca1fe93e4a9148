"""Property-based: random and mutated inventories, `--set` overrides and CLI arguments always end
in a result or a typed error with exit 2 and a location, never a traceback (hypothesis)."""

from __future__ import annotations

import copy
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolkit.config.loader import load_inventory
from toolkit.errors import BadInput, InvalidFile

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((ROOT / "inventories" / "example.yaml").read_text())
BASE["model"].pop("config", None)  # keep the document self-contained in a temporary folder

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(
        ["", "auto", "head", "root", "10.0.0.1", "-1", "1e9", "$(touch /tmp/x)", "a\nb", "~/x", "::1", "0x10", "null"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def paths_of(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += paths_of(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += paths_of(v, prefix + (i,))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """The example inventory with a few random edits: replace, delete or add at any depth."""
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(paths_of(data)))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if not where:
            if action == "replace":
                return draw(values)
            continue
        parent = data
        for key in where[:-1]:
            parent = parent[key]
        last = where[-1]
        if action == "replace":
            parent[last] = draw(values)
        elif action == "delete":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(values)
        if not isinstance(data, dict):
            break
    return data


def check_outcome(path: Path, overrides: list[str] | None = None) -> None:
    try:
        load_inventory(path, overrides)
    except InvalidFile as exc:
        assert exc.exit_code == 2 and exc.issues
        for issue in exc.issues:  # every problem is located: a line, or a key path, in a named file
            assert issue.file and (
                issue.line is not None or issue.path or "empty" in issue.message or "file" in issue.message
            ), issue
            assert issue.message
    except BadInput as exc:
        assert exc.exit_code == 2 and exc.message


SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@SETTINGS
@given(doc=mutated())
def test_mutated_inventories_load_or_fail_typed_and_located(doc: Any, tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    check_outcome(path)


@SETTINGS
@given(text=st.text(max_size=300))
def test_random_text_as_inventory_never_crashes(text: str, tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    check_outcome(path)


keys = st.one_of(
    st.sampled_from(
        [
            "serve.port",
            "serve.max_model_len",
            "serve.tensor_parallel_size",
            "hosts.node-a.address",
            "defaults.devices",
            "model.path",
            "ray.port",
            "cluster",
            "hardware",
            "defaults.env.X",
            "nope.nope",
            "serve",
            "hosts.ghost.user",
            "",
            ".",
        ]
    ),
    st.text(max_size=20),
)


@SETTINGS
@given(
    sets=st.lists(
        st.tuples(keys, st.text(max_size=20)).map(lambda kv: f"{kv[0]}={kv[1]}") | st.text(max_size=20), max_size=3
    )
)
def test_random_set_overrides_fail_typed(sets: list[str], tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(yaml.safe_dump(BASE))
    check_outcome(path, sets)


COMMANDS = [
    "plan",
    "show-vars",
    "check-net",
    "facts",
    "up",
    "down",
    "status",
    "logs",
    "ask",
    "generate",
    "run",
    "plugins",
    "sim",
]
option = st.sampled_from(
    [
        "--json",
        "--check",
        "--limit",
        "--forks",
        "--set",
        "--mode",
        "--packets",
        "-v",
        "--tags",
        "--skip-tags",
        "--accept-new-host-keys",
        "--timeout",
        "--max-tokens",
        "--temperature",
        "--help",
    ]
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(command=st.sampled_from(COMMANDS), rest=st.lists(st.one_of(option, st.text(max_size=12)), max_size=5))
def test_cli_arguments_against_a_broken_inventory_exit_2_with_a_message(
    command: str, rest: list[str], tmp_path: Path
) -> None:
    """Whatever the arguments, with an invalid inventory nothing connects anywhere: the CLI exits
    0 (help), or 2 with a typed error, never with a traceback."""
    from toolkit.cli.app import main

    inv = tmp_path / "inv.yaml"
    bad = copy.deepcopy(BASE)
    bad["hosts"][0]["address"] = "not an address at all"
    inv.write_text(yaml.safe_dump(bad))
    argv = [command, str(inv), *rest, "--json"] if command != "sim" else [command, *rest, "--help"]
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exited:
        main(argv)
    code = exited.value.code
    assert code in (0, 2), (argv, code, out.getvalue()[-500:], err.getvalue()[-500:])
    assert "Traceback" not in out.getvalue() + err.getvalue()
    if code == 2 and out.getvalue().strip().startswith("{"):
        data = json.loads(out.getvalue())
        assert data["ok"] is False and data["error"]["message"]
