"""The folders are the architecture: imports point down only, nothing imports the CLI, no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "retrosearch"

#: Rank of each part of the package (longest dotted prefix wins). A module may import modules of its own rank or
#: lower, never higher: cli -> jobs -> retro / rl -> core -> backends -> types.
RANKS: dict[str, int] = {
    "retrosearch.types": 0,
    "retrosearch.assets": 0,
    "retrosearch.text": 0,
    "retrosearch.config": 0,
    "retrosearch.backends": 1,
    "retrosearch.engine": 2,
    "retrosearch.schedule": 2,
    "retrosearch.tree": 2,
    "retrosearch.trace": 2,
    "retrosearch.formats": 2,
    "retrosearch.verify": 2,
    "retrosearch.data": 2,
    "retrosearch.toy": 2,
    # Turning flags into a backend may name a shipped toy model: above the toy world, below the jobs.
    "retrosearch.backends.spec": 3,
    "retrosearch.retro": 3,
    "retrosearch.rl": 3,
    "retrosearch.retro.batch": 4,
    "retrosearch.rl.evaluate": 4,
    "retrosearch.rl.train": 4,
    "retrosearch.distill": 4,
    "retrosearch.evaluate": 4,
    "retrosearch.analysis": 4,
    "retrosearch.demo": 5,
    "retrosearch.rl.demo": 5,
    "retrosearch.cli": 6,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Lines inside `if TYPE_CHECKING:` blocks (annotations only: not imports at run time)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that `name` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from pkg import sub` imports the module pkg.sub when there is one.
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _rank(module: str) -> int:
    best = max((p for p in RANKS if module == p or module.startswith(p + ".")), key=len, default=None)
    if best is None:
        raise AssertionError(f"{module} has no rank in RANKS: place it in the architecture")
    return RANKS[best]


def test_every_module_has_a_place() -> None:
    for module in _modules():
        if module != "retrosearch":
            _rank(module)


def test_imports_point_down() -> None:
    upward = [
        f"{a} (rank {_rank(a)}) imports {b} (rank {_rank(b)})"
        for a, targets in _graph().items()
        if a != "retrosearch"
        for b in sorted(targets)
        if b != "retrosearch" and _rank(b) > _rank(a)
    ]
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_nothing_imports_the_cli() -> None:
    users = sorted(
        a
        for a, t in _graph().items()
        if not a.startswith("retrosearch.cli") and any(b.startswith("retrosearch.cli") for b in t)
    )
    assert not users, f"modules importing retrosearch.cli: {users}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
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
        for w in sorted(graph.get(v, ())):
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


def test_no_import_cycle() -> None:
    # The package's own __init__ re-exports the public face; it is the root, not part of any layer.
    graph = {a: {b for b in t if b != "retrosearch"} for a, t in _graph().items() if a != "retrosearch"}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("snippet", ["import retrosearch.cli", "from retrosearch import cli"])
def test_the_import_walker_sees_function_level_imports(tmp_path: Path, snippet: str) -> None:
    modules = {"retrosearch.cli": Path("x"), "retrosearch.engine": Path("y")}
    f = tmp_path / "m.py"
    f.write_text(f"def f():\n    {snippet}\n")
    assert _imports("retrosearch.engine", f, modules) == {"retrosearch.cli"}
