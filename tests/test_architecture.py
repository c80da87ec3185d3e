"""The layout's promises: no import cycles (in-function imports included), library code never reaches up into
the jobs or the command line, importing amodal imports nothing heavy, and each shared step has one home."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "amodal"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the amodal modules it imports anywhere in its body (lazy imports count)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                if base.startswith("amodal"):
                    targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("amodal")]
            for target in targets:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target not in (name, "amodal"):
                    deps.add(target)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_anywhere():
    assert cycles(import_graph()) == []


def _within(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_library_code_never_imports_the_jobs_or_the_command_line():
    graph = import_graph()
    for name, deps in graph.items():
        if _within(name, "amodal.apps", "amodal.cli", "amodal.__main__"):
            continue
        upward = sorted(d for d in deps if _within(d, "amodal.apps", "amodal.cli"))
        assert not upward, f"{name} imports {upward}"
    # The command line only parses arguments: it reaches the library through amodal.apps and the
    # config dataclasses, never the other way round.
    for name, deps in graph.items():
        if _within(name, "amodal.apps"):
            assert not any(_within(d, "amodal.cli") for d in deps), name


def test_stages_do_not_import_each_other():
    graph = import_graph()
    for name, deps in graph.items():
        if _within(name, "amodal.segmentation"):
            assert not any(_within(d, "amodal.completion") for d in deps), name
        if _within(name, "amodal.completion"):
            assert not any(_within(d, "amodal.segmentation") for d in deps), name


@pytest.mark.parametrize("module", ["amodal", "amodal.segmentation", "amodal.completion", "amodal.data", "amodal.checkpoints"])
def test_importing_a_package_imports_nothing_heavy(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'av') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_each_shared_step_has_one_home():
    """Window planning, depth normalisation, strict weight loading and format detection are each defined once."""
    homes = {
        "def window_starts": "data/windows.py",
        "def plan_windows": "data/windows.py",
        "def normalize_depth": "depth/normalize.py",
        "def load_state_strict": "checkpoints/safetensors.py",
        "def check_state_dict": "checkpoints/safetensors.py",
        "def read_safetensors": "checkpoints/safetensors.py",
        "def folder_format": "checkpoints/formats.py",
        "def atomic_dir": "util/fs.py",
    }
    for definition, home in homes.items():
        where = sorted(
            str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if f"\n{definition}(" in "\n" + p.read_text()
        )
        assert where == [home], f"{definition} is defined in {where}"
    # Nothing but the safetensors module reads weight files.
    readers = sorted(
        str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "safetensors.torch import load_file" in p.read_text()
    )
    assert readers == ["checkpoints/safetensors.py"]


def test_every_import_in_the_docs_resolves():
    """Python snippets in the README and docs/ name modules and objects that exist in this layout."""
    import importlib
    import re

    root = PACKAGE.parents[1]
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    checked = 0
    for page in pages:
        for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S):
            for module, names in re.findall(r"^\s*from (amodal[\w.]*) import ([\w, ]+)$", block, flags=re.M):
                imported = importlib.import_module(module)
                for name in (n.strip() for n in names.split(",")):
                    assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), (
                        f"{page.name}: from {module} import {name}"
                    )
                checked += 1
    assert checked >= 5


def test_every_source_path_the_docs_name_exists():
    """``amodal/...`` and ``src/amodal/...`` paths in the README and docs/ point at files or folders of this layout."""
    import re

    root = PACKAGE.parents[1]
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md")), PACKAGE / "assets" / "weights" / "TRAINING.md"]
    missing = []
    for page in pages:
        for path in re.findall(r"`(?:src/)?(amodal/[\w/.-]+)`", page.read_text()):
            if not (PACKAGE.parent / path.rstrip("/")).exists():
                missing.append(f"{page.name}: {path}")
    assert missing == []
