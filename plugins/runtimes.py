"""Runtime profiles: the vllm-ascend releases and what their command lines may contain.

Source: docs/ascend-facts.md section 4 (vllm-ascend release notes and tutorials):
compatibility sets (vllm-ascend / vLLM / CANN / torch_npu); `--num-scheduler-steps` and
`--multi-step-stream-outputs` removed from vLLM (Aug 2025); `--additional-config` key
`torchair_graph_config` removed in vllm-ascend 0.12; Ray resource `NPU` (never `--num-gpus`);
Ray + expert parallel broken from 0.11 (ACL stream synchronize failed, 507014; Ray PP/DP failing
across nodes in 2026 reports). Section 7: the multi-node recipes' environment on every host.
"""

from __future__ import annotations

from toolkit.plugin_api import RuntimeProfile, hookimpl

SOURCE = "vllm-ascend release notes / compatibility matrix (docs/ascend-facts.md section 4)"

MULTI_STEP = {
    "--num-scheduler-steps": "multi-step scheduling was removed from vLLM (Aug 2025); drop the flag (the V1 engine "
    "schedules asynchronously)",
    "--multi-step-stream-outputs": "removed with multi-step scheduling (Aug 2025); drop the flag",
}
TORCHAIR = {
    "torchair_graph_config": "vllm-ascend 0.12 removed the torchair graph knob of --additional-config; use "
    "--compilation-config",
}
RAY = {
    "--num-gpus": "registers 'GPU' resources that vllm-ascend never requests ('Current node has no NPU available'); "
    "ascend-deploy registers each host's devices as Ray's 'NPU' resource",
}

RAY_EP_BROKEN = (
    "vllm-ascend {version} lists Ray + expert parallel as broken (ACL stream synchronize failed, error code "
    "507014; Ray PP/DP also fail across nodes while Ray TP works)"
)
#: vllm-ascend's multi-node recipes (tutorials, nightly multi-node tests), on every host
MULTI_NODE_ENV = {
    "OMP_PROC_BIND": "false",
    "OMP_NUM_THREADS": "1",
    "HCCL_BUFFSIZE": "1024",
    "PYTORCH_NPU_ALLOC_CONF": "expandable_segments:True",
    "TASK_QUEUE_ENABLE": "1",
}
A3_ENV = {"A3": {"HCCL_OP_EXPANSION_MODE": "AIV"}}

#: (vllm-ascend, vLLM, CANN, torch_npu)
SETS = [
    ("0.23.0", "0.23.0", "9.1.0", "2.10.0.post4"),
    ("0.18.0", "0.18.0", "8.5.1", "2.9.0.post1"),
    ("0.13.0", "0.13.0", "8.5.0", "2.8.0.post2"),
    ("0.11.0", "0.11.0", "8.3.RC2", "2.7.1.post1"),
    ("0.9.1", "0.9.1", "8.2.RC1", "2.5.1.post1"),
]


def _profile(ascend: str, vllm: str, cann: str, torch_npu: str) -> RuntimeProfile:
    major_minor = tuple(int(p) for p in vllm.split(".")[:2])
    removed = dict(MULTI_STEP) if major_minor >= (0, 11) else {}
    keys = dict(TORCHAIR) if tuple(int(p) for p in ascend.split(".")[:2]) >= (0, 12) else {}
    return RuntimeProfile(
        name=f"vllm-ascend-{ascend}",
        vllm=vllm,
        vllm_ascend=ascend,
        cann=cann,
        torch_npu=torch_npu,
        source=SOURCE,
        removed_vllm_flags=removed,
        removed_ray_flags=RAY,
        removed_config_keys=keys,
        structured_output="structured_outputs" if major_minor >= (0, 11) else "guided_json",  # renamed in vLLM 0.10.2
        ray_expert_parallel_broken=RAY_EP_BROKEN.format(version=ascend) if major_minor >= (0, 11) else None,
        multi_node_env=MULTI_NODE_ENV,
        multi_node_env_by_class=A3_ENV,
        image=f"quay.io/ascend/vllm-ascend:v{ascend}",
    )


@hookimpl
def ascend_deploy_runtime_profiles() -> list[RuntimeProfile]:
    return [_profile(*s) for s in SETS]
