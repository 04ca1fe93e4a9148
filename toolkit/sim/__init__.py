"""A simulated Ascend cluster on one Linux machine, for rehearsals and the project's tests.

Hosts are network namespaces with real sshd; `hccn_tool`, `npu-smi` and `acl` are simulated
(formats: docs/ascend-facts.md). Nothing here is ever installed on real hosts.
"""
