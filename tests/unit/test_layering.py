"""The maths never imports the runtime: checked on the source, module by module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = ["common/coding", "common/perf", "common/learning"]
FORBIDDEN_FOR_PURE = {
    "zmq",
    "msgpack",
    "yaml",
    "prometheus_client",
    "socket",
    "threading",
    "asyncio",
    "subprocess",
    "docker",
    "common.runtime",
    "common.scenario",
    "hgc",
    "services",
}


def package_of(path: Path) -> str:
    """Dotted package a source file belongs to (what its relative imports are relative to)."""
    return ".".join(path.resolve().relative_to(ROOT).parent.parts)


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Absolute names of every module ``path`` imports; relative imports are resolved
    against ``package`` (default: the file's package under ROOT)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom):
            parts = (package if package is not None else package_of(path)).split(".")
            if node.level - 1 >= len(parts):
                raise ValueError(f"{path}: relative import beyond the top-level package")
            base = ".".join(parts[: len(parts) - (node.level - 1)])
            if node.module:
                names.add(f"{base}.{node.module}")
            else:  # ``from .. import runtime``: each name may be a module
                names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def forbidden(names: set[str]) -> set[str]:
    """The names that are, or live under, a package the pure maths must not import."""
    return {
        name
        for name in names
        for banned in FORBIDDEN_FOR_PURE
        if name == banned or name.startswith(banned + ".")
    }


def pure_sources() -> list[Path]:
    return sorted(p for d in PURE for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", pure_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_maths_imports_no_runtime(path: Path) -> None:
    bad = forbidden(imported_modules(path))
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: the maths must stay pure"


def test_checker_catches_a_runtime_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import zmq\nfrom common.runtime import codec\n")
    assert imported_modules(bad, package="common.coding") >= {"zmq", "common.runtime"}


def test_checker_resolves_relative_imports(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from ..runtime import codec\nfrom .. import scenario\nfrom . import tier\n")
    assert imported_modules(bad, package="common.coding") == {
        "common.runtime",
        "common.scenario",
        "common.coding.tier",
    }
    assert forbidden(imported_modules(bad, package="common.coding")) == {
        "common.runtime",
        "common.scenario",
    }
