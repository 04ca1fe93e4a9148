"""The dependency rule (docs/architecture.md), checked on the source: every import in toolkit/,
lazy ones inside functions included, goes to the same layer or a lower one; modules form no import
cycle; no module imports another module's private name."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "toolkit"

#: Lowest first. A module may import from its own layer or any lower one.
LAYERS: list[tuple[str, ...]] = [
    ("toolkit", "errors", "serial"),
    ("config",),
    ("transport",),
    ("facts",),
    ("planner", "plugin_api"),
    ("engine", "testing"),
    ("launch",),
    ("steps", "checks", "client"),
    ("api", "sim"),
    ("cli", "__main__"),
]
RANK = {top: i for i, names in enumerate(LAYERS) for top in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "toolkit"


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, imported module, names) for every toolkit import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "toolkit"]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.split(".")[0] == "toolkit"
        ):
            found.append((node.lineno, node.module, [a.name for a in node.names]))
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for _, target, names in imports(path):
            for n in names or [""]:
                sub = f"{target}.{n}"
                # `from pkg import module` needs the module (and runs pkg/__init__, which may not import back)
                edges[name].add(sub if sub in modules else target)
    return edges


def test_every_module_belongs_to_a_layer() -> None:
    missing = sorted({top(module_name(p)) for p in PACKAGE.rglob("*.py")} - set(RANK))
    assert not missing, f"add these to LAYERS (and to docs/architecture.md): {missing}"


def test_imports_only_go_down() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        for line, target, _ in imports(path):
            if RANK[top(target)] > RANK[top(me)]:
                upward.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}: {me} ({top(me)}) imports {target} ({top(target)})"
                )
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_private_names_across_modules() -> None:
    private = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, target, names in imports(path):
            bad = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if bad:
                private.append(f"{path.relative_to(PACKAGE.parent)}:{line}: from {target} import {', '.join(bad)}")
    assert not private, "private names imported from another module:\n" + "\n".join(private)


def test_hardware_facts_live_in_one_table() -> None:
    """npu-smi and SoC names (and with them HBM sizes and devices per host) are written once, in
    toolkit/config/hardware.py; the simulator picks its kinds from that table."""
    import re

    owner = PACKAGE / "config" / "hardware.py"
    literal = re.compile(r"""["'](Ascend910\w*|300I|310P)["']""")
    elsewhere = [
        f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != owner
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert not elsewhere, "hardware facts outside config/hardware.py:\n" + "\n".join(elsewhere)


def test_every_api_export_resolves() -> None:
    """The lazy facade's table names a module for each public name; a stale entry fails here."""
    from toolkit import api

    assert all(getattr(api, name) is not None for name in api.__all__)


def test_no_test_module_imports_another() -> None:
    """Shared fixtures and data live in tests/helpers.py (or conftest, simlab, sshd): a test module that
    imports another runs that module's collection-time code and couples two tiers."""
    tests = PACKAGE.parent / "tests"
    found = []
    for path in sorted(tests.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            found += [
                f"{path.relative_to(tests)}:{node.lineno}: {n}" for n in names if n.split(".")[-1].startswith("test_")
            ]
    assert not found, found


def test_the_planner_core_never_compares_a_launcher_name() -> None:
    """Each launcher's planning is its own module under planner/launchers/: the core asks the chosen
    strategy, so `launcher ==` (or `!=`) appears nowhere else in the planner."""
    import re

    compare = re.compile(r"launcher(\.value)?\s*(==|!=)|(==|!=)\s*['\"](ray|dp|mp)['\"]")
    planner = PACKAGE / "planner"
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
        for path in sorted(planner.rglob("*.py"))
        if "launchers" not in path.relative_to(planner).parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if compare.search(line)
    ]
    assert not found, "launcher comparisons in the planner core:\n" + "\n".join(found)


def test_no_module_holds_more_than_one_room() -> None:
    """A file holds one job: none is over 550 lines (split along the jobs, not at a line count)."""
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in sorted(PACKAGE.rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > 550
    }
    assert not long, long


def test_no_name_of_the_api_facade_is_also_one_of_its_modules() -> None:
    """`api.upgrade` is a function; a module toolkit/api/upgrade.py, once imported, would replace it on
    the package (an import binds the submodule there) and `api.upgrade(...)` would call a module."""
    import pkgutil

    import toolkit.api as facade

    modules = {m.name for m in pkgutil.iter_modules(facade.__path__)}
    assert not modules & set(facade.__all__), modules & set(facade.__all__)
