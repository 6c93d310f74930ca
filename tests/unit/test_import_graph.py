"""The import graph of ``src/shelfwise``, read from the source: no cycles, imports only go down.

Every ``import`` counts, wherever it is written: at module level, inside a
function (deferred, but still a dependency) and under ``if TYPE_CHECKING:``
(absent at run time, but still a dependency of the code's meaning: a lower
package that names ``Runtime`` in a signature depends on it). Each edge keeps
its kind so that a failure says which import to move.

Run as a script (``python tests/unit/test_import_graph.py``) to print the
graph's cycles, layering violations and packages that import each other.
"""

from __future__ import annotations

import ast
import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent
from typing import Literal

SRC = Path(__file__).resolve().parents[2] / "src"
ROOT = "shelfwise"

Kind = Literal["module", "function", "type_checking"]

# The top floor: what wires the parts together and what faces the outside.
TOP = ("shelfwise.api", "shelfwise.cli", "shelfwise.dashboard", "shelfwise.runtime")
# Only the top floor may import the Runtime and the entry points.
ENTRY = ("shelfwise.runtime", "shelfwise.api", "shelfwise.cli")
# The stages and their parts: they take narrow arguments, never the top floor.
LOWER = tuple(
    f"shelfwise.{p}"
    for p in (
        "contracts",
        "catalog",
        "store",
        "candidates",
        "rules",
        "ranking",
        "bundles",
        "pipeline",
        "serving",
        "training",
        "experiments",
        "monitoring",
        "evaluation",
        "simulate",
        "storefront",
    )
)
FACES = ("shelfwise.api", "shelfwise.cli", "shelfwise.dashboard")
# The ground floor: what every stage may use (settings, errors, shared value types, keys).
BASE = tuple(
    f"shelfwise.{p}" for p in ("config", "errors", "values", "documents", "access", "importers")
)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: Kind
    line: int

    def __str__(self) -> str:
        how = "" if self.kind == "module" else f" ({self.kind.replace('_', ' ')})"
        return f"{self.source} -> {self.target} [line {self.line}]{how}"


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(src: Path = SRC, root: str = ROOT) -> dict[str, Path]:
    return {module_name(p, src): p for p in sorted((src / root).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Every import of one module with its kind (innermost enclosing context wins
    for ``type_checking``; any enclosing function makes it ``function``)."""

    def __init__(self, name: str, is_package: bool) -> None:
        self.package = name if is_package else name.rpartition(".")[0]
        self.found: list[tuple[str, list[str], Kind, int]] = []
        self.depth = 0
        self.type_checking = 0

    def _kind(self) -> Kind:
        if self.type_checking:
            return "type_checking"
        return "function" if self.depth else "module"

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._nested(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._nested(node)

    def _nested(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self.type_checking += 1
        for child in node.body:
            self.visit(child)
        self.type_checking -= 1
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((alias.name, [], self._kind(), node.lineno))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            anchor = self.package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        names = [a.name for a in node.names if a.name != "*"]
        self.found.append((base, names, self._kind(), node.lineno))


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module of ours that ``name`` names: itself or its closest known parent."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def edges(src: Path = SRC, root: str = ROOT) -> list[Edge]:
    known = modules(src, root)
    out: list[Edge] = []
    for name, path in known.items():
        visitor = _Imports(name, path.name == "__init__.py")
        visitor.visit(ast.parse(path.read_text(), str(path)))
        for base, names, kind, line in visitor.found:
            if base != root and not base.startswith(root + "."):
                continue
            # ``from a.b import c`` depends on ``a.b.c`` when that is a module, else on ``a.b``.
            targets = {_resolve(f"{base}.{n}", known) for n in names} or {_resolve(base, known)}
            for target in targets:
                if target is not None and target != name:
                    out.append(Edge(name, target, kind, line))
    return out


def find_cycle(graph: dict[str, dict[str, Edge]]) -> list[Edge] | None:
    """One cycle of ``graph`` as its edges, or None (iterative DFS, colour marking)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        state[start] = 1
        while path:
            node, children = path[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                path.pop()
            elif state.get(child) == 1:
                nodes = [n for n, _ in path]
                loop = [*nodes[nodes.index(child) :], child]
                return [graph[a][b] for a, b in itertools.pairwise(loop)]
            elif not state.get(child):
                state[child] = 1
                path.append((child, iter(sorted(graph.get(child, {})))))
    return None


def graph_of(all_edges: list[Edge], kinds: set[Kind]) -> dict[str, dict[str, Edge]]:
    graph: dict[str, dict[str, Edge]] = {}
    for e in all_edges:
        if e.kind in kinds:
            graph.setdefault(e.source, {}).setdefault(e.target, e)
            graph.setdefault(e.target, {})
    return graph


def package_of(module: str) -> str:
    """``shelfwise.pipeline.assembly`` -> ``shelfwise.pipeline``; top-level modules are their own."""
    return ".".join(module.split(".")[:2])


def package_graph(all_edges: list[Edge]) -> dict[str, dict[str, Edge]]:
    """The graph of packages: an edge between two packages where a module of one imports a
    module of the other (the first such import is kept, to name in a failure)."""
    graph: dict[str, dict[str, Edge]] = {}
    for e in all_edges:
        a, b = package_of(e.source), package_of(e.target)
        graph.setdefault(a, {})
        graph.setdefault(b, {})
        if a != b:
            graph[a].setdefault(b, e)
    return graph


def package_cycles(all_edges: list[Edge]) -> dict[tuple[str, str], list[Edge]]:
    """Pairs of packages that import each other, with the edges each way."""
    between: dict[tuple[str, str], list[Edge]] = {}
    for e in all_edges:
        a, b = package_of(e.source), package_of(e.target)
        if a != b:
            between.setdefault((a, b), []).append(e)
    return {
        (a, b): between[(a, b)] + between[(b, a)]
        for a, b in sorted(between)
        if a < b and (b, a) in between
    }


def _under(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def layering_violations(all_edges: list[Edge]) -> list[Edge]:
    return [
        e
        for e in all_edges
        if (_under(e.target, ENTRY) and not _under(e.source, TOP))
        or (_under(e.target, FACES) and _under(e.source, (*LOWER, *BASE)))
    ]


ALL: set[Kind] = {"module", "function", "type_checking"}


@functools.cache
def ours() -> list[Edge]:
    """The imports of ``src/shelfwise`` (read once per test session)."""
    return edges()


def _report(cycle: list[Edge] | None) -> str:
    return "" if cycle is None else "import cycle:\n  " + "\n  ".join(map(str, cycle))


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The reader itself, on a package whose imports are written out: module level,
    deferred, TYPE_CHECKING (and its ``else``), relative, ``from package import
    module``, ``import a.b.c``, and imports of things outside the package."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from pkg.sub import deep\n",
        "sub/__init__.py": "",
        "sub/deep.py": "import os\nfrom . import leaf\nfrom .leaf import NAME\n",
        "sub/leaf.py": "NAME = 1\n",
        "top.py": """
            from typing import TYPE_CHECKING
            import pkg.sub.leaf
            if TYPE_CHECKING:
                from pkg.sub.deep import X
            else:
                from pkg import sub

            class C:
                def f(self) -> None:
                    from pkg.sub import leaf as _
        """,
    }
    for name, text in files.items():
        (pkg / name).write_text(dedent(text))
    got = {(e.source, e.target, e.kind, e.line) for e in edges(tmp_path, "pkg")}
    assert got == {
        ("pkg", "pkg.sub.deep", "module", 1),
        ("pkg.sub.deep", "pkg.sub.leaf", "module", 2),
        ("pkg.sub.deep", "pkg.sub.leaf", "module", 3),
        ("pkg.top", "pkg.sub.leaf", "module", 3),
        ("pkg.top", "pkg.sub.deep", "type_checking", 5),
        ("pkg.top", "pkg.sub", "module", 7),
        ("pkg.top", "pkg.sub.leaf", "function", 11),
    }


def test_every_package_has_a_floor() -> None:
    """A new package is placed on purpose (update the lists above), never by default."""
    placed = (*TOP, *LOWER, *BASE)
    assert [m for m in modules() if m != ROOT and not _under(m, placed)] == []
    assert [p for p in placed if p not in modules()] == []  # the lists name real packages


def test_no_import_cycle_at_run_time() -> None:
    """Module-level and deferred (in-function) imports form no cycle."""
    cycle = find_cycle(graph_of(ours(), {"module", "function"}))
    assert cycle is None, _report(cycle)


def test_no_import_cycle_counting_type_checking_imports() -> None:
    """Not even through names imported only for type annotations."""
    cycle = find_cycle(graph_of(ours(), ALL))
    assert cycle is None, _report(cycle)


def test_imports_only_go_down() -> None:
    """Only the top floor imports the Runtime, the API and the CLI; no stage
    imports the API, the CLI or the dashboard."""
    bad = layering_violations(ours())
    assert not bad, "imports that go up:\n  " + "\n  ".join(map(str, bad))


def test_no_package_level_cycle() -> None:
    """No cycle between packages either, however long (config -> ranking -> candidates ->
    catalog -> store -> config was one: every import of it is fine module by module)."""
    cycle = find_cycle(package_graph(ours()))
    assert cycle is None, "package-level " + _report(cycle)


def test_no_two_packages_import_each_other() -> None:
    pairs = package_cycles(ours())
    lines = [f"{a} <-> {b}:\n    " + "\n    ".join(map(str, es)) for (a, b), es in pairs.items()]
    assert not pairs, "packages that import each other:\n  " + "\n  ".join(lines)


def test_the_rules_catch_what_goes_up() -> None:
    up = [
        Edge("shelfwise.training.job", "shelfwise.runtime", "module", 1),
        Edge("shelfwise.serving.reload", "shelfwise.dashboard.slots", "type_checking", 2),
        Edge("shelfwise.access.keys", "shelfwise.api.auth", "function", 3),
        Edge("shelfwise.config", "shelfwise.cli.main", "module", 4),
    ]
    fine = [
        Edge("shelfwise.api.app", "shelfwise.runtime", "module", 5),
        Edge("shelfwise.dashboard.routes", "shelfwise.runtime", "module", 6),
        Edge("shelfwise.runtime", "shelfwise.pipeline", "module", 7),
    ]
    assert layering_violations([*up, *fine]) == up
    back = Edge("shelfwise.pipeline.x", "shelfwise.runtime", "type_checking", 8)
    assert list(package_cycles([*fine, back])) == [("shelfwise.pipeline", "shelfwise.runtime")]


def test_find_cycle_reports_the_path() -> None:
    e = [Edge("a", "b", "module", 1), Edge("b", "c", "function", 2), Edge("c", "a", "module", 3)]
    cycle = find_cycle(graph_of([*e, Edge("c", "d", "module", 4)], ALL))
    assert cycle is not None
    assert [(x.source, x.target) for x in cycle] == [("a", "b"), ("b", "c"), ("c", "a")]
    assert find_cycle(graph_of(e[:2], ALL)) is None


def test_package_graph_finds_a_cycle_no_module_has() -> None:
    """Modules a.x -> b.y, b.z -> c.w, c.v -> a.u: no module cycle, a package cycle a -> b -> c."""
    e = [
        Edge("p.a.x", "p.b.y", "module", 1),
        Edge("p.b.z", "p.c.w", "module", 2),
        Edge("p.c.v", "p.a.u", "type_checking", 3),
    ]
    assert find_cycle(graph_of(e, ALL)) is None
    cycle = find_cycle(package_graph(e))
    assert cycle is not None
    assert [(x.source, x.target) for x in cycle] == [
        ("p.a.x", "p.b.y"),
        ("p.b.z", "p.c.w"),
        ("p.c.v", "p.a.u"),
    ]
    assert find_cycle(package_graph(e[:2])) is None


if __name__ == "__main__":
    found = edges()
    print(f"{len(modules())} modules, {len(found)} imports")
    for kinds in ({"module"}, {"module", "function"}, ALL):
        graph = graph_of(found, kinds)
        print(f"\n== {sorted(kinds)}:", _report(find_cycle(graph)) or "no cycle")
    print("\n== layering:", *map(str, layering_violations(found)), sep="\n  ")
    print("\n== packages:", _report(find_cycle(package_graph(found))) or "no cycle")
    pairs = package_cycles(found)
    print(f"\n== {len(pairs)} package pairs importing each other")
    for (a, b), es in pairs.items():
        print(f"  {a} <-> {b}:", *map(str, es), sep="\n    ")
