"""``hgc cluster`` and the service entry points as a user runs them (real processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def hgc(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    # the console script, as users run it (``python -m common.cli`` would load the CLI twice)
    cmd = [str(Path(sys.executable).parent / "hgc"), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_hgc_cluster_trains_and_prints_each_iteration(tmp_path: Path) -> None:
    out = hgc(
        "cluster", "--workers-per-edge", "2,2", "--s-e", "1", "--s-w", "1",
        "--iterations", "3", "--json", "--workdir", str(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [r["iteration"] for r in rows] == [0, 1, 2] and all(r["ok"] for r in rows)
    assert (tmp_path / "record.jsonl").exists() and (tmp_path / "logs" / "worker-1-1.log").exists()


def test_hgc_cluster_rejects_an_impossible_code_naming_the_field() -> None:
    out = hgc("cluster", "--workers-per-edge", "2,2", "--s-e", "2", timeout=60)
    assert out.returncode == 2
    assert "s_e" in out.stderr


def test_master_rejects_a_bad_config_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(
        json.dumps(
            {
                "code": {"scheme": "hgc", "workers_per_edge": [2, 2], "s_e": 1, "s_w": 1},
                "data_spec": {"kind": "digits"},
                "model_spec": {"kind": "logreg"},
                "training": {"on_failure": "pray"},
            }
        )
    )
    cmd = [sys.executable, "-m", "services.master", "--config", str(config)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "on_failure" in out.stderr


def test_worker_flags_come_from_hgc_environment_variables() -> None:
    cmd = [sys.executable, "-m", "services.worker", "--help"]
    env = {"HGC_EDGE": "1", "HGC_WORKER": "x", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2 and "HGC_WORKER='x'" in out.stderr
