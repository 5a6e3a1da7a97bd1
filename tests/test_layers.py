"""The import graph: no package imports a package above it, siblings stay independent, no cycles.

Read from the source (every import statement, also inside functions and ``TYPE_CHECKING`` blocks), so a
lazy import cannot hide an upward dependency. The layers, bottom first, are what the README's
"Code layout" section describes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {
    "crisiswatch": "crisiswatch",
    "crisiswatch.stream": "stream",
    "crisiswatch.detectors": "detectors",
    "crisiswatch.connectors": "connectors",
}
"""Package -> source folder, as setup.py installs them (tests/test_deploy.py checks setup.py agrees)."""

LAYERS: list[list[str]] = [
    ["crisiswatch.contracts.vocabulary"],
    ["crisiswatch.detectors"],
    ["crisiswatch.contracts"],
    ["crisiswatch.settings", "crisiswatch.durations", "crisiswatch.tables"],
    ["crisiswatch.brands_file", "crisiswatch.kafka", "crisiswatch.broker"],
    ["crisiswatch.follow", "crisiswatch.preflight"],
    ["crisiswatch.control", "crisiswatch.alerting", "crisiswatch.series", "crisiswatch.offline"],
    ["crisiswatch.stream", "crisiswatch.connectors", "crisiswatch.tail"],
    ["crisiswatch.scenarios"],
    ["crisiswatch.backtest", "crisiswatch.demo"],
    ["crisiswatch.web"],
    ["crisiswatch.runner"],
    ["crisiswatch.bench"],
    ["crisiswatch.cli", "crisiswatch"],
]
"""Bottom first. A module may import its own component and anything in a lower layer; the components of
one layer are independent of each other. ``crisiswatch`` alone (the package itself) is the top."""

COMPONENTS = {name: depth for depth, layer in enumerate(LAYERS) for name in layer}


def modules() -> Iterator[tuple[str, Path]]:
    for package, folder in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join((package, *parts)), path


MODULES = dict(modules())


def component(module: str) -> str:
    """The longest entry of `LAYERS` that ``module`` is or lies in."""
    best = max((name for name in COMPONENTS if module == name or module.startswith(name + ".")), key=len)
    return best


def imports(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line, module, type-only) for every import in ``path``; ``from pkg import mod`` names the module.

    Imports under ``if TYPE_CHECKING:`` are type-only: they never run, so they count for the layers but
    not for cycles."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, id(node) in type_only
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                yield node.lineno, candidate if candidate in MODULES else node.module, id(node) in type_only


def edges(*, runtime_only: bool = False) -> Iterator[tuple[str, int, str]]:
    """(module, line, first-party module it imports)."""
    for module, path in MODULES.items():
        for line, target, type_only in imports(path):
            root = target.split(".")[0]
            if root in ("crisiswatch", "stream", "detectors", "connectors") and not (runtime_only and type_only):
                yield module, line, target


def test_every_module_has_a_layer() -> None:
    missing = sorted({component(m) for m in MODULES} - set(COMPONENTS))
    assert not missing
    top_level = {m for m in MODULES if m.count(".") == 1}
    unplaced = sorted(m for m in top_level if component(m) == "crisiswatch")
    assert not unplaced, f"give these a layer in LAYERS: {unplaced}"


def test_nothing_imports_the_folders_by_their_bare_names() -> None:
    bare = [
        f"{MODULES[m].relative_to(ROOT)}:{line}: {target}"
        for m, line, target in edges()
        if target.split(".")[0] != "crisiswatch"
    ]
    assert not bare, "import crisiswatch.stream/.detectors/.connectors instead:\n" + "\n".join(bare)


def test_no_upward_or_sideways_imports() -> None:
    wrong = []
    for module, line, target in edges():
        if target not in MODULES and not any(target.startswith(m + ".") for m in FOLDERS):
            continue
        mine, theirs = component(module), component(target)
        if mine == theirs:
            continue
        if COMPONENTS[theirs] >= COMPONENTS[mine]:
            where = "above" if COMPONENTS[theirs] > COMPONENTS[mine] else "beside"
            wrong.append(f"{MODULES[module].relative_to(ROOT)}:{line}: {mine} imports {theirs} ({where} it)")
    assert not wrong, "\n".join(wrong)


def test_the_module_graph_has_no_cycles() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, _, target in edges(runtime_only=True):
        if target in MODULES and target != module:
            graph[module].add(target)
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                members.append(top)
                if top == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", ["crisiswatch.stream", "crisiswatch.detectors", "crisiswatch.connectors"])
def test_the_folders_install_under_the_crisiswatch_namespace(package: str) -> None:
    import importlib
    import importlib.util

    assert Path(importlib.import_module(package).__file__).parent == ROOT / FOLDERS[package]
    for bare in ("stream", "detectors", "connectors"):
        spec = importlib.util.find_spec(bare)
        installed = spec is not None and Path(spec.origin or "").parent.parent != ROOT
        assert not installed, f"{bare} is installed as a top-level package"


def test_no_package_is_named_by_a_bare_string_either() -> None:
    """``resources.files("detectors")`` resolves only while the repository is the working directory (as in
    the tests); installed, it fails. Package names in strings follow the namespace too: the argument of
    ``resources.files``, ``import_module``, ``find_spec`` or ``getLogger``, and any dotted module path."""
    loaders = {"files", "import_module", "find_spec", "__import__", "getLogger"}
    topics = {"connectors.checkpoints"}  # a topic name, not a package
    bare = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            texts: list[str] = []
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in loaders and isinstance(node.args[0].value, str):
                    texts.append(node.args[0].value)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value:
                texts.append(node.value)
            for text in texts:
                parts = text.split(".")
                module_like = all(part.isidentifier() for part in parts)
                if module_like and parts[0] in ("stream", "detectors", "connectors") and text not in topics:
                    bare.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
    assert not bare, "name crisiswatch.<package> instead:\n" + "\n".join(bare)


def test_the_models_and_the_worker_load_outside_the_repository(tmp_path: Path) -> None:
    """From another working directory (as a deployed service runs): the worker's modules import and the
    shipped models load from the installed package."""
    import subprocess
    import sys

    code = (
        "import crisiswatch.stream.app, crisiswatch.connectors.sources, crisiswatch.cli\n"
        "from crisiswatch.detectors.sentiment import predict_batch\n"
        "from crisiswatch.detectors.language import detect_batch\n"
        "from crisiswatch.detectors.lexicon import find_crisis_terms\n"
        "assert predict_batch(['I love it', 'this is terrible, a disgrace']) == ['positive', 'negative']\n"
        "assert detect_batch(['hello world, how are you today']) == ['en']\n"
        "assert find_crisis_terms('a massive data breach')\n"
        "import stream\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert "No module named 'stream'" in result.stderr, result.stderr  # everything before the last line worked
