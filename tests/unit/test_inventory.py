"""Inventory loading: every bad input is exit-2 material with file, line and field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.config.loader import load_inventory
from toolkit.config.vars import cluster_vars, host_vars, merge_layers, parse_overrides
from toolkit.errors import BadInput, InvalidFile

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
cluster: c1
defaults:
  user: root
  devices: [0, 1]
hosts:
  - {name: a, address: 10.0.0.1, role: head}
  - {name: b, address: 10.0.0.2}
"""

HOSTS = "hosts:\n  - {name: a, address: 10.0.0.1, role: head}\n"

# (id, text, expected line, expected path, expected words in the message)
BAD = [
    ("empty-file", "", None, "", "empty"),
    ("only-comment", "# nothing here\n", None, "", "empty"),
    ("not-yaml", "cluster: [c\n", 2, "", "not valid YAML"),
    ("tab-indent", "cluster: c\nhosts:\n\t- a\n", 3, "", "not valid YAML"),
    ("not-a-mapping", "- a\n- b\n", 1, "", "must be a mapping"),
    ("scalar-doc", "just text\n", 1, "", "must be a mapping"),
    ("two-documents", "cluster: c\n---\ncluster: d\n", 3, "", "one YAML document"),
    ("missing-cluster", HOSTS, 1, "cluster", "required"),
    ("missing-hosts", "cluster: c\n", 1, "hosts", "required"),
    ("empty-hosts", "cluster: c\nhosts: []\n", 2, "hosts", "at least 1"),
    ("unknown-top-key", "cluster: c\nhostz: []\n" + HOSTS, 2, "hostz", "did you mean 'hosts'"),
    (
        "unknown-host-key",
        "cluster: c\nhosts:\n  - {name: a, address: 10.0.0.1, role: head, adress: x}\n",
        3,
        "hosts[0].adress",
        "did you mean 'address'",
    ),
    (
        "unknown-default-key",
        "cluster: c\ndefaults:\n  key_fille: k\n" + HOSTS,
        3,
        "defaults.key_fille",
        "did you mean 'key_file'",
    ),
    ("unknown-serve-key", "cluster: c\n" + HOSTS + "serve:\n  max_len: 5\n", 5, "serve.max_len", "unknown key"),
    ("inline-password", "cluster: c\ndefaults:\n  password: hunter2\n" + HOSTS, 3, "defaults.password", "password_env"),
    ("inline-api-key", "cluster: c\n" + HOSTS + "serve:\n  api_key: abc\n", 5, "serve.api_key", "api_key_env"),
    ("no-head", "cluster: c\nhosts:\n  - {name: a, address: 10.0.0.1}\n", 2, "hosts", "no host has role: head"),
    (
        "two-heads",
        "cluster: c\nhosts:\n  - {name: a, address: 10.0.0.1, role: head}\n  - {name: b, address: 10.0.0.2, role: "
        "head}\n",
        4,
        "hosts[1].role",
        "second head",
    ),
    (
        "bad-role",
        "cluster: c\nhosts:\n  - {name: a, address: 10.0.0.1, role: master}\n",
        3,
        "hosts[0].role",
        "'head' or 'worker'",
    ),
    (
        "duplicate-name",
        "cluster: c\nhosts:\n  - {name: a, address: 10.0.0.1, role: head}\n  - {name: a, address: 10.0.0.2}\n",
        4,
        "hosts[1].name",
        "duplicate host name",
    ),
    (
        "duplicate-address",
        "cluster: c\nhosts:\n  - {name: a, address: 10.0.0.1, role: head}\n  - {name: b, address: 10.0.0.1}\n",
        4,
        "hosts[1].address",
        "duplicate address",
    ),
    (
        "bad-ip",
        "cluster: c\nhosts:\n  - name: a\n    address: 10.0.0.256\n    role: head\n",
        4,
        "hosts[0].address",
        "not an IP address",
    ),
    (
        "hostname-not-ip",
        "cluster: c\nhosts:\n  - {name: a, address: node-a.example, role: head}\n",
        3,
        "hosts[0].address",
        "ssh_host",
    ),
    (
        "port-too-big",
        "cluster: c\ndefaults:\n  port: 70000\n" + HOSTS,
        3,
        "defaults.port",
        "less than or equal to 65535",
    ),
    (
        "port-zero",
        "cluster: c\nhosts:\n  - {name: a, address: 10.0.0.1, role: head, port: 0}\n",
        3,
        "hosts[0].port",
        "greater than or equal to 1",
    ),
    ("port-string", "cluster: c\n" + HOSTS + "serve:\n  port: http\n", 5, "serve.port", "valid integer"),
    ("devices-descending", "cluster: c\ndefaults:\n  devices: [3, 1]\n" + HOSTS, 3, "defaults.devices", "ascending"),
    ("devices-repeated", "cluster: c\ndefaults:\n  devices: [0, 0]\n" + HOSTS, 3, "defaults.devices", "ascending"),
    (
        "devices-out-of-range",
        "cluster: c\ndefaults:\n  devices: [0, 16]\n" + HOSTS,
        3,
        "defaults.devices",
        "out of range",
    ),
    (
        "devices-beyond-a2",
        "cluster: c\nhardware: 910B3\ndefaults:\n  devices: [0, 1, 2, 3, 4, 5, 6, 7, 8]\n" + HOSTS,
        4,
        "defaults.devices",
        "device id 8 beyond the 8 NPUs",
    ),
    (
        "devices-beyond-default-kind",
        "cluster: c\nhosts:\n  - {name: a, address: 10.0.0.1, role: head}\n  - name: b\n    address: 10.0.0.2\n    "
        "devices: [6, 9, 12]\n",
        6,
        "hosts[1].devices",
        "host 'b': device ids 9, 12 beyond the 8 NPUs of a 910B host",
    ),
    ("devices-empty", "cluster: c\ndefaults:\n  devices: []\n" + HOSTS, 3, "defaults.devices", "at least one"),
    ("devices-not-list", "cluster: c\ndefaults:\n  devices: 0-7\n" + HOSTS, 3, "defaults.devices", "valid list"),
    (
        "devices-strings",
        "cluster: c\ndefaults:\n  devices: [a, b]\n" + HOSTS,
        3,
        "defaults.devices[0]",
        "valid integer",
    ),
    ("env-bad-name", "cluster: c\ndefaults:\n  env: {1X: y}\n" + HOSTS, 3, "defaults.env", "not valid"),
    ("env-list-value", "cluster: c\ndefaults:\n  env: {X: [1]}\n" + HOSTS, 3, "defaults.env.X", "valid string"),
    ("setup-not-list", "cluster: c\ndefaults:\n  setup: {a: 1}\n" + HOSTS, 3, "defaults.setup", "valid list"),
    ("bad-nic", "cluster: c\ndefaults:\n  nic: 'eth0; rm -rf /'\n" + HOSTS, 3, "defaults.nic", "not a valid interface"),
    ("bad-cluster-name", "cluster: '../etc'\n" + HOSTS, 1, "cluster", "not a valid name"),
    (
        "bad-host-name",
        "cluster: c\nhosts:\n  - {name: 'a b', address: 10.0.0.1, role: head}\n",
        3,
        "hosts[0].name",
        "not a valid name",
    ),
    ("bad-hardware", "cluster: c\nhardware: 910C\n" + HOSTS, 2, "hardware", "not allowed"),
    (
        "bad-connection",
        "cluster: c\ndefaults:\n  connection: telnet\n" + HOSTS,
        3,
        "defaults.connection",
        "'ssh' or 'local'",
    ),
    ("duplicate-key", "cluster: c\ncluster: d\n" + HOSTS, 2, "cluster", "duplicate key"),
    ("hosts-mapping", "cluster: c\nhosts:\n  a: {address: 10.0.0.1}\n", 2, "hosts", "valid list"),
    (
        "negative-timeout",
        "cluster: c\ndefaults:\n  connect_timeout: -1\n" + HOSTS,
        3,
        "defaults.connect_timeout",
        "greater than 0",
    ),
    (
        "bad-password-env",
        "cluster: c\ndefaults:\n  password_env: 'my secret'\n" + HOSTS,
        3,
        "defaults.password_env",
        "not an environment variable name",
    ),
    ("model-without-path", "cluster: c\n" + HOSTS + "model:\n  served_name: q\n", 4, "model.path", "required"),
    ("bad-user", "cluster: c\ndefaults:\n  user: 'root;id'\n" + HOSTS, 3, "defaults.user", "not a valid user"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_inventory_names_file_line_and_field(tmp_path: Path, case: tuple) -> None:
    _, text, line, path, words = case
    f = tmp_path / "inv.yaml"
    f.write_text(text)
    with pytest.raises(InvalidFile) as info:
        load_inventory(f)
    err = info.value
    assert err.exit_code == 2
    assert err.file == str(f)
    issue = next((i for i in err.issues if i.path == path), None)
    assert issue is not None, f"no issue at {path!r}: {[i.render() for i in err.issues]}"
    assert issue.line == line
    rendered = issue.render()
    assert words in rendered, rendered
    assert rendered.startswith(f"{f}:{line}:" if line else str(f))


def test_device_ids_follow_the_hardware_table(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text("cluster: c\nhardware: A3\ndefaults:\n  devices: [0, 15]\n" + HOSTS)
    assert load_inventory(f).hosts[0].devices == (0, 15)  # A3: 16 dies per host
    with pytest.raises(InvalidFile) as info:
        load_inventory(f, ["hardware=910B4"])
    assert [(i.path, i.line) for i in info.value.issues] == [("defaults.devices", 4)]
    with pytest.raises(BadInput, match="device id 16 is out of range"):
        load_inventory(f, ["devices=[0,16]"])


def test_many_problems_are_reported_together(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text("cluster: c\ndefaults:\n  port: 0\n  usr: x\nhosts:\n  - {name: a, address: 1.2.3.999, role: head}\n")
    with pytest.raises(InvalidFile) as info:
        load_inventory(f)
    paths = {i.path for i in info.value.issues}
    assert paths == {"defaults.port", "defaults.usr", "hosts[0].address"}


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidFile) as info:
        load_inventory(tmp_path / "nope.yaml")
    assert "file not found" in info.value.message
    assert info.value.exit_code == 2


def test_example_inventory_loads() -> None:
    inv = load_inventory(ROOT / "inventories" / "example.yaml")
    assert inv.name == "qwen72b-prod"
    assert inv.head.name == "node-a"
    assert [w.name for w in inv.workers] == ["node-b"]
    assert inv.host("node-b").env == {"HCCL_CONNECT_TIMEOUT": "1200"}


def test_precedence_four_levels(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text(
        GOOD.replace(
            "  - {name: b, address: 10.0.0.2}", "  - {name: b, address: 10.0.0.2, user: admin, env: {B: host}}"
        ).replace("  devices: [0, 1]", "  devices: [0, 1]\n  env: {A: defaults, B: defaults, C: '7'}")
    )
    inv = load_inventory(f, ["env.C=set", "connect_timeout=3"])
    a, b = inv.host("a"), inv.host("b")
    assert a.user == "root" and b.user == "admin"
    assert b.env == {"A": "defaults", "B": "host", "C": "set"}
    assert a.connect_timeout == 3 and a.command_timeout == 600
    origins = dict((k, o) for k, _, o in host_vars(inv, "b"))
    assert origins["user"] == "host"
    assert origins["env.A"] == "defaults"
    assert origins["env.B"] == "host"
    assert origins["env.C"] == "--set"
    assert origins["connect_timeout"] == "--set"
    assert origins["command_timeout"] == "default"
    assert origins["devices"] == "defaults"


def test_set_overrides_cluster_sections_and_validates(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text(GOOD + "serve: {port: 8080}\n")
    inv = load_inventory(f, ["serve.port=9000", "hardware=910B4"])
    rows = {k: (v, o) for k, v, o in cluster_vars(inv)}
    assert rows["serve.port"] == (9000, "--set")
    assert rows["hardware"] == ("910B4", "--set")
    assert rows["serve.host"] == ("0.0.0.0", "default")
    with pytest.raises(BadInput, match="serve.port=http"):
        load_inventory(f, ["serve.port=http"])
    with pytest.raises(BadInput, match="unknown key 'serve.prot'") as info:
        load_inventory(f, ["serve.prot=1"])
    assert info.value.hint == "did you mean 'serve.port'?"
    with pytest.raises(BadInput, match="unknown key 'usr'") as info:
        load_inventory(f, ["usr=x"])
    assert info.value.hint == "did you mean 'user'?"
    with pytest.raises(BadInput, match="expected key=value"):
        load_inventory(f, ["user"])
    with pytest.raises(BadInput, match="ascending"):
        load_inventory(f, ["devices=[1,0]"])


def test_env_values_stay_literal_and_numbers_become_strings(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text(GOOD.replace("  devices: [0, 1]", "  devices: [0, 1]\n  env: {T: 1200, F: 0.5, B: true}"))
    inv = load_inventory(f, ["env.Z=007"])
    assert inv.host("a").env == {"T": "1200", "F": "0.5", "B": "1", "Z": "007"}


def test_yaml_merge_keys_are_honoured(tmp_path: Path) -> None:
    f = tmp_path / "inv.yaml"
    f.write_text(
        "cluster: c\nx-common: &common {user: ops}\n".replace("x-common: &common {user: ops}\n", "")
        + "defaults: &d\n  user: ops\nhosts:\n  - {<<: *d, name: a, address: 10.0.0.1, role: head}\n"
    )
    inv = load_inventory(f)
    assert inv.host("a").user == "ops"


def test_merge_layers_replaces_lists_and_merges_maps() -> None:
    merged, origins = merge_layers(
        [("default", {"devices": [0, 1, 2], "env": {"A": "1"}}), ("host", {"devices": [4], "env": {"B": "2"}})]
    )
    assert merged == {"devices": [4], "env": {"A": "1", "B": "2"}}
    assert origins == {"devices": "host", "env.A": "default", "env.B": "host"}


def test_parse_overrides_yaml_values() -> None:
    sets = parse_overrides(["devices=[0,1]", "port=2222", "env.X=[1]", "user=root"])
    assert [s.value for s in sets] == [[0, 1], 2222, "[1]", "root"]
