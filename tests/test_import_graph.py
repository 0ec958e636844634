"""The package's import graph has no circle and follows the stages.

Every module under finbench/ is parsed (not imported) and each `import` / `from ... import`
counts, at module level or inside a function alike: a function-local import hides a circle from
Python's start-up, not from the design. Only imports under `if TYPE_CHECKING:` are left out
(they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "finbench"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of import nodes that sit under `if TYPE_CHECKING:`."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The module a dotted name lands in: itself, or the nearest enclosing module we have."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """{imported finbench module: first line} for one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _type_checking_only(tree)
    is_pkg = path.name == "__init__.py"
    found: dict[str, int] = {}
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            # `from pkg import sub` imports the submodule; `from mod import name` the module
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                target = _target(name, modules)
                if target and target != module:
                    found.setdefault(target, node.lineno)
    return found


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def import_graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    modules = _modules(root)
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_the_checker_finds_a_circle_through_a_function_local_import(tmp_path) -> None:
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from finbench import b\n")
    (pkg / "b.py").write_text("def f():\n    from finbench.sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from .. import a\nfrom typing import TYPE_CHECKING\n"
                                      "if TYPE_CHECKING:\n    from finbench import d\n")
    (pkg / "d.py").write_text("from finbench.sub.c import x\n")
    assert _cycles(import_graph(pkg)) == [["finbench.a", "finbench.b", "finbench.sub.c"]]


def test_finbench_has_no_import_circle() -> None:
    graph = import_graph()
    assert len(graph) > 10 and "finbench.data.tasks" in graph
    cycles = _cycles(graph)
    lines = []
    for comp in cycles:
        for m in comp:
            lines += [f"  {m} -> {t} (line {n})" for t, n in sorted(graph[m].items()) if t in comp]
    assert not cycles, "import circle(s) among finbench modules:\n" + "\n".join(lines)


# The stages in the order data flows through them (docs/architecture.md draws the same list).
# A module may import its own stage and earlier ones; a later stage is reached by passing values.
# The entry points (finbench.cli, finbench.demo, finbench.slurm) sit above every stage.
STAGES = ("core", "data", "mixtures", "train", "eval", "sweep", "report")


def stage(module: str) -> int:
    parts = module.split(".")
    return STAGES.index(parts[1]) if len(parts) > 1 and parts[1] in STAGES else len(STAGES)


def test_every_module_sits_in_a_stage_or_is_an_entry_point() -> None:
    entry = {m for m in import_graph() if stage(m) == len(STAGES)}
    assert entry == {"finbench", "finbench.cli", "finbench.demo", "finbench.slurm"}


def test_imports_follow_the_stages() -> None:
    against = [
        f"  {m} ({STAGES[stage(m)]}) -> {t} ({STAGES[stage(t)] if stage(t) < len(STAGES) else 'entry'}), line {n}"
        for m, targets in sorted(import_graph().items())
        for t, n in sorted(targets.items())
        if stage(t) > stage(m)
    ]
    assert not against, "imports against the flow " + " -> ".join(STAGES) + ":\n" + "\n".join(against)


def test_the_stage_rule_catches_an_import_against_the_flow(tmp_path) -> None:
    pkg = tmp_path / PACKAGE
    for sub in ("data", "report"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "raw.py").write_text("def f():\n    from finbench.report import build\n")
    (pkg / "report" / "build.py").write_text("from finbench.data import raw\n")
    graph = import_graph(pkg)
    assert [(m, t) for m, ts in graph.items() for t in ts if stage(t) > stage(m)] == [
        ("finbench.data.raw", "finbench.report.build")
    ]


def _stage_members(stage_name: str) -> set[str]:
    """A stage's modules as docs/architecture.md names them: `raw`, and `sources/` for a subpackage."""
    out = set()
    for module in import_graph():
        parts = module.split(".")
        if len(parts) > 2 and parts[1] == stage_name:
            out.add(parts[2] + ("/" if len(parts) > 3 or (ROOT / stage_name / parts[2]).is_dir() else ""))
    return out


def test_architecture_page_lists_every_module() -> None:
    """docs/architecture.md's stage table has the test's stages, in order, each with its modules."""
    page = (ROOT.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = [line.split("|")[1:-1] for line in page.splitlines() if line.startswith("| `")]
    table = {cells[0].strip().strip("`"): cells[-1] for cells in rows if cells[0].strip().strip("`") in STAGES}
    assert list(table) == list(STAGES), "the page's stages are not STAGES, in order"
    for name, cell in table.items():
        named = {m.strip() for m in cell.replace("`", "").split(",") if m.strip()}
        assert named == _stage_members(name), f"stage {name}: page {sorted(named)} vs package {sorted(_stage_members(name))}"
