"""Plugin discovery (built-ins, inventory folders, entry points), hook validation, and the
built-in plugins' answers for the models of the sizing table."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.helpers import MODELS, SIZING_TABLE, cli
from toolkit.errors import BadInput
from toolkit.planner.plugins import load_plugins
from toolkit.plugin_api import ModelInfo


@pytest.fixture(scope="module")
def builtins():  # type: ignore[no-untyped-def]
    return load_plugins(entry_points=False)


def info(name: str, **kw: object) -> ModelInfo:
    cfg = json.loads((MODELS / f"{name}.json").read_text())
    return ModelInfo(path=f"/data/models/{name}", name=name, config=cfg, **kw)  # type: ignore[arg-type]


EXPECTED_FAMILY = {
    "Qwen2.5-7B-Instruct": "qwen2.5",
    "QwQ-32B": "qwen2.5",
    "Qwen3-8B": "qwen3",
    "Qwen3-30B-A3B": "qwen3-moe",
    "Qwen3-235B-A22B": "qwen3-moe",
    "Llama-3.1-70B-Instruct": "llama3",
    "DeepSeek-R1-Distill-Llama-70B": "deepseek-r1-distill-llama",
    "DeepSeek-R1": "deepseek-v3",
    "glm-4-9b-chat": "glm-4",
    "GLM-4-9B-0414": "glm-4",
    "Mixtral-8x7B-Instruct-v0.1": "mixtral",
}


@pytest.mark.parametrize("name, family", sorted(EXPECTED_FAMILY.items()))
def test_each_model_is_claimed_by_its_plugin(builtins, name: str, family: str) -> None:  # type: ignore[no-untyped-def]
    profile, _ = builtins.profile_for(info(name))
    assert profile.family == family


@pytest.mark.parametrize("name", sorted(SIZING_TABLE))
def test_builtin_rows_agree_with_the_sizing_table(builtins, name: str) -> None:  # type: ignore[no-untyped-def]
    cards, max_len = SIZING_TABLE[name]
    profile, _ = builtins.profile_for(info(name))
    row = profile.row_for("910B")
    assert row is not None, f"{name}: no 910B row in plugin {profile.family}"
    assert (row.devices, row.max_model_len) == (cards, max_len)
    assert row.tp * row.pp * row.dp == row.devices
    assert profile.row_for("910B4").devices == 2 * cards  # 32 GB cards: double
    assert profile.row_for("A3").devices == cards


def test_unknown_model_falls_back_to_generic(builtins) -> None:  # type: ignore[no-untyped-def]
    profile, plugin = builtins.profile_for(ModelInfo("/m/tiny", "tiny", {"model_type": "llama", "hidden_size": 64}))
    assert plugin == "generic" and profile.rows == () and profile.family == "generic (llama)"


def test_name_alone_claims_when_config_is_missing(builtins) -> None:  # type: ignore[no-untyped-def]
    profile, _ = builtins.profile_for(ModelInfo("/data/Qwen2.5-32B-Instruct", "Qwen2.5-32B-Instruct"))
    assert profile.family == "qwen2.5" and profile.row_for("910B").devices == 2


def test_deepseek_w8a8_asks_for_ascend_quantization(builtins) -> None:  # type: ignore[no-untyped-def]
    w8 = builtins.profile_for(info("DeepSeek-R1", quantization="w8a8"))[0]
    bf16 = builtins.profile_for(info("DeepSeek-R1"))[0]
    assert (w8.quantization, w8.row_for("910B").devices, w8.row_for("A3").devices) == ("ascend", 16, 16)
    assert (bf16.quantization, bf16.row_for("910B").devices) == (None, 32)
    dp4 = w8.row_for("910B")  # two A2 nodes: the published DP 4 x TP 4 without Ray
    assert (dp4.tp, dp4.pp, dp4.dp) == (4, 1, 4) and "DP 4 x TP 4" in dp4.note
    assert "--enable-expert-parallel" in w8.extra_args and w8.env["VLLM_ASCEND_BALANCE_SCHEDULING"] == "1"
    # the A2 multi-node recipe's environment (DeepSeek-V3.1.md / DeepSeek-R1.md @182b75ea, section 5.2)
    assert dp4.env == {"HCCL_BUFFSIZE": "200", "HCCL_INTRA_PCIE_ENABLE": "1", "HCCL_INTRA_ROCE_ENABLE": "0"}
    a3 = w8.row_for("A3")  # one A3 node: DP 4 x TP 4 as well (section 5.1)
    assert (a3.tp, a3.dp, a3.max_model_len, dp4.max_model_len) == (4, 4, 16384, 16384)
    assert a3.env == {"HCCL_OP_EXPANSION_MODE": "AIV", "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True"}


def test_runtime_profiles_newest_first_and_removed_flags(builtins) -> None:  # type: ignore[no-untyped-def]
    names = [p.name for p in builtins.runtimes()]
    assert names[0] == "vllm-ascend-0.23.0" and names[-1] == "vllm-ascend-0.9.1"
    assert "--num-scheduler-steps" in builtins.runtime("0.23.0").removed_vllm_flags
    assert "--num-scheduler-steps" not in builtins.runtime("vllm-ascend-0.9.1").removed_vllm_flags
    assert "torchair_graph_config" in builtins.runtime("0.13.0").removed_config_keys
    assert "torchair_graph_config" not in builtins.runtime("0.11.0").removed_config_keys
    assert builtins.runtime(None).name == "vllm-ascend-0.23.0"
    with pytest.raises(BadInput, match="matches no runtime profile") as exc:
        builtins.runtime("vllm-ascend-0.23")
    assert "vllm-ascend-0.23.0" in (exc.value.hint or "")


def write_plugin(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_inventory_folder_plugin_is_asked_before_builtins(tmp_path: Path) -> None:
    write_plugin(
        tmp_path / "mine",
        "qwen_override",
        """
        from toolkit.plugin_api import ModelProfile, hookimpl, sizing_rows

        @hookimpl
        def ascend_deploy_model_profile(model):
            if model.name_matches("qwen2.5-72b"):
                return ModelProfile(family="our-qwen72b", source="our own benchmark", rows=sizing_rows(8, 16384))
    """,
    )
    plugins = load_plugins([tmp_path / "mine"], entry_points=False)
    profile, plugin = plugins.profile_for(info("Qwen2.5-72B-Instruct"))
    assert (profile.family, plugin) == ("our-qwen72b", "mine/qwen_override")
    assert plugins.profile_for(info("Qwen3-8B"))[0].family == "qwen3"  # others still go to built-ins
    listed = {i.name: i for i in plugins.describe()}
    assert listed["mine/qwen_override"].source == "inventory folder"


def test_profiles_are_asked_through_pluggy_so_monitoring_sees_them(builtins) -> None:  # type: ignore[no-untyped-def]
    """pm.hook, not a hand-made loop: pluggy's monitoring (and its tracing) see the firstresult call,
    and the answer is attributed to the plugin that gave it."""
    seen: list[tuple[str, object]] = []
    undo = builtins.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: None, lambda outcome, name, impls, kwargs: seen.append((name, outcome.get_result()))
    )
    try:
        profile, plugin = builtins.profile_for(info("Qwen3-8B"))
    finally:
        undo()
    assert seen == [("ascend_deploy_model_profile", profile)]
    assert profile.family == "qwen3" and plugin.endswith("qwen")


def test_misspelt_hook_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    write_plugin(
        tmp_path / "bad",
        "typo",
        """
        def ascend_deploy_model_profil(model):
            return None
    """,
    )
    with pytest.raises(BadInput, match="unknown hook 'ascend_deploy_model_profil'") as exc:
        load_plugins([tmp_path / "bad"], entry_points=False)
    assert "did you mean 'ascend_deploy_model_profile'" in (exc.value.hint or "")
    assert "typo.py" in exc.value.message


def test_hook_with_arguments_outside_the_spec_is_an_error(tmp_path: Path) -> None:
    write_plugin(
        tmp_path / "bad",
        "args",
        """
        from toolkit.plugin_api import hookimpl

        @hookimpl
        def ascend_deploy_model_profile(model, hardware):
            return None
    """,
    )
    with pytest.raises(BadInput, match="args.py") as exc:
        load_plugins([tmp_path / "bad"], entry_points=False)
    assert "hardware" in exc.value.message


def test_plugin_that_fails_to_import_names_file_and_error(tmp_path: Path) -> None:
    write_plugin(tmp_path / "bad", "broken", "import does_not_exist_anywhere\n")
    with pytest.raises(BadInput, match=r"broken\.py failed to import: ModuleNotFoundError"):
        load_plugins([tmp_path / "bad"], entry_points=False)


def test_missing_plugin_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        load_plugins([tmp_path / "nope"], entry_points=False)


def test_plugins_cli_lists_builtins_and_an_entry_point_plugin(tmp_path: Path) -> None:
    """A third-party package installed with an entry point in group ascend_deploy.plugins."""
    site = tmp_path / "site"
    write_plugin(
        site,
        "acme_models",
        """
        from toolkit.plugin_api import ModelProfile, hookimpl, sizing_rows

        @hookimpl
        def ascend_deploy_model_profile(model):
            if model.name_matches("acme-llm"):
                return ModelProfile(family="acme", source="ACME sizing guide", rows=sizing_rows(2, 8192))

        @hookimpl
        def ascend_deploy_claims():
            return ["ACME-LLM 13B"]
    """,
    )
    dist = site / "acme_models-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-models\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text("[ascend_deploy.plugins]\nacme = acme_models\n")
    env = {"PYTHONPATH": str(site)}
    r = cli("plugins", "--json", env=env)
    assert r.returncode == 0, r.stderr
    data = {p["name"]: p for p in json.loads(r.stdout)["plugins"]}
    assert data["acme"]["source"] == "entry point" and data["acme"]["location"] == "acme-models 1.2"
    assert data["acme"]["claims"] == ["ACME-LLM 13B"]
    assert data["qwen"]["source"] == "built-in" and "Qwen3 MoE (30B-A3B, 235B-A22B)" in data["qwen"]["claims"]
    assert "vllm-ascend-0.23.0" in data["runtimes"]["runtimes"]
    table = cli("plugins", env=env)
    assert table.returncode == 0 and "acme" in table.stdout and "entry point" in table.stdout

    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "cluster: c\nhosts: [{name: a, address: 10.0.0.1, role: head, devices: [0, 1]}]\n"
        "model: {path: /data/acme-llm-13b}\n"
    )
    plan = cli("plan", str(inv), "--json", env=env)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["plan"]["model"]["family"] == "acme"
