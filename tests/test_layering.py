"""The import rule of DESIGN §1: cli -> pipeline/train -> models/cache; cache has no torch."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "emokd"


def imported_modules(path: Path, source: str | None = None) -> set[str]:
    tree = ast.parse(path.read_text() if source is None else source)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = path.relative_to(PKG.parent).with_suffix("").parts[: -node.level]
                base = ".".join(parts)
                names.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.add(node.module)
    return names


FORBIDDEN = {
    "models": ("emokd.pipeline", "emokd.train", "emokd.cli", "emokd.cache"),
    "cache": ("emokd.pipeline", "emokd.train", "emokd.cli", "emokd.models", "torch"),
    "pipeline": ("emokd.train", "emokd.cli"),
    "train": ("emokd.pipeline", "emokd.cli"),
}


@pytest.mark.parametrize("area", sorted(FORBIDDEN))
def test_imports_run_one_way(area):
    bad = []
    for path in (PKG / area).rglob("*.py"):
        for name in imported_modules(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[area]):
                bad.append(f"{path.relative_to(PKG)} imports {name}")
    assert not bad, bad


def test_rule_checker_resolves_relative_imports():
    found = imported_modules(PKG / "models" / "x.py", "from ..train import loop\nfrom . import y\n")
    assert found == {"emokd.train", "emokd.models"}
