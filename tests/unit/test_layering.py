"""The layer table of docs/architecture.md, enforced on the source, module by module.

Every ``import`` and ``from ... import`` anywhere in a file counts — at the top, inside a
function body (a lazy import), under ``if TYPE_CHECKING`` — and so does
``importlib.import_module("...")`` / ``__import__("...")`` with a literal name (or the literal
prefix of an f-string). Relative imports are resolved against the file's package.

The table is data (``LAYERS``): for each package, the project packages it may import (any
other project package is a forbidden edge) and the outside modules it must not import
(plus, for the lowest layers, the only third-party modules it may import at all). Negative
controls place a file with a forbidden import in each layer (through ``package=``) and check
that it is reported.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The packages the table covers; the other top-level folders with Python code are outside
# the product, and nothing in it may import them.
TABLE_ROOTS = ("common", "services", "hgc")
OUTSIDE_PRODUCT = ("tests", "bench", "scripts")

# Pure maths runs anywhere and never blocks: no sockets, threads, processes or event loops.
CONCURRENCY = (
    "socket",
    "socketserver",
    "selectors",
    "threading",
    "_thread",
    "asyncio",
    "subprocess",
    "multiprocessing",
    "concurrent",
)
MATHS = ("common.coding", "common.perf", "common.learning")
CONFIG = ("common.scenario",)
RUNTIME = ("common.runtime",)
ROLES = ("services.master", "services.edge", "services.worker")


@dataclass(frozen=True)
class Layer:
    """What the modules of one package may import.

    ``may``: project packages (and everything under them) this one may import; its own
    package is always allowed, any other package under ``common``/``services``/``hgc`` is a
    forbidden edge. ``never``: outside modules it must not import. ``third_party``: when set,
    the only non-stdlib outside modules it may import. ``subpackages``: whether the entry
    also covers packages below it (the top-level ``common`` and ``services`` entries cover
    only their ``__init__``; a new sub-package must get its own row).
    """

    layer: str
    may: tuple[str, ...]
    never: tuple[str, ...] = ()
    third_party: tuple[str, ...] | None = None
    subpackages: bool = True


PURE_NEVER = ("zmq", "msgpack", "yaml", "prometheus_client", "docker", *CONCURRENCY)
LAYERS: dict[str, Layer] = {
    # pure maths: numpy and the stdlib; perf builds on coding, the rest on nothing
    "common.coding": Layer("pure maths", may=(), never=PURE_NEVER, third_party=("numpy",)),
    "common.perf": Layer(
        "pure maths", may=("common.coding",), never=PURE_NEVER, third_party=("numpy",)
    ),
    "common.learning": Layer("pure maths", may=(), never=PURE_NEVER, third_party=("numpy",)),
    # config: the maths and yaml
    "common.scenario": Layer(
        "config",
        may=MATHS,
        never=("zmq", "msgpack", "prometheus_client", "docker"),
        third_party=("numpy", "yaml"),
    ),
    # runtime: maths, config, the wire and the metrics
    "common.runtime": Layer(
        "runtime",
        may=(*MATHS, *CONFIG),
        never=("docker",),
        third_party=("numpy", "zmq", "msgpack", "prometheus_client"),
    ),
    "common": Layer("core package", may=(), never=PURE_NEVER, subpackages=False),
    # services: the shared node plumbing on top of common; each role on both, never sideways
    "services.common": Layer("services", may=("common",)),
    "services.master": Layer("services", may=("common", "services.common")),
    "services.edge": Layer("services", may=("common", "services.common")),
    "services.worker": Layer("services", may=("common", "services.common")),
    "services": Layer("services", may=("common", "services.common"), subpackages=False),
    # application: everything
    "hgc": Layer("application", may=("common", "services")),
}


def under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def module_name(path: Path) -> str:
    """Dotted module of a source file under ROOT (``pkg/__init__.py`` -> ``pkg``)."""
    parts = path.resolve().relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path) -> str:
    """Dotted package a source file belongs to (what its relative imports are relative to)."""
    return ".".join(path.resolve().relative_to(ROOT).parent.parts)


def layer_key(module: str) -> str:
    """The row of ``LAYERS`` that governs ``module`` (the longest matching package)."""
    keys = [
        k
        for k, rule in LAYERS.items()
        if module == k or (rule.subpackages and module.startswith(k + "."))
    ]
    if not keys:
        raise KeyError(f"{module}: no row of the layer table covers it; add one")
    return max(keys, key=len)


def _literal_module(call: ast.Call) -> str | None:
    """The module named by ``importlib.import_module("x")`` / ``__import__("x")``: a literal,
    or the literal dotted prefix of an f-string (``f"hgc.commands.{name}"`` -> ``hgc.commands``)."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values:
        head = arg.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str) and "." in head.value:
            return head.value.rsplit(".", 1)[0]
    return None


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Absolute names of every module ``path`` imports, anywhere in the file; relative
    imports are resolved against ``package`` (default: the file's package under ROOT).
    ``from a import b`` gives ``a`` and ``a.b`` (``b`` may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                parts = (package if package is not None else package_of(path)).split(".")
                if node.level - 1 >= len(parts):
                    raise ValueError(f"{path}: relative import beyond the top-level package")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                if node.module:
                    base = f"{base}.{node.module}"
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and (literal := _literal_module(node)):
            names.add(literal)
    return names


def violations(names: set[str], module: str) -> set[str]:
    """The imports in ``names`` that the layer table forbids to ``module``."""
    own = layer_key(module)
    rule = LAYERS[own]
    bad = set()
    for name in names:
        root = name.split(".")[0]
        if root in TABLE_ROOTS:
            # its own package (only its __init__ for a row without sub-packages), an allowed
            # package or something inside one, or a parent package's __init__
            ok = (
                (under(name, own) if rule.subpackages else name == own)
                or under(own, name)
                or any(under(name, a) or under(a, name) for a in rule.may)
            )
        elif root in OUTSIDE_PRODUCT or any(under(name, banned) for banned in rule.never):
            ok = False
        elif rule.third_party is not None and root not in sys.stdlib_module_names:
            ok = root in rule.third_party
        else:
            ok = True
        if not ok:
            bad.add(name)
    return bad


def sources(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py"))


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


# ------------------------------------------------------------------ the rules, file by file
@pytest.mark.parametrize("path", sources(*TABLE_ROOTS), ids=rel)
def test_every_import_follows_the_layer_table(path: Path) -> None:
    module = module_name(path)
    bad = violations(imported_modules(path), module)
    layer = LAYERS[layer_key(module)]
    assert not bad, (
        f"{rel(path)} ({layer.layer}, row {layer_key(module)!r}) imports {sorted(bad)}; "
        f"it may import {sorted(layer.may) or 'no other project package'} "
        "(docs/architecture.md, layers)"
    )


@pytest.mark.parametrize("path", sources("common"), ids=rel)
def test_nothing_in_common_imports_services_or_the_application(path: Path) -> None:
    """Not even inside a function: common sits below services and hgc, full stop."""
    upward = {n for n in imported_modules(path) if n.split(".")[0] in ("services", "hgc", "tests")}
    assert not upward, f"{rel(path)} imports {sorted(upward)}"


def test_every_source_file_has_a_row() -> None:
    """A new package under common/ or services/ must be placed in the table on purpose."""
    for path in sources(*TABLE_ROOTS):
        layer_key(module_name(path))  # raises KeyError naming the module
    with pytest.raises(KeyError, match="common.newthing"):
        layer_key("common.newthing.x")
    with pytest.raises(KeyError, match="services.gateway"):
        layer_key("services.gateway")


def test_the_table_rows_are_the_real_packages() -> None:
    for key in LAYERS:
        assert (ROOT / key.replace(".", "/") / "__init__.py").exists(), key


# ------------------------------------------------------------------ negative controls
# For each row: imports it must never make. Each is planted in a temporary file of that
# package, once at the top and once inside a function body, and must be reported.
FORBIDDEN_EDGES: dict[str, tuple[str, ...]] = {
    "common.coding": (
        "common.perf",
        "common.learning",
        "common.scenario",
        "common.runtime",
        "services.worker",
        "hgc.cli",
        "zmq",
        "msgpack",
        "yaml",
        "prometheus_client",
        "threading",
        "socket",
        "subprocess",
        "asyncio",
        "scipy",
    ),
    "common.perf": ("common.learning", "common.scenario", "common.runtime", "hgc", "threading"),
    "common.learning": ("common.coding", "common.perf", "common.runtime", "services", "yaml"),
    "common.scenario": ("common.runtime", "services.common", "hgc.testbed", "zmq", "msgpack"),
    "common.runtime": ("services", "services.edge.state", "hgc.cluster", "docker", "tests"),
    "common": ("services", "hgc", "zmq"),
    "services.common": ("services.master", "services.worker.compute", "hgc.cluster"),
    "services.master": ("services.edge", "services.worker.compute", "hgc", "tests.conftest"),
    "services.edge": ("services.master.state", "services.worker.compute", "hgc.format"),
    "services.worker": ("services.edge.state", "services.master", "hgc.testbed.records"),
    "services": ("services.master", "hgc"),
    "hgc": ("tests.conftest", "bench"),
}

# For each row: imports it may make (the checker must not just refuse everything).
ALLOWED_EDGES: dict[str, tuple[str, ...]] = {
    "common.coding": ("numpy", "math", "functools", "common.coding.tier", "time"),
    "common.perf": ("common.coding", "common.coding.bounds", "numpy", "common.perf.plan"),
    "common.learning": ("numpy", "zlib", "common.learning.spec"),
    "common.scenario": ("yaml", "common.perf", "common.coding", "common.learning", "numpy"),
    "common.runtime": ("zmq", "msgpack", "prometheus_client", "threading", "common.scenario"),
    "common": ("common",),
    "services.common": ("common.runtime", "common.coding", "zmq", "socket"),
    "services.master": ("common.runtime", "services.common.node", "services.master.state"),
    "services.edge": ("common.coding", "services.common", "services.edge.state"),
    "services.worker": ("common.learning", "common.runtime.emulation", "services.common"),
    "services": ("common",),
    "hgc": ("services.master.config", "services.worker", "common.runtime", "matplotlib"),
}


def test_the_controls_cover_every_row() -> None:
    assert set(FORBIDDEN_EDGES) == set(LAYERS) == set(ALLOWED_EDGES)


def _plant(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "planted.py"
    path.write_text(body)
    return path


def _module_in(package: str) -> str:
    return f"{package}.planted" if LAYERS[package].subpackages else package


@pytest.mark.parametrize(
    ("package", "name"), [(k, n) for k, names in FORBIDDEN_EDGES.items() for n in names]
)
def test_a_forbidden_import_is_reported_at_top_level_and_inside_a_function(
    tmp_path: Path, package: str, name: str
) -> None:
    module = _module_in(package)
    top = _plant(tmp_path, f"import {name}\n")
    assert name in violations(imported_modules(top, package=package), module)
    if "." in name:
        parent, leaf = name.rsplit(".", 1)
        lazy = f"def helper():\n    if True:\n        from {parent} import {leaf}\n    return 1\n"
    else:
        lazy = f"def helper():\n    import {name}\n    return {name}\n"
    path = _plant(tmp_path, f'"""A module."""\n\nX = 1\n\n\n{lazy}')
    assert name in violations(imported_modules(path, package=package), module), lazy
    dynamic = _plant(
        tmp_path, f"import importlib\n\ndef f():\n    importlib.import_module({name!r})\n"
    )
    assert name in violations(imported_modules(dynamic, package=package), module)


@pytest.mark.parametrize(
    ("package", "name"), [(k, n) for k, names in ALLOWED_EDGES.items() for n in names]
)
def test_an_allowed_import_is_not_reported(tmp_path: Path, package: str, name: str) -> None:
    path = _plant(tmp_path, f"def helper():\n    import {name}\n")
    assert violations(imported_modules(path, package=package), _module_in(package)) == set()


def test_relative_imports_are_resolved_against_the_package(tmp_path: Path) -> None:
    bad = _plant(
        tmp_path, "from ..runtime import codec\nfrom .. import scenario\nfrom . import tier\n"
    )
    names = imported_modules(bad, package="common.coding")
    assert {
        "common.runtime",
        "common.runtime.codec",
        "common.scenario",
        "common.coding.tier",
    } <= names
    assert violations(names, "common.coding.planted") == {
        "common.runtime",
        "common.runtime.codec",
        "common.scenario",
    }
    sideways = _plant(tmp_path, "def f():\n    from ..worker.compute import link_of\n")
    assert violations(imported_modules(sideways, package="services.edge"), "services.edge.x") == {
        "services.worker.compute",
        "services.worker.compute.link_of",
    }


def test_from_package_import_submodule_is_seen(tmp_path: Path) -> None:
    """``from common import runtime`` names the package ``common`` only on its face."""
    path = _plant(tmp_path, "def f():\n    from common import runtime\n")
    assert violations(imported_modules(path, package="common.coding"), "common.coding.x") == {
        "common.runtime"
    }


def test_dynamic_import_with_an_f_string_prefix_is_seen(tmp_path: Path) -> None:
    code = "import importlib\n\ndef f(r):\n    return importlib.import_module(f'services.{r}.x')\n"
    path = _plant(tmp_path, code)
    names = imported_modules(path, package="common.runtime")
    assert "services" in names
    assert violations(names, "common.runtime.x") == {"services"}
