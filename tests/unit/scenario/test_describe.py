from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common.scenario import describe, load_scenario

ROOT = Path(__file__).resolve().parents[3]


def test_describe_lists_every_node() -> None:
    sc = load_scenario(ROOT / "scenarios" / "heterogeneous.yaml")
    text = describe(sc)
    for name in sc.node_names()[1:]:
        assert f"{name}:" in text
    assert "uplink 80 ms ± 10 ms, 2 Mbit/s, loss 0.02" in text


def test_module_entry_point_validates_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("topology: {workers_per_edge: [1, 5]}\ncode: {s_e: 1}\n")
    good = ROOT / "scenarios" / "homogeneous.yaml"
    cmd = [sys.executable, "-m", "common.scenario"]
    ok = subprocess.run([*cmd, str(good)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert ok.returncode == 0 and "scenario 'homogeneous'" in ok.stdout
    fail = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert fail.returncode == 2
    assert "code.s_e: (s_e+1)*max(workers_per_edge)" in fail.stderr
