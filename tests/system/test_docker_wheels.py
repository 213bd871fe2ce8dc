"""``make wheels``: the offline wheelhouse the image installs from resolves for the Pi
clusters' platform (linux/arm64) from this x86 host, and a bad platform is refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.system.docker_helpers import ROOT

pytestmark = pytest.mark.timeout(300)
RUNTIME = ("numpy", "pyzmq", "msgpack", "prometheus_client", "pyyaml")


def wheels(platform: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # -o: never rebuild the virtual environment from inside a test
        ["make", "-s", "-o", ".venv/.stamp", "wheels", f"PLATFORM={platform}",
         f"WHEELHOUSE={out}", f"PYTHON={sys.executable}"],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )  # fmt: skip


def test_arm64_wheelhouse_resolves(tmp_path: Path) -> None:
    proc = wheels("linux/arm64", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    names = sorted(p.name for p in tmp_path.glob("*.whl"))
    for dist in RUNTIME:
        found = [n for n in names if n.lower().startswith(dist + "-")]
        assert found, f"no {dist} wheel in {names}"
        # compiled ones must be for aarch64 and CPython 3.11 (pure ones are py3-none-any)
        assert all("aarch64" in n and "cp311" in n or "none-any" in n for n in found), found
    # the project's own wheel apart (the image's dependency layer is reused across changes)
    assert [p.name for p in (tmp_path / "project").glob("*.whl")][0].startswith("hgc_edge-")
    assert not any(n.startswith("hgc_edge-") for n in names)
    # what the dependency layer installs: the runtime requirements, from the wheel's metadata
    required = (tmp_path / "requirements.txt").read_text().lower()
    assert all(dist.replace("_", "-") in required for dist in RUNTIME), required
    assert "matplotlib" not in required  # an extra, not a runtime requirement
    assert not any("x86_64" in n for n in names)  # negative control: nothing for the host


def test_unknown_platform_is_refused(tmp_path: Path) -> None:
    proc = wheels("linux/s390x", tmp_path)
    assert proc.returncode != 0
    assert "PLATFORM must be linux/amd64 or linux/arm64" in proc.stderr
