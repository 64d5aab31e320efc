"""The import rules of docs/architecture.md, checked on every module of the package.

cli -> demo, inspect, apply -> extract, train -> index, models, cache. `cache` imports no torch; `index`
imports no torch either (it runs where only the dataset is); nothing outside `testing`, `demo`
(and tests, benchmarks) imports `emokd.testing`. The shared base modules at the top of the
package (config, constants, errors, logs) import no area.
"""

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "emokd"
AREAS = ("cli", "demo", "inspect", "apply", "extract", "train", "index", "models", "cache", "testing")
BASE = ("config", "constants", "errors", "logs")
# what each area may import of the others (the base modules are open to all)
ALLOWED = {
    "cli": {"demo", "inspect", "apply", "extract", "train", "index", "models", "cache"},
    "demo": {"inspect", "apply", "extract", "train", "index", "models", "cache", "testing"},
    "inspect": {"extract", "train", "index", "models", "cache"},
    "apply": {"extract", "train", "index", "models", "cache"},
    "extract": {"index", "models", "cache"},
    "train": {"index", "models", "cache"},
    "index": set(),
    "models": set(),
    "cache": set(),
    "testing": {"extract", "index", "models", "cache"},
}
NO_TORCH = ("cache", "index")


def imported_modules(path: Path, source: str | None = None) -> set[str]:
    tree = ast.parse(path.read_text() if source is None else source)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = path.relative_to(PKG.parent).with_suffix("").parts
                parts = parts[:-1] if parts[-1] == "__init__" else parts
                base = ".".join(parts[: len(parts) - node.level + (path.name == "__init__.py")])
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.add(node.module)
    return names


def area_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "emokd" else None


def violations(area: str) -> list[str]:
    bad = []
    for path in (PKG / area).rglob("*.py"):
        for name in imported_modules(path):
            other = area_of(name)
            if other in AREAS and other != area and other not in ALLOWED[area]:
                bad.append(f"{path.relative_to(PKG)} imports {name}")
            if area in NO_TORCH and (name == "torch" or name.startswith("torch.")):
                bad.append(f"{path.relative_to(PKG)} imports {name}")
    return bad


@pytest.mark.parametrize("area", AREAS)
def test_imports_run_one_way(area):
    assert (PKG / area).is_dir(), f"emokd/{area} is missing"
    assert violations(area) == []


@pytest.mark.parametrize("base", BASE)
def test_base_modules_import_no_area(base):
    names = imported_modules(PKG / f"{base}.py")
    assert [n for n in names if area_of(n) in AREAS] == []


def test_every_module_lives_in_an_area_or_the_base():
    top = {p.stem for p in PKG.glob("*.py")} - {"__init__", "__main__"}
    assert top == set(BASE)
    assert {p.name for p in PKG.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(AREAS)


def test_rule_checker_resolves_relative_imports():
    found = imported_modules(PKG / "models" / "x.py", "from ..train import loop\nfrom . import y\n")
    assert found == {"emokd.train", "emokd.models"}
    found = imported_modules(PKG / "models" / "__init__.py", "from . import y\n")
    assert found == {"emokd.models"}


def test_rule_checker_catches_a_wrong_way_import(tmp_path, monkeypatch):
    area = tmp_path / "emokd" / "cache"
    area.mkdir(parents=True)
    (area / "bad.py").write_text("import torch\nfrom emokd.train import loop\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path / "emokd")
    assert sorted(violations("cache")) == ["cache/bad.py imports emokd.train", "cache/bad.py imports torch"]
