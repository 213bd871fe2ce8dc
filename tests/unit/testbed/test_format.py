"""Honest table cells (hgc.format): a ratio over a ~0, missing or non-finite denominator is
``-`` in every table and null in JSON; never ``meas/sim 1834978071780.44``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hgc.format import cell, finite, ratio_or_none
from hgc.testbed.records import scheme_stats
from hgc.testbed.runfolder import RunFolder, SchemeResult, fill_speedups, format_table


@pytest.mark.parametrize(
    ("num", "den", "expected"),
    [
        (2.0, 1.0, 2.0),
        (1, 4, 0.25),
        (0.0, 3.0, 0.0),
        (-1.0, 2.0, -0.5),
        (np.float64(3.0), np.float64(1.5), 2.0),
        (1.0, 1e-6, 1e6),  # a microsecond is still a figure
    ],
)
def test_ratio_of_two_finite_numbers(num: Any, den: Any, expected: float) -> None:
    assert ratio_or_none(num, den) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("num", "den"),
    [
        (1.83, 0.0),  # the simulator predicted 0 s
        (1.83, -0.0),
        (1.83, 1e-12),  # 0 up to rounding: the reported 1834978071780.44
        (1.83, -1e-12),
        (1e3, 1e-7),  # ratio beyond 1e9: the denominator is noise relative to the numerator
        (1.0, None),
        (None, 1.0),
        (1.0, math.nan),
        (math.nan, 1.0),
        (1.0, math.inf),
        (math.inf, 1.0),
        (1.0, True),  # a flag is not a number
        (1.0, "2"),
    ],
)
def test_no_ratio_over_nothing(num: Any, den: Any) -> None:
    assert ratio_or_none(num, den) is None


def test_cell_prints_a_dash_aligned_to_the_column() -> None:
    assert cell(1.23456, "8.4f") == "  1.2346"
    assert cell(None, "8.2f") == "       -"
    assert cell(math.nan, "7.2f") == "      -"
    assert cell(math.inf, "7.2f") == "      -"
    assert cell(None, ".2f") == "-"
    assert cell(5, "5d") == "    5"
    assert finite(math.nan) is None and finite(0.0) == 0.0 and finite(False) is None


def rec(scheme: str, it: int, dur: float) -> dict[str, Any]:
    return {"scheme": scheme, "iteration": it, "attempt": 0, "ok": True, "duration_s": dur}


def zero_prediction_results() -> dict[str, SchemeResult]:
    """A scenario with no modelled compute: the simulator predicts ~0 s for every scheme."""
    results = {
        "uncoded": SchemeResult(scheme_stats("uncoded", [rec("uncoded", 0, 1.834978)]), 1e-12),
        "hgc": SchemeResult(scheme_stats("hgc", [rec("hgc", 0, 0.9)]), 0.0),
        "ignore": SchemeResult(scheme_stats("ignore", [rec("ignore", 0, 0.5)]), None),
    }
    fill_speedups(results)
    return results


def test_table_of_a_zero_prediction_prints_dashes_not_huge_ratios() -> None:
    results = zero_prediction_results()
    assert all(r.measured_over_predicted is None for r in results.values())
    assert all(r.predicted_speedup is None for r in results.values())
    # the measured speed-up has finite parts on both sides: it stays a figure
    assert results["hgc"].speedup == pytest.approx(1.834978 / 0.9)
    table = format_table(results)
    lines = table.splitlines()
    widths = {len(line) for line in lines[2:]} | {len(lines[0])}
    assert len(widths) == 1, table  # the dashes keep the columns aligned

    def column(line: str, title: str) -> str:  # right-aligned: the cell spans its title
        start = lines[0].index(title)
        return line[start : start + len(title)].strip()

    for line in lines[2:]:
        assert column(line, "meas/sim") == "-", line
        assert column(line, "sim spd") == "-", line
    assert column(lines[3], "speedup") == "2.04"  # hgc: measured 1.83 / 0.9
    assert "1834978071780" not in table and "e+" not in table and "inf" not in table


def test_summary_json_has_null_for_a_ratio_over_zero(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    folder.write_summary(zero_prediction_results())
    text = (tmp_path / "run" / "summary.json").read_text()
    summary = json.loads(text)["schemes"]
    for name in ("uncoded", "hgc", "ignore"):
        assert summary[name]["measured_over_predicted"] is None
        assert summary[name]["predicted_speedup_vs_uncoded"] is None
    assert summary["hgc"]["predicted_mean_s"] == 0.0  # the prediction itself is honest
    assert summary["hgc"]["speedup_vs_uncoded"] == pytest.approx(1.834978 / 0.9)
    assert "NaN" not in text and "Infinity" not in text


def test_failed_scheme_has_no_speedup() -> None:
    """No successful iteration: mean NaN -> every ratio involving it is missing."""
    failed = {**rec("hgc", 0, 9.0), "ok": False}
    results = {
        "uncoded": SchemeResult(scheme_stats("uncoded", [rec("uncoded", 0, 2.0)]), 2.0),
        "hgc": SchemeResult(scheme_stats("hgc", [failed]), 1.0),
    }
    fill_speedups(results)
    assert results["hgc"].speedup is None and results["hgc"].measured_over_predicted is None
    assert results["hgc"].predicted_speedup == pytest.approx(2.0)
    assert results["uncoded"].measured_over_predicted == pytest.approx(1.0)
