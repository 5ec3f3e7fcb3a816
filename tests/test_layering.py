"""The import graph of the product (`neonas/`, `evaluators/`) has no cycle and no arrow up a layer.

LAYERS is README.md's "Architecture" list, lowest first; a test checks that each layer's paths
are named in the README item of the same number, so the two cannot drift apart.

The graph is read from the source with `ast`; nothing is imported. Its arrows:
- every `import` / `from ... import` statement of a module, wherever it stands: at module level,
  in a function or method, under `if TYPE_CHECKING:`. A deferred import is still a dependency,
  and two modules that import each other inside functions are still a cycle.
- `from P import x` is an arrow to the module `P.x` when x is a submodule; when P's `__init__`
  is a lazy face (`__getattr__ = lazy_getattr(__name__, _EXPORTS)`, neonas/lazy.py) and x is
  one of its `_EXPORTS`, an arrow to the module that defines x, the one the face imports when
  x is read; otherwise an arrow to P's `__init__`.
- A lazy face has no arrows of its own to the modules it offers: it holds their names as
  strings and imports one only when an attribute is read, after every module involved has
  finished importing, so it is lazy by construction and cannot close a cycle. Likewise
  `importlib.import_module("...")` (neonas/__init__.py registers the models with timm when
  timm loads; neonas/cli.py loads the command modules) is not an arrow.
- Importing `a.b.c` also runs `a/__init__` and `a/b/__init__` first. That implicit step is no
  arrow (a package that imports its own submodules is not a cycle); what it costs is checked
  directly: importing a low module must not run the search driver (the last test).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("neonas", "evaluators")

# README.md, "Architecture": layer number -> (name, paths). A path ending in "/" is a package
# with everything under it; a .py path is that one module (neonas/__init__.py: the package
# `neonas` itself, not its subpackages).
LAYERS: dict[int, tuple[str, tuple[str, ...]]] = {
    1: (
        "Helpers",
        (
            "neonas/__init__.py",
            "neonas/errors.py",
            "neonas/io.py",
            "neonas/lazy.py",
            "neonas/si.py",
            "neonas/memory.py",
            "neonas/cluster.py",
            "neonas/options.py",
        ),
    ),
    2: ("Operator", ("neonas/ops/",)),
    3: ("Networks", ("neonas/arch.py", "neonas/canonical.py", "neonas/models/")),
    4: ("Evaluators", ("evaluators/",)),
    5: ("Search space", ("neonas/space.py", "neonas/signals.py", "neonas/bench/")),
    6: ("Training", ("neonas/train/",)),
    7: ("Supernet", ("neonas/supernet/",)),
    8: ("Search", ("neonas/search/",)),
    9: ("Commands", ("neonas/commands/", "neonas/cli.py")),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the product: dotted name -> file."""
    return {
        module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }


def layer_of(module: str) -> int:
    """The layer of `module`: its exact .py entry, else the deepest package entry holding it."""
    best, depth = 0, -1
    for number, (_, paths) in LAYERS.items():
        for entry in paths:
            if entry.endswith("/"):
                package = entry.rstrip("/").replace("/", ".")
                if (module == package or module.startswith(package + ".")) and package.count(
                    "."
                ) > depth:
                    best, depth = number, package.count(".")
            elif module == module_name(ROOT / entry):
                return number
    if not best:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and README's Architecture")
    return best


def lazy_exports(tree: ast.Module) -> dict[str, str] | None:
    """A lazy face's `_EXPORTS` (name -> defining module), or None when the module is not one."""
    is_face = any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__getattr__" for t in node.targets)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "lazy_getattr"
        for node in tree.body
    )
    if not is_face:
        return None
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "_EXPORTS" and node.value is not None:
            return ast.literal_eval(node.value)
    raise AssertionError("a lazy face without a literal _EXPORTS dict")


def import_graph(mods: dict[str, Path]) -> dict[str, dict[str, int]]:
    """module -> {imported product module: line of the first import statement}."""
    trees = {name: ast.parse(path.read_text(), str(path)) for name, path in mods.items()}
    faces = {name: exports for name, tree in trees.items() if (exports := lazy_exports(tree))}

    def targets(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        if node.level or node.module is None:
            raise AssertionError(f"relative import at line {node.lineno}: write it absolute")
        found = []
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            if full in mods:
                found.append(full)
            elif alias.name in faces.get(node.module, {}):
                found.append(faces[node.module][alias.name])
            else:
                found.append(node.module)
        return found

    graph: dict[str, dict[str, int]] = {}
    for name, tree in trees.items():
        arrows: dict[str, int] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in targets(node):
                    if target.split(".")[0] in PACKAGES and target != name:
                        assert target in mods, f"{name}:{node.lineno} imports unknown {target}"
                        arrows[target] = min(arrows.get(target, node.lineno), node.lineno)
        graph[name] = arrows
    return graph


def upward_imports(graph: dict[str, dict[str, int]]) -> list[str]:
    return [
        f"{src}:{line} imports {dst} (layer {layer_of(src)} -> layer {layer_of(dst)})"
        for src, arrows in sorted(graph.items())
        for dst, line in sorted(arrows.items())
        if layer_of(dst) > layer_of(src)
    ]


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, int]]:
    return import_graph(modules())


def test_every_module_has_a_layer(graph) -> None:
    for name in graph:
        layer_of(name)  # raises, naming the module, when LAYERS leaves it out


def test_no_module_imports_from_a_higher_layer(graph) -> None:
    assert upward_imports(graph) == []


def test_no_two_modules_import_each_other_even_through_others(graph) -> None:
    assert cycles(graph) == []


def test_the_graph_sees_function_level_imports_and_lazy_faces(graph) -> None:
    """What the checks above rest on: arrows that a careless parser would miss are there."""
    assert "neonas.canonical" in graph["neonas.arch"]  # inside ArchConfig.canonical()
    assert "neonas.supernet.scoring" in graph["neonas.search.trial"]  # inside a function
    # `from neonas.ops import split_channels` resolves through the face to its module
    assert "neonas.ops" not in graph["neonas.arch"]
    assert any(dst.startswith("neonas.ops.") for dst in graph["neonas.arch"])
    assert set(graph["neonas.search"]) == {"neonas.lazy"}  # the face: no arrows of its own


def plant(tmp_path: Path, module: str, line: str) -> dict[str, dict[str, int]]:
    """The graph of a copy of the product with `line` added at the end of `module`'s file."""
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            copy = tmp_path / path.relative_to(ROOT)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(path.read_text())
    target = tmp_path / Path(*module.split(".")).with_suffix(".py")
    target.write_text(target.read_text() + f"\n\ndef _planted():\n    {line}\n")
    mods = {name: tmp_path / path.relative_to(ROOT) for name, path in modules().items()}
    return import_graph(mods)


def test_a_planted_upward_import_inside_a_function_fails_the_check(tmp_path) -> None:
    planted = plant(tmp_path, "neonas.ops.cell", "from neonas.search.driver import start_run")
    assert upward_imports(planted) == [
        f"neonas.ops.cell:{planted['neonas.ops.cell']['neonas.search.driver']} imports "
        "neonas.search.driver (layer 2 -> layer 8)"
    ]
    assert any("neonas.ops.cell" in component for component in cycles(planted))


def test_a_planted_cycle_inside_one_layer_fails_the_check(tmp_path) -> None:
    planted = plant(
        tmp_path, "neonas.search.records", "from neonas.search.study import load_trials"
    )
    assert upward_imports(planted) == []
    assert ["neonas.search.records", "neonas.search.study"] in cycles(planted)


def test_layers_match_the_readme_architecture_section() -> None:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Architecture") :]
    section = section[: section.index("\n## ", 1)]
    items = dict(
        (int(number), body)
        for number, body in re.findall(r"^(\d+)\. (.*?)(?=^\d+\. |^\S|\Z)", section, re.M | re.S)
    )
    assert sorted(items) == sorted(LAYERS)
    for number, (name, paths) in LAYERS.items():
        assert items[number].startswith(f"**{name}**"), (number, items[number][:40])
        for path in paths:
            assert f"`{path}`" in items[number], f"README layer {number} does not name {path}"


def test_low_modules_import_without_the_search_driver() -> None:
    """Importing the space, the signal names or one module of the search runs no package face
    that pulls in the driver (rich, Ray): `neonas.search` is a lazy face."""
    code = (
        "import sys\n"
        "import neonas.space, neonas.signals\n"
        "print(sorted(m for m in sys.modules if m.startswith('neonas.search')))\n"
        "import neonas.search.study\n"
        "print(sorted(m for m in ('rich', 'ray', 'neonas.search.driver') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "[]"]
