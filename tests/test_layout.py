"""The package's structure rules, checked on its source: no module imports another's private
names, and module-level imports form no cycle (data flows one way)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "distillbt"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    if not level:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(path: Path, *, top_level_only: bool):
    module = _module_name(path)
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            source = _resolve(module, path.name == "__init__.py", node.level, node.module)
            if source.startswith("distillbt"):
                yield source, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("distillbt"):
                    yield alias.name, []


def test_no_module_imports_another_modules_private_names():
    crossings = []
    for path in PACKAGE.rglob("*.py"):
        for source, names in _imports(path, top_level_only=False):
            crossings += [f"{_module_name(path)} imports {source}.{n}" for n in names
                          if n.startswith("_") and not n.startswith("__") and source != _module_name(path)]
    assert not crossings, "\n".join(crossings)


def test_module_level_imports_have_no_cycle():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        edges = set()
        for source, names in _imports(path, top_level_only=True):
            # ``from .pkg import module`` imports the module; ``from .module import name`` the module
            for candidate in [f"{source}.{n}" for n in names] + [source]:
                if candidate in modules and candidate != name:
                    edges.add(candidate)
                    break
        # a package's __init__ is run by importing any of its modules: not an edge back
        graph[name] = {e for e in edges if not name.startswith(e + ".")}
    state, path_ = {}, []

    def visit(node):
        state[node] = "open"
        path_.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path_[path_.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        path_.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
