"""``hgc code``: via hgc.cli.main and once through the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.coding import make_code
from hgc.cli import main
from tests.unit.coding.exhaustive import check_all_patterns


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["code", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_text_output_shows_placement_load_bound_K_D_and_error(capsys) -> None:  # type: ignore[no-untyped-def]
    rc, out, _ = run_cli(capsys, "--edges", "3", "--workers", "3,3,3", "--se", "1", "--sw", "1")
    assert rc == 0
    assert "K=9 D=4" in out and "load D/K=4/9" in out and "meets the bound" in out
    assert "decode error estimate" in out
    assert "worker 1: 4 5 0 1" in out  # the spec's placement


def test_json_follows_the_documented_schema_and_decodes(capsys) -> None:  # type: ignore[no-untyped-def]
    rc, out, _ = run_cli(
        capsys, "--edges", "3", "--workers", "2,3,4", "--se", "1", "--sw", "1", "--json"
    )
    assert rc == 0
    doc = json.loads(out)
    for key in (
        "scheme",
        "n_edges",
        "workers_per_edge",
        "s_e",
        "s_w",
        "K",
        "D",
        "placement",
        "worker_coefficients",
        "edge_targets",
    ):
        assert key in doc, key
    assert doc["workers_per_edge"] == [2, 3, 4] and doc["K"] == 9 and doc["D"] == 4
    code = make_code("hgc", [2, 3, 4], 1, 1)
    assert doc["placement"] == [[list(p) for p in e] for e in code.placement]
    np.testing.assert_array_equal(np.array(doc["edge_targets"]), code.edge_targets)
    # the JSON alone is enough to encode: sum over workers with the listed coefficients
    for i, edge in enumerate(doc["placement"]):
        for j, parts in enumerate(edge):
            np.testing.assert_array_equal(
                doc["worker_coefficients"][i][j], code.worker_coefficients[i][j]
            )
            assert len(parts) == len(doc["worker_coefficients"][i][j])
    assert check_all_patterns(code, tol=1e-11)[0] <= 1e-11


def test_flat_json_has_s_and_null_edge_targets(capsys) -> None:  # type: ignore[no-untyped-def]
    rc, out, _ = run_cli(
        capsys, "--edges", "2", "--workers", "3", "--scheme", "flat-crc", "--s", "2", "--json"
    )
    doc = json.loads(out)
    assert rc == 0 and doc["edge_targets"] is None and doc["s"] == 2 and "s_e" not in doc


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--edges", "2", "--workers", "1,5", "--se", "1"], "smallest achievable equal load is 1"),
        (
            ["--edges", "3", "--workers", "3,3", "--se", "1"],
            "--workers: 2 values given for --edges 3",
        ),
        (["--edges", "3", "--workers", "a,b,c"], "--workers: expected comma-separated integers"),
        (["--edges", "3", "--workers", "3", "--se", "3"], "s_e=3 >= n_edges=3"),
        (["--edges", "3", "--workers", "3", "--scheme", "fr", "--sw", "1"], "use scheme hgc"),
        (["--edges", "3", "--workers", "3", "--scheme", "flat-frc"], "--s: required"),
        (["--edges", "3", "--workers", "3", "--s", "1"], "--s: only for flat"),
        (["--edges", "3", "--workers", "3", "--se", "1", "--sw", "1", "-K", "10"], "K=10"),
        (["--edges", "3", "--workers", "3", "-K", "900000"], "K=900000 must be <= 100000"),
        (["--edges", "3", "--workers", "3", "-K", "900000000"], "must be <= 100000"),
        (["--edges", "3", "--workers", "3", "--tolerance", "nan"], "--tolerance: must be"),
        (["--edges", "3", "--workers", "3", "--tolerance", "0"], "or inf to turn the check off"),
        (["--edges", "3", "--workers", "3", "--tolerance", "-1"], "--tolerance: must be"),
    ],
)
def test_invalid_or_infeasible_requests_exit_2_with_the_reason(capsys, argv, message) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = run_cli(capsys, *argv)
    assert rc == 2 and out == ""
    assert message in err and err.startswith("hgc code: error:")
    assert err.count("\n") == 1 and "Traceback" not in err


# one edge of 40 workers tolerating 25 with Lagrange points asked for (a non-default point
# family turns the automatic switch to Gaussian tiers off): a large decode error estimate
UNSTABLE = ("--edges", "1", "--workers", "40", "--sw", "25", "--points", "equi-bitrev")


def test_the_same_request_with_default_points_builds_a_stable_gaussian_code(capsys) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = run_cli(capsys, *UNSTABLE[:-2])
    assert rc == 0 and "WARNING" not in err, err


def test_tolerance_inf_turns_the_check_off_with_a_warning_on_stderr(capsys) -> None:  # type: ignore[no-untyped-def]
    rc, out, err = run_cli(capsys, *UNSTABLE)
    assert rc == 2 and "exceeds the tolerance" in err  # the default refuses it
    rc, out, err = run_cli(capsys, *UNSTABLE, "--tolerance", "inf")
    assert rc == 0 and "decode error estimate" in out
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "exceeds the default tolerance" in warnings[0]


def test_tolerance_inf_on_a_stable_code_prints_no_warning(capsys) -> None:  # type: ignore[no-untyped-def]
    rc, _, err = run_cli(capsys, "--edges", "3", "--workers", "3", "--tolerance", "inf")
    assert rc == 0 and "WARNING" not in err


def hgc_script() -> str:
    script = Path(sys.executable).parent / "hgc"
    found = str(script) if script.exists() else shutil.which("hgc")
    assert found, "the hgc console script is not installed (pip install -e .)"
    return found


@pytest.mark.timeout(60)
def test_the_installed_console_script_runs_and_refuses_with_status_2() -> None:
    ok = subprocess.run(
        [
            hgc_script(),
            "code",
            "--edges",
            "3",
            "--workers",
            "3,3,3",
            "--se",
            "1",
            "--sw",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["D"] == 4
    bad = subprocess.run(
        [hgc_script(), "code", "--edges", "2", "--workers", "1,5", "--se", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2 and "largest feasible s_e" in bad.stderr and bad.stdout == ""


def test_integer_points_reproduce_the_spec_worked_example(capsys) -> None:  # type: ignore[no-untyped-def]
    rc, out, _ = run_cli(
        capsys,
        "--edges",
        "3",
        "--workers",
        "3,3,3",
        "--se",
        "1",
        "--sw",
        "1",
        "--points",
        "integers",
        "--json",
    )
    doc = json.loads(out)
    assert rc == 0
    np.testing.assert_allclose(
        doc["edge_targets"],
        [
            [2 / 3] * 3 + [0.5] * 3 + [0] * 3,
            [1 / 3] * 3 + [0] * 3 + [-1] * 3,
            [0] * 3 + [-0.5] * 3 + [-2] * 3,
        ],
        atol=1e-15,
    )


def test_the_coding_core_caps_K_with_the_limit_in_the_message() -> None:
    from common.coding import InfeasibleCodeError
    from common.coding.bounds import MAX_K

    with pytest.raises(InfeasibleCodeError, match=f"must be <= {MAX_K}"):
        make_code("hgc", [3, 3, 3], 1, 1, K=9 * (MAX_K // 9 + 1))
    assert make_code("hgc", [3, 3, 3], 1, 1, K=9 * 10).K == 90  # below the cap: fine


def test_k_limit_also_holds_where_the_0_1_variant_applies() -> None:
    from common.coding import InfeasibleCodeError
    from common.coding.bounds import MAX_K

    # 4 edges x 4 workers, s_e = s_w = 1: the 0/1 variant applies (groups of 2 and 2)
    with pytest.raises(InfeasibleCodeError, match=f"must be <= {MAX_K}"):
        make_code("hgc", [4, 4, 4, 4], 1, 1, K=4 * (MAX_K // 4 + 1))
    assert make_code("hgc", [4, 4, 4, 4], 1, 1, K=8).variant == "fr"
