"""Plugin discovery and the questions the planner asks plugins.

Sources, in the order they are registered (later ones are asked first, so a user's plugin
overrides a built-in one): the built-in `plugins/` folder, packages that declare an entry point
in the `ascend_deploy.plugins` group, then the folders an inventory lists under `plugins:`.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pluggy

from toolkit.config.yamlsrc import did_you_mean
from toolkit.errors import BadInput
from toolkit.planner import hookspecs
from toolkit.plugin_api import PROJECT, ModelInfo, ModelProfile, RuntimeProfile

ENTRY_POINT_GROUP = "ascend_deploy.plugins"
HOOK_PREFIX = PROJECT + "_"


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin, as `ascend-deploy plugins` shows it."""

    name: str
    source: str  # "built-in", "entry point", "inventory folder"
    location: str
    hooks: tuple[str, ...]
    claims: tuple[str, ...] = ()
    runtimes: tuple[str, ...] = ()


class _Manager(pluggy.PluginManager):
    """Treats every `ascend_deploy_*` function as a hook implementation, marked or not, so a
    misspelt hook name fails `check_pending()` instead of being ignored."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(HOOK_PREFIX) and callable(getattr(plugin, name, None)):
            return {
                "wrapper": False,
                "hookwrapper": False,
                "optionalhook": False,
                "tryfirst": False,
                "trylast": False,
                "specname": None,
            }
        return opts


def builtin_dirs() -> list[Path]:
    here = Path(__file__).resolve().parents[1]  # the toolkit package
    return [p for p in (here / "_bundled" / "plugins", here.parent / "plugins") if p.is_dir()][:1]


def _import_file(path: Path) -> types.ModuleType:
    name = f"ascend_deploy_plugin_{abs(hash(str(path))):x}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise BadInput(f"plugin {path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a plugin's own bug: name the file and the error
        del sys.modules[name]
        raise BadInput(
            f"plugin {path} failed to import: {type(exc).__name__}: {exc}",
            hint="fix the plugin or remove it from the plugins folder",
        ) from exc
    return module


class Plugins:
    """The registered plugins and the planner's questions to them."""

    def __init__(self, pm: pluggy.PluginManager, sources: dict[str, tuple[str, str]]) -> None:
        self.pm = pm
        self._sources = sources

    # ------------------------------------------------------------------ questions
    def profile_for(self, model: ModelInfo) -> tuple[ModelProfile, str]:
        """The winning profile (asked through `pm.hook`, so pluggy's firstresult order, monitoring and
        tracing apply) and the name of the plugin that gave it: pluggy does not say which
        implementation answered, so the answer is attributed to the first one, in pluggy's call
        order, that returns the same profile (profile hooks are pure questions about a model)."""
        answer = self.pm.hook.ascend_deploy_model_profile(model=model)
        if answer is not None:
            for impl in reversed(self.pm.hook.ascend_deploy_model_profile.get_hookimpls()):
                if impl.function(model=model) == answer:
                    return cast(ModelProfile, answer), impl.plugin_name
            return cast(ModelProfile, answer), "?"
        raise BadInput(
            f"no plugin claims the model {model.name!r}",
            hint="the built-in generic plugin is missing; reinstall ascend-deploy",
        )

    def runtimes(self) -> list[RuntimeProfile]:
        """Every runtime profile, newest vLLM first."""
        found: dict[str, RuntimeProfile] = {}
        for batch in self.pm.hook.ascend_deploy_runtime_profiles():
            for prof in batch or []:
                found.setdefault(prof.name, prof)
        return sorted(found.values(), key=lambda p: p.version_key, reverse=True)

    def runtime(self, name: str | None) -> RuntimeProfile:
        profiles = self.runtimes()
        if not profiles:
            raise BadInput(
                "no runtime profile is installed",
                hint="the built-in plugins folder is missing; reinstall ascend-deploy",
            )
        if name is None:
            return next((p for p in profiles if p.vllm_ascend), profiles[0])
        for prof in profiles:
            if name in (prof.name, prof.vllm_ascend, prof.vllm):
                return prof
        names = [p.name for p in profiles]
        guess = did_you_mean(name, names)
        raise BadInput(
            f"runtime {name!r} matches no runtime profile",
            hint=(f"did you mean '{guess}'? " if guess else "") + "known: " + ", ".join(names),
        )

    def launchers(self) -> list[Any]:
        """The launchers plugins add (already registered with the planner's launcher registry)."""
        return [x for batch in self.pm.hook.ascend_deploy_launchers() for x in batch or []]

    # ------------------------------------------------------------------ listing
    def describe(self) -> list[PluginInfo]:
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or []))
            claims: tuple[str, ...] = ()
            runtimes: tuple[str, ...] = ()
            if hasattr(plugin, "ascend_deploy_claims"):
                claims = tuple(plugin.ascend_deploy_claims() or ())
            if hasattr(plugin, "ascend_deploy_runtime_profiles"):
                runtimes = tuple(p.name for p in plugin.ascend_deploy_runtime_profiles() or ())
            source, location = self._sources.get(name, ("registered", ""))
            infos.append(PluginInfo(name, source, location, hooks, claims, runtimes))
        return infos


def _check(pm: pluggy.PluginManager, sources: dict[str, tuple[str, str]]) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or "?"
        known = [n for n in dir(hookspecs) if n.startswith(HOOK_PREFIX)]
        unknown = [n for n in dir(exc.plugin) if n.startswith(HOOK_PREFIX) and n not in known]
        guess = did_you_mean(unknown[0], known) if unknown else None
        where = sources.get(name, ("", name))[1]
        raise BadInput(
            f"plugin {where}: unknown hook {unknown[0] if unknown else ''!r}".replace(" ''", ""),
            hint=(f"did you mean '{guess}'? " if guess else "") + "hooks: " + ", ".join(known),
        ) from None


def _register(
    pm: pluggy.PluginManager, plugin: Any, name: str, source: str, location: str, sources: dict[str, tuple[str, str]]
) -> None:
    if pm.has_plugin(name):
        return
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise BadInput(
            f"plugin {location}: {exc}",
            hint="a hook's arguments must be a subset of its spec's (see toolkit/hookspecs.py)",
        ) from None
    except ValueError as exc:  # the same module registered twice under two names
        raise BadInput(f"plugin {location}: {exc}") from None
    sources[name] = (source, location)


def load_plugins(folders: list[Path] | tuple[Path, ...] = (), *, entry_points: bool = True) -> Plugins:
    """Register built-ins, entry points, then `folders`; unknown hook names are errors."""
    pm = _Manager(PROJECT)
    pm.add_hookspecs(hookspecs)
    sources: dict[str, tuple[str, str]] = {}
    for folder in builtin_dirs():
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_"):
                _register(pm, _import_file(path), path.stem, "built-in", str(path), sources)
    if entry_points:
        from importlib.metadata import entry_points as eps

        for ep in eps(group=ENTRY_POINT_GROUP):
            try:
                plugin = ep.load()
            except Exception as exc:
                raise BadInput(
                    f"plugin entry point {ep.name} = {ep.value} failed to load: {type(exc).__name__}: {exc}"
                ) from exc
            dist = getattr(ep, "dist", None)
            where = f"{dist.name} {dist.version}" if dist is not None else ep.value
            _register(pm, plugin, ep.name, "entry point", where, sources)
    for folder in folders:
        if not folder.is_dir():
            raise BadInput(
                f"plugin folder {folder} does not exist",
                hint="fix the inventory's 'plugins:' list (paths are relative to the inventory)",
            )
        for path in sorted(folder.glob("*.py")):
            if not path.name.startswith("_"):
                _register(pm, _import_file(path), f"{folder.name}/{path.stem}", "inventory folder", str(path), sources)
    _check(pm, sources)
    plugins = Plugins(pm, sources)
    _register_launchers(plugins)
    return plugins


def _register_launchers(plugins: Plugins) -> None:
    """Plugins' launchers join the planner's registry; a built-in's name, or a launcher with no
    name, `launch` factory or planning methods, is refused naming the plugin."""
    from toolkit.planner import launchers

    for impl in plugins.pm.hook.ascend_deploy_launchers.get_hookimpls():
        where = plugins._sources.get(impl.plugin_name, ("", impl.plugin_name))[1]
        found: list[Any] = list(cast(Any, impl.function()) or [])
        for strategy in found:
            name = getattr(strategy, "name", "")
            if not name or not callable(getattr(strategy, "launch", None)) or not hasattr(strategy, "host_plans"):
                raise BadInput(
                    f"plugin {where}: launcher {name or strategy!r} lacks a name, planning methods or `launch`",
                    hint="subclass toolkit.planner.launchers.BaseLauncher, set `name` and a `launch(plan, placement)`",
                )
            if name in launchers.BUILTIN:
                raise BadInput(
                    f"plugin {where}: launcher name {name!r} is a built-in launcher",
                    hint=f"choose another name (built-in: {', '.join(launchers.BUILTIN)})",
                )
        launchers.register(found)
