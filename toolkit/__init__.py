"""ascend-deploy: multi-node vLLM on Huawei Ascend, from inventory to a ready endpoint."""

__version__ = "0.1.0"
