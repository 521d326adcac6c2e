"""The house's shape, checked on every run beside import-linter's contracts (pyproject.toml):
no two modules import each other, directly or round a circle — counting imports made only
for type checking and those inside functions, since either still ties the two together."""

from __future__ import annotations

import grimp
import networkx as nx

PACKAGES = ("reactor", "handlers", "ghsandbox")


def test_no_module_imports_itself_round_a_circle() -> None:
    graph = grimp.build_graph(*PACKAGES)
    edges = nx.DiGraph()
    for module in graph.modules:
        edges.add_node(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if not _is_package_of(imported, module):
                edges.add_edge(module, imported)
    circles = [sorted(c) for c in nx.strongly_connected_components(edges) if len(c) > 1]
    assert circles == []


def _is_package_of(imported: str, module: str) -> bool:
    """``from reactor.shell import turn`` names the package too: not a dependency on it."""
    return module.startswith(imported + ".")
