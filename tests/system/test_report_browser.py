"""The run report in a real browser: ``hgc run`` writes ``report.html`` into its run folder,
Debian's headless Chromium renders it from the file with no console message (no error, no
failed fetch), the rendered DOM holds every figure, and the screenshot is not blank.

Chromium is provisioned in CI (scripts/provision.sh); elsewhere the test skips without it.
A negative control checks that the console check sees a page's script error."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.system.docker_helpers import unavailable

HGC = [str(Path(sys.executable).parent / "hgc")]
FIGURES = ("fig-prediction", "fig-cdf", "fig-time", "fig-loss", "fig-accuracy", "fig-edge-wait")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # the closed network refuses Chromium's own fetches
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)

SCENARIO = """
name: report
seed: 5
topology:
  workers_per_edge: [3, 3]
  workers: {device: laptop, link: lan}
  edges: {device: laptop, uplink: lan}
  overrides:
    worker-1-0: {device: rpi3}
model: {kind: logreg}
data: {kind: digits}
training: {iterations: 4, eval_every: 2, deadline_s: 20}
code: {s_e: 0, s_w: 1, s: 1}
schemes: [uncoded, hgc-jncss]
emulation: {compute: delay}
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        unavailable("chromium is not installed")
    assert path is not None
    return path


def browse(chromium: str, page: Path, *extra: str) -> tuple[str, list[str]]:
    """Load ``page`` from its file; return stdout and the console lines Chromium logged."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


def test_console_check_sees_a_script_error(chromium: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    _, console = browse(chromium, bad, "--dump-dom")
    assert any("undefinedFunction" in line for line in console), console


def test_hgc_run_writes_a_report_that_chromium_renders(chromium: str, tmp_path: Path) -> None:
    scenario = tmp_path / "report.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "run"
    proc = subprocess.run(
        [*HGC, "run", str(scenario), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    page = out / "report.html"
    assert page.is_file(), sorted(p.name for p in out.iterdir())

    dom, console = browse(chromium, page, "--dump-dom")
    assert console == [], console
    for fig in (*FIGURES, "fig-heatmap-0", "fig-heatmap-1"):
        assert re.search(rf'<svg[^>]* id="{fig}"', dom), fig
    # the straggler heat-map names scenario nodes, and the rpi3 worker appears in it
    assert "worker-1-0" in dom

    shot = tmp_path / "report.png"
    _, console = browse(chromium, page, f"--screenshot={shot}", "--window-size=1200,2400")
    assert console == [], console
    import matplotlib.image

    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1000
    assert float(pixels[..., :3].std()) > 0.05, "the screenshot is blank"
