"""Input that cannot hurt (issue 11): each of the issue's hostile inputs to the ``hgc`` CLI ends
with a one-line error and exit status 2, quickly and in bounded memory.

Each case runs the real CLI in a child process whose address space is capped (RLIMIT_AS,
1.5 GB): reading ``/dev/zero`` without limit or expanding an alias bomb would hit the cap
and fail the case with a MemoryError traceback instead of the one-line error. The time
bound is CPU time of the child (the machine is loaded; CPU time does not depend on load)
plus a generous wall-clock timeout that only catches a hang.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AS_LIMIT = 1536 << 20
CPU_BUDGET_S = 1.0  # beyond the interpreter's and the imports' start-up (measured per case)
WALL_TIMEOUT_S = 60.0

SCENARIO = """
name: hostile
topology:
  workers_per_edge: [2, 2]
  workers: {device: laptop, link: lan}
  edges: {device: laptop, uplink: lan}
model: {kind: logreg}
data: {kind: digits}
code: {s_e: 0, s_w: 1, s: 1}
"""


def alias_bomb() -> str:
    """The classic "billion laughs" in YAML: 9 levels of 9 aliases, under 1 KB."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "\n".join(lines) + "\nname: *i\n"
    assert len(text) < 1024
    return text


def trace_scenario(tmp: Path, trace: str) -> Path:
    path = tmp / "trace.yaml"
    path.write_text(SCENARIO + f"stragglers: {{kind: trace, path: {trace}}}\n")
    return path


def config(tmp: Path, **changes: object) -> Path:
    base: dict[str, object] = {
        "code": {"scheme": "hgc", "workers_per_edge": [2, 2], "s_e": 0, "s_w": 1},
        "data_spec": {"kind": "digits"},
        "model_spec": {"kind": "logreg"},
        "training": {"iterations": 2, "learning_rate": 0.5},
    }
    base.update(changes)
    path = tmp / "config.json"
    path.write_text(json.dumps(base))
    return path


def file(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


# case -> (argv builder, text the one-line error must contain)
CASES = {
    "dev-zero-trace": (
        lambda t: ["run", str(trace_scenario(t, "/dev/zero"))],
        "not a regular file",
    ),
    "config-dev-urandom": (lambda t: ["cluster", "--config", "/dev/urandom"], "regular file"),
    "yaml-alias-bomb": (lambda t: ["run", str(file(t, "bomb.yaml", alias_bomb()))], "alias"),
    "nested-brackets-100k": (
        lambda t: ["run", str(file(t, "deep.yaml", "[" * 100_000))],
        "nested more than",
    ),
    "dev-urandom-trace": (
        lambda t: ["run", str(trace_scenario(t, "/dev/urandom"))],
        "not a regular file",
    ),
    "workdir-proc": (lambda t: ["cluster", "--workdir", "/proc/x"], "--workdir /proc/x"),
    "scheme-nonsense-with-scenario": (
        lambda t: [
            "cluster",
            "--scenario",
            str(file(t, "s.yaml", SCENARIO)),
            "--scheme",
            "nonsense",
        ],
        "nonsense",
    ),
    "timeout-negative": (lambda t: ["cluster", "--timeout", "-1"], "--timeout"),
    "iterations-ten": (
        lambda t: ["cluster", "--config", str(config(t, training={"iterations": "ten"}))],
        "training.iterations: must be int, got str 'ten'",
    ),
    "model-70m-parameters": (
        lambda t: [
            "cluster",
            "--config",
            str(
                config(
                    t,
                    data_spec={"kind": "synthetic", "n_samples": 100, "n_features": 7000},
                    model_spec={"kind": "mlp", "hidden": 10_000},
                )
            ),
        ],
        "message size cap",
    ),
    "topology-10x1000": (
        lambda t: ["cluster", "--workers-per-edge", ",".join(["1000"] * 10)],
        "GiB available",
    ),
}


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def _run(argv: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """The CLI in a memory-capped child; (result, the child's CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-m", "hgc.cli", *argv],
        capture_output=True,
        text=True,
        timeout=WALL_TIMEOUT_S,
        cwd=cwd,
        preexec_fn=_limit_memory,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, cpu


@pytest.fixture(scope="module")
def startup_cpu_s(tmp_path_factory: pytest.TempPathFactory) -> float:
    """CPU time of the same child for a well-formed request that fails at the same stage
    without reading anything hostile (the imports dominate): the control."""
    tmp = tmp_path_factory.mktemp("control")
    proc, cpu = _run(["cluster", "--timeout", "0"], tmp)
    assert proc.returncode == 2, proc.stderr
    return cpu


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_is_one_line_exit_2(case: str, tmp_path: Path, startup_cpu_s: float) -> None:
    build, expected = CASES[case]
    proc, cpu = _run(build(tmp_path), tmp_path)
    err = proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}: {err[-2000:]}"
    assert err.count("\n") == 1 and err.startswith("hgc "), err[-2000:]
    assert len(err) < 600, err[:600]  # never echoes the input back
    assert "Traceback" not in err + proc.stdout and "Error:" not in err
    assert expected in err, err
    # "within a second": CPU time beyond the start-up of the control request
    assert cpu - startup_cpu_s < CPU_BUDGET_S, f"{cpu:.2f} s CPU (start-up {startup_cpu_s:.2f})"
