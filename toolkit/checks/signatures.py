"""Failure signatures in vLLM / Ray / HCCL logs and their first checks (docs/ascend-facts.md
section 6, plus vLLM's own start-up errors), so a failed `up` says what to do, not only what
the log said."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Signature:
    pattern: str
    cause: str
    fix: str
    setting: str | None = None  # the timeout that fired (its planned value is named with the cause)


SIGNATURES = (
    Signature(
        r"EI0006|wait socket establish timeout",
        "HCCL could not connect between NPUs (EI0006)",
        "run `ascend-deploy check-net`: hccn_tool link, net_health, card pings, equal TLS switch; raise "
        "HCCL_CONNECT_TIMEOUT",
        "HCCL_CONNECT_TIMEOUT",
    ),
    Signature(
        r"EI0009|Transport init error",
        "HCCL transport init error (EI0009)",
        "check `hccn_tool -i N -optical -g` (present), `-ip -g` and `-lldp -g` on every card",
    ),
    Signature(
        r"Gloo connectFullMesh failed|connectFullMesh",
        "Gloo could not connect the ranks",
        "GLOO_SOCKET_IFNAME must name the NIC that holds each node's address, on every node (see `ascend-deploy plan`)",
    ),
    Signature(
        r"no NPU available|Current node has no NPU",
        "Ray has no NPU resource for vLLM's workers",
        "Ray must be started with the NPU resource (never --num-gpus); re-run `ascend-deploy up` to restart Ray",
    ),
    Signature(
        r"rtSetDevice.*invalid device|invalid device ordinal",
        "a worker picked an NPU it cannot see",
        "RAY_EXPERIMENTAL_NOSET_ASCEND_RT_VISIBLE_DEVICES=1 must be set before `ray start` (ascend-deploy sets it)",
    ),
    Signature(
        r"DistStoreError|waiting for clients|Timed out after .* waiting for clients",
        "the distributed rendezvous timed out",
        "the rendezvous address/NIC is unreachable between nodes: check firewalls and the NIC of VLLM_HOST_IP",
    ),
    Signature(
        r"placement group|Cannot provide a placement group|PlacementGroup",
        "Ray could not place vLLM's workers",
        "VLLM_HOST_IP must equal each node's Ray IP and Ray must register TP x PP NPUs (`ascend-deploy status`)",
    ),
    Signature(
        r"error: unrecognized arguments|error: argument|unrecognized arguments",
        "vLLM rejected a command-line argument",
        "fix serve.extra_args (or the plugin's arguments); `ascend-deploy plan` shows the exact command",
    ),
    Signature(
        r"max_model_len.*(greater|larger) than|max_model_len.*exceeds|User-specified max_model_len",
        "max-model-len is above what the model allows",
        "lower serve.max_model_len to the model's max_position_embeddings",
    ),
    Signature(
        r"out of memory|OutOfMemory|NPU out of memory|No available memory for the cache blocks|KV "
        r"cache.*(insufficient|not enough)",
        "not enough device memory for the weights and the KV cache",
        "lower serve.max_model_len or serve.max_num_seqs, raise serve.gpu_memory_utilization, or use more devices",
    ),
    Signature(
        r"Failed to infer device type",
        "the Ascend environment is not loaded",
        "the hosts' setup lines must source /usr/local/Ascend/ascend-toolkit/set_env.sh",
    ),
    Signature(
        r"libatb\.so",
        "the NNAL/ATB environment is not loaded",
        "the hosts' setup lines must source /usr/local/Ascend/nnal/atb/set_env.sh",
    ),
    Signature(
        r"No such file or directory.*config\.json|does not appear to have a file named config\.json|Can't load the "
        r"configuration",
        "the model directory is missing or incomplete on the head",
        "check model.path on every host (`ascend-deploy check-net` checks it)",
    ),
    Signature(
        r"Timed out waiting for engines|waiting for engines to send initial message",
        "the API server gave up waiting for its data-parallel engines (VLLM_ENGINE_READY_TIMEOUT_S too short for "
        "the load, or a peer rank died)",
        "check every host's rank (`ascend-deploy status`, `logs --tail 40`); raise VLLM_ENGINE_READY_TIMEOUT_S in "
        "env if the weights load slower than the plan assumed",
        "VLLM_ENGINE_READY_TIMEOUT_S",
    ),
    Signature(
        r"EI0019|Communication_Error_Bind_IP_Port",
        "HCCL could not bind its base ports (60000 and up): another job holds them (EI0019)",
        "stop the other job, or move HCCL's ports with env HCCL_IF_BASE_PORT (`ascend-deploy check-net` checks them)",
    ),
    Signature(
        r"Address already in use|address already in use",
        "the port is taken by another process",
        "stop what listens on serve.port or serve.data_parallel_rpc_port (or choose another port), or run "
        "`ascend-deploy down` first (`ascend-deploy check-net` names the holder)",
    ),
    Signature(
        r"ModuleNotFoundError: No module named '?(vllm|ray|torch_npu)",
        "a Python package is missing on the host",
        "the setup lines must activate the environment that has vllm, vllm-ascend and ray",
    ),
    Signature(
        r"trust_remote_code|trust-remote-code",
        "the model needs its own code",
        "set model.trust_remote_code: true if you trust the model's repository",
    ),
)


def likely_cause(text: str) -> Signature | None:
    """The first signature that matches the latest lines first (the last error is the real one)."""
    lines = text.splitlines()
    for line in reversed(lines[-400:]):
        for sig in SIGNATURES:
            if re.search(sig.pattern, line):
                return sig
    return None
