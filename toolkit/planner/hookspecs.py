"""The hooks a plugin may implement. A plugin is a module (or object) with functions named
after these specs and marked with `toolkit.plugin_api.hookimpl`; any other function whose name
starts with `ascend_deploy_` is an error (a typo would otherwise be ignored silently)."""

from __future__ import annotations

from typing import Any

import pluggy

from toolkit.plugin_api import PROJECT, ModelInfo, ModelProfile, RuntimeProfile

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec(firstresult=True)
def ascend_deploy_model_profile(model: ModelInfo) -> ModelProfile | None:
    """Return this plugin's profile for `model` if the model is its own, else None.

    The first non-None answer wins; later-registered plugins (inventory folders, entry points)
    are asked before built-ins, and the generic fallback is asked last."""


@hookspec
def ascend_deploy_claims() -> list[str]:
    """Human-readable names of the models this plugin claims, for `ascend-deploy plugins`."""


@hookspec
def ascend_deploy_runtime_profiles() -> list[RuntimeProfile]:
    """vLLM / vllm-ascend versions this plugin describes."""


@hookspec
def ascend_deploy_launchers() -> list[Any]:
    """Launchers this plugin adds (`toolkit.planner.launchers.BaseLauncher` subclasses, instances):
    each is chosen by `serve.launcher: NAME` (or by `auto` when its `auto` answers), plans its
    hosts' processes, and carries `launch`, the factory `(plan, placement) -> toolkit.launch.Launcher`
    that starts them. A built-in launcher's name cannot be taken."""
