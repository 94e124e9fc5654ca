"""The architecture as a test: imports point one way, with no cycle and no hidden escape.

Every module of ``dealscore`` and ``dealscore_service`` is parsed (not imported)
and every import of either package is collected, including imports inside
functions, which a deferred import used to dodge a cycle would be. The layers,
lowest first::

    base (errors, times, paths, taxonomy, playbook, _compat, config)
    → data → features → models → tracking → scoring → training → scale (Dask) → cli → dealscore_service

Training sits above scoring: it learns the warnings' thresholds from the
scorer's own measures and calibrates the forecast's open deals by scoring past
windows with the bundle it has just assembled; scoring only reads a bundle.

An edge from a lower layer to a higher one fails, as does any cycle between
modules, the page (``dealscore_service.ui``) importing the API routers, and a
private name (``_x``) imported from another module.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from functools import cache
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"dealscore": ROOT / "src" / "dealscore", "dealscore_service": ROOT / "service" / "dealscore_service"}
BASE = {"errors", "times", "paths", "taxonomy", "playbook", "_compat", "config", "wording"}
RANKS = {"data": 1, "features": 2, "models": 3, "tracking": 4, "scoring": 5, "training": 6, "scale": 7, "cli": 8,
         "__main__": 8}
SERVICE_RANK = 9
#: The forecast package spans two layers: its models (when a deal closes, how
#: much new pipeline a team creates) sit beside the win and stage models, and
#: training and scoring use them; its engine, peers and backtest run the scorer.
SUB_RANKS = {"forecast.periods": 3, "forecast.features": 3, "forecast.close_time": 3, "forecast.creation": 3,
             "forecast.montecarlo": 3, "forecast.calibration": 3, "forecast": 6}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    deferred: bool
    names: tuple[str, ...]

    def __str__(self) -> str:
        where = "in a function" if self.deferred else "at module level"
        return f"{self.source} → {self.target} (line {self.line}, {where})"


def _module_name(path: Path, package: str, root: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p, pkg, root): p for pkg, root in PACKAGES.items() for p in sorted(root.rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def _target(name: str) -> str | None:
    """The module ``name`` refers to: itself, or the closest enclosing module we have."""
    mods = modules()
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


@cache
def edges() -> list[Edge]:
    out: list[Edge] = []
    for module, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        in_function = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                       for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found = [(a.name, ()) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path.name == "__init__.py", node)
                # "from pkg import sub" imports the sub-module; "from mod import name" the module
                found = [(f"{base}.{a.name}" if _target(f"{base}.{a.name}") == f"{base}.{a.name}" else base,
                          (a.name,)) for a in node.names]
            else:
                continue
            for name, names in found:
                target = _target(name)
                if target is not None and target != module and not module.startswith(f"{target}."):
                    out.append(Edge(module, target, node.lineno, id(node) in in_function, names))
    return out


def rank(module: str) -> int:
    top, _, rest = module.partition(".")
    if top == "dealscore_service":
        return SERVICE_RANK
    parts = rest.split(".")
    for key in (".".join(parts[:2]), parts[0]):
        if key in SUB_RANKS:
            return SUB_RANKS[key]
    return 0 if not parts[0] or parts[0] in BASE else RANKS[parts[0]]


def test_every_module_has_a_layer() -> None:
    assert len(modules()) > 100
    for module in modules():
        rank(module)  # a KeyError names a new top-level module that needs a place in the layers


def test_dependencies_point_one_way() -> None:
    upward = [f"{e} : layer {rank(e.source)} imports layer {rank(e.target)}" for e in edges()
              if rank(e.source) < rank(e.target)]
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_there_is_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {m: set() for m in modules()}
    by_pair: dict[tuple[str, str], Edge] = {}
    for e in edges():
        graph[e.source].add(e.target)
        by_pair.setdefault((e.source, e.target), e)
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle = exc.args[1]  # [a, b, ..., a], each depending on the next
        described = [str(by_pair[(b, a)]) for a, b in itertools.pairwise(cycle)]
        pytest.fail("import cycle:\n" + "\n".join(described))


def test_the_page_does_not_import_the_api_routers() -> None:
    bad = [str(e) for e in edges() if e.source.startswith("dealscore_service.ui")
           and e.target.startswith("dealscore_service.routers")]
    assert not bad, "the page reaches into the API routers:\n" + "\n".join(bad)


def test_no_private_name_is_imported_from_another_module() -> None:
    bad = [f"{e}: {n}" for e in edges() for n in e.names if n.startswith("_") and not n.startswith("__")
           and e.source.rpartition(".")[0] != "" and not e.target.startswith(f"{e.source}.")]
    assert not bad, "private names used across modules:\n" + "\n".join(bad)


@pytest.mark.parametrize("broken", [
    "import dealscore_service.main\n",
    "def f():\n    from dealscore.scoring import Scorer\n",
])
def test_the_walk_sees_module_level_and_in_function_imports(broken: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard itself can fail: an upward import planted in the data layer is found either way."""
    fake = tmp_path / "dealscore"
    for pkg, root in PACKAGES.items():
        dst = tmp_path / pkg
        for p in root.rglob("*.py"):
            (dst / p.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
            (dst / p.relative_to(root)).write_text(p.read_text(encoding="utf-8"), encoding="utf-8")
    (fake / "data" / "planted.py").write_text(broken, encoding="utf-8")
    monkeypatch.setitem(PACKAGES, "dealscore", fake)
    monkeypatch.setitem(PACKAGES, "dealscore_service", tmp_path / "dealscore_service")
    modules.cache_clear()
    edges.cache_clear()
    try:
        with pytest.raises(AssertionError, match=r"dealscore\.data\.planted"):
            test_dependencies_point_one_way()
    finally:
        modules.cache_clear()
        edges.cache_clear()
