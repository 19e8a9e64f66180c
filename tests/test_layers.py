"""The package's layers stay true: imports only go down (reporting -> synthesis -> evidence -> stats), no
module imports another's private name, and no cycle runs between modules.

Every import in every module counts, including those inside functions (a lazy import is still a dependency).
"""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "mt_evidence"
LAYERS = {"stats": 1, "evidence": 2, "synthesis": 3, "reporting": 4}
TOP = 5  # cli.py and __init__.py


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return TOP
    return LAYERS.get(parts[1], TOP)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py")}


def imports(path: Path, module: str) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) for every import of a package module in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("mt_evidence"):
                continue
            names = [a.name for a in node.names]
            known = modules()
            if not node.module or f"{target}.{names[0]}" in known:  # from . import x: x is a module
                for n in names:
                    out.append((f"{target}.{n}" if f"{target}.{n}" in known else target, [], node.lineno))
            else:
                out.append((target, names, node.lineno))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("mt_evidence"):
                    out.append((a.name, [], node.lineno))
    return out


def lazy_targets() -> list[str]:
    """Modules named in __init__'s lazy table (imported on first use)."""
    tree = ast.parse((PKG / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_LAZY":
            return ["mt_evidence." + v.elts[0].value for v in node.value.values]
    return []


def test_every_module_sits_in_a_layer():
    for name in modules():
        parts = name.split(".")
        if len(parts) == 1 or parts[1] in ("cli",):
            continue
        assert parts[1] in LAYERS, f"{name} is outside the four layers (stats, evidence, synthesis, reporting)"


def test_imports_only_go_down():
    bad = []
    for name, path in modules().items():
        for target, _names, line in imports(path, name):
            if layer(target) > layer(name) or (layer(name) < TOP and target == "mt_evidence"):
                bad.append(f"{path.relative_to(PKG)}:{line} imports {target} (a higher layer)")
    assert not bad, "\n".join(bad)


def test_no_private_names_across_modules():
    bad = []
    for name, path in modules().items():
        for target, names, line in imports(path, name):
            for n in names:
                if n.startswith("_") and target != name:
                    bad.append(f"{path.relative_to(PKG)}:{line} imports {n} from {target}")
            if target.rsplit(".", 1)[-1].startswith("_") and target.rsplit(".", 1)[-1] != "__init__":
                bad.append(f"{path.relative_to(PKG)}:{line} imports the private module {target}")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    mods = modules()
    graph = {name: {t for t, _n, _l in imports(path, name) if t in mods and t != name}
             for name, path in mods.items()}
    graph["mt_evidence"] |= set(lazy_targets())
    for name in graph:  # a subpackage's __init__ is not a dependency of its modules
        graph[name] = {t for t in graph[name] if not (name.startswith(t + "."))}
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in graph.get(n, ()):
            if state.get(m) == "open":
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("source,expect", [
    ("from ..reporting import plots\n", "higher"),
    ("from ..evidence.build import _orient\n", "private"),
])
def test_the_checks_catch_a_violation(tmp_path, monkeypatch, source, expect):
    """Plant an upward import and a private import in a stats module (of a copy of the package) and see the
    checks fail."""
    import shutil
    import sys

    copy = tmp_path / "mt_evidence"
    shutil.copytree(PKG, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "stats" / "probe.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "PKG", copy)
    with pytest.raises(AssertionError):
        if expect == "higher":
            test_imports_only_go_down()
        else:
            test_no_private_names_across_modules()


def test_public_api_unchanged():
    import mt_evidence as me

    for name in ("pool", "pool_many", "effect_size", "subgroup", "meta_regression", "combine_arms", "rescale",
                 "sd_from_ci", "mean_sd_from_median", "load_evidence", "validate_path", "read_wide", "read_revman",
                 "Evidence", "EvidenceError", "build_processed", "PoolResult", "bundled_data_dir"):
        assert callable(getattr(me, name)) or isinstance(getattr(me, name), type), name
