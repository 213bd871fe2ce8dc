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
    # the console script, as users run it (``python -m hgc.cli`` would load the CLI twice)
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


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--data", "foo"], "data_spec (--data)"),
        (["--model", "bar"], "model_spec (--model)"),
        (["--config", "LIST"], "must hold a JSON object"),
        (["--config", "TRAINING5"], "training: must be a JSON object"),
    ],
)
def test_hgc_cluster_bad_input_is_one_stderr_line_exit_2_before_any_process(
    tmp_path: Path, args: list[str], field: str
) -> None:
    (tmp_path / "list.json").write_text("[1, 2]")
    code = {"scheme": "hgc", "workers_per_edge": [2, 2], "s_e": 1, "s_w": 1}
    config = {"code": code, "data_spec": {"kind": "digits"}, "training": 5}
    (tmp_path / "t5.json").write_text(json.dumps(config))
    paths = {"LIST": str(tmp_path / "list.json"), "TRAINING5": str(tmp_path / "t5.json")}
    workdir = tmp_path / "work"
    out = hgc(
        "cluster", "--workers-per-edge", "2,2", *[paths.get(a, a) for a in args],
        "--workdir", str(workdir), timeout=60,
    )  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.count("\n") == 1 and field in out.stderr, out.stderr
    assert "Traceback" not in out.stderr + out.stdout and out.stdout == ""
    assert not (workdir / "logs").exists()  # no node was started
