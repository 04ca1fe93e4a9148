"""The CLI as a user meets it: help, exit codes, messages, JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.helpers import cli

GOOD = "cluster: c\nhosts:\n  - {name: a, address: 10.0.0.1, role: head}\n  - {name: b, address: 10.0.0.2}\n"


def test_help_lists_commands_and_exit_codes() -> None:
    out = cli("--help")
    assert out.returncode == 0
    for name in (
        "facts",
        "run",
        "show-vars",
        "schema",
        "up",
        "down",
        "check-net",
        "status",
        "logs",
        "plan",
        "plugins",
        "sim",
    ):
        assert name in out.stdout
    assert "130 interrupted" in " ".join(out.stdout.split())


def test_shared_options_on_facts_help() -> None:
    text = " ".join(cli("facts", "--help").stdout.split())
    for flag in ("--limit", "--forks", "--json", "--verbose", "--check", "--set", "--accept-new-host-keys"):
        assert flag in text


def test_bad_inventory_exits_2_with_file_line_field(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text("cluster: c\nhosts:\n  - {name: a, address: 10.0.0.1, role: head, usr: x}\n")
    out = cli("facts", str(f))
    assert out.returncode == 2
    assert f"{f}:3: hosts[0].usr: unknown key 'usr' (did you mean 'user'?)" in out.stderr
    assert "Traceback" not in out.stderr
    js = cli("facts", str(f), "--json")
    assert js.returncode == 2
    err = json.loads(js.stdout)["error"]
    assert err["issues"][0] == {
        "file": str(f),
        "line": 3,
        "path": "hosts[0].usr",
        "message": "unknown key 'usr'",
        "hint": "did you mean 'user'?",
    }


def test_no_inventory_and_no_recorded_one_says_what_to_pass(tmp_path: Path) -> None:
    out = cli("facts", cwd=tmp_path)
    assert out.returncode == 2
    assert "no inventory given" in out.stderr and "ascend-deploy facts inventories/prod.yaml" in out.stderr


def test_recorded_inventory_is_used(tmp_path: Path) -> None:
    from toolkit.config.recorded import record_inventory

    f = tmp_path / "inv.yaml"
    f.write_text(GOOD)
    record_inventory(f, cwd=tmp_path)
    out = cli("show-vars", "b", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["inventory"] == str(f.resolve())
    assert data["hosts"]["b"]["address"] == {"value": "10.0.0.2", "from": "host"}


def test_show_vars_origins_and_unknown_host(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text(GOOD)
    out = cli("show-vars", str(f), "a", "--set", "user=ops", "--json")
    data = json.loads(out.stdout)
    assert data["hosts"]["a"]["user"] == {"value": "ops", "from": "--set"}
    assert data["hosts"]["a"]["nic"] == {"value": "auto", "from": "default"}
    table = cli("show-vars", str(f), "a")
    assert table.returncode == 0 and "--set" not in table.stdout and "default" in table.stdout
    bad = cli("show-vars", str(f), "c")
    assert bad.returncode == 2 and "no host named 'c'" in bad.stderr


def test_limit_matching_nothing_is_bad_input(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text(GOOD)
    out = cli("facts", str(f), "--limit", "x*")
    assert out.returncode == 2 and "--limit 'x*' matches no host" in out.stderr


def test_bad_set_is_bad_input(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text(GOOD)
    out = cli("facts", str(f), "--set", "serve.port=http")
    assert out.returncode == 2 and "serve.port=http" in out.stderr


def test_bad_forks_is_usage_error(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text(GOOD)
    assert cli("facts", str(f), "--forks", "0").returncode == 2


def test_unknown_playbook_suggests(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text(GOOD)
    out = cli("run", "fact", str(f))
    assert out.returncode == 2 and "did you mean 'facts'" in out.stderr


def test_up_checks_plan_and_key_before_any_ssh(tmp_path: Path) -> None:
    """Bad input fails at once with exit 2 (the example's hosts do not exist: no connection is tried)."""
    env = {k: v for k, v in os.environ.items() if k != "VLLM_API_KEY"}
    out = cli("up", "inventories/example.yaml", env={**env, "VLLM_API_KEY": ""}, cwd=None)
    assert out.returncode == 2 and "$VLLM_API_KEY, which is not set" in out.stderr
    bad = cli("up", "inventories/example.yaml", "--set", "serve.max_model_len=100000")
    assert bad.returncode == 2 and "exceeds the model's limit of 32768" in bad.stderr


def test_schema_is_json_schema() -> None:
    out = cli("schema")
    data = json.loads(out.stdout)
    assert data["title"] == "ascend-deploy inventory"
    assert {"cluster", "hosts"} <= set(data["required"])
    assert "additionalProperties" in json.dumps(data)
    book = json.loads(cli("schema", "--playbook").stdout)
    assert "stages" in book["properties"]


def test_version() -> None:
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("ascend-deploy ")


def test_command_signatures_are_real_objects_not_strings() -> None:
    """typer evaluates string annotations of every command on each start (the CLI's start-up
    cost); cli.py and sim_cli.py keep them as objects."""
    import inspect

    import typer.main

    from toolkit.cli.app import app

    group = typer.main.get_command(app)
    callbacks = [info.callback for info in app.registered_commands]
    callbacks += [info.callback for sub in app.registered_groups for info in sub.typer_instance.registered_commands]
    assert len(callbacks) > 10 and "status" in group.commands and "sim" in group.commands
    for fn in callbacks:
        hints = inspect.get_annotations(inspect.unwrap(fn))
        strings = [name for name, hint in hints.items() if isinstance(hint, str)]
        assert not strings, f"{fn.__name__}: string annotations {strings}"


def test_help_reflows_docstrings_into_paragraphs() -> None:
    """A docstring's source line breaks must not cut the help's sentences in two."""
    import inspect

    from typer.testing import CliRunner

    from toolkit.cli.app import app, reflow

    commands = [([], info) for info in app.registered_commands]
    commands += [
        ([g.name], info)
        for g in app.registered_groups
        if g.typer_instance
        for info in g.typer_instance.registered_commands
    ]
    checked = 0
    for prefix, info in commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        doc = inspect.getdoc(info.callback) or ""
        out = CliRunner().invoke(app, [*prefix, name, "--help"], env={"COLUMNS": "1000"}).output
        lines = [line.strip() for line in out.splitlines()]
        for paragraph in reflow(doc).split("\n\n"):
            assert paragraph in lines, (
                f"`{' '.join([*prefix, name])} --help` breaks the paragraph {paragraph[:60]!r}...:\n{out}"
            )
            checked += 1
    assert checked > len(commands)  # several commands have more than one paragraph
