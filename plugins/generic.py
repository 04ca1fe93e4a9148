"""The fallback for every model no other plugin claims: no table rows, so the planner sizes the
deployment from config.json alone (memory estimate, head count, position limit)."""

from __future__ import annotations

from toolkit.plugin_api import ModelInfo, ModelProfile, hookimpl


@hookimpl(trylast=True)
def ascend_deploy_model_profile(model: ModelInfo) -> ModelProfile | None:
    kind = model.model_type or "unknown"
    custom = bool(model.config.get("auto_map"))
    return ModelProfile(
        family=f"generic ({kind})",
        source="config.json only (memory estimate)",
        trust_remote_code=custom,
        note="config.json maps to custom modelling code (auto_map): trust_remote_code is on" if custom else "",
    )


@hookimpl
def ascend_deploy_claims() -> list[str]:
    return ["any model with a config.json (fallback)"]
