"""The layers, bottom to top: an import never points up, and the runtime never needs what stands beside it.

notifications (the library, with notifications.sql)  <  workflows  <  activities  <  api  <  processes
beside: bench, chaos, fakes (and the tests), which may use any layer; none of the layers uses them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["notifications", "workflows", "activities", "api", "processes"]
BESIDE = ["bench", "chaos", "fakes", "tests"]
MAX_LINES = 400


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Top-level packages a module imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", LAYERS)
def test_no_import_points_up_or_aside(package: str) -> None:
    above = set(LAYERS[LAYERS.index(package) + 1 :]) | set(BESIDE)
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported(path) & above)
        for path in modules(package)
        if imported(path) & above
    }
    assert wrong == {}


@pytest.mark.parametrize("package", [*LAYERS, "bench", "chaos", "fakes"])
def test_no_source_file_over_400_lines(package: str) -> None:
    long = {str(p.relative_to(ROOT)): n for p in modules(package) if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_every_package_is_installed() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    for package in [*LAYERS, "bench", "chaos", "fakes", "migrations"]:
        assert f'"{package}*"' in text
