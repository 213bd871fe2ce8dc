"""cgroup detection and the v1/v2 file protocol, against temp-dir layouts (no kernel)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hgc.testbed.cgroups import CpuQuotas, detect_cgroups, quota_us, sweep_cgroups


def make_v2(root: Path, controllers: str = "cpu memory io") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.subtree_control").write_text("memory\n")
    (root / "cgroup.procs").write_text("")
    return root


def make_v1(root: Path) -> Path:
    cpu = root / "cpu"
    cpu.mkdir(parents=True)
    (cpu / "cpu.cfs_quota_us").write_text("-1\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    return root


def test_detects_v1_before_v2(tmp_path: Path) -> None:
    make_v2(tmp_path)
    make_v1(tmp_path)
    support = detect_cgroups(tmp_path)
    assert support.version == 1 and support.cpu_root == tmp_path / "cpu"


def test_detects_v2(tmp_path: Path) -> None:
    support = detect_cgroups(make_v2(tmp_path))
    assert support.available and support.version == 2 and support.cpu_root == tmp_path


def test_v2_without_cpu_controller_is_unavailable_with_reason(tmp_path: Path) -> None:
    support = detect_cgroups(make_v2(tmp_path, controllers="memory io"))
    assert not support.available
    assert "no cpu controller" in support.reason


def test_nothing_mounted_is_unavailable(tmp_path: Path) -> None:
    support = detect_cgroups(tmp_path)
    assert not support.available and "no cgroup" in support.reason


def test_v2_create_writes_cpu_max_and_enables_controller(tmp_path: Path) -> None:
    root = make_v2(tmp_path)
    quotas = CpuQuotas(detect_cgroups(root), owner_pid=4242)
    group = quotas.create("worker-0-1", 0.25)
    assert group == root / "hgcrun-4242" / "worker-0-1"
    assert (group / "cpu.max").read_text() == "25000 100000\n"
    assert "+cpu" in (root / "cgroup.subtree_control").read_text()
    assert quotas.quota_of("worker-0-1") == pytest.approx(0.25)
    quotas.attach("worker-0-1", 1234)
    assert (group / "cgroup.procs").read_text() == "1234\n"


def test_v1_create_writes_quota_and_period(tmp_path: Path) -> None:
    root = make_v1(tmp_path)
    quotas = CpuQuotas(detect_cgroups(root), owner_pid=7)
    group = quotas.create("edge-0", 0.5)
    assert (group / "cpu.cfs_quota_us").read_text() == "50000\n"
    assert (group / "cpu.cfs_period_us").read_text() == "100000\n"
    assert quotas.quota_of("edge-0") == pytest.approx(0.5)


def test_cleanup_removes_the_launchers_groups(tmp_path: Path) -> None:
    root = make_v2(tmp_path)
    quotas = CpuQuotas(detect_cgroups(root), owner_pid=99)
    quotas.create("worker-0-0", 1.0)
    quotas.create("worker-0-1", 0.5)
    assert quotas.cleanup() == []
    assert not (root / "hgcrun-99").exists()


@pytest.mark.parametrize("bad", [0.0, -0.5, 100.0])
def test_bad_fraction_is_rejected_naming_it(bad: float) -> None:
    with pytest.raises(ValueError, match="cpu_fraction"):
        quota_us(bad)


def test_bad_node_name_rejected(tmp_path: Path) -> None:
    quotas = CpuQuotas(detect_cgroups(make_v2(tmp_path)), owner_pid=1)
    with pytest.raises(ValueError, match="node name"):
        quotas.create("../escape", 0.5)


def test_attach_without_create_names_the_node(tmp_path: Path) -> None:
    quotas = CpuQuotas(detect_cgroups(make_v2(tmp_path)), owner_pid=1)
    with pytest.raises(KeyError, match="worker-9-9"):
        quotas.attach("worker-9-9", 1)


def test_sweep_spares_live_owners_and_removes_dead_ones(tmp_path: Path) -> None:
    root = make_v2(tmp_path)
    support = detect_cgroups(root)
    CpuQuotas(support, owner_pid=111).create("worker-0-0", 0.5)
    CpuQuotas(support, owner_pid=222).create("worker-0-0", 0.5)
    removed = sweep_cgroups(support, is_alive=lambda pid: pid == 111)
    assert removed == [str(root / "hgcrun-222")]
    assert (root / "hgcrun-111").exists()
