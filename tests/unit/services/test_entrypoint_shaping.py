"""The entry point's shaping decisions with ``tc`` faked (a pure decision, no kernel): a
process that cannot speak rtnetlink at all (QEMU user-mode emulation of another architecture)
falls back to the in-process link and says what is lost; a missing capability stays an error."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

import pytest

import services.common.entrypoint as entrypoint

QEMU = "Cannot talk to rtnetlink: Operation not supported"
NO_CAP = "RTNETLINK answers: Operation not permitted"
ENV = {"HGC_ROLE": "worker", "HGC_SHAPE_RATE_BPS": "1.25e+07", "HGC_SHAPE_DELAY_S": "0.0005"}


def fake_tc(monkeypatch: pytest.MonkeyPatch, show_err: str, add_err: str) -> list[Sequence[str]]:
    calls: list[Sequence[str]] = []

    def tc(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(args))
        err = show_err if args[1] == "show" else add_err
        return subprocess.CompletedProcess(["tc", *args], 2 if err else 0, "", err)

    monkeypatch.setattr(entrypoint, "_tc", tc)
    return calls


def test_no_rtnetlink_falls_back_to_the_in_process_link_and_says_the_rate_is_lost(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = fake_tc(monkeypatch, QEMU, QEMU)
    plan = entrypoint.plan_from_env(ENV)
    with caplog.at_level(logging.WARNING, logger=entrypoint.log.name):
        kernel, inprocess = entrypoint.apply_shaping(plan)
    assert (kernel, inprocess) == ([], True)
    assert [c[1] for c in calls] == ["show"]  # nothing was attempted after the probe
    assert (
        "rate 1.25e+07 B/s NOT applied" in caplog.text and "Operation not supported" in caplog.text
    )


def test_a_missing_capability_is_still_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # negative control: reading works without NET_ADMIN, changing does not (EPERM)
    fake_tc(monkeypatch, "", NO_CAP)
    plan = entrypoint.plan_from_env(ENV)
    with pytest.raises(entrypoint.EntrypointError, match="NET_ADMIN"):
        entrypoint.apply_shaping(plan)


def test_shaping_applies_when_tc_works(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_tc(monkeypatch, "", "")
    kernel, inprocess = entrypoint.apply_shaping(entrypoint.plan_from_env(ENV))
    assert kernel and kernel[0] == "tbf" and "netem" in kernel and not inprocess
    assert any(c[:2] == ["qdisc", "add"] and "eth0" in c for c in calls)
