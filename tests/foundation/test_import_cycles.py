"""No import cycle inside the package, function-local imports included: a module that imports
another only inside a function still depends on it, and a cycle hidden that way is still a
cycle (it decides what may be imported first)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.configs import REPO


def module_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the package's modules it imports anywhere in its source. Importing ``a.b.c``
    also runs ``a/b/__init__.py``, so its parent packages are edges too, except the importing
    module's own ancestors (Python has started those already; a package's ``__init__``
    importing its own submodules is the usual layout, not a cycle) and the root."""
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def targets(imported: str, importer: str) -> set[str]:
        parts = imported.split(".")
        parents = {".".join(parts[:k]) for k in range(2, len(parts))}
        own = {importer.rsplit(".", k)[0] for k in range(1, importer.count(".") + 1)}
        return ({imported} | (parents - own)) & modules.keys()

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    edges |= targets(alias.name, name)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(package):
                edges |= targets(node.module, name)
                edges |= {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_package_has_no_import_cycle():
    graph = module_graph(REPO / "hdc_lightning", "hdc_lightning")
    assert len(graph) > 50  # the walk saw the package
    assert cycles(graph) == []


def test_a_planted_cycle_is_found(tmp_path):
    pkg = tmp_path / "planted"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from planted.sub.a import f\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from planted.b import g  # hidden in a function\n    return g\n")
    (pkg / "b.py").write_text("from planted.sub import a\n\ndef g():\n    return a\n")
    (pkg / "c.py").write_text("import planted.b\n")
    found = cycles(module_graph(pkg, "planted"))
    assert found == [["planted.b", "planted.sub", "planted.sub.a"]]
