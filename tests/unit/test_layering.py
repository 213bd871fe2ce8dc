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
    "common.commands",
    "common.cli",
    "services",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def pure_sources() -> list[Path]:
    return sorted(p for d in PURE for p in (ROOT / d).rglob("*.py"))


@pytest.mark.parametrize("path", pure_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_maths_imports_no_runtime(path: Path) -> None:
    bad = {
        name
        for name in imported_modules(path)
        for forbidden in FORBIDDEN_FOR_PURE
        if name == forbidden or name.startswith(forbidden + ".")
    }
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}: the maths must stay pure"


def test_checker_catches_a_runtime_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import zmq\nfrom common.runtime import codec\n")
    assert imported_modules(bad) >= {"zmq", "common.runtime"}
